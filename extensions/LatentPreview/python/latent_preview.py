"""A1111's "Approx cheap" live preview: a fixed linear map from the 4 latent channels to RGB (sd_vae_approx.
cheap_approximation, coefficients from https://discuss.huggingface.co/t/decoding-latents-to-rgb-without-upscaling/23204/2),
then A1111's single_sample_to_image scaling (·0.5 + 0.5, clamp, ·255, truncate)."""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

SD1_COEFFS = [
    [0.298, 0.207, 0.208],
    [0.187, 0.286, 0.173],
    [-0.158, 0.189, 0.264],
    [-0.184, -0.271, -0.473],
]
SDXL_COEFFS = [
    [0.3448, 0.4168, 0.4395],
    [-0.1953, -0.0290, 0.0250],
    [0.1074, 0.0886, -0.0163],
    [-0.3730, -0.2499, -0.2088],
]


def _is_sdxl() -> bool:
    from lorabridge import bridge

    return getattr(bridge._session, "family", "sd1") == "sdxl"


def cheap_approximation(sample: torch.Tensor, sdxl: bool = False) -> torch.Tensor:
    """[..., 4, h, w] latent → [..., 3, h, w] in about [-1, 1]."""
    coefs = torch.tensor(SDXL_COEFFS if sdxl else SD1_COEFFS, device=sample.device)
    return torch.einsum("...lxy,lr -> ...rxy", sample.float(), coefs)


def to_rgb(sample: torch.Tensor, sdxl: bool = False) -> np.ndarray:
    """One latent [4, h, w] → uint8 [h, w, 3] as A1111's preview makes it."""
    x = torch.clamp(cheap_approximation(sample, sdxl) * 0.5 + 0.5, min=0.0, max=1.0)
    return (255.0 * np.moveaxis(x.cpu().numpy(), 0, 2)).astype(np.uint8)


def save_preview(denoised: torch.Tensor, path: str) -> str:
    """The first image of the batch as a PNG at `path` (written to a temporary name, then renamed)."""
    rgb = to_rgb(denoised[0].detach(), _is_sdxl())
    temp = path + ".tmp"
    Image.fromarray(rgb, mode="RGB").save(temp, format="PNG")
    os.replace(temp, path)
    return path
