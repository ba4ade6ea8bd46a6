"""Live previews while sampling: A1111's "Approx cheap" latent → RGB (modules/sd_vae_approx.py `cheap_approximation`).

A fixed linear map from the 4 latent channels to RGB, applied to the sampler's current denoised prediction. It costs
one small einsum on the latent (no VAE), so it can run after every step. The factors are A1111's (from
https://discuss.huggingface.co/t/decoding-latents-to-rgb-without-upscaling/23204/2); SDXL's latent space has its own.
"""
from __future__ import annotations

from typing import Any, Optional

import torch

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


def gen_latent_preview() -> Optional[tuple[int, int, bytes]]:
    """Bridge call: the running job's first image as the cheap preview of its current denoised prediction (the noisy
    latent before the first step); None when nothing is sampling."""
    from . import bridge

    session = bridge._session
    if session is None:
        return None
    state = newest_sampler(session)
    if state is None:
        return None
    latent = state.denoised if state.denoised is not None else state.x
    with torch.no_grad():
        return sample_to_rgb(latent[0], session_family())
