"""LoRA-family math and key mapping against independent float64 formulas on the small reference model."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lorabridge.checkpoint import load_state_dict
from lorabridge.model import StableDiffusion
from lorabridge.networks import NetworkError, UnsupportedNetworkError, keymap, load_network
from lorabridge.patcher import Activation, Patcher

U = "model.diffusion_model."
T = "cond_stage_model.transformer.text_model."
Q = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"
Q_PATH = U + "input_blocks.4.1.transformer_blocks.0.attn1.to_q"
CONV = "lora_unet_down_blocks_1_resnets_0_conv1"
CONV_PATH = U + "input_blocks.4.0.in_layers.2"  # [64, 32, 3, 3]
TE_FC1 = "lora_te_text_model_encoder_layers_0_mlp_fc1"
TE_FC1_PATH = T + "encoder.layers.0.mlp.fc1"


@pytest.fixture(scope="module")
def model(shared_dir: Path) -> StableDiffusion:
    sd = {}
    for part in ("unet_small", "clip_small"):
        sd.update(load_state_dict(shared_dir / "conformance" / "models" / part / "weights.safetensors"))
    return StableDiffusion.from_state_dict(sd)


@pytest.fixture()
def patcher(model: StableDiffusion):
    p = Patcher(model)
    yield p
    p.restore()


def g(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed + sum(shape)))


def weight(model: StableDiffusion, path: str) -> torch.Tensor:
    module, _ = model.module_for_key(path)
    return module.weight.detach().clone()


def merged(patcher: Patcher, tensors: dict, path: str, te: float = 1.0, unet: float | None = None,
           dyn: int | None = None) -> torch.Tensor:
    net = load_network(tensors, patcher.layers, "t")
    patcher.apply([Activation(net, te, unet, dyn)])
    module = patcher.layers[keymap.a1111_layer_name(path)][1]
    out = module.weight.detach().clone()
    patcher.restore()
    return out


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    assert torch.allclose(a.double(), b.double(), atol=1e-5, rtol=1e-5), (a.double() - b.double()).abs().max()


# --- key mapping ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("group,expected", [
    ("lora_unet_down_blocks_0_resnets_1_conv1", "diffusion_model_input_blocks_2_0_in_layers_2"),
    ("lora_unet_down_blocks_0_downsamplers_0_conv", "diffusion_model_input_blocks_3_0_op"),
    ("lora_unet_down_blocks_1_attentions_1_proj_in", "diffusion_model_input_blocks_5_1_proj_in"),
    ("lora_unet_mid_block_resnets_1_time_emb_proj", "diffusion_model_middle_block_2_emb_layers_1"),
    ("lora_unet_mid_block_attentions_0_proj_out", "diffusion_model_middle_block_1_proj_out"),
    ("lora_unet_up_blocks_1_resnets_2_conv_shortcut", "diffusion_model_output_blocks_5_0_skip_connection"),
    ("lora_unet_up_blocks_0_upsamplers_0_conv", "diffusion_model_output_blocks_2_1_conv"),
    ("lora_unet_up_blocks_2_upsamplers_0_conv", "diffusion_model_output_blocks_8_2_conv"),
    ("lora_unet_conv_in", "diffusion_model_input_blocks_0_0"),
    ("lora_unet_conv_out", "diffusion_model_out_2"),
    ("lora_unet_time_embedding_linear_2", "diffusion_model_time_embed_2"),
    ("lora_te_text_model_encoder_layers_3_self_attn_q_proj", "transformer_text_model_encoder_layers_3_self_attn_q_proj"),
    ("lora_unet_conv_norm_out", "lora_unet_conv_norm_out"),
])
def test_convert_diffusers_name(group: str, expected: str) -> None:
    assert keymap.convert_diffusers_name_to_compvis(group) == expected


@pytest.mark.parametrize("group,expected", [
    ("lora_unet_up_blocks_0_upsamplers_0_conv", None),  # SD1 formula points at an attention block here
    ("lora_unet_output_blocks_2_2_conv", "diffusion_model_output_blocks_2_2_conv"),
    ("lora_unet_conv_norm_out", None),
    ("lora_unet_out_0", "diffusion_model_out_0"),
    ("lora_te_text_model_final_layer_norm", None),
    ("lora_te1_text_model_final_layer_norm", "transformer_text_model_final_layer_norm"),
    ("lora_te_text_model_embeddings_position_embedding", None),
    ("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", None),
    ("oft_unet_down_blocks_1_attentions_1_transformer_blocks_0_attn2_to_v", None),
    ("oft_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", "diffusion_model_input_blocks_4_1_transformer_blocks_0_attn1_to_q"),
])
def test_match_group_fallbacks(patcher: Patcher, group: str, expected: str | None) -> None:
    assert keymap.match_group(group, patcher.layers) == expected


def test_ignored_groups_are_listed_and_untouched(patcher: Patcher) -> None:
    net = load_network({"lora_unet_conv_norm_out.w_norm": g(32), "lora_unet_conv_norm_out.b_norm": g(32)},
                       patcher.layers, "n")
    assert net.ignored == ["lora_unet_conv_norm_out"] and not net.modules


def test_peft_and_diffusers_dotted_keys(model: StableDiffusion, patcher: Patcher) -> None:
    down, up = g(4, 64), g(64, 4, seed=1)
    kohya = merged(patcher, {f"{Q}.lora_down.weight": down, f"{Q}.lora_up.weight": up}, Q_PATH)
    dotted = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    assert torch.equal(merged(patcher, {f"{dotted}.lora.down.weight": down, f"{dotted}.lora.up.weight": up}, Q_PATH), kohya)
    assert torch.equal(merged(patcher, {f"{dotted}.lora_A.weight": down, f"{dotted}.lora_B.weight": up}, Q_PATH), kohya)
    bare = dotted[len("unet."):]
    assert torch.equal(merged(patcher, {f"{bare}.lora.down.weight": down, f"{bare}.lora.up.weight": up}, Q_PATH), kohya)
    assert torch.equal(merged(patcher, {f"{Q}.lora_A.weight": down, f"{Q}.lora_B.weight": up}, Q_PATH), kohya)
    assert not torch.equal(kohya, weight(model, Q_PATH))
    processor = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor"
    out_path = Q_PATH.replace("to_q", "to_out.0")
    out_kohya = merged(patcher, {f"{Q[:-4]}to_out_0.lora_down.weight": down, f"{Q[:-4]}to_out_0.lora_up.weight": up}, out_path)
    assert torch.equal(merged(patcher, {f"{processor}.to_out_lora.down.weight": down,
                                        f"{processor}.to_out_lora.up.weight": up}, out_path), out_kohya)
    te = "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"
    te_path = T + "encoder.layers.0.self_attn.q_proj"
    d32, u32 = g(4, 32), g(32, 4, seed=1)
    te_kohya = merged(patcher, {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": d32,
                                "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": u32}, te_path)
    assert torch.equal(merged(patcher, {f"{te}.lora_linear_layer.down.weight": d32,
                                        f"{te}.lora_linear_layer.up.weight": u32}, te_path), te_kohya)


# --- per-type math ----------------------------------------------------------------------------------------
def test_lora_linear_alpha_scale_and_multipliers(model: StableDiffusion, patcher: Patcher) -> None:
    down, up = g(4, 64), g(64, 4, seed=1)
    w0 = weight(model, Q_PATH).double()
    sd = {f"{Q}.lora_down.weight": down, f"{Q}.lora_up.weight": up, f"{Q}.alpha": torch.tensor([2.0])}
    close(merged(patcher, sd, Q_PATH, te=0.3, unet=0.7), w0 + 0.7 * 0.5 * (up.double() @ down.double()))
    # te multiplier for text-encoder layers only
    dt, ut = g(4, 32), g(128, 4, seed=2)
    te = {f"{TE_FC1}.lora_down.weight": dt, f"{TE_FC1}.lora_up.weight": ut}
    close(merged(patcher, te, TE_FC1_PATH, te=0.3, unet=0.7),
          weight(model, TE_FC1_PATH).double() + 0.3 * (ut.double() @ dt.double()))


def test_lora_fp16_alpha_is_read_in_stored_dtype(model: StableDiffusion, patcher: Patcher) -> None:
    down, up = g(4, 64).half(), g(64, 4, seed=1).half()
    sd = {f"{Q}.lora_down.weight": down, f"{Q}.lora_up.weight": up, f"{Q}.alpha": torch.tensor([0.7], dtype=torch.float16)}
    expected = weight(model, Q_PATH).double() + (0.7001953125 / 4) * (up.double() @ down.double())
    close(merged(patcher, sd, Q_PATH), expected)


def test_alpha_zero_changes_nothing_and_scale_key_wins(model: StableDiffusion, patcher: Patcher) -> None:
    down, up = g(4, 64), g(64, 4, seed=1)
    base = {f"{Q}.lora_down.weight": down, f"{Q}.lora_up.weight": up}
    assert torch.equal(merged(patcher, {**base, f"{Q}.alpha": torch.tensor(0.0)}, Q_PATH), weight(model, Q_PATH))
    close(merged(patcher, {**base, f"{Q}.alpha": torch.tensor(2.0), f"{Q}.scale": torch.tensor(3.0)}, Q_PATH),
          weight(model, Q_PATH).double() + 3.0 * (up.double() @ down.double()))


def test_locon_conv_dyn_and_cp(model: StableDiffusion, patcher: Patcher) -> None:
    w0 = weight(model, CONV_PATH).double()
    down, up = g(4, 32, 3, 3), g(64, 4, 1, 1, seed=1)
    sd = {f"{CONV}.lora_down.weight": down, f"{CONV}.lora_up.weight": up, f"{CONV}.alpha": torch.tensor(2.0)}
    full = (up.double().reshape(64, 4) @ down.double().reshape(4, -1)).reshape(64, 32, 3, 3)
    close(merged(patcher, sd, CONV_PATH), w0 + 0.5 * full)
    # dyn keeps the first columns/rows but the scale stays alpha / full rank
    sliced = (up.double().reshape(64, 4)[:, :2] @ down.double().reshape(4, -1)[:2]).reshape(64, 32, 3, 3)
    close(merged(patcher, sd, CONV_PATH, dyn=2), w0 + 0.5 * sliced)
    mid, d2, u2 = g(3, 3, 3, 3, seed=3), g(3, 32, seed=4), g(64, 3, seed=5)
    cp = {f"{CONV}.lora_down.weight": d2, f"{CONV}.lora_up.weight": u2, f"{CONV}.lora_mid.weight": mid}
    expected = torch.einsum("nmkl,in,mj->ijkl", mid.double(), u2.double(), d2.double())
    close(merged(patcher, cp, CONV_PATH, dyn=1), w0 + expected)  # dyn is ignored for CP


def test_loha_plain_and_tucker(model: StableDiffusion, patcher: Patcher) -> None:
    w0 = weight(model, CONV_PATH).double()
    a1, b1, a2, b2 = g(64, 2), g(2, 288, seed=1), g(64, 2, seed=2), g(2, 288, seed=3)
    sd = {f"{CONV}.hada_w1_a": a1, f"{CONV}.hada_w1_b": b1, f"{CONV}.hada_w2_a": a2, f"{CONV}.hada_w2_b": b2,
          f"{CONV}.alpha": torch.tensor(1.0)}
    close(merged(patcher, sd, CONV_PATH), w0 + 0.5 * ((a1.double() @ b1.double()) * (a2.double() @ b2.double())).reshape(w0.shape))
    t1, t2 = g(3, 3, 3, 3, seed=4), g(3, 3, 3, 3, seed=5)
    wa1, wb1, wa2, wb2 = g(3, 64, seed=6), g(3, 32, seed=7), g(3, 64, seed=8), g(3, 32, seed=9)
    tucker = {f"{CONV}.hada_w1_a": wa1, f"{CONV}.hada_w1_b": wb1, f"{CONV}.hada_w2_a": wa2, f"{CONV}.hada_w2_b": wb2,
              f"{CONV}.hada_t1": t1, f"{CONV}.hada_t2": t2}
    r1 = torch.einsum("pqkl,po,qi->oikl", t1.double(), wa1.double(), wb1.double())
    r2 = torch.einsum("pqkl,po,qi->oikl", t2.double(), wa2.double(), wb2.double())
    close(merged(patcher, tucker, CONV_PATH), w0 + r1 * r2)


def test_lokr_scale_rules(model: StableDiffusion, patcher: Patcher) -> None:
    w0 = weight(model, Q_PATH).double()
    w1, w2a, w2b = g(4, 4), g(16, 2, seed=1), g(2, 16, seed=2)
    sd = {f"{Q}.lokr_w1": w1, f"{Q}.lokr_w2_a": w2a, f"{Q}.lokr_w2_b": w2b, f"{Q}.alpha": torch.tensor(1.0)}
    close(merged(patcher, sd, Q_PATH), w0 + 0.5 * torch.kron(w1.double(), w2a.double() @ w2b.double()))
    full = {f"{Q}.lokr_w1": w1, f"{Q}.lokr_w2": g(16, 16, seed=3), f"{Q}.alpha": torch.tensor(1.0)}  # alpha ignored
    close(merged(patcher, full, Q_PATH), w0 + torch.kron(w1.double(), full[f"{Q}.lokr_w2"].double()))


def test_ia3_rows_columns_and_conv_skip(model: StableDiffusion, patcher: Patcher) -> None:
    w0 = weight(model, Q_PATH).double()
    v = g(64)
    rows = {f"{Q}.weight": v, f"{Q}.on_input": torch.tensor([0])}
    close(merged(patcher, rows, Q_PATH, unet=0.5), w0 * (1 + 0.5 * v.double()[:, None]))
    cols = {f"{Q}.weight": v, f"{Q}.on_input": torch.tensor([1])}
    close(merged(patcher, cols, Q_PATH), w0 * (1 + v.double()[None, :]))
    proj = "lora_unet_down_blocks_1_attentions_0_proj_in"
    path = U + "input_blocks.4.1.proj_in"
    w_proj = weight(model, path)
    skip = load_network({f"{proj}.weight": g(1, 64, 1, 1), f"{proj}.on_input": torch.tensor([0])}, patcher.layers, "s")
    patcher.apply([Activation(skip)])
    assert torch.equal(patcher.layers[keymap.a1111_layer_name(path)][1].weight, w_proj)
    assert len(patcher.layer_errors) == 1 and "broadcast shape" in patcher.layer_errors[0] and path in patcher.layer_errors[0]
    patcher.restore()
    assert patcher.layer_errors == []
    with pytest.raises(UnsupportedNetworkError):
        load_network({f"{Q}.weight": v}, patcher.layers, "no_on_input")


def test_full_creates_bias_and_restore_removes_it(model: StableDiffusion, patcher: Patcher) -> None:
    module = patcher.layers[keymap.a1111_layer_name(Q_PATH)][1]
    assert module.bias is None
    diff, diff_b = g(64, 64), g(64, seed=1)
    net = load_network({f"{Q}.diff": diff, f"{Q}.diff_b": diff_b}, patcher.layers, "full")
    w0 = module.weight.detach().clone()
    patcher.apply([Activation(net, 1.0, 0.5)])
    close(module.weight, w0.double() + 0.5 * diff.double())
    close(module.bias, 0.5 * diff_b.double())
    assert f"{Q_PATH}.bias" in patcher.changed_tensors()
    patcher.restore()
    assert module.bias is None and torch.equal(module.weight, w0)


def test_norm_on_groupnorm_and_layernorm(model: StableDiffusion, patcher: Patcher) -> None:
    group = "lora_unet_down_blocks_1_resnets_0_norm1"
    path = U + "input_blocks.4.0.in_layers.0"
    module = patcher.layers[keymap.a1111_layer_name(path)][1]
    w0, b0 = module.weight.detach().clone(), module.bias.detach().clone()
    wn, bn = g(32), g(32, seed=1)
    net = load_network({f"{group}.w_norm": wn, f"{group}.b_norm": bn}, patcher.layers, "norm")
    patcher.apply([Activation(net, 1.0, 0.25)])
    close(module.weight, w0.double() + 0.25 * wn.double())
    close(module.bias, b0.double() + 0.25 * bn.double())
    patcher.restore()
    with pytest.raises(UnsupportedNetworkError):  # w_norm alone is no module type
        load_network({f"{group}.w_norm": wn}, patcher.layers, "half")


def test_glora_old_layout_and_new_layout_skip(model: StableDiffusion, patcher: Patcher) -> None:
    w0 = weight(model, Q_PATH).double()
    a1, a2, b1, b2 = g(4, 64), g(64, 4, seed=1), g(4, 64, seed=2), g(64, 4, seed=3)
    sd = {f"{Q}.a1.weight": a1, f"{Q}.a2.weight": a2, f"{Q}.b1.weight": b1, f"{Q}.b2.weight": b2, f"{Q}.alpha": torch.tensor(2.0)}
    expected = w0 + 0.5 * (b2.double() @ b1.double() + (w0 @ a2.double()) @ a1.double())
    close(merged(patcher, sd, Q_PATH, unet=0.5), expected)
    new = {f"{Q}.a1.weight": a2, f"{Q}.a2.weight": a1, f"{Q}.b1.weight": b2, f"{Q}.b2.weight": b1, f"{Q}.alpha": torch.tensor(2.0)}
    assert torch.equal(merged(patcher, new, Q_PATH), weight(model, Q_PATH))


def _cayley(blocks: torch.Tensor, constraint: float | None) -> torch.Tensor:
    q = blocks - blocks.transpose(-1, -2)
    if constraint:
        n = q.norm()
        q = q * (min(n, constraint) / n)
    eye = torch.eye(blocks.shape[-1], dtype=blocks.dtype)
    return (eye + q) @ torch.linalg.inv(eye - q)


def test_oft_transposed_blocks_clamp_rescale(model: StableDiffusion, patcher: Patcher) -> None:
    w0 = weight(model, Q_PATH).double()
    blocks = g(8, 8, 8) * 0.1
    rescale = g(64, 1, seed=1)
    sd = {f"{Q}.oft_blocks": blocks, f"{Q}.alpha": torch.tensor(0.005), f"{Q}.rescale": rescale}
    r = _cayley(blocks.double(), 0.005 * 64)
    rotated = torch.cat([r[k].T @ w0[8 * k: 8 * k + 8] for k in range(8)])
    close(merged(patcher, sd, Q_PATH, unet=0.5), w0 + 0.5 * (rescale.double() * rotated - w0))


def test_oft_diag_is_used_as_stored(model: StableDiffusion, patcher: Patcher) -> None:
    w0 = weight(model, Q_PATH).double()
    r = g(4, 16, 16)
    rotated = torch.cat([r[k].double().T @ w0[16 * k: 16 * k + 16] for k in range(4)])
    close(merged(patcher, {f"{Q}.oft_diag": r}, Q_PATH), rotated)


def test_boft_butterfly_stages(model: StableDiffusion, patcher: Patcher) -> None:
    w0 = weight(model, Q_PATH).double()
    blocks = g(2, 8, 8, 8) * 0.1
    r = _cayley(blocks.double(), None)
    x = w0
    for i in range(2):
        k = (2 ** i) * 4
        perm = torch.arange(64).reshape(64 // (2 * k), 2, k).transpose(1, 2).reshape(-1)
        x = x[perm]
        x = torch.cat([r[i, d] @ x[8 * d: 8 * d + 8] for d in range(8)])
        x = x[torch.argsort(perm)]
    close(merged(patcher, {f"{Q}.oft_blocks": blocks, f"{Q}.alpha": torch.tensor(0.0)}, Q_PATH), x)


@pytest.mark.parametrize("wd_on_output", [False, True])
def test_dora_normalises_input_channels(model: StableDiffusion, patcher: Patcher, wd_on_output: bool) -> None:
    w0 = weight(model, Q_PATH).double()
    down, up = g(4, 64), g(64, 4, seed=1)
    dora = g(64, 1, seed=2) if wd_on_output else g(1, 64, seed=2)
    sd = {f"{Q}.lora_down.weight": down, f"{Q}.lora_up.weight": up, f"{Q}.alpha": torch.tensor(2.0), f"{Q}.dora_scale": dora}
    m = w0 + 0.5 * (up.double() @ down.double())
    col_norm = m.norm(dim=0, keepdim=True)
    expected = w0 + 0.8 * (dora.double() * m / col_norm - w0)  # [out,1] is silently broadcast, as in A1111
    close(merged(patcher, sd, Q_PATH, unet=0.8), expected)


# --- module selection and whole-network failures -----------------------------------------------------------
def test_module_type_order_prefers_lora(model: StableDiffusion, patcher: Patcher) -> None:
    down, up = g(4, 64), g(64, 4, seed=1)
    sd = {f"{Q}.lora_down.weight": down, f"{Q}.lora_up.weight": up, f"{Q}.diff": g(64, 64, seed=5)}
    net = load_network(sd, patcher.layers, "both")
    assert net.modules[Q_PATH].kind == "lora"


def test_unknown_group_drops_network(patcher: Patcher) -> None:
    with pytest.raises(UnsupportedNetworkError, match=Q):
        load_network({f"{Q}.mystery": g(3)}, patcher.layers, "x", source="x.safetensors")


def test_lora_on_embedding_drops_network_full_is_never_applied(patcher: Patcher) -> None:
    group = "lora_te1_text_model_embeddings_position_embedding"
    with pytest.raises(UnsupportedNetworkError, match="Embedding"):
        load_network({f"{group}.lora_down.weight": g(2, 32), f"{group}.lora_up.weight": g(77, 2)}, patcher.layers, "x")
    net = load_network({f"{group}.diff": g(77, 32)}, patcher.layers, "x")
    assert net.unapplied == {group: "Embedding"} and not net.modules


# --- several networks ------------------------------------------------------------------------------------
def test_sequential_order_matters_for_ia3(model: StableDiffusion, patcher: Patcher) -> None:
    w0 = weight(model, Q_PATH).double()
    down, up, v = g(4, 64), g(64, 4, seed=1), g(64, seed=2)
    lora = load_network({f"{Q}.lora_down.weight": down, f"{Q}.lora_up.weight": up}, patcher.layers, "l")
    ia3 = load_network({f"{Q}.weight": v, f"{Q}.on_input": torch.tensor([0])}, patcher.layers, "i")
    module = patcher.layers[keymap.a1111_layer_name(Q_PATH)][1]
    d = up.double() @ down.double()
    patcher.apply([Activation(lora), Activation(ia3)])
    close(module.weight, (w0 + d) * (1 + v.double()[:, None]))
    patcher.apply([Activation(ia3), Activation(lora)])
    close(module.weight, w0 * (1 + v.double()[:, None]) + d)


def test_same_network_twice_uses_last_multipliers(model: StableDiffusion, patcher: Patcher) -> None:
    w0 = weight(model, Q_PATH).double()
    down, up = g(4, 64), g(64, 4, seed=1)
    net = load_network({f"{Q}.lora_down.weight": down, f"{Q}.lora_up.weight": up}, patcher.layers, "x")
    module = patcher.layers[keymap.a1111_layer_name(Q_PATH)][1]
    patcher.apply([Activation(net, 0.5), Activation(net, 1.0)])
    close(module.weight, w0 + 2.0 * (up.double() @ down.double()))


# --- device placement ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def meta_patcher(shared_dir: Path) -> Patcher:
    """The reference model on the ``meta`` device: a stand-in for a CUDA-resident model on a CPU-only machine
    (any op mixing it with a CPU tensor raises, as mixing CUDA and CPU does)."""
    sd = {}
    for part in ("unet_small", "clip_small"):
        sd.update(load_state_dict(shared_dir / "conformance" / "models" / part / "weights.safetensors"))
    m = StableDiffusion.from_state_dict(sd)
    m.unet.to("meta")
    m.text_encoder.to("meta")
    return Patcher(m)


LORA_DIR_FILES = ["lora_attn", "lora_fp16", "locon", "locon_cp", "loha", "loha_cp", "lokr", "lokr_full", "ia3", "full",
                  "norm", "glora", "oft", "oft_kohya", "boft", "oft_diag", "dora", "dora_wd_on_out", "lora_compvis_te1"]


@pytest.mark.parametrize("name", LORA_DIR_FILES)
def test_network_tensors_follow_the_layer_device(meta_patcher: Patcher, shared_dir: Path, name: str) -> None:
    net = meta_patcher.load(shared_dir / "conformance" / "lora" / "loras" / f"{name}.safetensors")
    assert net.modules
    for path, module in net.modules.items():
        held = {k: v for k, v in vars(module).items() if isinstance(v, torch.Tensor)}
        assert held, path
        off = {k: str(v.device) for k, v in held.items() if v.device != module.layer.weight.device}
        assert not off, f"{path}: {off}"
    meta_patcher.apply([Activation(net, 0.7, 0.5)])  # raised "device meta ... device cpu should match" before
    meta_patcher.restore()


def test_created_bias_is_on_the_layer_device(meta_patcher: Patcher) -> None:
    module = meta_patcher.layers[keymap.a1111_layer_name(Q_PATH)][1]
    assert module.bias is None
    net = load_network({f"{Q}.diff": g(64, 64), f"{Q}.diff_b": g(64, seed=1)}, meta_patcher.layers, "full")
    meta_patcher.apply([Activation(net, 1.0, 0.5)])
    assert module.bias.device.type == "meta" and module.bias.dtype == module.weight.dtype
    meta_patcher.restore()
    assert module.bias is None


# --- validation ------------------------------------------------------------------------------------------
def test_shape_mismatch_names_file_and_key(patcher: Patcher) -> None:
    with pytest.raises(NetworkError, match=rf"bad\.safetensors: {Q} \(lora\) does not fit {Q_PATH}"):
        load_network({f"{Q}.lora_down.weight": g(4, 32), f"{Q}.lora_up.weight": g(64, 4)}, patcher.layers, "bad",
                     source="bad.safetensors")


def test_nan_names_file_and_key(patcher: Patcher) -> None:
    down = g(4, 64)
    down[1, 2] = float("nan")
    with pytest.raises(NetworkError, match=rf"nan\.safetensors: {Q}\.lora_down\.weight contains NaN"):
        load_network({f"{Q}.lora_down.weight": down, f"{Q}.lora_up.weight": g(64, 4)}, patcher.layers, "n",
                     source="nan.safetensors")
