"""Decoded VAE output → uint8 RGB → PNG bytes with A1111's `parameters` text chunk, and back.

The float→uint8 step follows A1111 v1.10.1 `processing.py` exactly (float32 on the CPU, clamp of (x+1)/2,
multiply by 255 in float32, truncating cast), so the same decoded tensor gives the same pixels as A1111.
"""
from __future__ import annotations

import io
import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image, PngImagePlugin

__all__ = ["to_uint8", "from_uint8", "png_bytes", "encode_pngs", "read_png_parameters", "PARAMETERS_KEY"]

# The text chunk key A1111 writes and its "PNG Info" tab reads.
PARAMETERS_KEY = "parameters"


def to_uint8(decoded: torch.Tensor) -> np.ndarray:
    """VAE output [B,3,H,W] (or [3,H,W]) in about [-1, 1] → uint8 RGB array [B,H,W,3] (or [H,W,3])."""
    if decoded.dim() not in (3, 4) or decoded.shape[-3] != 3:
        raise ValueError(f"expected a [B,3,H,W] or [3,H,W] image tensor, got shape {tuple(decoded.shape)}")
    x = decoded.detach().to("cpu", torch.float32)
    x = torch.clamp((x + 1.0) / 2.0, min=0.0, max=1.0)
    # np.float32 array times a Python float stays float32, as in A1111; astype truncates toward zero.
    return (255.0 * np.moveaxis(x.numpy(), -3, -1)).astype(np.uint8)


def from_uint8(rgb: np.ndarray) -> torch.Tensor:
    """uint8 RGB [H,W,3] or [B,H,W,3] → float32 tensor [B,3,H,W] in [-1, 1] (A1111's img2img input scaling)."""
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"expected uint8 [H,W,3] or [B,H,W,3], got {a.dtype} {a.shape}")
    x = torch.from_numpy(np.moveaxis(a.astype(np.float32) / 255.0, -1, -3).copy())
    x = 2.0 * x - 1.0
    return x if x.dim() == 4 else x.unsqueeze(0)


def png_bytes(rgb: np.ndarray, parameters: str | None = None) -> bytes:
    """Encodes one uint8 RGB image [H,W,3] as PNG; `parameters` goes into a text chunk as A1111 writes it
    (Pillow's `add_text`: tEXt when the text is latin-1, uncompressed iTXt otherwise)."""
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H,W,3] array, got {a.dtype} {a.shape}")
    info = None
    if parameters is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text(PARAMETERS_KEY, str(parameters))
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a), mode="RGB").save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def encode_pngs(decoded: torch.Tensor, parameters: str | Sequence[str | None] | None = None) -> list[bytes]:
    """A decoded batch → one PNG per image; `parameters` is one text for all images or one per image."""
    rgb = to_uint8(decoded if decoded.dim() == 4 else decoded.unsqueeze(0))
    if parameters is None or isinstance(parameters, str):
        texts: Sequence[str | None] = [parameters] * rgb.shape[0]
    else:
        texts = list(parameters)
        if len(texts) != rgb.shape[0]:
            raise ValueError(f"{len(texts)} parameter texts for {rgb.shape[0]} images")
    return [png_bytes(img, text) for img, text in zip(rgb, texts)]


def read_png_parameters(source: "bytes | str | os.PathLike[str]") -> str | None:
    """The `parameters` text of a PNG (tEXt, zTXt or iTXt), or None when it has none."""
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    with stream, Image.open(stream) as im:
        im.load()  # text chunks after the image data are only read with it
        value = getattr(im, "text", {}).get(PARAMETERS_KEY, im.info.get(PARAMETERS_KEY))
    return None if value is None else str(value)
