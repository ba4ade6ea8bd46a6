"""Hires fix as AUTOMATIC1111 v1.10.1's `StableDiffusionProcessingTxt2Img.sample_hr_pass` does it.

After the first pass: the target size (`hires_target`, A1111's `calculate_target_resolution`), then either a
latent upscale (`upscale_latent`, the `Latent …` modes: `F.interpolate` of the latent) or an image upscaler
(`upscale_images`: decode → uint8 → `resize_image(0, …)` with the upscaler → back to [0, 1], then the caller
encodes it again), the crop of `hr_resize` (`truncate_latent`), fresh noise from the same seeds at the new shape
(a new `ImageRNG`, eta noise seed delta again) and an img2img pass whose step count always follows the
"fix steps" rule (`start_hires_pass`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from PIL import Image

from .img2img import ImageUpscale, image_to_tensor, resize_image, start_img2img
from .images import to_uint8
from .rng import ImageRNG
from .samplers import EpsModel, SamplerOptions, SamplerState

OPT_F = 8  # latent downsampling factor

# A1111 `shared.latent_upscale_modes` (name → F.interpolate mode and antialias).
LATENT_UPSCALE_MODES: dict[str, dict[str, Any]] = {
    "Latent": {"mode": "bilinear", "antialias": False},
    "Latent (antialiased)": {"mode": "bilinear", "antialias": True},
    "Latent (bicubic)": {"mode": "bicubic", "antialias": False},
    "Latent (bicubic antialiased)": {"mode": "bicubic", "antialias": True},
    "Latent (nearest)": {"mode": "nearest", "antialias": False},
    "Latent (nearest-exact)": {"mode": "nearest-exact", "antialias": False},
}
# A1111's `latent_upscale_default_mode` when no upscaler is named.
DEFAULT_LATENT_MODE = "Latent"


@dataclass(frozen=True)
class HiresTarget:
    """The second pass's size and what A1111 writes for it."""

    width: int  # hr_upscale_to_x
    height: int  # hr_upscale_to_y
    truncate_x: int  # latent columns cropped after the upscale (hr_resize with another aspect ratio)
    truncate_y: int
    infotext: dict[str, str]  # "Hires upscale" or "Hires resize"

    @property
    def latent_size(self) -> tuple[int, int]:
        """(h, w) of the upscaled latent before the crop."""
        return self.height // OPT_F, self.width // OPT_F


def _format_number(v: float) -> str:
    # A1111's UI hands sliders over as JSON numbers, so a whole value arrives as an int and the infotext reads
    # "Hires upscale: 2", "Denoising strength: 1"; other values print as Python floats ("0.55").
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def hires_target(width: int, height: int, scale: float = 2.0, resize_x: int = 0, resize_y: int = 0) -> HiresTarget:
    """A1111 `calculate_target_resolution` (without the old-hires-fix option): a scale truncates
    `int(width * scale)`; `resize_x`/`resize_y` (0 = follow the aspect ratio) fit the first pass inside the box
    and crop the overflow in latent space."""
    if width <= 0 or height <= 0:
        raise ValueError(f"first-pass size must be positive, got {width}x{height}")
    if resize_x < 0 or resize_y < 0:
        raise ValueError(f"hires resize must not be negative, got {resize_x}x{resize_y}")
    if resize_x == 0 and resize_y == 0:
        if not scale > 0:
            raise ValueError(f"hires scale must be positive, got {scale}")
        info = {"Hires upscale": _format_number(scale)}
        tw, th = int(width * scale), int(height * scale)
        tx = ty = 0
    else:
        info = {"Hires resize": f"{resize_x}x{resize_y}"}
        tx = ty = 0
        if resize_y == 0:
            tw, th = resize_x, resize_x * height // width
        elif resize_x == 0:
            tw, th = resize_y * width // height, resize_y
        else:
            if width / height < resize_x / resize_y:
                tw, th = resize_x, resize_x * height // width
            else:
                tw, th = resize_y * width // height, resize_y
            tx = (tw - resize_x) // OPT_F
            ty = (th - resize_y) // OPT_F
    if tw < OPT_F or th < OPT_F:
        raise ValueError(f"hires target {tw}x{th} is smaller than one latent pixel")
    return HiresTarget(tw, th, tx, ty, info)


def latent_mode(upscaler: Optional[str]) -> Optional[dict[str, Any]]:
    """The interpolate settings of a latent upscaler name; None for an image upscaler."""
    if upscaler is None:
        return LATENT_UPSCALE_MODES[DEFAULT_LATENT_MODE]
    return LATENT_UPSCALE_MODES.get(upscaler)


def upscale_latent(samples: torch.Tensor, target: HiresTarget, upscaler: Optional[str]) -> torch.Tensor:
    """`F.interpolate` of the first-pass latent to the target's latent size with the mode's settings."""
    mode = latent_mode(upscaler)
    if mode is None:
        raise ValueError(f"{upscaler!r} is not a latent upscaler ({', '.join(LATENT_UPSCALE_MODES)})")
    kwargs: dict[str, Any] = {"mode": mode["mode"]}
    if mode["antialias"]:
        kwargs["antialias"] = True  # torch < 1.11 has no such argument; only pass it when it matters
    return torch.nn.functional.interpolate(samples, size=target.latent_size, **kwargs)


def upscale_images(decoded: torch.Tensor, target: HiresTarget, upscale: Optional[ImageUpscale]) -> torch.Tensor:
    """The image-upscaler path: decoded first pass [B,3,h,w] in about [-1, 1] → uint8 (A1111's truncation) →
    `resize_image(0, …, upscaler)` → float32 [B,3,H,W] in [0, 1], ready for `encode_init_latent`."""
    rgb = to_uint8(decoded)
    out = []
    for a in rgb:
        im = resize_image(0, Image.fromarray(a), target.width, target.height, upscale)
        out.append(image_to_tensor(im))
    return torch.stack(out)


def truncate_latent(samples: torch.Tensor, target: HiresTarget) -> torch.Tensor:
    """A1111's crop of the hr_resize overflow, half on each side (the odd one at the end)."""
    tx, ty = target.truncate_x, target.truncate_y
    return samples[:, :, ty // 2 : samples.shape[2] - (ty + 1) // 2, tx // 2 : samples.shape[3] - (tx + 1) // 2]


def start_hires_pass(
    sampler: str,
    model: EpsModel,
    samples: torch.Tensor,
    seeds: Sequence[int],
    steps: int,
    strength: float,
    *,
    randn_source: str = "GPU",
    device: "torch.device | str" = "cpu",
    eta_noise_seed_delta: int = 0,
    scheduler: str = "Automatic",
    alphas_cumprod: Optional[torch.Tensor] = None,
    options: Optional[SamplerOptions] = None,
) -> SamplerState:
    """The second pass over the upscaled (and cropped) latent: a fresh ImageRNG from the same seeds at the new
    shape, `steps` = hr_second_pass_steps or the first pass's steps, always the fix-steps rule."""
    rng = ImageRNG(tuple(samples.shape[1:]), list(seeds), source=randn_source, device=device,
                   eta_noise_seed_delta=eta_noise_seed_delta)
    return start_img2img(sampler, model, rng, samples, steps, strength, fix_steps=True, scheduler=scheduler,
                         alphas_cumprod=alphas_cumprod, options=options)


def hires_infotext(target: HiresTarget, *, denoising_strength: float, sampler: str, hr_sampler: Optional[str],
                   hr_steps: int, upscaler: Optional[str], hr_prompt: Optional[str] = None,
                   hr_negative: Optional[str] = None) -> dict[str, str]:
    """The entries A1111's txt2img `init` adds for hires fix, in its order (Denoising strength, Hires sampler,
    Hires prompt, Hires negative prompt, Hires upscale|resize, Hires steps, Hires upscaler).

    `hr_prompt`/`hr_negative` are given only when they differ from the first pass's (A1111 leaves them out
    otherwise); "Hires schedule type" comes from the sampler (see `hires_schedule_type`)."""
    params: dict[str, str] = {"Denoising strength": _format_number(denoising_strength)}
    if hr_sampler is not None and hr_sampler != sampler:
        params["Hires sampler"] = hr_sampler
    if hr_prompt is not None:
        params["Hires prompt"] = hr_prompt
    if hr_negative is not None:
        params["Hires negative prompt"] = hr_negative
    params.update(target.infotext)
    if hr_steps:
        params["Hires steps"] = str(int(hr_steps))
    if upscaler is not None:
        params["Hires upscaler"] = upscaler
    return params


def hires_schedule_type(first: SamplerState, second: SamplerState) -> Optional[str]:
    """A1111 writes "Hires schedule type" when the second pass's resolved schedule differs from the first's
    "Schedule type" entry (e.g. Euler a then DPM++ 2M → Karras)."""
    first_type = first.schedule_type if first.spec.kind == "k" else None
    if second.spec.kind != "k" or second.schedule_type is None:
        return None
    return None if second.schedule_type == first_type else second.schedule_type


__all__ = [
    "LATENT_UPSCALE_MODES", "HiresTarget", "hires_target", "latent_mode", "upscale_latent", "upscale_images",
    "truncate_latent", "start_hires_pass", "hires_infotext", "hires_schedule_type",
]
