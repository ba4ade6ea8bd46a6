"""img2img as AUTOMATIC1111 v1.10.1's `StableDiffusionProcessingImg2Img` does it.

* `resize_image`: A1111's resize modes ("Just resize", "Crop and resize", "Resize and fill", and
  "Just resize (latent upscale)", which resizes the encoded latent instead of the picture).
* `encode_init_latent`: the VAE encode of `get_first_stage_encoding(encode_first_stage(image))`, i.e. a *sample*
  of the posterior (`mean + std * eps`, logvar clamped to [-30, 20]) times the scale factor, each image of a
  batch encoded on its own with its own successive draw.
* `img2img_steps`: how the denoising strength turns into the schedule length and the steps actually run
  (`sd_samplers_common.setup_img2img_steps`), including the `img2img_fix_steps` option.
* `start_img2img`: a `SamplerState` that starts from the init latent noised to the strength's level with the
  seed noise (the samplers' own `SamplerState.start_img2img`).

The posterior's eps: A1111 draws it from torch's global CPU RNG, which the job does not seed (the encode runs
before the job seeds anything), so A1111 itself is only reproducible from the second identical run on, when the
global RNG was last seeded by the previous run with `torch.manual_seed(last seed of the batch)`. We use exactly
that state, from a private generator (never the global RNG): `posterior_generator(seeds)`.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image

from .rng import ImageRNG
from .samplers import EpsModel, SamplerOptions, SamplerState

LANCZOS = Image.Resampling.LANCZOS if hasattr(Image, "Resampling") else Image.LANCZOS

# A1111's names, in the order of its radio buttons (the index is `resize_mode`).
RESIZE_MODES = ("Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)")

# An image upscaler: (image, scale) -> image (A1111's `Upscaler.upscale`). None: plain LANCZOS.
ImageUpscale = Callable[[Image.Image, float], Image.Image]


def resize_mode_index(mode: Union[int, str]) -> int:
    """A resize mode given as A1111's index or name (case-insensitive) → the index."""
    if isinstance(mode, int) and not isinstance(mode, bool):
        if 0 <= mode < len(RESIZE_MODES):
            return mode
    elif isinstance(mode, str):
        wanted = mode.strip().lower()
        if wanted.isdigit() and int(wanted) < len(RESIZE_MODES):
            return int(wanted)
        for i, name in enumerate(RESIZE_MODES):
            if name.lower() == wanted:
                return i
    raise ValueError(f"unknown resize mode {mode!r}; expected one of {', '.join(RESIZE_MODES)}")


def _resize(im: Image.Image, w: int, h: int, upscale: Optional[ImageUpscale]) -> Image.Image:
    # A1111 `images.resize_image.resize`: an upscaler only when enlarging, then LANCZOS to the exact size.
    if upscale is None or im.mode == "L":
        return im.resize((w, h), resample=LANCZOS)
    scale = max(w / im.width, h / im.height)
    if scale > 1.0:
        im = upscale(im, scale)
    if im.width != w or im.height != h:
        im = im.resize((w, h), resample=LANCZOS)
    return im


def resize_image(mode: Union[int, str], im: Image.Image, width: int, height: int,
                 upscale: Optional[ImageUpscale] = None) -> Image.Image:
    """A1111 `images.resize_image`: 0 stretch, 1 crop to fill (centred), 2 fit and fill the bands with the
    stretched edge rows/columns. Mode 3 leaves the picture as it is (A1111 resizes its latent instead, see
    `resize_latent_mode3`)."""
    mode = resize_mode_index(mode)
    if width <= 0 or height <= 0:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    if mode == 3:
        return im
    if mode == 0:
        return _resize(im, width, height, upscale)
    ratio = width / height
    src_ratio = im.width / im.height
    if mode == 1:
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
        resized = _resize(im, src_w, src_h, upscale)
        res = Image.new("RGB", (width, height))
        res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
        return res
    src_w = width if ratio < src_ratio else im.width * height // im.height
    src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = _resize(im, src_w, src_h, upscale)
    res = Image.new("RGB", (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if ratio < src_ratio:
        fill_height = height // 2 - src_h // 2
        if fill_height > 0:
            res.paste(resized.resize((width, fill_height), box=(0, 0, width, 0)), box=(0, 0))
            res.paste(resized.resize((width, fill_height), box=(0, resized.height, width, resized.height)),
                      box=(0, fill_height + src_h))
    elif ratio > src_ratio:
        fill_width = width // 2 - src_w // 2
        if fill_width > 0:
            res.paste(resized.resize((fill_width, height), box=(0, 0, 0, height)), box=(0, 0))
            res.paste(resized.resize((fill_width, height), box=(resized.width, 0, resized.width, height)),
                      box=(fill_width + src_w, 0))
    return res


def flatten(im: Image.Image, background: str = "#ffffff") -> Image.Image:
    """A1111 `images.flatten`: transparency over the background colour (option img2img_background_color), RGB."""
    if im.mode == "RGBA":
        canvas = Image.new("RGBA", im.size, background)
        canvas.paste(im, mask=im)
        im = canvas
    return im.convert("RGB")


def image_to_tensor(im: Image.Image) -> torch.Tensor:
    """RGB image → float32 [3,H,W] in [0, 1] (numpy float32 / 255, as A1111)."""
    a = np.array(im.convert("RGB")).astype(np.float32) / 255.0
    return torch.from_numpy(np.moveaxis(a, 2, 0).copy())


def posterior_generator(seeds: Sequence[int]) -> torch.Generator:
    """The CPU generator for the posterior draws: A1111's global RNG as the previous identical job left it."""
    return torch.Generator("cpu").manual_seed(int(seeds[-1]))


def encode_init_latent(
    encode_moments: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    scale_factor: float,
    generator: Optional[torch.Generator],
    eps: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`images` [B,3,H,W] in [0, 1] → (scaled posterior sample, posterior mean before scaling), each [B,C,h,w].

    Each image goes through the encoder alone (A1111's `images_tensor_to_samples` for B > 1); eps per image is
    the next draw of `generator` on the CPU, or taken from `eps` [B,C,h,w] when given (conformance inputs).
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [B,3,H,W], got shape {tuple(images.shape)}")
    samples, means = [], []
    for i in range(images.shape[0]):
        x = images[i : i + 1] * 2 - 1
        moments = encode_moments(x)
        mean, logvar = torch.chunk(moments, 2, dim=1)
        std = torch.exp(0.5 * torch.clamp(logvar, -30.0, 20.0))
        if eps is not None:
            e = eps[i : i + 1].to(device=mean.device, dtype=mean.dtype)
        else:
            e = torch.randn(mean.shape, generator=generator, dtype=torch.float32).to(device=mean.device, dtype=mean.dtype)
        samples.append(scale_factor * (mean + std * e))
        means.append(mean)
    return torch.cat(samples), torch.cat(means)


def img2img_steps(steps: int, strength: float, fix_steps: bool = False) -> tuple[int, int]:
    """(schedule length, t_enc) of A1111's `setup_img2img_steps`; the sampler then runs t_enc + 1 steps.

    Default: the schedule is `steps` long and `t_enc = int(min(strength, 0.999) * steps)` (float truncation:
    0.58 * 50 = 28.999… → 28). With img2img_fix_steps (and always for the hires pass): the schedule is
    `int(steps / min(strength, 0.999))` long and t_enc = steps - 1, so exactly `steps` steps run.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"denoising strength must lie in [0, 1], got {strength}")
    if fix_steps:
        total = int(steps / min(strength, 0.999)) if strength > 0 else 0
        return total, steps - 1
    return steps, int(min(strength, 0.999) * steps)


def start_img2img(
    sampler: str,
    model: EpsModel,
    rng: ImageRNG,
    init_latent: torch.Tensor,
    steps: int,
    strength: float,
    *,
    fix_steps: bool = False,
    scheduler: str = "Automatic",
    alphas_cumprod: Optional[torch.Tensor] = None,
    options: Optional[SamplerOptions] = None,
) -> SamplerState:
    """A sampler state for img2img from `init_latent`, with the seed noise of `rng` (a fresh ImageRNG).

    At strength 0 with fix steps the schedule is empty and A1111 returns the init latent unchanged; we do the
    same (a state with no steps whose x is the init latent).
    """
    total, t_enc = img2img_steps(steps, strength, fix_steps)
    if total == 0:
        state = SamplerState(sampler, model, rng, 1, scheduler=scheduler, alphas_cumprod=alphas_cumprod,
                             options=options)
        state.x = init_latent.to(device=state.noise.device, dtype=state.noise.dtype).clone()
        state.total = 0
        if state.sigmas is not None:
            state.sigmas = state.sigmas[-1:]
        return state
    state = SamplerState(sampler, model, rng, total, scheduler=scheduler, alphas_cumprod=alphas_cumprod,
                         options=options)
    state.start_img2img(init_latent, t_enc)
    return state


def resize_latent_mode3(latent: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize mode 3 ("Just resize (latent upscale)"): bilinear resize of the encoded latent to the job's size."""
    return torch.nn.functional.interpolate(latent, size=(height // 8, width // 8), mode="bilinear")
