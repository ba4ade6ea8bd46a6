"""Several plain LoRAs on one layer merge in one GEMM over their stacked ranks, with the same result."""
from __future__ import annotations

import torch
from torch import nn

from lorabridge.networks import load_network
from lorabridge.patcher import Activation, Patcher, _stack_plain_loras


def _model() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Module()
    m.input_blocks = nn.ModuleList([nn.Linear(16, 24), nn.Conv2d(8, 12, 1)])
    return m


def _lora(seed: int, rank: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "lora_unet_input_blocks_0.lora_down.weight": torch.randn(rank, 16, generator=g),
        "lora_unet_input_blocks_0.lora_up.weight": torch.randn(24, rank, generator=g),
        "lora_unet_input_blocks_0.alpha": torch.tensor(float(rank) / 2),
        "lora_unet_input_blocks_1.lora_down.weight": torch.randn(rank, 8, 1, 1, generator=g),
        "lora_unet_input_blocks_1.lora_up.weight": torch.randn(12, rank, 1, 1, generator=g),
    }


def test_stacked_run_equals_one_by_one() -> None:
    model = _model()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    p = Patcher({"model.diffusion_model.": model})
    nets = [load_network(_lora(i, 2 + i), p.layers, f"n{i}") for i in range(3)]
    acts = [Activation(n, 0.3 + 0.2 * i, 0.5 + 0.1 * i) for i, n in enumerate(nets)]
    entries = tuple((n, a.unet_multiplier, None, 1.0) for n, a in zip(nets, acts))
    stacked = _stack_plain_loras("model.diffusion_model.input_blocks.0", entries)
    assert set(stacked) == {0, 1, 2} and stacked[0] is not None and stacked[0][0].shape == (24, 2 + 3 + 4)
    p.apply(acts)
    got = {k: v.clone() for k, v in model.state_dict().items()}
    # Reference: A1111's order, one network at a time, in float64.
    for key, w0 in base.items():
        if not key.endswith("weight"):
            continue
        ref = w0.double().reshape(w0.shape[0], -1).clone()
        layer = "model.diffusion_model." + key.rsplit(".", 1)[0]
        for n, a in zip(nets, acts):
            mod = n.modules[layer]
            ref += (mod.up2.double() @ mod.down2.double()) * mod.calc_scale() * a.unet_multiplier
        assert torch.allclose(got[key].double().reshape(ref.shape), ref, atol=1e-5, rtol=1e-6), key
    p.restore()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in base.items())


def test_a_weight_dependent_module_breaks_the_run() -> None:
    model = _model()
    p = Patcher({"model.diffusion_model.": model})
    nets = [load_network(_lora(i, 2), p.layers, f"n{i}") for i in range(3)]
    entries = ((nets[0], 1.0, None, 1.0), (nets[1], 1.0, None, 0.5), (nets[2], 1.0, None, 1.0))
    # The block-weighted one in the middle goes its own way: no run of two remains.
    assert _stack_plain_loras("model.diffusion_model.input_blocks.0", entries) == {}


def test_layer_errors_name_file_and_first_key() -> None:
    """A module A1111 would skip (GLoRA whose factors do not chain) is reported per network with its first layer."""
    model = _model()
    p = Patcher({"model.diffusion_model.": model})
    g = torch.Generator().manual_seed(3)
    bad = {
        "lora_unet_input_blocks_0.a1.weight": torch.randn(2, 16, generator=g),
        "lora_unet_input_blocks_0.a2.weight": torch.randn(8, 2, generator=g),  # should be [16, r]
        "lora_unet_input_blocks_0.b1.weight": torch.randn(2, 16, generator=g),
        "lora_unet_input_blocks_0.b2.weight": torch.randn(24, 2, generator=g),
        "lora_unet_input_blocks_0.alpha": torch.tensor(2.0),
    }
    net = load_network(bad, p.layers, "broken", source="/loras/broken.safetensors")
    before = model.input_blocks[0].weight.detach().clone()
    p.apply([Activation(net, 1.0)])
    assert torch.equal(model.input_blocks[0].weight, before)
    [(name, source, count, first)] = p.layer_error_summary()
    assert (name, source, count) == ("broken", "/loras/broken.safetensors", 1)
    assert "model.diffusion_model.input_blocks.0" in first
    p.restore()
    assert p.layer_error_summary() == []
