"""Models harness with a manifest whose attention head split differs from arch.py's SD1/SD2 rules.

The weights cannot show the head split (q, k and v are width x width for any split), so A1111 takes it from the
model's yaml and ``python3 -m lorabridge.conformance models`` takes it from the manifest's config. The cases here
are written in the shared manifest's format (``.ckpt`` + ``.safetensors``, ``in_*.npy``/``out_*.npy``, tolerance)
with random weights; the reference outputs come from modules built directly from the stated config, not through
inference from the weights, and each case also proves the split matters: computed with the rule's split, the
outputs are far outside the tolerance. Needs no ../shared (the shared checker is used too when it is there).
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import SHARED
from lorabridge import arch
from lorabridge.checkpoint import save_safetensors
from lorabridge.clip_text import CLIPTextConfig, CLIPTextModel
from lorabridge.conformance import models as harness
from lorabridge.unet import UNetConfig, UNetModel

REPO = Path(__file__).resolve().parents[2]
TOL = {"atol": 5e-5, "rtol": 1e-4}

# conv proj_in (SD1 layout): the rule gives 2 heads of 32 at width 64; the manifest says 16-channel heads (4).
UNET_SD1 = UNetConfig(model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,),
                      num_heads=-1, num_head_channels=16, context_dim=24)
# linear proj_in (SD2 layout): the rule gives 64-channel heads (1 at width 64); the manifest says 4 heads.
UNET_SD2 = replace(UNET_SD1, num_heads=4, num_head_channels=-1, use_linear_in_transformer=True)
# CLIP width 32: the rule gives 8-channel heads (4); the manifest says 2.
CLIP = CLIPTextConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, max_position_embeddings=77, eos_token_id=299)


def _randomize(module: torch.nn.Module, seed: int) -> None:
    # ldm zero-initialises output projections; random weights everywhere make every head's output count.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def _unet_case(base: Path, name: str, cfg: UNetConfig, seed: int) -> dict[str, Any]:
    unet = UNetModel(cfg).eval()
    _randomize(unet, seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(2, 4, 6, 8, generator=g)
    ts = torch.tensor([999.0, 37.625])
    ctx = torch.randn(2, 77, cfg.context_dim, generator=g)
    with torch.no_grad():
        eps = unet(x, ts, ctx)
    config = {"in_channels": 4, "out_channels": 4, "model_channels": cfg.model_channels,
              "attention_resolutions": cfg.attention_resolutions, "num_res_blocks": cfg.num_res_blocks,
              "channel_mult": list(cfg.channel_mult), "use_spatial_transformer": True, "transformer_depth": 1,
              "context_dim": cfg.context_dim, "use_linear_in_transformer": cfg.use_linear_in_transformer,
              "legacy": False}
    config.update({k: v for k, v in (("num_heads", cfg.num_heads), ("num_head_channels", cfg.num_head_channels))
                   if v != -1})
    return _write_case(base, name, arch.UNET_PREFIX, unet.state_dict(), config,
                       {"x": x, "timesteps": ts, "context": ctx}, {"eps": eps})


def _clip_case(base: Path, name: str, cfg: CLIPTextConfig, seed: int) -> dict[str, Any]:
    clip = CLIPTextModel(cfg).eval()
    _randomize(clip, seed)
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.full((2, 77), cfg.eos_token_id, dtype=torch.int64)
    ids[:, 0] = cfg.vocab_size - 2
    ids[:, 1:9] = torch.randint(0, cfg.vocab_size - 2, (2, 8), generator=g)
    with torch.no_grad():
        out = clip(ids)
    config = {"vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
              "num_hidden_layers": cfg.num_hidden_layers, "num_attention_heads": cfg.num_attention_heads,
              "max_position_embeddings": cfg.max_position_embeddings, "eos_token_id": cfg.eos_token_id}
    return _write_case(base, name, arch.CLIP_PREFIX, clip.state_dict(), config, {"input_ids": ids},
                       {"last_hidden_state": out.last_hidden_state, "pooled": out.pooled})


def _write_case(base: Path, name: str, prefix: str, state: dict[str, torch.Tensor], config: dict[str, Any],
                inputs: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> dict[str, Any]:
    d = base / name
    d.mkdir(parents=True)
    tensors = {prefix + k: v.detach().clone().contiguous() for k, v in state.items()}
    torch.save({"state_dict": tensors}, d / "weights.ckpt")
    save_safetensors(d / "weights.safetensors", tensors)

    def spec(kind: str, key: str, t: torch.Tensor) -> dict[str, Any]:
        arr = t.detach().numpy()
        np.save(d / f"{kind}_{key}.npy", arr)
        return {"file": f"{name}/{kind}_{key}.npy", "shape": list(arr.shape), "dtype": str(arr.dtype)}

    return {"config": config, "weights": {"ckpt": f"{name}/weights.ckpt", "safetensors": f"{name}/weights.safetensors",
                                          "key_prefix": prefix, "num_tensors": len(tensors)},
            "inputs": {k: spec("in", k, v) for k, v in inputs.items()},
            "outputs": {k: spec("out", k, v) for k, v in outputs.items()},
            "tolerance": TOL}


@pytest.fixture(scope="module")
def head_cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("head-split")
    cases = {"unet_sd1_head_channels": _unet_case(base, "unet_sd1_head_channels", UNET_SD1, 11),
             "unet_sd2_num_heads": _unet_case(base, "unet_sd2_num_heads", UNET_SD2, 12),
             "clip_two_heads": _clip_case(base, "clip_two_heads", CLIP, 13)}
    (base / "manifest.json").write_text(json.dumps({"format_version": 1, "cases": cases}, indent=1))
    return base / "manifest.json"


def _within_tolerance(manifest: Path, out: Path) -> dict[str, float]:
    """Per output file: the worst |cand-ref| / (atol + rtol*|ref|) (the checker's rule; <= 1 passes)."""
    spec = json.loads(manifest.read_text())
    worst = {}
    for case in spec["cases"].values():
        tol = case["tolerance"]
        for o in case["outputs"].values():
            ref = np.load(manifest.parent / o["file"])
            cand = np.load(out / o["file"])
            worst[o["file"]] = float((np.abs(cand - ref) / (tol["atol"] + tol["rtol"] * np.abs(ref))).max())
    return worst


def test_the_rules_would_pick_another_split(head_cases: Path) -> None:
    """Guards the premise: for every case the SD1/SD2 rules of arch.py infer a different split."""
    from lorabridge.checkpoint import load_state_dict

    for name, case in json.loads(head_cases.read_text())["cases"].items():
        sd = load_state_dict(head_cases.parent / case["weights"]["safetensors"])
        inferred = arch.detect(sd)
        if name.startswith("unet"):
            stated = replace(inferred.unet, num_heads=case["config"].get("num_heads", -1),
                             num_head_channels=case["config"].get("num_head_channels", -1))
            assert inferred.unet.heads_and_dim(64) != stated.heads_and_dim(64), name
        else:
            assert inferred.text_encoder.num_attention_heads != case["config"]["num_attention_heads"], name


def test_command_line_takes_the_manifests_head_split(head_cases: Path, tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "lorabridge.conformance", "models", str(head_cases), str(tmp_path)],
                         capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "python"), "PATH": "/usr/bin:/bin"},
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    worst = _within_tolerance(head_cases, tmp_path)
    assert len(worst) == 4 and max(worst.values()) <= 1.0, worst
    checker = SHARED / "conformance/models/compare_outputs.py"
    if checker.is_file():  # the shared checker agrees (it reads the manifest we name)
        res = subprocess.run([sys.executable, str(checker), str(tmp_path), "--manifest", str(head_cases)],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0 and "RESULT: PASS" in res.stdout, res.stdout[-3000:]


def test_the_rules_split_would_fail_the_same_references(head_cases: Path, tmp_path: Path) -> None:
    """With the head keys removed the harness falls back to the rules, and every output misses the reference."""
    spec = json.loads(head_cases.read_text())
    for case in spec["cases"].values():
        for k in ("num_heads", "num_head_channels", "num_attention_heads"):
            case["config"].pop(k, None)
    manifest = head_cases.parent / "manifest_without_heads.json"
    manifest.write_text(json.dumps(spec))
    assert harness.run(manifest, tmp_path) == 0
    worst = _within_tolerance(manifest, tmp_path)
    assert min(worst.values()) > 10, worst  # 10x the tolerance at least (measured: 85x to 580x)


@pytest.mark.parametrize("change,message", [
    ({"context_dim": 32}, "context_dim: manifest 32, inferred 24"),
    ({"channel_mult": [1, 4]}, "channel_mult: manifest [1, 4], inferred (1, 2)"),
    ({"num_head_channels": 24}, "width 64 is not divisible by num_head_channels 24"),
])
def test_disagreements_in_what_the_shapes_show_still_fail(head_cases: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          change: dict[str, Any], message: str) -> None:
    spec = json.loads(head_cases.read_text())
    case = spec["cases"]["unet_sd1_head_channels"]
    case["config"].update(change)
    manifest = head_cases.parent / f"manifest_{'_'.join(change)}.json"
    manifest.write_text(json.dumps({"cases": {"unet_sd1_head_channels": case}}))
    assert harness.run(manifest, tmp_path) == 1
    assert message in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.npy"))
