"""The built-in demo: a tiny SD1.x-architecture checkpoint, its own BPE vocabulary and two LoRAs.

It lets the whole pipeline (tokenizer → CLIP → sampler → UNet → VAE → PNG, LoRA patching) run offline on a
CPU in seconds before a user configures a real checkpoint.  Everything is generated from a seed, so the same
seed always gives byte-identical files (on one torch version).

Layout written under ``out_dir`` (the shape of A1111's ``models`` folder, so the catalog can scan it)::

    Stable-diffusion/lorabridge-demo.safetensors   ldm layout, fp16, ~5.6 MB
    tokenizer/vocab.json, tokenizer/merges.txt     CLIP file format, trained on demo_corpus.txt
    Lora/demo_style.safetensors  + demo_style.json       kohya naming, UNet attention layers
    Lora/demo_subject.safetensors + demo_subject.json    kohya naming, text encoder + UNet cross-attention

Random weights alone give an eps model that does not shrink the noise, so sampling ends in saturated
static.  The UNet is therefore initialised as "identity plus a random perturbation": a direct path
copies the input latent to the output (conv_in → last skip connection → conv_out), which makes eps close
to the scaled input, the behaviour that lets samplers contract the noise, while the random attention and
residual paths (which the prompt and the LoRAs act on) shape the result.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from .bpe_train import write_demo_tokenizer
from .checkpoint import save_safetensors
from .clip_text import CLIPTextConfig, CLIPTextModel
from .schedules import default_alphas_cumprod
from .unet import UNetConfig, UNetModel
from .vae import AutoencoderKL, VAEConfig

__all__ = ["DemoFiles", "write_demo_model", "demo_configs", "CHECKPOINT_NAME", "LORA_NAMES"]

CHECKPOINT_NAME = "lorabridge-demo"
LORA_NAMES = ("demo_style", "demo_subject")
TEXT_WIDTH = 64
TEXT_LAYERS = 3
STORAGE_DTYPE = torch.float16  # like most published SD1 checkpoints; halves the file

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."


@dataclass(frozen=True)
class DemoFiles:
    """Where `write_demo_model` put everything."""

    root: Path
    checkpoint: Path
    tokenizer_dir: Path
    vocab: Path
    merges: Path
    loras: tuple[Path, ...]
    sidecars: tuple[Path, ...]


def demo_configs(vocab_size: int) -> tuple[UNetConfig, VAEConfig, CLIPTextConfig]:
    """The demo's part configurations: SD1's structure at toy width.  Two residual blocks per level keep
    A1111's diffusers→ldm LoRA name formula (which assumes SD1's three input blocks per level) valid."""
    unet = UNetConfig(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2), num_res_blocks=2,
                      attention_levels=(1,), num_heads=-1, num_head_channels=32, transformer_depth=1,
                      context_dim=TEXT_WIDTH, use_linear_in_transformer=False)
    # ch_mult of length 4 gives SD's 8x downscale: 64x64 pixels <-> 8x8 latents.
    vae = VAEConfig(ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1, attention_levels=(), in_channels=3, out_ch=3,
                    z_channels=4, embed_dim=4, double_z=True, has_encoder=True, has_decoder=True)
    text = CLIPTextConfig(vocab_size=vocab_size, hidden_size=TEXT_WIDTH, intermediate_size=4 * TEXT_WIDTH,
                          num_hidden_layers=TEXT_LAYERS, num_attention_heads=max(1, TEXT_WIDTH // 64),
                          max_position_embeddings=77, eos_token_id=vocab_size - 1)
    return unet, vae, text


def _randn(gen: torch.Generator, shape: Iterable[int], std: float) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float32) * std


def _init_random(module: nn.Module, gen: torch.Generator, gain: float = 1.0) -> None:
    """Variance-preserving random init, visiting modules in name order so the draws are reproducible."""
    for name, sub in sorted(module.named_modules(), key=lambda kv: kv[0]):
        if isinstance(sub, (nn.Linear, nn.Conv2d)):
            fan_in = sub.weight[0].numel()
            sub.weight.data = _randn(gen, sub.weight.shape, gain / math.sqrt(fan_in))
            if sub.bias is not None:
                sub.bias.data = _randn(gen, sub.bias.shape, 0.02)
        elif isinstance(sub, (nn.GroupNorm, nn.LayerNorm)):
            if sub.weight is not None:
                sub.weight.data = 1.0 + _randn(gen, sub.weight.shape, 0.05)
                sub.bias.data = _randn(gen, sub.bias.shape, 0.05)
        elif isinstance(sub, nn.Embedding):
            sub.weight.data = _randn(gen, sub.weight.shape, 1.0 if "token" in name else 0.3)


def _center_identity(conv: nn.Conv2d, out_channels: int, in_offset: int, gain: float) -> None:
    """Adds `gain` at the kernel centre from input channel in_offset+c to output channel c."""
    k = conv.weight.shape[-1] // 2
    for c in range(out_channels):
        conv.weight.data[c, in_offset + c, k, k] += gain


def _silu_mean(scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """E[SiLU(scale * z + shift)] for standard normal z, per channel (numerical quadrature)."""
    z = torch.linspace(-6.0, 6.0, 1201)
    pdf = torch.exp(-0.5 * z * z)
    pdf /= pdf.sum()
    return (nn.functional.silu(scale[:, None] * z[None] + shift[:, None]) * pdf).sum(dim=1)


def _build_unet(cfg: UNetConfig, gen: torch.Generator) -> UNetModel:
    unet = UNetModel(cfg)
    _init_random(unet, gen)
    _identity_path(unet, cfg.in_channels, cfg.model_channels)
    return unet


def _identity_path(unet: nn.Module, lat: int, model_channels: int) -> None:
    """Turns a randomly initialised ldm/sgm UNet into "identity plus a random perturbation" (module doc)."""
    # Damp the random weights that write into the latent-carrying channels, so the identity path leads.
    last = unet.output_blocks[-1][0]
    for conv in (unet.input_blocks[0][0], last.out_layers[3], last.skip_connection):
        conv.weight.data[:lat] *= 0.3
    # The identity path: latent channel c -> feature channel c -> (last skip connection) -> output c.
    _center_identity(unet.input_blocks[0][0], lat, 0, 1.0)
    skip_in = last.skip_connection.weight.shape[1] - model_channels  # cat([h, hs[0]]): hs[0] comes last
    _center_identity(last.skip_connection, lat, skip_in, 1.0)
    # out = conv(SiLU(GroupNorm(h))).  A GroupNorm bias of 5 moves the latent channels into SiLU's nearly
    # linear range, so a centre gain of 1 hands back the normalised input.  The conv bias then removes each
    # input's expected mean, since a constant eps offset would push the whole latent off-centre.
    norm, out = unet.out[0], unet.out[2]
    norm.weight.data[:lat] = 1.0
    norm.bias.data[:lat] = 5.0
    out.weight.data *= 0.5
    _center_identity(out, lat, 0, 1.0)
    out.bias.data = -(out.weight.data.sum(dim=(2, 3)) @ _silu_mean(norm.weight.data, norm.bias.data))


def _build_vae(cfg: VAEConfig, gen: torch.Generator) -> AutoencoderKL:
    vae = AutoencoderKL(cfg)
    _init_random(vae, gen)
    # The decoder output is conv(SiLU(GroupNorm(h))); this scale puts pixels at about ±0.5, away from the clamp.
    vae.decoder.conv_out.weight.data *= 0.6
    vae.decoder.conv_out.bias.data = _randn(gen, vae.decoder.conv_out.bias.shape, 0.15)
    return vae


def _build_text(cfg: CLIPTextConfig, gen: torch.Generator) -> CLIPTextModel:
    text = CLIPTextModel(cfg)
    _init_random(text, gen)
    return text


def _prefixed(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().to(STORAGE_DTYPE).contiguous() for k, v in module.state_dict().items()}


def _diffusers_attention_blocks(cfg: UNetConfig) -> list[tuple[str, str]]:
    """(kohya group prefix, ldm module path) for every SpatialTransformer, in A1111's naming."""
    blocks: list[tuple[str, str]] = []
    per_level = cfg.num_res_blocks + 1
    for level in cfg.attention_levels:
        for i in range(cfg.num_res_blocks):
            blocks.append((f"lora_unet_down_blocks_{level}_attentions_{i}",
                           f"input_blocks.{1 + level * per_level + i}.1"))
    blocks.append(("lora_unet_mid_block_attentions_0", "middle_block.1"))
    levels = len(cfg.channel_mult)
    for level in cfg.attention_levels:
        up = levels - 1 - level
        for i in range(per_level):
            blocks.append((f"lora_unet_up_blocks_{up}_attentions_{i}", f"output_blocks.{up * per_level + i}.1"))
    return blocks


def _lora_pair(gen: torch.Generator, weight: torch.Tensor, rank: int, alpha: float, strength: float) -> dict[str, torch.Tensor]:
    """lora_down/lora_up/alpha whose delta (up @ down * alpha / rank) has about `strength` times the weight's norm."""
    out_dim, in_dim = weight.shape[0], weight[0].numel()
    down = _randn(gen, (rank, in_dim), 1.0 / math.sqrt(in_dim))
    up = _randn(gen, (out_dim, rank), 1.0 / math.sqrt(rank))
    delta = (up @ down) * (alpha / rank)
    up *= strength * weight.float().norm() / delta.norm()
    if weight.dim() == 4:  # 1x1 conv (SD1's proj_in/proj_out): kohya stores conv-shaped factors
        down = down.reshape(rank, in_dim, 1, 1)
        up = up.reshape(out_dim, rank, 1, 1)
    return {"lora_down.weight": down.to(STORAGE_DTYPE), "lora_up.weight": up.to(STORAGE_DTYPE),
            "alpha": torch.tensor(float(alpha), dtype=STORAGE_DTYPE)}


def _demo_loras(unet: UNetModel, text: CLIPTextModel, gen: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    cfg = unet.config
    modules = dict(unet.named_modules())
    style: dict[str, torch.Tensor] = {}
    subject: dict[str, torch.Tensor] = {}
    for group, path in _diffusers_attention_blocks(cfg):
        for part in ("proj_in", "proj_out", "transformer_blocks_0_attn1_to_q", "transformer_blocks_0_attn1_to_k",
                     "transformer_blocks_0_attn1_to_v", "transformer_blocks_0_attn1_to_out_0",
                     "transformer_blocks_0_attn2_to_q", "transformer_blocks_0_attn2_to_out_0"):
            w = modules[path + "." + part.replace("transformer_blocks_0_", "transformer_blocks.0.")
                        .replace("_to_", ".to_").replace("to_out_0", "to_out.0")].weight
            for k, v in _lora_pair(gen, w, rank=4, alpha=2.0, strength=0.6).items():
                style[f"{group}_{part}.{k}"] = v
        for part in ("transformer_blocks_0_attn2_to_k", "transformer_blocks_0_attn2_to_v"):
            w = modules[path + "." + part.replace("transformer_blocks_0_", "transformer_blocks.0.")
                        .replace("_to_", ".to_")].weight
            for k, v in _lora_pair(gen, w, rank=4, alpha=4.0, strength=0.8).items():
                subject[f"{group}_{part}.{k}"] = v
    for i, layer in enumerate(text.text_model.encoder.layers):
        for part, mod in (("self_attn_q_proj", layer.self_attn.q_proj), ("self_attn_k_proj", layer.self_attn.k_proj),
                          ("self_attn_v_proj", layer.self_attn.v_proj), ("self_attn_out_proj", layer.self_attn.out_proj),
                          ("mlp_fc1", layer.mlp.fc1), ("mlp_fc2", layer.mlp.fc2)):
            for k, v in _lora_pair(gen, mod.weight, rank=4, alpha=4.0, strength=0.5).items():
                subject[f"lora_te_text_model_encoder_layers_{i}_{part}.{k}"] = v
    return {"demo_style": style, "demo_subject": subject}


_SIDECARS = {
    "demo_style": {"description": "LoraBridge demo LoRA: changes the look (UNet attention layers only).",
                   "activation text": "demo style", "preferred weight": 0.8},
    "demo_subject": {"description": "LoraBridge demo LoRA: changes what the prompt means (text encoder and "
                                    "UNet cross-attention).", "activation text": "demo subject", "preferred weight": 1.0},
}


def write_demo_model(out_dir: "str | Path", seed: int = 0) -> DemoFiles:
    """Writes the demo checkpoint, tokenizer and LoRAs under `out_dir` (see the module docstring)."""
    root = Path(out_dir)
    tok_dir = root / "tokenizer"
    vocab = write_demo_tokenizer(tok_dir)
    unet_cfg, vae_cfg, text_cfg = demo_configs(len(vocab))

    gen = torch.Generator().manual_seed(int(seed))
    unet = _build_unet(unet_cfg, gen)
    vae = _build_vae(vae_cfg, gen)
    text = _build_text(text_cfg, gen)
    sd: dict[str, torch.Tensor] = {}
    sd.update(_prefixed(UNET_PREFIX, unet))
    sd.update(_prefixed(VAE_PREFIX, vae))
    sd.update(_prefixed(TEXT_PREFIX, text))
    # HF CLIP checkpoints of SD1's era carry position_ids; loaders must accept and ignore it.
    sd[TEXT_PREFIX + "text_model.embeddings.position_ids"] = torch.arange(text_cfg.max_position_embeddings)[None]
    sd["alphas_cumprod"] = default_alphas_cumprod()

    # The checkpoint is written last (and atomically), so its presence means the whole demo is complete.
    lora_dir = root / "Lora"
    lora_dir.mkdir(parents=True, exist_ok=True)
    loras, sidecars = [], []
    for name, tensors in _demo_loras(unet, text, gen).items():
        meta = {"ss_output_name": name, "ss_network_module": "networks.lora", "ss_network_dim": "4",
                "ss_network_alpha": str(float(tensors[next(k for k in tensors if k.endswith(".alpha"))])),
                "ss_base_model_version": "sd_v1", "ss_sd_model_name": f"{CHECKPOINT_NAME}.safetensors",
                "ss_training_comment": f"LoraBridge demo LoRA (random, seed {int(seed)})"}
        path = lora_dir / f"{name}.safetensors"
        save_safetensors(path, tensors, meta)
        side = lora_dir / f"{name}.json"
        side.write_text(json.dumps({**_SIDECARS[name], "sd version": "SD1", "negative text": "", "notes": ""},
                                   indent=4) + "\n", encoding="utf-8", newline="\n")
        loras.append(path)
        sidecars.append(side)

    ckpt_dir = root / "Stable-diffusion"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / f"{CHECKPOINT_NAME}.safetensors"
    save_safetensors(ckpt, sd, {"format": "pt", "lorabridge_demo_seed": str(int(seed)),
                                "lorabridge_tokenizer": "../tokenizer"})
    return DemoFiles(root=root, checkpoint=ckpt, tokenizer_dir=tok_dir, vocab=tok_dir / "vocab.json",
                     merges=tok_dir / "merges.txt", loras=tuple(loras), sidecars=tuple(sidecars))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Write the LoraBridge demo model, tokenizer and LoRAs.")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    files = write_demo_model(args.out_dir, args.seed)
    print(files.checkpoint)
