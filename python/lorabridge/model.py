"""A loaded SD1.x-family checkpoint: whichever of UNet, VAE and CLIP text encoder the file holds.

``StableDiffusion.from_state_dict`` infers every part's configuration from the weights (see
:mod:`lorabridge.arch`), builds the modules on the ``meta`` device (no wasted random init) and then gives
them the file's tensors, cast to the requested dtype/device.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional

import torch
from torch import nn

from . import arch as _arch
from .clip_text import CLIPTextModel
from .unet import UNetModel
from .vae import AutoencoderKL

SD1_SCALE_FACTOR = 0.18215  # ldm v1-inference.yaml scale_factor for the KL-f8 VAE


def _materialise(module: nn.Module, tensors: dict[str, torch.Tensor], device: Any, dtype: torch.dtype) -> None:
    """Replace meta parameters by owned copies of the file's tensors (file buffers may be read-only mmaps).

    Each source tensor is dropped from ``tensors`` once copied, so with no other reference the peak memory
    stays near one model rather than file + model."""
    for name, sub in module.named_modules():
        for pname, param in list(sub._parameters.items()):
            if param is None:
                continue
            key = f"{name}.{pname}" if name else pname
            src = tensors.pop(key)
            value = src.to(device=device, dtype=dtype if src.is_floating_point() else src.dtype, copy=True)
            sub._parameters[pname] = nn.Parameter(value, requires_grad=False)


class StableDiffusion:
    """Parts present in a checkpoint plus the schedule; missing parts are ``None`` (see ``parts``)."""

    def __init__(self, architecture: _arch.Architecture, unet: Optional[UNetModel], vae: Optional[AutoencoderKL],
                 text_encoder: Optional[CLIPTextModel], alphas_cumprod: Optional[torch.Tensor]) -> None:
        self.architecture = architecture
        self.unet = unet
        self.vae = vae
        self.text_encoder = text_encoder
        # float32 [1000] when the file carries the LatentDiffusion schedule; None otherwise (samplers then use
        # SD1's default linear-in-sqrt beta schedule).
        self.alphas_cumprod = alphas_cumprod
        self.scale_factor = SD1_SCALE_FACTOR
        self._module_index: dict[str, dict[str, nn.Module]] = {}

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor], dtype: torch.dtype = torch.float32,
                        device: Any = "cpu", unet_heads: Optional[dict[str, int]] = None,
                        clip_heads: Optional[int] = None, consume: bool = False) -> "StableDiffusion":
        """Build the parts ``sd`` holds. ``consume=True`` empties ``sd`` (a dict) so file tensors are freed as
        they are copied; ``unet_heads``/``clip_heads`` override the head-split rule of :mod:`lorabridge.arch`."""
        a = _arch.detect(sd, unet_heads=unet_heads, clip_heads=clip_heads)
        if consume and isinstance(sd, dict):
            sd.clear()
        parts: dict[str, Optional[nn.Module]] = {"unet": None, "vae": None, "text_encoder": None}
        classes = {"unet": UNetModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel}
        for part in a.parts:
            module = classes[part](getattr(a, part), device="meta")
            _materialise(module, a.tensors[part], device, dtype)
            parts[part] = module.eval().requires_grad_(False)
        ac = None
        if a.alphas_cumprod is not None:
            ac = a.alphas_cumprod.detach().to(device="cpu", dtype=torch.float32, copy=True)
            if ac.shape != (1000,):
                raise _arch.ArchitectureError(f"alphas_cumprod has shape {tuple(ac.shape)}, expected (1000,)")
        a.tensors = {}  # the modules own copies now; don't keep the file's tensors alive
        return cls(a, parts["unet"], parts["vae"], parts["text_encoder"], ac)  # type: ignore[arg-type]

    @property
    def parts(self) -> list[str]:
        """Names of the parts this checkpoint holds, in ``unet``, ``vae``, ``text_encoder`` order."""
        return [p for p in ("unet", "vae", "text_encoder") if getattr(self, p) is not None]

    @property
    def missing_parts(self) -> list[str]:
        return [p for p in ("unet", "vae", "text_encoder") if getattr(self, p) is None]

    def module_for_key(self, ldm_key: str) -> tuple[nn.Module, str]:
        """The leaf module and parameter name for a full checkpoint key, e.g.
        ``model.diffusion_model.input_blocks.1.1.proj_in.weight`` → (Conv2d, "weight").
        A module path without parameter name returns (module, "")."""
        for part, prefix in _arch.PREFIXES.items():
            if ldm_key.startswith(prefix):
                module = getattr(self, part)
                if module is None:
                    raise KeyError(f"{ldm_key}: this checkpoint has no {part}")
                path = ldm_key[len(prefix):]
                if part == "text_encoder":
                    path = _arch._normalise_clip_key(path)
                if part not in self._module_index:
                    self._module_index[part] = dict(module.named_modules())
                return _resolve(self._module_index[part], path, ldm_key)
        raise KeyError(f"{ldm_key}: not under a known prefix ({', '.join(_arch.PREFIXES.values())})")

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (as samplers produce them) → image in about [-1, 1] (not clamped)."""
        if self.vae is None:
            raise RuntimeError("this checkpoint has no VAE")
        return self.vae.decode((1.0 / self.scale_factor) * latents)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Image in [-1, 1] → scaled latent (distribution mean, as A1111 img2img with no sampling noise)."""
        if self.vae is None:
            raise RuntimeError("this checkpoint has no VAE")
        mean = self.vae.encode_moments(image).chunk(2, dim=1)[0]
        return mean * self.scale_factor


def _resolve(modules: Mapping[str, nn.Module], path: str, key: str) -> tuple[nn.Module, str]:
    if path in modules:
        return modules[path], ""
    owner, _, pname = path.rpartition(".")
    module = modules.get(owner)
    if module is None or (pname not in module._parameters and pname not in module._buffers):
        raise KeyError(f"{key}: no such module or parameter in the loaded model")
    return module, pname


def load_checkpoint(path: "str | os.PathLike[str]", dtype: torch.dtype = torch.float32, device: Any = "cpu",
                    **kwargs: Any) -> StableDiffusion:
    """Read a .safetensors/.ckpt file safely and build its parts."""
    from .checkpoint import load_state_dict

    sd = load_state_dict(path)
    try:
        return StableDiffusion.from_state_dict(sd, dtype=dtype, device=device, consume=True, **kwargs)
    except _arch.ArchitectureError as e:
        raise _arch.ArchitectureError(f"{os.fspath(path)}: {e}") from None
