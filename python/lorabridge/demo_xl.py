"""The built-in SDXL demo: a tiny SDXL-architecture checkpoint ``lorabridge-demo-xl`` and its LoRA ``demo_style_xl``.

Same idea as :mod:`lorabridge.demo` (seeded random weights, a UNet that starts as "identity plus a random
perturbation", so samplers contract the noise), with SDXL's structure at toy width: sgm UNet with three levels,
no attention at level 0, per-level transformer depth, linear projections and the ADM ``label_emb``; te1 (HF CLIP
names) and te2 (OpenCLIP names, fused ``in_proj``, ``text_projection``); the KL VAE of the SD1 demo. Both text
encoders use the SD1 demo's BPE vocabulary (``<demo>/tokenizer``), as real SDXL's encoders share CLIP-L's BPE.

Written under the demo folder, beside the SD1 demo::

    Stable-diffusion/lorabridge-demo-xl.safetensors      SDXL single-file layout, fp16
    Lora/demo_style_xl.safetensors + demo_style_xl.json  kohya names: lora_unet_…, lora_te1_…, lora_te2_…
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .bpe_train import write_demo_tokenizer
from .checkpoint import save_safetensors
from .clip_text import CLIPTextConfig, CLIPTextModel
from .demo import STORAGE_DTYPE, _build_vae, _identity_path, _init_random, _lora_pair, _randn, demo_configs
from .open_clip_text import OpenCLIPTextConfig, OpenCLIPTextModel
from .sdxl import TE1_PREFIX, TE2_PREFIX, UNET_PREFIX, VAE_PREFIX
from .sgm_unet import SDXLUNetConfig, SDXLUNetModel

__all__ = ["CHECKPOINT_NAME", "LORA_NAME", "write_demo_model_xl", "demo_xl_configs", "DemoXLFiles"]

CHECKPOINT_NAME = "lorabridge-demo-xl"
LORA_NAME = "demo_style_xl"
TE1_WIDTH = 32
TE2_WIDTH = 32
TE2_PROJ = 32
TEXT_LAYERS = 3


@dataclass(frozen=True)
class DemoXLFiles:
    root: Path
    checkpoint: Path
    tokenizer_dir: Path
    lora: Path
    sidecar: Path


def demo_xl_configs(vocab_size: int) -> tuple[SDXLUNetConfig, CLIPTextConfig, OpenCLIPTextConfig]:
    """The configurations :mod:`lorabridge.sdxl` infers back from the file (its head rules included: toy
    text towers get 8-channel heads, toy UNets 16-channel heads)."""
    unet = SDXLUNetConfig(in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=2,
                          attention_levels=(1, 2), transformer_depth=(0, 1, 2), transformer_depth_middle=2,
                          num_head_channels=16, context_dim=TE1_WIDTH + TE2_WIDTH, adm_in_channels=TE2_PROJ + 6 * 256)
    te1 = CLIPTextConfig(vocab_size=vocab_size, hidden_size=TE1_WIDTH, intermediate_size=4 * TE1_WIDTH,
                         num_hidden_layers=TEXT_LAYERS, num_attention_heads=TE1_WIDTH // 8,
                         max_position_embeddings=77, eos_token_id=vocab_size - 1)
    te2 = OpenCLIPTextConfig(vocab_size=vocab_size, width=TE2_WIDTH, heads=TE2_WIDTH // 8, layers=TEXT_LAYERS,
                             context_length=77, projection_dim=TE2_PROJ, mlp_width=4 * TE2_WIDTH)
    return unet, te1, te2


def _build_te2(cfg: OpenCLIPTextConfig, gen: torch.Generator) -> OpenCLIPTextModel:
    te2 = OpenCLIPTextModel(cfg)
    _init_random(te2, gen)
    w = cfg.width
    for block in te2.transformer.resblocks:
        block.attn.in_proj_weight.data = _randn(gen, (3 * w, w), 1.0 / math.sqrt(w))
        block.attn.in_proj_bias.data = _randn(gen, (3 * w,), 0.02)
    te2.positional_embedding.data = _randn(gen, te2.positional_embedding.shape, 0.3)
    te2.text_projection.data = _randn(gen, te2.text_projection.shape, 1.0 / math.sqrt(w))
    te2.logit_scale.data = torch.tensor(math.log(1 / 0.07))
    return te2


def _prefixed(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().to(STORAGE_DTYPE).contiguous() for k, v in module.state_dict().items()}


def _style_lora(unet: SDXLUNetModel, te1: CLIPTextModel, te2: OpenCLIPTextModel,
                gen: torch.Generator) -> dict[str, torch.Tensor]:
    """kohya-named LoRA: every UNet transformer's attention (compvis-style names, as SDXL kohya files use),
    te1's attention + MLP and te2's fused attention (all of q, k, v, out) + MLP."""
    out: dict[str, torch.Tensor] = {}

    def add(group: str, weight: torch.Tensor, strength: float) -> None:
        for k, v in _lora_pair(gen, weight, rank=4, alpha=2.0, strength=strength).items():
            out[f"{group}.{k}"] = v

    for name, module in sorted(unet.named_modules(), key=lambda kv: kv[0]):
        if isinstance(module, nn.Linear) and (".attn1.to_" in name or ".attn2.to_" in name or name.endswith("proj_in")):
            add("lora_unet_" + name.replace(".", "_"), module.weight, 0.6)
    for i, layer in enumerate(te1.text_model.encoder.layers):
        for part, mod in (("self_attn_q_proj", layer.self_attn.q_proj), ("self_attn_v_proj", layer.self_attn.v_proj),
                          ("mlp_fc1", layer.mlp.fc1)):
            add(f"lora_te1_text_model_encoder_layers_{i}_{part}", mod.weight, 0.5)
    w = te2.config.width
    for i, block in enumerate(te2.transformer.resblocks):
        fused = block.attn.in_proj_weight
        for j, part in enumerate(("q_proj", "k_proj", "v_proj")):
            add(f"lora_te2_text_model_encoder_layers_{i}_self_attn_{part}", fused[j * w:(j + 1) * w], 0.5)
        add(f"lora_te2_text_model_encoder_layers_{i}_self_attn_out_proj", block.attn.out_proj.weight, 0.5)
        add(f"lora_te2_text_model_encoder_layers_{i}_mlp_fc1", block.mlp.c_fc.weight, 0.5)
    return out


_SIDECAR = {"description": "LoraBridge SDXL demo LoRA: changes the look (UNet attention) and the prompt's meaning "
                           "(both text encoders).", "activation text": "demo style", "preferred weight": 0.8,
            "sd version": "SDXL", "negative text": "", "notes": ""}


def write_demo_model_xl(out_dir: "str | Path", seed: int = 0) -> DemoXLFiles:
    """Writes the SDXL demo checkpoint and LoRA (and the demo tokenizer when missing) under ``out_dir``."""
    root = Path(out_dir)
    tok_dir = root / "tokenizer"
    vocab = write_demo_tokenizer(tok_dir)
    unet_cfg, te1_cfg, te2_cfg = demo_xl_configs(len(vocab))
    vae_cfg = demo_configs(len(vocab))[1]

    gen = torch.Generator().manual_seed(int(seed) + 1)  # another stream than the SD1 demo's
    unet = SDXLUNetModel(unet_cfg)
    _init_random(unet, gen)
    _identity_path(unet, unet_cfg.in_channels, unet_cfg.model_channels)
    # The ADM path adds label_emb(y) to every ResBlock's embedding; keep it as small as the time embedding's.
    unet.label_emb[0][0].weight.data *= 0.3
    vae = _build_vae(vae_cfg, gen)
    te1 = CLIPTextModel(te1_cfg)
    _init_random(te1, gen)
    te2 = _build_te2(te2_cfg, gen)

    sd: dict[str, torch.Tensor] = {}
    sd.update(_prefixed(UNET_PREFIX, unet))
    sd.update(_prefixed(VAE_PREFIX, vae))
    sd.update(_prefixed(TE1_PREFIX, te1))
    sd.update(_prefixed(TE2_PREFIX, te2))
    sd[TE1_PREFIX + "text_model.embeddings.position_ids"] = torch.arange(77)[None]

    lora_dir = root / "Lora"
    lora_dir.mkdir(parents=True, exist_ok=True)
    lora = lora_dir / f"{LORA_NAME}.safetensors"
    save_safetensors(lora, _style_lora(unet, te1, te2, gen), {
        "ss_output_name": LORA_NAME, "ss_network_module": "networks.lora", "ss_network_dim": "4",
        "ss_network_alpha": "2.0", "ss_base_model_version": "sdxl_base_v1-0",
        "ss_sd_model_name": f"{CHECKPOINT_NAME}.safetensors",
        "ss_training_comment": f"LoraBridge SDXL demo LoRA (random, seed {int(seed)})"})
    sidecar = lora_dir / f"{LORA_NAME}.json"
    sidecar.write_text(json.dumps(_SIDECAR, indent=4) + "\n", encoding="utf-8", newline="\n")

    # Written last (save_safetensors writes atomically): its presence means the demo is complete.
    ckpt_dir = root / "Stable-diffusion"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / f"{CHECKPOINT_NAME}.safetensors"
    save_safetensors(ckpt, sd, {"format": "pt", "lorabridge_demo_seed": str(int(seed)),
                                "lorabridge_tokenizer": "../tokenizer", "modelspec.architecture": "stable-diffusion-xl-v1-base"})
    return DemoXLFiles(root=root, checkpoint=ckpt, tokenizer_dir=tok_dir, lora=lora, sidecar=sidecar)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Write the LoraBridge SDXL demo checkpoint and LoRA.")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(write_demo_model_xl(args.out_dir, args.seed).checkpoint)
