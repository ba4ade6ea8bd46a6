"""img2img, hires fix and upscaling for a loaded `generation.Session` (the bridge's second half).

Kept apart from generation.py so the txt2img session stays as it is: these functions take the session and
register their sampler states in it, so `Session.step`, `decode_png` and `release` work on them unchanged.
"""
from __future__ import annotations

import io
from typing import Callable, Optional, Sequence

import torch
from PIL import Image, PngImagePlugin

from .hires import (hires_infotext, hires_schedule_type, hires_target, latent_mode, start_hires_pass,
                    truncate_latent, upscale_images, upscale_latent)
from .img2img import (encode_init_latent, flatten, image_to_tensor, posterior_generator, resize_image,
                      resize_latent_mode3, resize_mode_index, start_img2img)
from .model_loading import eps_model
from .rng import ImageRNG, image_seeds
from .samplers import SamplerState
from .upscaler import UpscalerCatalog

_catalogs: dict[tuple, UpscalerCatalog] = {}


def catalog(models_dirs: Sequence[str], tile: int = 192, tile_overlap: int = 8, device: str = "cpu") -> UpscalerCatalog:
    """The upscaler catalog of these folders (cached, so loaded networks are reused between jobs)."""
    key = (tuple(models_dirs), int(tile), int(tile_overlap), device)
    if key not in _catalogs:
        _catalogs[key] = UpscalerCatalog(models_dirs, tile, tile_overlap, device)
    return _catalogs[key]


def _read_image(path: str) -> Image.Image:
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: init image not found") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None


def _session_state(session, handle: int) -> SamplerState:
    return session._get(handle, SamplerState)


def start_img2img_run(session, sampler: str, schedule: str, steps: int, seed: int, batch_size: int, width: int,
                      height: int, randn_source: str, eta_noise_seed_delta: int, image_path: str, strength: float,
                      resize_mode: str, fix_steps: bool = False, upscaler: Optional[Callable] = None) -> int:
    """A1111's img2img start: flatten, resize, VAE encode (posterior sample), noise at the strength's sigma."""
    if width % 8 or height % 8 or width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive multiples of 8, got {width}x{height}")
    mode = resize_mode_index(resize_mode)
    model = session.model
    im = flatten(_read_image(image_path))
    im = resize_image(mode, im, width, height, upscaler)
    if mode == 3 and (im.width % 8 or im.height % 8):
        raise ValueError(f"{image_path}: resize mode 3 encodes the picture as it is, so its size "
                         f"{im.width}x{im.height} must be multiples of 8")
    seeds = image_seeds(int(seed), int(batch_size))
    images = image_to_tensor(im).unsqueeze(0).repeat(len(seeds), 1, 1, 1).to(session.device)
    with torch.no_grad(), session._autocast():  # CUDA fp16 weights: A1111 encodes/decodes under autocast
        init, _ = encode_init_latent(model.vae.encode_moments, images, model.scale_factor, posterior_generator(seeds))
        if mode == 3:
            init = resize_latent_mode3(init, width, height)
    unet = model.unet
    rng = ImageRNG((unet.config.in_channels, init.shape[2], init.shape[3]), seeds, source=randn_source,
                   device=session.device, eta_noise_seed_delta=int(eta_noise_seed_delta))
    state = start_img2img(sampler, eps_model(model), rng, init, int(steps), float(strength), fix_steps=bool(fix_steps),
                          scheduler=schedule, alphas_cumprod=model.alphas_cumprod)
    return session._keep(state)


def start_hires_run(session, first_handle: int, sampler: str, schedule: str, steps: int, strength: float,
                    scale: float, resize_x: int, resize_y: int, upscaler_name: Optional[str],
                    upscale: Optional[Callable] = None) -> tuple[int, dict[str, str]]:
    """A1111's `sample_hr_pass` after the first pass `first_handle`: upscale, crop, fresh noise, second pass.

    Returns the new handle and the infotext entries of the hires pass ("Hires schedule type" when it differs)."""
    first = _session_state(session, first_handle)
    if not first.done:
        raise RuntimeError("the first pass has steps left; finish it before the hires pass")
    model = session.model
    h, w = first.x.shape[2] * 8, first.x.shape[3] * 8
    target = hires_target(w, h, float(scale), int(resize_x), int(resize_y))
    with torch.no_grad(), session._autocast():  # CUDA fp16 weights: A1111 encodes/decodes under autocast
        if latent_mode(upscaler_name) is not None:
            samples = upscale_latent(first.x, target, upscaler_name)
        else:
            decoded = model.decode_latents(first.x)
            pictures = upscale_images(decoded, target, upscale).to(session.device)
            # A1111 encodes right after the first pass, whose RNG last seeded the global generator with the last
            # image's seed: the posterior draws below are exactly that stream.
            samples, _ = encode_init_latent(model.vae.encode_moments, pictures, model.scale_factor,
                                            posterior_generator(first.rng.seeds))
        samples = truncate_latent(samples, target)
    second = start_hires_pass(sampler, eps_model(model), samples, first.rng.seeds, int(steps), float(strength),
                              randn_source=first.rng.source, device=session.device,
                              eta_noise_seed_delta=first.rng.eta_noise_seed_delta, scheduler=schedule,
                              alphas_cumprod=model.alphas_cumprod)
    params = {}
    kind = hires_schedule_type(first, second)
    if kind is not None:
        params["Hires schedule type"] = kind
    return session._keep(second), params


def hires_params(width: int, height: int, scale: float, resize_x: int, resize_y: int, strength: float,
                 sampler: str, hr_sampler: Optional[str], hr_steps: int, upscaler: Optional[str]) -> list:
    target = hires_target(int(width), int(height), float(scale), int(resize_x), int(resize_y))
    return list(hires_infotext(target, denoising_strength=float(strength), sampler=sampler, hr_sampler=hr_sampler,
                               hr_steps=int(hr_steps), upscaler=upscaler).items())


def upscale_png(image_path: str, models_dirs: Sequence[str], name: str, scale: float, tile: int, tile_overlap: int,
                postprocessing: Optional[str], device: str = "cpu") -> tuple[bytes, int, int]:
    """A1111 Extras: one upscaler at `scale`; returns PNG bytes and the size. As A1111 does, the source's
    `parameters` text is kept and the upscale is described in a `postprocessing` text chunk."""
    cat = catalog(models_dirs, tile, tile_overlap, device)
    source = _read_image(image_path)
    parameters = source.info.get("parameters") if isinstance(source.info.get("parameters"), str) else None
    out = cat.upscale_image(name, flatten(source), float(scale))
    info = PngImagePlugin.PngInfo()
    if parameters is not None:
        info.add_text("parameters", parameters)
    if postprocessing is not None:
        info.add_text("postprocessing", postprocessing)
    buf = io.BytesIO()
    out.convert("RGB").save(buf, format="PNG", pnginfo=info)
    return buf.getvalue(), out.width, out.height


__all__ = ["catalog", "start_img2img_run", "start_hires_run", "hires_params", "upscale_png"]
