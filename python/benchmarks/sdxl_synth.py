"""Synthetic SDXL models for the benchmarks: real SDXL base shapes (or a scaled preset), random weights.

``preset("sdxl")`` is SDXL base 1.0 exactly (UNet 2.6 G parameters, CLIP-L, OpenCLIP bigG, the 128-channel VAE);
``preset("half")`` halves every width (same structure, about a quarter of the parameters) for machines that
cannot hold SDXL in fp32 twice over; ``preset("tiny")`` is the demo-xl size (smoke tests).
"""
from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from lorabridge.clip_text import CLIPTextConfig, CLIPTextModel
from lorabridge.open_clip_text import OpenCLIPTextConfig, OpenCLIPTextModel
from lorabridge.sdxl import TE1_PREFIX, TE2_PREFIX, UNET_PREFIX, VAE_PREFIX
from lorabridge.sgm_unet import SDXLUNetConfig, SDXLUNetModel
from lorabridge.vae import AutoencoderKL, VAEConfig


@dataclass(frozen=True)
class SDXLPreset:
    name: str
    unet: SDXLUNetConfig
    te1: CLIPTextConfig
    te2: OpenCLIPTextConfig
    vae: VAEConfig


def preset(name: str) -> SDXLPreset:
    """``sdxl`` (SDXL base 1.0 shapes), ``half`` (every width halved) or ``tiny`` (demo-xl size)."""
    div = {"sdxl": 1, "half": 2, "tiny": 10}.get(name)
    if div is None:
        raise ValueError(f"unknown preset {name!r}; expected sdxl, half or tiny")
    if name == "tiny":
        w1, w2, layers1, layers2, mc, depth, vch = 32, 32, 3, 3, 32, (0, 1, 2), 32
        head = 16
    else:
        w1, w2, layers1, layers2, mc, depth, vch = 768 // div, 1280 // div, 12, 32 // div, 320 // div, (0, 2, 10 // div), 128 // div
        head = 64
    proj = w2
    unet = SDXLUNetConfig(model_channels=mc, channel_mult=(1, 2, 4) if name != "tiny" else (1, 2, 2),
                          attention_levels=(1, 2), transformer_depth=depth, transformer_depth_middle=depth[-1],
                          num_head_channels=head, context_dim=w1 + w2, adm_in_channels=proj + 6 * 256)
    te1 = CLIPTextConfig(vocab_size=49408, hidden_size=w1, intermediate_size=4 * w1, num_hidden_layers=layers1,
                         num_attention_heads=max(1, w1 // 64) if w1 >= 256 else w1 // 8, eos_token_id=49407)
    te2 = OpenCLIPTextConfig(vocab_size=49408, width=w2, heads=w2 // 64 if w2 >= 256 else w2 // 8,
                             layers=layers2, projection_dim=proj, mlp_width=4 * w2)
    vae = VAEConfig(ch=vch, ch_mult=(1, 2, 4, 4), num_res_blocks=2, attention_levels=(), in_channels=3, out_ch=3,
                    z_channels=4, embed_dim=4, double_z=True, has_encoder=True, has_decoder=True)
    return SDXLPreset(name, unet, te1, te2, vae)


def meta_modules(p: SDXLPreset) -> dict[str, nn.Module]:
    return {UNET_PREFIX: SDXLUNetModel(p.unet, device="meta"), VAE_PREFIX: AutoencoderKL(p.vae, device="meta"),
            TE1_PREFIX: CLIPTextModel(p.te1, device="meta"), TE2_PREFIX: OpenCLIPTextModel(p.te2, device="meta")}


def checkpoint_shapes(p: SDXLPreset) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for prefix, module in meta_modules(p).items():
        for k, v in module.state_dict().items():
            out[prefix + k] = tuple(v.shape)
    out[TE1_PREFIX + "text_model.embeddings.position_ids"] = (1, 77)
    return out


def _random(key: str, shape: tuple[int, ...], gen: torch.Generator, device: str = "cpu") -> torch.Tensor:
    if key.endswith("position_ids"):
        return torch.arange(77, dtype=torch.int64)[None]
    if len(shape) >= 2:
        fan_in = 1
        for d in shape[1:]:
            fan_in *= d
        return torch.randn(shape, generator=gen, device=device) * fan_in ** -0.5
    noise = 0.02 * torch.randn(shape, generator=gen, device=device)
    return 1.0 + noise if key.endswith(("norm.weight", "ln_1.weight", "ln_2.weight", "norm1.weight",
                                        "norm2.weight", "norm3.weight")) else noise


def write_synthetic_checkpoint(path: str, p: SDXLPreset, dtype: torch.dtype = torch.float16, seed: int = 0) -> int:
    """Streams a random SDXL single-file ``.safetensors`` (one tensor in memory at a time); returns the number
    of parameters (float elements)."""
    shapes = checkpoint_shapes(p)
    names = {torch.float16: "F16", torch.float32: "F32", torch.bfloat16: "BF16"}
    header: dict[str, object] = {}
    offset = 0
    for key, shape in shapes.items():
        is_int = key.endswith("position_ids")
        size = (8 if is_int else torch.tensor([], dtype=dtype).element_size())
        n = 1
        for d in shape:
            n *= d
        header[key] = {"dtype": "I64" if is_int else names[dtype], "shape": list(shape),
                       "data_offsets": [offset, offset + n * size]}
        offset += n * size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    gen = torch.Generator().manual_seed(seed)
    params = 0
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for key, shape in shapes.items():
            t = _random(key, shape, gen)
            if t.is_floating_point():
                t = t.to(dtype)
                params += t.numel()
            f.write(t.contiguous().numpy().tobytes() if t.dtype != torch.bfloat16
                    else t.view(torch.int16).numpy().tobytes())
    os.replace(tmp, path)
    return params


def random_module(module: nn.Module, seed: int = 0, dtype: torch.dtype = torch.float32,
                  device: str = "cpu") -> nn.Module:
    """A meta-built module given random values in place (no default init of billions of parameters)."""
    module = module.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(seed)  # drawn where the weights live (fast on CUDA)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(_random(name, tuple(p.shape), gen, device))
    return module.to(dtype).eval().requires_grad_(False)


TRANSFORMER_LAYER = re.compile(r"\.\d+\.(proj_in|proj_out|transformer_blocks\.\d+\.(attn[12]\.to_(q|k|v|out\.0)|"
                               r"ff\.net\.(0\.proj|2)))$")


def transformer_layers(unet: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for n, m in unet.named_modules():
        if TRANSFORMER_LAYER.search("." + n):
            yield n, m


def random_unet_lora(unet: nn.Module, rank: int, seed: int) -> dict[str, torch.Tensor]:
    """kohya LoRA (compvis-style names, as most SDXL LoRAs) on every UNet transformer layer, fp16 factors."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, m in transformer_layers(unet):
        group = "lora_unet_" + name.replace(".", "_")
        w = m.weight
        out[f"{group}.lora_down.weight"] = (torch.randn((rank, w.shape[1]), generator=g) * 0.01).half()
        out[f"{group}.lora_up.weight"] = (torch.randn((w.shape[0], rank), generator=g) * 0.01).half()
        out[f"{group}.alpha"] = torch.tensor(float(rank) / 2)
    return out
