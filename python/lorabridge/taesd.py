"""TAESD ("Tiny AutoEncoder for Stable Diffusion", https://github.com/madebyollin/taesd): its decoder only, a small
conv net that turns an SD latent into RGB at 8× the latent's size, as A1111's "TAESD" live preview uses it.

A1111 reads `models/VAE-approx/taesd_decoder.pth` for SD 1.x/2.x and `taesdxl_decoder.pth` for SDXL; we accept
`.safetensors` files of the same names too. The files are the `state_dict` of the decoder's `nn.Sequential`, so
the module below is an `nn.Sequential` with the same layer indices (keys `1.weight`, `3.conv.0.weight`, …,
`19.bias`). Files are read with :mod:`lorabridge.checkpoint` (a `.pth` never runs code) and every key and shape is
checked before anything is loaded into the module.

The decoder takes the latent as the UNet sees it (already multiplied by the VAE scaling factor, what the sampler's
`denoised` is) and gives RGB in about [0, 1]; :func:`decode` clamps to [0, 1] as A1111's preview does.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping, Optional

import torch
from torch import nn

from .checkpoint import load_state_dict

__all__ = [
    "DECODER_EXTENSIONS",
    "DECODER_NAMES",
    "TaesdDecoder",
    "TaesdLoadError",
    "cached_decoder",
    "check_state_dict",
    "decode",
    "decoder_file_names",
    "expected_shapes",
    "find_decoder",
    "load_decoder",
]

LATENT_CHANNELS = 4
WIDTH = 64

# File names (without extension) per model family, as A1111's modules/sd_vae_taesd.py names them.
DECODER_NAMES: dict[str, str] = {"sd1": "taesd_decoder", "sdxl": "taesdxl_decoder"}
# .safetensors first: of two files of one name, the one that cannot hold code wins.
DECODER_EXTENSIONS: tuple[str, ...] = (".safetensors", ".pth")


class TaesdLoadError(ValueError):
    """A file that is not a TAESD decoder; the message names the file and the key."""


def _conv(n_in: int, n_out: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, bias=bias)


class _SoftClamp(nn.Module):
    """tanh(x / 3) · 3: squashes latent values beyond about ±3 (noisy early steps) instead of cutting them off."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3.0) * 3.0


class _Block(nn.Module):
    """Residual block: ReLU(conv-ReLU-conv-ReLU-conv(x) + x). TAESD's decoder blocks keep 64 channels, so the skip
    is the identity (no weights, hence no `skip.*` keys in the files)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(channels, channels), nn.ReLU(), _conv(channels, channels), nn.ReLU(),
                                  _conv(channels, channels))
        self.skip = nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.conv(x) + self.skip(x))


class TaesdDecoder(nn.Sequential):
    """[B, 4, h, w] latent → [B, 3, 8h, 8w] RGB in about [0, 1]: one input conv, then three stages of three blocks
    each followed by a nearest 2× upsample and a bias-free conv, a last block and the output conv. Layer indices are
    those of the published files (0: soft clamp, 1: input conv, 3–5 / 8–10 / 13–15: blocks, 7 / 12 / 17: upsample
    convs, 18: last block, 19: output conv)."""

    def __init__(self, latent_channels: int = LATENT_CHANNELS) -> None:
        layers: list[nn.Module] = [_SoftClamp(), _conv(latent_channels, WIDTH), nn.ReLU()]
        for _ in range(3):
            layers += [_Block(WIDTH), _Block(WIDTH), _Block(WIDTH), nn.Upsample(scale_factor=2), _conv(WIDTH, WIDTH, bias=False)]
        layers += [_Block(WIDTH), _conv(WIDTH, 3)]
        super().__init__(*layers)


_SHAPES: Optional[dict[str, tuple[int, ...]]] = None


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every key of a TAESD decoder file with its shape (67 keys)."""
    global _SHAPES
    if _SHAPES is None:
        # Built once for real (1.2 M parameters, milliseconds): torch 1.13 has no `with torch.device("meta")`.
        _SHAPES = {k: tuple(v.shape) for k, v in TaesdDecoder().state_dict().items()}
    return dict(_SHAPES)


def _listing(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_state_dict(path: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """Raises :class:`TaesdLoadError` naming `path` and the first wrong key: missing or unexpected keys, a wrong
    shape, a tensor that is not floating point."""
    shapes = expected_shapes()
    missing = [k for k in shapes if k not in tensors]
    unexpected = [k for k in tensors if k not in shapes]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing key(s) {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected key(s) {_listing(unexpected)}")
        raise TaesdLoadError(f"{path}: not a TAESD decoder (madebyollin/taesd taesd_decoder layout, {len(shapes)} keys): "
                             + "; ".join(parts))
    for key, shape in shapes.items():
        t = tensors[key]
        if tuple(t.shape) != shape:
            raise TaesdLoadError(f"{path}: key {key} has shape {tuple(t.shape)}, a TAESD decoder needs {shape}")
        if not t.is_floating_point():
            raise TaesdLoadError(f"{path}: key {key} holds {t.dtype}, a TAESD decoder needs floating-point weights")


def load_decoder(path: "str | os.PathLike[str]", device: "torch.device | str | None" = None) -> TaesdDecoder:
    """The decoder of a `.safetensors` or `.pth` file, float32, in eval mode, on `device` (CPU by default).
    Raises :class:`lorabridge.checkpoint.CheckpointError` for a file that cannot be read safely (a pickle that
    would run code included) and :class:`TaesdLoadError` for one with the wrong keys or shapes."""
    p = str(path)
    ext = os.path.splitext(p)[1].lower()
    if ext not in DECODER_EXTENSIONS:
        raise TaesdLoadError(f"{p}: a TAESD decoder must be a .safetensors or .pth file, not {ext or 'a file without extension'}")
    tensors = load_state_dict(p)
    check_state_dict(p, tensors)
    model = TaesdDecoder()
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=True)
    model.requires_grad_(False)
    return model.eval().to(device if device is not None else "cpu")


_CACHE: dict[tuple[str, int, int, str], TaesdDecoder] = {}


def cached_decoder(path: str, device: "torch.device | str") -> TaesdDecoder:
    """:func:`load_decoder`, kept while the file's size and modification time stay the same (one decoder per file
    and device; a replaced file is read again)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size, str(torch.device(device)))
    model = _CACHE.get(key)
    if model is None:
        for old in [k for k in _CACHE if k[0] == key[0] and k[3] == key[3]]:
            del _CACHE[old]
        model = _CACHE[key] = load_decoder(path, device)
    return model


def decode(decoder: TaesdDecoder, latent: torch.Tensor) -> torch.Tensor:
    """[B, 4, h, w] (or [4, h, w]) latent → RGB [B, 3, 8h, 8w] (or [3, 8h, 8w]) float32 in [0, 1]."""
    single = latent.dim() == 3
    x = latent.unsqueeze(0) if single else latent
    if x.dim() != 4 or x.shape[1] != LATENT_CHANNELS:
        raise ValueError(f"TAESD decodes [batch, {LATENT_CHANNELS}, h, w] latents, got shape {tuple(latent.shape)}")
    weight = decoder[1].weight
    with torch.no_grad():
        out = decoder(x.detach().to(device=weight.device, dtype=weight.dtype)).clamp_(0.0, 1.0)
    return out[0] if single else out


def decoder_file_names(family: str) -> list[str]:
    """The file names looked for, in order, for a model family ("sd1" or "sdxl")."""
    if family not in DECODER_NAMES:
        raise ValueError(f"no TAESD decoder for model family {family!r} (known: {', '.join(DECODER_NAMES)})")
    return [DECODER_NAMES[family] + ext for ext in DECODER_EXTENSIONS]


def find_decoder(family: str, folders: Iterable["str | os.PathLike[str]"]) -> Optional[str]:
    """The first TAESD decoder file for `family` in `folders` (each a `VAE-approx` folder, in priority order), or
    None."""
    names = decoder_file_names(family)
    for folder in folders:
        for name in names:
            candidate = os.path.join(os.fspath(folder), name)
            if os.path.isfile(candidate):
                return candidate
    return None
