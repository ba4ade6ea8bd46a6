"""Per-step preview PNGs of the sampler's denoised prediction, as A1111's live preview makes them:

* "approx" — A1111's "Approx cheap": a fixed linear map from the 4 latent channels to RGB (lorabridge.preview, SD1 or
  SDXL factors), one pixel per latent pixel, then single_sample_to_image's ·0.5 + 0.5, clamp, ·255, truncate;
* "taesd" — A1111's "TAESD": the TAESD decoder (lorabridge.taesd) from a `VAE-approx` folder, `taesd_decoder.*` for
  SD1 models and `taesdxl_decoder.*` for SDXL ones, 8 pixels per latent pixel, clamped to [0, 1], ·255, truncate;
* "auto" — "taesd" when the file for the loaded model's family exists, "approx" otherwise.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image

from lorabridge import preview, taesd

MODES = ("approx", "taesd", "auto")


def _array(width: int, height: int, data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)


def to_rgb(sample: torch.Tensor, sdxl: bool = False) -> np.ndarray:
    """One latent [4, h, w] → uint8 [h, w, 3] as A1111's cheap preview makes it (lorabridge.preview's rendering)."""
    return _array(*preview.sample_to_rgb(sample, "sdxl" if sdxl else "sd1"))


def choose_decoder(mode: str, family: str, vae_approx_dirs: Sequence[str]) -> Optional[str]:
    """The TAESD file to use for `mode` and the model `family`, or None for the cheap approximation."""
    if mode not in MODES:
        raise ValueError(f"LatentPreview:Decoder must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "approx":
        return None
    found = taesd.find_decoder(family, vae_approx_dirs)
    if found is None and mode == "taesd":
        where = ", ".join(vae_approx_dirs) if vae_approx_dirs else "no VAE-approx folder (the host lends no models folders)"
        raise FileNotFoundError(f"LatentPreview:Decoder is taesd, but no {' or '.join(taesd.decoder_file_names(family))} "
                                f"for this {family.upper()} model was found in {where}")
    return found


def save_preview(denoised: torch.Tensor, path: str, mode: str = "approx", vae_approx_dirs: Optional[Sequence[str]] = None) -> str:
    """The first image of the batch as a PNG at `path` (written to a temporary name, then renamed); returns how it was
    made: "approx" or the TAESD file's path."""
    family = preview.session_family()
    decoder_path = choose_decoder(mode, family, list(vae_approx_dirs or []))
    sample = denoised[0].detach()
    rgb = (_array(*preview.taesd_to_rgb(sample, decoder_path)) if decoder_path is not None
           else to_rgb(sample, family == "sdxl"))
    temp = path + ".tmp"
    Image.fromarray(rgb, mode="RGB").save(temp, format="PNG")
    os.replace(temp, path)
    return decoder_path or "approx"
