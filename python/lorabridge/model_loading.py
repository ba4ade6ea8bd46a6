"""One entry point for loading any supported checkpoint (SD1.x or SDXL) with A1111's precision rules.

The family comes from the file's keys and shapes (:func:`lorabridge.sdxl.detect_family`), read before any
weight: an SDXL file goes to :class:`lorabridge.sdxl.SDXLModel`, an SD1.x file to the unchanged
:func:`lorabridge.model.load_checkpoint`, anything else is refused with what was recognised.

Precision (A1111 v1.10.1 defaults): on CUDA the UNet and text encoders hold fp16 weights and run under
``torch.autocast``; the VAE is fp16 too unless ``no_half_vae`` (``--no-half-vae``), with A1111's automatic
fp32 retry when an fp16 decode gives NaN. ``precision="full"`` (``--precision full --no-half``) and every CPU
run use fp32.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable

import torch

from . import arch as _arch
from .sdxl import SDXLEps, SDXLModel, checkpoint_shapes, detect_family, precision_for

__all__ = ["load_model", "eps_model", "sd1_info", "checkpoint_family"]


def checkpoint_family(path: "str | os.PathLike[str]") -> dict[str, Any]:
    """Family, support and default size of a checkpoint file, from its keys and shapes only."""
    info = detect_family(checkpoint_shapes(path)).as_dict()
    return info


def load_model(path: "str | os.PathLike[str]", device: Any = "cpu", precision: str = "autocast",
               no_half_vae: bool = False) -> Any:
    """The model of ``path`` (SD1 ``StableDiffusion`` or ``SDXLModel``) on ``device`` with A1111's precision."""
    p = os.fspath(path)
    prec = precision_for(device, precision, no_half_vae)
    family = detect_family(checkpoint_shapes(p))
    if family.family == "sdxl":
        return SDXLModel.load(p, device=device, precision=prec)
    if not family.supported:
        raise _arch.ArchitectureError(f"{p}: unsupported checkpoint: {family.detail}")
    from .model import load_checkpoint

    model = load_checkpoint(p, dtype=prec.dtype, device=device)
    if model.vae is not None and prec.vae_dtype != prec.dtype:
        model.vae.to(prec.vae_dtype)
    model.precision = prec
    return model


class _AutocastEps:
    """An SD1 UNet call under CUDA autocast (A1111 runs the whole sampling loop inside ``autocast()``)."""

    def __init__(self, unet: torch.nn.Module) -> None:
        self.unet = unet

    def __call__(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.float16):
            return self.unet(x, t, context).float()


def eps_model(model: Any) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The sampler's ``eps(x, t, context)`` for a loaded model."""
    if isinstance(model, SDXLModel):
        return SDXLEps(model)
    prec = getattr(model, "precision", None)
    if prec is not None and prec.autocast and next(model.unet.parameters()).device.type == "cuda":
        return _AutocastEps(model.unet)
    return model.unet


def sd1_info(model: Any, device: str) -> dict[str, Any]:
    prec = getattr(model, "precision", None)
    dtype = next(model.unet.parameters()).dtype if model.unet is not None else torch.float32
    return {"family": "sd1", "default_width": 512, "default_height": 512, "text_encoders": 1,
            "vae_scale": model.scale_factor, "adm_in_channels": 0,
            "precision": "autocast" if prec is not None and prec.autocast else "full",
            "dtype": str(dtype).removeprefix("torch."), "device": torch.device(device).type}


def autocast_for(model: Any, device: str) -> "contextlib.AbstractContextManager[Any]":
    prec = getattr(model, "precision", None)
    if prec is not None and prec.autocast and device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()
