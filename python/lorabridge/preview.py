"""Live previews while sampling, as A1111's "Live preview method" setting offers them:

* "Approx cheap" (modules/sd_vae_approx.py `cheap_approximation`): a fixed linear map from the 4 latent channels to
  RGB, applied to the sampler's current denoised prediction. It costs one small einsum on the latent (no VAE), so it
  can run after every step; the image has the latent's size. The factors are A1111's (from
  https://discuss.huggingface.co/t/decoding-latents-to-rgb-without-upscaling/23204/2); SDXL's latent space has its own.
* "TAESD": the tiny decoder of :mod:`lorabridge.taesd` from a `VAE-approx` folder of the models folders, 8× the
  latent's size (the image's own size).

:func:`gen_latent_preview` chooses between them per call ("auto": TAESD when the family's file is there).
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import torch

from . import taesd
from .checkpoint import CheckpointError

# The method names C# passes (LoraBridge.Python.PreviewMethod): "auto" = TAESD when the file is found, else cheap.
PREVIEW_METHODS: tuple[str, ...] = ("auto", "cheap", "taesd")

# [latent channel][r, g, b]
LATENT_RGB_FACTORS: dict[str, list[list[float]]] = {
    "sd1": [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ],
    "sdxl": [
        [0.3448, 0.4168, 0.4395],
        [-0.1953, -0.0290, 0.0250],
        [0.1074, 0.0886, -0.0163],
        [-0.3730, -0.2499, -0.2088],
    ],
}


def cheap_approximation(sample: torch.Tensor, family: str = "sd1") -> torch.Tensor:
    """[..., 4, h, w] latent → [..., 3, h, w] RGB in about [-1, 1] (A1111's `cheap_approximation`)."""
    factors = LATENT_RGB_FACTORS["sdxl" if family == "sdxl" else "sd1"]
    if sample.shape[-3] != len(factors):
        raise ValueError(f"the cheap preview needs a {len(factors)}-channel latent, got {sample.shape[-3]} channels")
    coefs = torch.tensor(factors, dtype=torch.float32, device=sample.device)
    return torch.einsum("...lxy,lr -> ...rxy", sample.float(), coefs)


def sample_to_rgb(sample: torch.Tensor, family: str = "sd1") -> tuple[int, int, bytes]:
    """One [4, h, w] latent → (width, height, RGB bytes row by row), as A1111's `single_sample_to_image`:
    x * 0.5 + 0.5, clamped to [0, 1], times 255, truncated to uint8."""
    x = cheap_approximation(sample.unsqueeze(0), family)[0] * 0.5 + 0.5
    x = torch.clamp(x, 0.0, 1.0)
    pixels = (255.0 * x).to(torch.uint8).permute(1, 2, 0).contiguous().cpu()
    return int(pixels.shape[1]), int(pixels.shape[0]), pixels.numpy().tobytes()


def newest_sampler(session: Any) -> Optional[Any]:
    """The live sampler created last (the one running: earlier passes are released, hires's second pass is newer)."""
    from .samplers import SamplerState

    for handle in sorted(session._objects, reverse=True):
        obj = session._objects[handle]
        if isinstance(obj, SamplerState):
            return obj
    return None


def session_family() -> str:
    """The loaded model's family, "sd1" or "sdxl" ("sd1" before any model is loaded): which latent → RGB factors or
    TAESD decoder fit the latents the sampler makes."""
    from . import bridge

    return "sdxl" if getattr(bridge._session, "family", "sd1") == "sdxl" else "sd1"


def vae_approx_dirs(models_dirs: Sequence[str]) -> list[str]:
    """The `VAE-approx` folder of each models folder, in the same order (A1111's `models/VAE-approx`)."""
    return [os.path.join(d, "VAE-approx") for d in models_dirs]


def choose_decoder(method: str, family: str, models_dirs: Sequence[str]) -> tuple[Optional[str], str]:
    """The TAESD file to use for `method` and `family` (None: the cheap approximation) and a one-line note for the
    user, empty unless "taesd" was asked for and no file was found. Raises ValueError for an unknown method."""
    if method not in PREVIEW_METHODS:
        raise ValueError(f"live preview method must be one of {', '.join(PREVIEW_METHODS)}, got {method!r}")
    if method == "cheap":
        return None, ""
    dirs = vae_approx_dirs(models_dirs)
    found = taesd.find_decoder(family, dirs)
    if found is None and method == "taesd":
        where = ", ".join(dirs) if dirs else "no models folder"
        return None, (f"live preview: no {' or '.join(taesd.decoder_file_names(family))} for this {family.upper()} model "
                      f"in {where}; showing Approx cheap")
    return found, ""


def taesd_to_rgb(sample: torch.Tensor, decoder_path: str) -> tuple[int, int, bytes]:
    """One [4, h, w] latent → (8w, 8h, RGB bytes row by row) through the TAESD decoder in `decoder_path` (loaded once
    per file and device, :func:`lorabridge.taesd.cached_decoder`): [0, 1] · 255, truncated, as A1111's preview."""
    decoder = taesd.cached_decoder(decoder_path, sample.device)
    x = taesd.decode(decoder, sample)
    pixels = (255.0 * x).to(torch.uint8).permute(1, 2, 0).contiguous().cpu()
    return int(pixels.shape[1]), int(pixels.shape[0]), pixels.numpy().tobytes()


def latent_to_rgb(sample: torch.Tensor, family: str, method: str = "cheap",
                  models_dirs: Sequence[str] = ()) -> tuple[int, int, bytes, str, str]:
    """One [4, h, w] latent → (width, height, RGB bytes, method used: "cheap" or "taesd", note) by `method`. A TAESD
    file that cannot be used (not a decoder, a pickle that would run code, unreadable) gives the cheap preview and a
    note naming the file and why, so a bad file costs the preview's size, never the job."""
    decoder_path, note = choose_decoder(method, family, models_dirs)
    if decoder_path is not None:
        try:
            return (*taesd_to_rgb(sample, decoder_path), "taesd", "")
        except (CheckpointError, taesd.TaesdLoadError, OSError) as e:
            note = f"live preview: TAESD file not used ({e}); showing Approx cheap"
    return (*sample_to_rgb(sample, family), "cheap", note)


def gen_latent_preview(method: str = "cheap", models_dirs: Sequence[str] = ()) -> Optional[tuple[int, int, bytes, str, str]]:
    """Bridge call: the running job's first image, previewed by `method` ("auto", "cheap" or "taesd"; TAESD files
    are looked for in each of `models_dirs`' `VAE-approx`) from its current denoised prediction (the noisy latent
    before the first step), as (width, height, RGB bytes, method used, note; see :func:`latent_to_rgb`); None when
    nothing is sampling."""
    from . import bridge

    session = bridge._session
    if session is None:
        return None
    state = newest_sampler(session)
    if state is None:
        return None
    latent = state.denoised if state.denoised is not None else state.x
    with torch.no_grad():
        return latent_to_rgb(latent[0], session_family(), method, models_dirs)
