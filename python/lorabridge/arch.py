"""Recognise the ldm checkpoint layout and infer each part's configuration from tensor shapes alone.

Parts and their key prefixes (A1111 / CompVis single-file layout):
  * UNet  ``model.diffusion_model.``          (ldm UNetModel, SD1.x conv or SD2.x linear proj_in/proj_out)
  * VAE   ``first_stage_model.``              (ldm AutoencoderKL; a bare VAE file without the prefix too)
  * text  ``cond_stage_model.transformer.``   (CLIP text model, Hugging Face names ``text_model.…``)

Everything except the attention head split is visible in the shapes. Head rules (documented choices):
  * UNet, linear proj_in (SD2.x, ``v2-inference.yaml``): ``num_head_channels = 64``.
  * UNet, conv proj_in (SD1.x, ``v1-inference.yaml``): ``num_heads = 8`` — unless 8 heads would make a head
    narrower than 32 channels at the narrowest attention width, in which case heads are 32 channels wide
    (``num_head_channels = 32``, the width ldm's own small LDM configs use). Every SD1.x-family model (SD1.x
    at model_channels 320, distilled/"tiny" SD variants with 8 heads) has heads ≥ 40 wide, so it keeps 8;
    a toy UNet with 64-channel attention gets 2 heads of 32.
  * CLIP text: end-of-text is the last vocabulary id (CLIP's vocab file format); ``heads = width / 64`` (openai CLIP's rule: CLIP-L 768 → 12); a width that is not a multiple
    of 64 (only toy/test towers) gets 8-channel heads (e.g. 32 → 4, as HF's tiny test CLIP models use).
Callers can override the head split (``unet_heads`` / ``clip_heads``) where a file is known to differ.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Optional

import torch

from .clip_text import CLIPTextConfig, CLIPTextModel
from .unet import UNetConfig, UNetModel
from .vae import AutoencoderKL, VAEConfig

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."
PREFIXES = {"unet": UNET_PREFIX, "vae": VAE_PREFIX, "text_encoder": CLIP_PREFIX}

# LatentDiffusion buffers a full checkpoint carries (ddpm.py register_schedule) plus training leftovers.
SCHEDULE_BUFFERS = frozenset({
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "logvar", "lvlb_weights",
})

# Layouts we recognise but cannot run yet: (key prefix, what it is).
UNSUPPORTED_MARKERS = (
    ("cond_stage_model.model.", "SD2.x OpenCLIP text encoder (cond_stage_model.model.*)"),
    ("conditioner.embedders.", "SDXL conditioner (conditioner.embedders.*)"),
    ("model.diffusion_model.label_emb.", "class/size-conditioned UNet label_emb (SDXL or ADM)"),
    ("first_stage_model.quantize.", "VQ first stage (VQ-GAN), not a KL VAE"),
)


class ArchitectureError(ValueError):
    """The weights do not form a supported ldm layout; the message says what was recognised and why not."""


@dataclass
class Architecture:
    """What a state dict holds: per part the config and its (prefix-stripped) tensors."""

    unet: Optional[UNetConfig] = None
    vae: Optional[VAEConfig] = None
    text_encoder: Optional[CLIPTextConfig] = None
    tensors: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    alphas_cumprod: Optional[torch.Tensor] = None
    ignored_keys: list[str] = field(default_factory=list)

    @property
    def parts(self) -> list[str]:
        return [p for p in ("unet", "vae", "text_encoder") if getattr(self, p) is not None]


def _sample(keys: list[str], n: int = 8) -> str:
    keys = sorted(keys)
    more = f" … and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _shape(sd: Mapping[str, torch.Tensor], key: str, part: str) -> tuple[int, ...]:
    if key not in sd:
        raise ArchitectureError(f"{part}: required key '{key}' is missing")
    return tuple(sd[key].shape)


def _indices(sd: Mapping[str, Any], pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in sd for m in [rx.match(k)] if m})


def _is_ignorable(key: str) -> bool:
    # loss.*: the VAE training loss (LPIPS/discriminator) some VAE files carry; A1111 drops it too.
    return (key in SCHEDULE_BUFFERS or key.startswith(("model_ema.", "loss.", "first_stage_model.loss."))
            or key.endswith(".position_ids") or key == "position_ids")


def _normalise_clip_key(key: str) -> str:
    # transformers < 4.x wrote CLIPTextModel without the text_model level (A1111 renames these too).
    for sub in ("embeddings.", "encoder.", "final_layer_norm."):
        if key.startswith(sub):
            return "text_model." + key
    return key


def split_state_dict(sd: Mapping[str, torch.Tensor]) -> Architecture:
    """Sort keys into parts, ignoring EMA copies, schedule buffers and position_ids; reject foreign layouts."""
    arch = Architecture()
    found: dict[str, dict[str, torch.Tensor]] = {p: {} for p in PREFIXES}
    unexpected: list[str] = []
    for marker, what in UNSUPPORTED_MARKERS:
        hits = [k for k in sd if k.startswith(marker)]
        if hits:
            parts = [f"{p} ({n} keys)" for p, pre in PREFIXES.items()
                     for n in [sum(1 for k in sd if k.startswith(pre) and not k.startswith(marker))] if n]
            raise ArchitectureError(
                f"unsupported checkpoint: found {what} ({len(hits)} keys, e.g. {_sample(hits, 3)}); "
                f"also recognised: {', '.join(parts) or 'nothing else'}; "
                f"LoraBridge supports SD1.x-family ldm checkpoints (UNet, KL VAE, CLIP text encoder)")
    bare_vae = not any(k.startswith(tuple(PREFIXES.values())) for k in sd) and any(
        k.startswith(("encoder.", "decoder.", "post_quant_conv.")) for k in sd)
    for key, tensor in sd.items():
        if key == "alphas_cumprod":
            arch.alphas_cumprod = tensor
        if _is_ignorable(key):
            arch.ignored_keys.append(key)
            continue
        if bare_vae:
            found["vae"][key] = tensor
            continue
        for part, prefix in PREFIXES.items():
            if key.startswith(prefix):
                name = key[len(prefix):]
                found[part][_normalise_clip_key(name) if part == "text_encoder" else name] = tensor
                break
        else:
            unexpected.append(key)
    arch.tensors = {p: t for p, t in found.items() if t}
    if not arch.tensors:
        raise ArchitectureError(
            f"no ldm part recognised among {len(sd)} keys (expected prefixes {', '.join(PREFIXES.values())}); "
            f"first keys: {_sample(list(sd))}")
    if unexpected:
        recognised = [f"{p} ({len(t)} keys)" for p, t in arch.tensors.items()]
        raise ArchitectureError(
            f"unexpected keys outside the ldm layout: {_sample(unexpected)}; recognised: {', '.join(recognised)}")
    return arch


def infer_unet_config(sd: Mapping[str, torch.Tensor], heads: Optional[dict[str, int]] = None) -> UNetConfig:
    """UNet config from prefix-stripped ``model.diffusion_model.`` keys."""
    part = "UNet"
    mc, in_ch = _shape(sd, "input_blocks.0.0.weight", part)[:2]
    out_ch = _shape(sd, "out.2.weight", part)[0]
    if in_ch != out_ch:
        kind = ("inpainting/instruct-pix2pix style conditioning on extra input channels" if in_ch > out_ch
                else "unknown layout")
        raise ArchitectureError(
            f"UNet has {in_ch} input and {out_ch} output channels ({kind}; input_blocks.0.0.weight "
            f"{_shape(sd, 'input_blocks.0.0.weight', part)}) - only plain text-to-image UNets are supported")
    n_in = _indices(sd, r"input_blocks\.(\d+)\.")
    levels: list[list[tuple[int, bool]]] = [[]]  # per level: (out width, has transformer) per res block
    for i in n_in[1:]:
        if f"input_blocks.{i}.0.op.weight" in sd:
            levels.append([])
            continue
        width = _shape(sd, f"input_blocks.{i}.0.out_layers.3.weight", part)[0]
        levels[-1].append((width, f"input_blocks.{i}.1.norm.weight" in sd))
    counts = {len(lv) for lv in levels}
    if len(counts) != 1 or 0 in counts:
        raise ArchitectureError(f"UNet levels have differing residual block counts {[len(lv) for lv in levels]}")
    mult = []
    attention_levels = []
    for li, lv in enumerate(levels):
        widths = {w for w, _ in lv}
        if len(widths) != 1 or next(iter(widths)) % mc:
            raise ArchitectureError(f"UNet level {li} widths {sorted(widths)} are not one multiple of {mc}")
        mult.append(next(iter(widths)) // mc)
        attn = {a for _, a in lv}
        if len(attn) != 1:
            raise ArchitectureError(f"UNet level {li} mixes blocks with and without attention")
        if attn.pop():
            attention_levels.append(li)
    st = "middle_block.1."
    depth_ids = _indices(sd, r"middle_block\.1\.transformer_blocks\.(\d+)\.")
    if not depth_ids:
        raise ArchitectureError("UNet middle_block.1 is not a SpatialTransformer (no transformer_blocks keys)")
    depth = len(depth_ids)
    context_dim = _shape(sd, st + "transformer_blocks.0.attn2.to_k.weight", part)[1]
    use_linear = len(_shape(sd, st + "proj_in.weight", part)) == 2
    cfg = UNetConfig(in_channels=in_ch, out_channels=out_ch, model_channels=mc, channel_mult=tuple(mult),
                     num_res_blocks=counts.pop(), attention_levels=tuple(attention_levels), transformer_depth=depth,
                     context_dim=context_dim, use_linear_in_transformer=use_linear)
    if heads:
        return replace(cfg, num_heads=heads.get("num_heads", -1), num_head_channels=heads.get("num_head_channels", -1))
    if use_linear:
        return replace(cfg, num_heads=-1, num_head_channels=64)
    narrowest = min([mc * mult[li] for li in attention_levels] + [mc * mult[-1]])
    if narrowest // 8 >= 32:
        return replace(cfg, num_heads=8, num_head_channels=-1)
    return replace(cfg, num_heads=-1, num_head_channels=32)


def infer_vae_config(sd: Mapping[str, torch.Tensor]) -> VAEConfig:
    """KL VAE config from prefix-stripped ``first_stage_model.`` keys (encoder and/or decoder)."""
    part = "VAE"
    has_enc = any(k.startswith("encoder.") for k in sd)
    has_dec = any(k.startswith("decoder.") for k in sd)
    found: dict[str, Any] = {}
    if has_enc:
        ch, in_channels = _shape(sd, "encoder.conv_in.weight", part)[:2]
        lv = _indices(sd, r"encoder\.down\.(\d+)\.")
        widths = [_shape(sd, f"encoder.down.{i}.block.0.conv2.weight", part)[0] for i in lv]
        found["enc"] = dict(ch=ch, widths=widths, in_channels=in_channels,
                            num_res_blocks=len(_indices(sd, r"encoder\.down\.0\.block\.(\d+)\.")),
                            attention_levels=tuple(i for i in lv if f"encoder.down.{i}.attn.0.q.weight" in sd),
                            z2=_shape(sd, "encoder.conv_out.weight", part)[0],
                            embed2=_shape(sd, "quant_conv.weight", part)[0])
    if has_dec:
        lv = _indices(sd, r"decoder\.up\.(\d+)\.")
        widths = [_shape(sd, f"decoder.up.{i}.block.0.conv2.weight", part)[0] for i in lv]
        found["dec"] = dict(widths=widths, out_ch=_shape(sd, "decoder.conv_out.weight", part)[0],
                            num_res_blocks=len(_indices(sd, r"decoder\.up\.0\.block\.(\d+)\.")) - 1,
                            attention_levels=tuple(i for i in lv if f"decoder.up.{i}.attn.0.q.weight" in sd),
                            z=_shape(sd, "decoder.conv_in.weight", part)[1],
                            embed=_shape(sd, "post_quant_conv.weight", part)[1])
    if not found:
        raise ArchitectureError(f"VAE keys hold neither encoder.* nor decoder.*: {_sample(list(sd))}")
    enc, dec = found.get("enc"), found.get("dec")
    if enc and dec:
        for k in ("widths", "num_res_blocks", "attention_levels"):
            if enc[k] != dec[k]:
                raise ArchitectureError(f"VAE encoder and decoder disagree on {k}: {enc[k]} vs {dec[k]}")
    src = enc or dec
    assert src is not None
    ch = enc["ch"] if enc else src["widths"][0]
    if any(w % ch for w in src["widths"]):
        raise ArchitectureError(f"VAE level widths {src['widths']} are not multiples of {ch}")
    z = dec["z"] if dec else enc["z2"] // 2  # KL VAEs always use double_z (mean and logvar)
    embed = dec["embed"] if dec else enc["embed2"] // 2
    return VAEConfig(ch=ch, ch_mult=tuple(w // ch for w in src["widths"]), num_res_blocks=src["num_res_blocks"],
                     attention_levels=src["attention_levels"], in_channels=enc["in_channels"] if enc else 3,
                     out_ch=dec["out_ch"] if dec else 3, z_channels=z, embed_dim=embed, double_z=True,
                     has_encoder=has_enc, has_decoder=has_dec)


def infer_clip_config(sd: Mapping[str, torch.Tensor], heads: Optional[int] = None) -> CLIPTextConfig:
    """CLIP text config from prefix-stripped ``cond_stage_model.transformer.`` keys (HF names)."""
    part = "CLIP text encoder"
    vocab, width = _shape(sd, "text_model.embeddings.token_embedding.weight", part)
    positions = _shape(sd, "text_model.embeddings.position_embedding.weight", part)[0]
    layers = len(_indices(sd, r"text_model\.encoder\.layers\.(\d+)\."))
    if layers == 0:
        raise ArchitectureError("CLIP text encoder has no text_model.encoder.layers.* keys")
    inter = _shape(sd, "text_model.encoder.layers.0.mlp.fc1.weight", part)[0]
    if heads is None:
        heads = width // 64 if width % 64 == 0 else max(1, width // 8)
    # CLIP's tokenizer file format puts <|startoftext|>, <|endoftext|> last, so end-of-text is the last id.
    return CLIPTextConfig(vocab_size=vocab, hidden_size=width, intermediate_size=inter, num_hidden_layers=layers,
                          num_attention_heads=heads, max_position_embeddings=positions, eos_token_id=vocab - 1)


def check_against_module(part: str, module: torch.nn.Module, sd: Mapping[str, torch.Tensor], prefix: str) -> None:
    """Exact key and shape agreement between the built module and the file, or an error naming the keys."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = [prefix + k for k in expected if k not in sd]
    extra = [prefix + k for k in sd if k not in expected]
    wrong = [f"{prefix}{k} {tuple(sd[k].shape)} (expected {s})" for k, s in expected.items()
             if k in sd and tuple(sd[k].shape) != s]
    if missing or extra or wrong:
        msg = [f"{part}: weights do not match the inferred configuration {getattr(module, 'config', '')}"]
        if missing:
            msg.append(f"missing keys: {_sample(missing)}")
        if extra:
            msg.append(f"unexpected keys: {_sample(extra)}")
        if wrong:
            msg.append(f"shape mismatches: {_sample(wrong, 4)}")
        raise ArchitectureError("; ".join(msg))


def detect(sd: Mapping[str, torch.Tensor], unet_heads: Optional[dict[str, int]] = None,
           clip_heads: Optional[int] = None) -> Architecture:
    """Split, infer every present part's config and verify it reproduces the keys and shapes exactly."""
    arch = split_state_dict(sd)
    builders = {
        "unet": (lambda t: infer_unet_config(t, unet_heads), UNetModel),
        "vae": (infer_vae_config, AutoencoderKL),
        "text_encoder": (lambda t: infer_clip_config(t, clip_heads), CLIPTextModel),
    }
    for part, tensors in arch.tensors.items():
        infer, cls = builders[part]
        try:
            cfg = infer(tensors)
            module = cls(cfg, device="meta")
        except (ArchitectureError, ValueError) as e:  # ValueError: e.g. a width the head split cannot divide
            raise ArchitectureError(f"{part}: {e} (recognised parts: {', '.join(arch.tensors)})") from None
        check_against_module(part, module, tensors, PREFIXES[part])
        setattr(arch, part, cfg)
    return arch
