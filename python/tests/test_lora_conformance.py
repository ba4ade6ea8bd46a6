"""The LoRA conformance harness reproduces A1111 v1.10.1's merged weights for every public case."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lorabridge.conformance import lora


def test_harness_passes_the_checker(shared_dir: Path, tmp_path: Path) -> None:
    data = shared_dir / "conformance" / "lora"
    assert lora.run(data / "manifest.json", tmp_path) == 0
    result = subprocess.run([sys.executable, str(data / "compare_lora.py"), str(tmp_path), "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checker_rejects_a_wrong_merge(shared_dir: Path, tmp_path: Path) -> None:
    """The acceptance check can fail: a result with one tensor perturbed must not pass."""
    from lorabridge.checkpoint import load_state_dict, save_safetensors

    data = shared_dir / "conformance" / "lora"
    lora.run(data / "manifest.json", tmp_path)
    case = tmp_path / "lora_attn__1_1.safetensors"
    tensors = load_state_dict(case)
    key = sorted(tensors)[0]
    tensors = {k: v.clone() for k, v in tensors.items()}
    tensors[key][0] += 1e-3
    save_safetensors(case, tensors)
    result = subprocess.run([sys.executable, str(data / "compare_lora.py"), str(tmp_path), "--case", "lora_attn__1_1",
                             "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
