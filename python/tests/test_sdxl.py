"""SDXL: conformance against the reference outputs, family detection and refusals, streaming load, demo-xl
generation, LoRA on SDXL (te2 fused attention, cross-family files), restoration."""
from __future__ import annotations

import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, SHARED, shared_skip_reason
from lorabridge import bridge
from lorabridge.checkpoint import load_state_dict, save_safetensors
from lorabridge.demo import write_demo_model
from lorabridge.demo_xl import write_demo_model_xl
from lorabridge.generation import Session
from lorabridge.model_loading import load_model
from lorabridge.patcher import Activation, Patcher
from lorabridge.sdxl import Precision, SafetensorsSource, SDXLModel, detect_family, pack_cond, te2_ids, unpack_cond

SDXL_DATA = SHARED / "conformance" / "sdxl"


def _need_shared() -> Path:
    if not SHARED.is_dir():  # present but incomplete fails (as every test reading ../shared does)
        pytest.skip(shared_skip_reason())
    return SDXL_DATA


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    write_demo_model(root)
    write_demo_model_xl(root)
    return root


# ------------------------------------------------------------------------------------ conformance

def _run_harness(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO / "python"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "lorabridge.conformance", "sdxl", str(SDXL_DATA / "manifest.json"),
                           str(out), *extra], env=env, capture_output=True, text=True, timeout=600)


def test_conformance_harness_passes_the_checker(tmp_path: Path) -> None:
    data = _need_shared()
    run = _run_harness(tmp_path)
    assert run.returncode == 0, run.stderr
    check = subprocess.run([sys.executable, str(data / "compare_sdxl.py"), str(tmp_path)], capture_output=True,
                           text=True, timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "RESULT: PASS" in check.stdout


def test_every_lora_group_is_applied_exactly_where_a1111_applies_it() -> None:
    data = _need_shared()
    import json

    manifest = json.loads((data / "manifest.json").read_text())
    model = SDXLModel.load(data / manifest["model"]["file"])
    patcher = Patcher(model)
    for name, spec in manifest["lora"]["files"].items():
        net = patcher.load(data / spec["file"], name)
        applied = {m.group for m in net.modules.values()}
        for group in spec["groups"]:
            assert (group["network_key"] in applied) == group["expected_applied"], (name, group["network_key"])


def test_checker_rejects_a_wrong_head_split(tmp_path: Path) -> None:
    # The head split is the one thing the shapes cannot show; a wrong one must be visible to the checker.
    data = _need_shared()
    assert _run_harness(tmp_path, "--unet-head-channels", "32").returncode == 0
    check = subprocess.run([sys.executable, str(data / "compare_sdxl.py"), str(tmp_path), "--family", "sdxl_unet"],
                           capture_output=True, text=True, timeout=600)
    assert check.returncode == 1


def test_fp16_storage_loads_to_the_same_float32_values(tmp_path: Path) -> None:
    data = _need_shared()
    sd = load_state_dict(data / "model" / "sdxl_tiny.safetensors")
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
    save_safetensors(tmp_path / "half.safetensors", half)
    model = SDXLModel.load(tmp_path / "half.safetensors")
    key = "input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight"
    got = dict(model.unet.named_parameters())[key]
    assert got.dtype == torch.float32
    assert torch.equal(got, half["model.diffusion_model." + key].float())


# ------------------------------------------------------------------------------------ loading and refusals

def test_streamed_tensors_equal_the_file(demo: Path) -> None:
    path = demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors"
    ref = load_state_dict(path)
    src = SafetensorsSource(str(path))
    try:
        for key in list(ref)[:50]:
            t = src.take(key)
            assert t.dtype == ref[key].dtype and torch.equal(t, ref[key]), key
    finally:
        src.close()


def test_family_detection(demo: Path) -> None:
    xl = load_state_dict(demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors")
    sd1 = load_state_dict(demo / "Stable-diffusion" / "lorabridge-demo.safetensors")
    shapes = lambda sd: {k: tuple(v.shape) for k, v in sd.items()}  # noqa: E731
    assert detect_family(shapes(xl)).family == "sdxl"
    assert detect_family(shapes(sd1)).family == "sd1"
    assert detect_family({"foo.weight": (3,)}).family == "unknown"
    unet_only = {k: v for k, v in shapes(xl).items() if k.startswith("model.diffusion_model.")}
    info = detect_family(unet_only)
    assert not info.supported and "without SDXL text encoders" in info.detail


def _write_variant(tmp_path: Path, demo: Path, name: str, edit) -> Path:
    sd = load_state_dict(demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors")
    sd = {k: v.clone() for k, v in sd.items()}
    edit(sd)
    path = tmp_path / f"{name}.safetensors"
    save_safetensors(path, sd)
    return path


def test_refiner_shaped_checkpoint_is_refused_naming_the_family(tmp_path: Path, demo: Path) -> None:
    def refiner(sd: dict) -> None:  # the refiner has only the OpenCLIP encoder, as embedders.0
        for k in [k for k in sd if k.startswith("conditioner.embedders.0.")]:
            del sd[k]
        for k in [k for k in sd if k.startswith("conditioner.embedders.1.")]:
            sd[k.replace("conditioner.embedders.1.", "conditioner.embedders.0.")] = sd.pop(k)

    path = _write_variant(tmp_path, demo, "refiner", refiner)
    with pytest.raises(ValueError, match="SDXL refiner") as e:
        load_model(path)
    assert str(path) in str(e.value)
    assert bridge.checkpoint_family(str(path))["supported"] is False


def test_nine_channel_checkpoint_is_refused_naming_the_family(tmp_path: Path, demo: Path) -> None:
    def inpaint(sd: dict) -> None:
        w = sd["model.diffusion_model.input_blocks.0.0.weight"]
        sd["model.diffusion_model.input_blocks.0.0.weight"] = torch.cat([w, w, w[:, :1]], dim=1)

    path = _write_variant(tmp_path, demo, "inpaint", inpaint)
    with pytest.raises(ValueError, match="SDXL inpainting UNet") as e:
        load_model(path)
    assert str(path) in str(e.value) and "9 input channels" in str(e.value)


def test_truncated_sdxl_file_names_the_file_and_the_tensor(tmp_path: Path, demo: Path) -> None:
    src = demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors"
    data = src.read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ValueError) as e:
        load_model(path)
    msg = str(e.value)
    assert str(path) in msg and "tensor '" in msg and "truncated" in msg


def test_missing_tensor_is_named(tmp_path: Path, demo: Path) -> None:
    path = _write_variant(tmp_path, demo, "missing",
                          lambda sd: sd.pop("conditioner.embedders.1.model.transformer.resblocks.1.mlp.c_fc.weight"))
    with pytest.raises(ValueError, match=r"resblocks\.1\.mlp\.c_fc\.weight"):
        load_model(path)


def test_sd1_checkpoint_still_loads_as_sd1(demo: Path) -> None:
    model = load_model(demo / "Stable-diffusion" / "lorabridge-demo.safetensors")
    assert getattr(model, "family", "sd1") == "sd1" and model.unet is not None


# ------------------------------------------------------------------------------------ conditioning helpers

def test_te2_ids_pad_with_zero_after_the_first_end_token() -> None:
    ids = torch.tensor([[[10, 5, 99, 99, 99], [10, 99, 99, 99, 99]]])
    assert te2_ids(ids, 99).tolist() == [[[10, 5, 99, 0, 0], [10, 99, 0, 0, 0]]]


def test_packed_conditioning_round_trips() -> None:
    c, v = torch.randn(2, 154, 40), torch.randn(2, 1568)
    c2, v2 = unpack_cond(pack_cond(c, v), 40)
    assert torch.equal(c, c2) and torch.equal(v, v2)


def test_empty_negative_zeroes_text_but_keeps_sizes(demo: Path) -> None:
    s = Session(demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors", device="cpu")
    eos = s.model.text_encoder.config.vocab_size - 1
    chunk = [[[eos - 1] + [eos] * 76]]
    ones = [[[1.0] * 77]]
    crossattn, vector = s.model.get_learned_conditioning(chunk, None, ones, 1024, 768, zero_text=True)
    assert crossattn.abs().max() == 0 and vector[:, :32].abs().max() == 0
    assert vector[:, 32:].abs().max() > 0.5
    crossattn2, vector2 = s.model.get_learned_conditioning(chunk, None, ones, 1024, 768, zero_text=False)
    assert crossattn2.abs().max() > 0 and torch.equal(vector2[:, 32:], vector[:, 32:])


# ------------------------------------------------------------------------------------ generation and LoRA

def _generate(s: Session, nets: list, seed: int = 7) -> bytes:
    s.set_networks(nets)
    eos = s.model.text_encoder.config.vocab_size - 1
    ids = [[[eos - 1, 5, 6, 7] + [eos] * 73]]
    ones = [[[1.0] * 77]]
    cond = s.encode_batch_xl(ids, None, ones, 128, 128)[0]
    uncond = s.encode_batch_xl([[[eos - 1] + [eos] * 76]], None, ones, 128, 128, zero_text=True)[0]
    run = s.start("Euler a", "Automatic", 3, seed, 1, 128, 128)
    while s.step(run, [(cond, 1.0)], uncond, 7.0) > 0:
        pass
    png = s.decode_png(run, ["params"])[0]
    for h in (run, cond, uncond):
        s.release(h)
    return png


def test_demo_xl_generates_deterministically_and_lora_weight_zero_is_no_lora(demo: Path) -> None:
    s = Session(demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors", device="cpu")
    assert s.model_info()["family"] == "sdxl" and s.model_info()["default_width"] == 1024
    digest = s.weights_digest()
    plain = _generate(s, [])
    assert _generate(s, []) == plain
    s.load_network("demo_style_xl", demo / "Lora" / "demo_style_xl.safetensors")
    assert s.network_family("demo_style_xl")["warning"] == ""
    assert _generate(s, [("demo_style_xl", 0.0, 0.0, None)]) == plain
    styled = _generate(s, [("demo_style_xl", 0.8, 0.8, None)])
    assert styled != plain
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(plain)), dtype=np.float32)
    b = np.asarray(Image.open(io.BytesIO(styled)), dtype=np.float32)
    assert a.shape == (128, 128, 3) and a.std() > 5 and np.abs(a - b).mean() > 0.5
    s.restore()
    assert s.weights_digest() == digest


def test_sd1_lora_on_sdxl_warns_and_generates(demo: Path) -> None:
    s = Session(demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors", device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s.load_network("demo_subject", demo / "Lora" / "demo_subject.safetensors")
    info = s.network_family("demo_subject")
    assert info["family"] == "sd1" and info["model_family"] == "sdxl"
    assert "SD1" in info["warning"] and "SDXL" in info["warning"]
    assert any("SDXL" in str(w.message) for w in caught)
    # Its lora_te_ keys are ignored on SDXL (as A1111): the text encoders stay unchanged.
    assert not any(p.startswith("conditioner.") for p in s.networks["demo_subject"].modules)
    digest = s.weights_digest()
    assert _generate(s, [("demo_subject", 1.0, 1.0, None)])[:8] == b"\x89PNG\r\n\x1a\n"
    s.restore()
    assert s.weights_digest() == digest


def test_sdxl_lora_on_sd1_warns_and_generates(demo: Path) -> None:
    s = Session(demo / "Stable-diffusion" / "lorabridge-demo.safetensors", device="cpu")
    before = s.weights_digest()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        s.load_network("demo_style_xl", demo / "Lora" / "demo_style_xl.safetensors")
    info = s.network_family("demo_style_xl")
    assert info["family"] == "sdxl" and info["model_family"] == "sd1" and "SDXL" in info["warning"]
    s.set_networks([("demo_style_xl", 1.0, 1.0, None)])
    ids = [[[1, 2] + [3] * 75]]
    cond = s.encode_batch(ids, [[[1.0] * 77]])[0]
    run = s.start("Euler", "Automatic", 2, 1, 1, 64, 64)
    while s.step(run, [(cond, 1.0)], cond, 5.0) > 0:
        pass
    assert s.decode_png(run, [""])[0][:4] == b"\x89PNG"
    s.restore()
    assert s.weights_digest() == before


def _te2_lora(model: SDXLModel, parts: tuple[str, ...]) -> dict[str, torch.Tensor]:
    w = model.text_encoder_2.config.width
    g = torch.Generator().manual_seed(3)
    out = {}
    for p in parts:
        key = f"lora_te2_text_model_encoder_layers_0_self_attn_{p}"
        out[f"{key}.lora_down.weight"] = torch.randn(2, w, generator=g)
        out[f"{key}.lora_up.weight"] = torch.randn(w, 2, generator=g)
        out[f"{key}.alpha"] = torch.tensor(2.0)
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_te2_fused_attention_lora_and_exact_restore(tmp_path: Path, demo: Path, dtype: torch.dtype) -> None:
    model = SDXLModel.load(demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors",
                           precision=Precision(dtype, dtype, False))
    attn = model.text_encoder_2.transformer.resblocks[0].attn
    base_in, base_out = attn.in_proj_weight.detach().clone(), attn.out_proj.weight.detach().clone()
    patcher = Patcher(model)
    w = model.text_encoder_2.config.width
    full = tmp_path / "full.safetensors"
    save_safetensors(full, _te2_lora(model, ("q_proj", "k_proj", "v_proj", "out_proj")))
    net = patcher.load(full, "full")
    patcher.apply([Activation(net, 1.0)])
    delta = (attn.in_proj_weight.float() - base_in.float())
    assert attn.in_proj_weight.dtype == dtype
    for i in range(3):  # every row block moved, by its own LoRA
        assert delta[i * w:(i + 1) * w].abs().max() > 1e-3
    t = _te2_lora(model, ("q_proj", "k_proj", "v_proj", "out_proj"))
    want_q = (t["lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight"]
              @ t["lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"])
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert torch.allclose(delta[:w], want_q, atol=tol * max(1.0, want_q.abs().max().item()))
    assert not torch.equal(attn.out_proj.weight, base_out)
    patcher.restore()
    assert torch.equal(attn.in_proj_weight, base_in) and torch.equal(attn.out_proj.weight, base_out)

    partial = tmp_path / "partial.safetensors"
    save_safetensors(partial, _te2_lora(model, ("q_proj", "k_proj", "v_proj")))
    net = patcher.load(partial, "partial")
    assert not net.modules  # A1111 patches the fused attention only with q, k, v and out together
    patcher.apply([Activation(net, 1.0)])
    assert torch.equal(attn.in_proj_weight, base_in)


def test_bridge_precision_option_validates() -> None:
    with pytest.raises(ValueError, match="autocast"):
        bridge.gen_set_precision("half")
    assert bridge.gen_set_precision("full") is True
    assert bridge.gen_set_precision("autocast") is True
    assert bridge.gen_set_precision("autocast") is False


def test_bridge_sdxl_round_trip(demo: Path) -> None:
    path = bridge.ensure_demo_model_xl(str(demo))
    assert bridge.gen_load_checkpoint(path)
    assert bridge.gen_model_info()["family"] == "sdxl"
    with pytest.raises(ValueError, match="SDXL"):
        bridge.gen_encode([[[1] * 77]], [[[1.0] * 77]], 1)
    handles = bridge.gen_encode_xl([[[2012] + [2013] * 76]], None, [[[1.0] * 77]], 128, 128, False)
    assert len(handles) == 1 and bridge.gen_release(handles[0])
    bridge.shutdown_cleanup()


def test_precision_rules_follow_a1111() -> None:
    from lorabridge.sdxl import precision_for

    assert precision_for("cpu", "autocast") == Precision()  # CPU: fp32 whatever the setting
    cuda = precision_for("cuda", "autocast")
    assert cuda.dtype == torch.float16 and cuda.vae_dtype == torch.float16 and cuda.autocast
    assert precision_for("cuda", "autocast", no_half_vae=True).vae_dtype == torch.float32
    assert precision_for("cuda", "full") == Precision()
    with pytest.raises(ValueError, match="full"):
        precision_for("cuda", "fp8")


def test_declared_configuration_is_checked_and_heads_taken_from_it() -> None:
    import argparse
    import json

    from lorabridge.conformance.sdxl import config_problems, head_split

    data = _need_shared()
    declared = json.loads((data / "manifest.json").read_text())["model"]["config_for_reading_only"]
    none = argparse.Namespace(unet_head_channels=None, text_head_dim=None)
    split = head_split(declared, none)
    assert split.unet_head_channels == declared["unet"]["num_head_channels"]
    assert (split.te1_heads, split.te2_heads) == (declared["te1"]["heads"], declared["te2"]["heads"])
    model = SDXLModel.load(data / "model" / "sdxl_tiny.safetensors", heads=split)
    assert config_problems(model, declared) == []
    wrong = {**declared, "unet": {**declared["unet"], "transformer_depth": [0, 1, 1]}}
    assert any("transformer_depth" in p for p in config_problems(model, wrong))
    # A manifest may state a head count (num_heads) instead of a head width.
    other = SDXLModel.load(data / "model" / "sdxl_tiny.safetensors",
                           heads=head_split({"unet": {"num_heads": 1}}, none))
    assert other.unet.config.heads_and_dim(64) == (1, 64)


def test_sdxl_unet_runs_at_odd_latent_sizes(demo: Path) -> None:
    # A1111 resizes the upsampled tensor to the skip connection's size (TorchHijackForUnet.cat, sgm included).
    model = SDXLModel.load(demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors")
    x = torch.randn(1, 4, 9, 11)
    with torch.no_grad():
        out = model.unet(x, torch.tensor([500.0]), torch.randn(1, 77, model.unet.config.context_dim),
                         torch.randn(1, model.unet.config.adm_in_channels))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_img2img_on_the_sdxl_demo(tmp_path: Path, demo: Path) -> None:
    from PIL import Image

    from lorabridge.generation_img import start_img2img_run

    s = Session(demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors", device="cpu")
    picture = tmp_path / "in.png"
    Image.fromarray(np.full((64, 64, 3), 128, dtype=np.uint8)).save(picture)
    eos = s.model.text_encoder.config.vocab_size - 1
    ones = [[[1.0] * 77]]
    cond = s.encode_batch_xl([[[eos - 1, 5] + [eos] * 75]], None, ones, 64, 64)[0]
    run = start_img2img_run(s, "Euler", "Automatic", 4, 1, 1, 64, 64, "GPU", 0, str(picture), 0.5, "Just resize")
    while s.step(run, [(cond, 1.0)], cond, 5.0) > 0:
        pass
    assert s.decode_png(run, [""])[0][:4] == b"\x89PNG"


# ------------------------------------------------------------------------------------ textual inversion on SDXL

def _sdxl_embedding(path: Path, clip_l: torch.Tensor, clip_g: torch.Tensor) -> str:
    save_safetensors(path, {"clip_l": clip_l.contiguous(), "clip_g": clip_g.contiguous()})
    return str(path)


def test_sdxl_embedding_writes_clip_l_into_te1_and_clip_g_into_te2(tmp_path: Path, demo: Path) -> None:
    s = Session(demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors", device="cpu")
    te1, te2 = s.model.text_encoder, s.model.text_encoder_2
    eos = te1.config.vocab_size - 1
    # Two placeholder tokens after position 1 (offset 1 = the token before them), as the C# chunker places them.
    ids = [[[eos - 1, 5, 6, 7, 8] + [eos] * 72]]
    ones = [[[1.0] * 77]]
    plain_c, plain_v = s.model.get_learned_conditioning(ids, None, ones, 128, 128)

    # Vectors equal to the placeholders' own token embeddings change nothing: the rows land exactly on them.
    same = _sdxl_embedding(tmp_path / "same.safetensors",
                           te1.text_model.embeddings.token_embedding.weight[6:8].detach(),
                           te2.token_embedding.weight[6:8].detach())
    fixes = [[[[1, "same", same]]]]
    handle = s.encode_batch_xl(ids, None, ones, 128, 128, fixes=fixes)[0]
    crossattn, vector = s.model.get_learned_conditioning(ids, None, ones, 128, 128, fixes=[[[(1, s.embeddings().get("same"))]]])
    assert torch.equal(crossattn, plain_c) and torch.equal(vector, plain_v)
    assert s.release(handle)

    # Other clip_l vectors change te1's half only; other clip_g vectors change te2's half and the pooled vector.
    g = torch.Generator().manual_seed(3)
    w1 = te1.config.hidden_size
    only_l = _sdxl_embedding(tmp_path / "only_l.safetensors", torch.randn(2, w1, generator=g),
                             te2.token_embedding.weight[6:8].detach())
    c_l, v_l = s.model.get_learned_conditioning(ids, None, ones, 128, 128,
                                                fixes=[[[(1, s.embeddings().load("only_l", only_l))]]])
    assert not torch.equal(c_l[..., :w1], plain_c[..., :w1]) and torch.equal(c_l[..., w1:], plain_c[..., w1:])
    assert torch.equal(v_l, plain_v)
    only_g = _sdxl_embedding(tmp_path / "only_g.safetensors", te1.text_model.embeddings.token_embedding.weight[6:8].detach(),
                             torch.randn(2, te2.config.width, generator=g))
    c_g, v_g = s.model.get_learned_conditioning(ids, None, ones, 128, 128,
                                                fixes=[[[(1, s.embeddings().load("only_g", only_g))]]])
    assert torch.equal(c_g[..., :w1], plain_c[..., :w1]) and not torch.equal(c_g[..., w1:], plain_c[..., w1:])
    assert not torch.equal(v_g, plain_v)


def test_sd1_embedding_without_clip_g_names_what_it_lacks(tmp_path: Path, demo: Path) -> None:
    s = Session(demo / "Stable-diffusion" / "lorabridge-demo-xl.safetensors", device="cpu")
    eos = s.model.text_encoder.config.vocab_size - 1
    path = tmp_path / "sd1.safetensors"
    save_safetensors(path, {"emb_params": torch.randn(1, 32)})
    ids = [[[eos - 1, 5, 6] + [eos] * 74]]
    ones = [[[1.0] * 77]]
    # A plain (SD1-style) vector goes to both encoders as A1111 does; here its width fits both toy encoders.
    handle = s.encode_batch_xl(ids, None, ones, 128, 128, fixes=[[[[1, "sd1", str(path)]]]])[0]
    assert s.release(handle)
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(Exception, match="missing.safetensors"):
        s.encode_batch_xl(ids, None, ones, 128, 128, fixes=[[[[1, "gone", str(missing)]]]])
