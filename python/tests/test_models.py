"""Module conformance against the reference outputs, loading from files, and module behaviour."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lorabridge import attention as attn_mod
from lorabridge.checkpoint import load_state_dict, save_safetensors
from lorabridge.conformance import models as harness
from lorabridge.model import StableDiffusion, load_checkpoint
from lorabridge.unet import UNetConfig, UNetModel, timestep_embedding

CHECKER_PYTHON = sys.executable  # the interpreter pytest runs under (LORABRIDGE_TEST_PYTHON in .ci/test)


def _checker(shared: Path, out: Path, manifest: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [CHECKER_PYTHON, str(shared / "conformance/models/compare_outputs.py"), str(out)]
    if manifest is not None:
        cmd += ["--manifest", str(manifest)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("weights", ["ckpt", "safetensors"])
def test_conformance_passes_per_weights_format(shared_dir, tmp_path, weights):
    manifest = shared_dir / "conformance/models/manifest.json"
    assert harness.run(manifest, tmp_path, weights=weights) == 0
    res = _checker(shared_dir, tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "RESULT: PASS" in res.stdout


def test_conformance_all_formats_and_checker_detects_damage(shared_dir, tmp_path):
    manifest = shared_dir / "conformance/models/manifest.json"
    assert harness.run(manifest, tmp_path) == 0
    spec = json.loads(manifest.read_text())
    eps_file = next(o["file"] for c in spec["cases"].values() for o in c["outputs"].values() if "eps" in o["file"])
    arr = np.load(tmp_path / eps_file)
    np.save(tmp_path / eps_file, arr * 1.001)  # a 0.1% error must be caught by the checker we rely on
    assert _checker(shared_dir, tmp_path).returncode == 1


def test_harness_rejects_manifest_config_that_disagrees(shared_dir, tmp_path):
    base = shared_dir / "conformance/models"
    spec = json.loads((base / "manifest.json").read_text())
    name, case = next((n, c) for n, c in spec["cases"].items() if "model_channels" in c.get("config", {}))
    case["config"]["model_channels"] *= 2
    for group in ("inputs", "outputs", "intermediates"):
        for item in case.get(group, {}).values():
            item["file"] = str(base / item["file"])
    for k, v in case["weights"].items():
        if isinstance(v, str) and v.endswith((".ckpt", ".safetensors")):
            case["weights"][k] = str(base / v)
    man = tmp_path / "manifest.json"
    man.write_text(json.dumps({"cases": {name: case}}))
    assert harness.run(man, tmp_path / "out") == 1
    assert not any((tmp_path / "out").rglob("*.npy"))


def test_fp16_storage_loads_and_computes_in_float32(shared_dir, tmp_path):
    base = shared_dir / "conformance/models/unet_small"
    sd = load_state_dict(base / "weights.safetensors")
    half = tmp_path / "unet_fp16.safetensors"
    save_safetensors(half, {k: v.half() for k, v in sd.items()})
    model = load_checkpoint(half)
    assert model.parts == ["unet"] and model.missing_parts == ["vae", "text_encoder"]
    assert model.alphas_cumprod is None
    assert all(p.dtype == torch.float32 for p in model.unet.parameters())
    x, t, c = (torch.from_numpy(np.load(base / f)) for f in ("in_x.npy", "in_timesteps.npy", "in_context.npy"))
    with torch.no_grad():
        eps = model.unet(x, t, c).numpy()
    ref = np.load(base / "out_eps.npy")
    err = np.abs(eps - ref).max()
    assert 1e-6 < err < 5e-2  # fp16 rounding of the weights shows, but the model is the same


def test_parameters_are_owned_copies(shared_dir):
    sd = load_state_dict(shared_dir / "conformance/models/clip_small/weights.safetensors")
    model = StableDiffusion.from_state_dict(sd)
    module, pname = model.module_for_key("cond_stage_model.transformer.text_model.final_layer_norm.weight")
    before = sd["cond_stage_model.transformer.text_model.final_layer_norm.weight"].clone()
    getattr(module, pname).data.add_(1.0)  # a patcher writes in place; the file's tensors must not change
    assert torch.equal(sd["cond_stage_model.transformer.text_model.final_layer_norm.weight"], before)
    with pytest.raises(KeyError, match="has no unet"):
        model.module_for_key("model.diffusion_model.out.2.weight")


def test_timestep_embedding_matches_ldm_formula():
    t = torch.tensor([0.0, 37.625, 999.0])
    emb = timestep_embedding(t, 6)
    freqs = np.exp(-np.log(10000.0) * np.arange(3) / 3)
    args = t.numpy()[:, None].astype(np.float64) * freqs[None]
    np.testing.assert_allclose(emb.numpy(), np.concatenate([np.cos(args), np.sin(args)], 1), atol=2e-4)


def test_explicit_attention_matches_reference_softmax():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 8, generator=g) for _ in range(3))
    out = attn_mod.attention(q, k, v, heads=2, causal=True, use_sdpa=False)
    qh, kh, vh = (x.reshape(2, 5, 2, 4).transpose(1, 2) for x in (q, k, v))
    sim = qh @ kh.transpose(-1, -2) / 2.0
    sim = sim + torch.full((5, 5), float("-inf")).triu(1)
    ref = (sim.softmax(-1) @ vh).transpose(1, 2).reshape(2, 5, 8)
    torch.testing.assert_close(out, ref)
    assert out[:, 0].allclose(v[:, 0])  # causal: the first token only sees itself
    if attn_mod.HAS_SDPA:
        torch.testing.assert_close(attn_mod.attention(q, k, v, 2, causal=True, use_sdpa=True), ref)


def test_unet_odd_latent_size_and_half_batch_consistency():
    torch.manual_seed(0)
    cfg = UNetConfig(model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,),
                     num_heads=-1, num_head_channels=32, context_dim=16)
    unet = UNetModel(cfg).eval()
    x = torch.randn(2, 4, 7, 9)
    ctx = torch.randn(2, 5, 16)
    with torch.no_grad():
        both = unet(x, torch.tensor([10.0, 500.0]), ctx)
        one = unet(x[1:], torch.tensor([500.0]), ctx[1:])
    assert both.shape == x.shape
    torch.testing.assert_close(both[1:], one, atol=1e-5, rtol=1e-4)


def test_conformance_command_line(shared_dir, tmp_path):
    repo = Path(__file__).resolve().parents[2]
    env = {"PYTHONPATH": str(repo / "python"), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-m", "lorabridge.conformance", "models",
                          str(shared_dir / "conformance/models/manifest.json"), str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert _checker(shared_dir, tmp_path).returncode == 0


def test_blocked_explicit_attention_equals_single_block(monkeypatch):
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 37, 12, generator=g) for _ in range(3))
    for causal in (False, True):
        whole = attn_mod.attention(q, k, v, heads=3, causal=causal, use_sdpa=False)
        monkeypatch.setattr(attn_mod, "_BLOCK_ELEMENTS", 2 * 3 * 37 * 5)  # 5 query rows per block
        blocked = attn_mod.attention(q, k, v, heads=3, causal=causal, use_sdpa=False)
        monkeypatch.undo()
        torch.testing.assert_close(blocked, whole, atol=1e-6, rtol=1e-6)
