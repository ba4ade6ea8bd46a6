"""ESRGAN-family super-resolution networks (RRDBNet) from users' `.pth`/`.pt`/`.safetensors` files.

What A1111 v1.10.1 loads through spandrel 0.3.4, rebuilt from the file's shapes alone:

* key layouts: old ESRGAN (`model.0`, `model.1.sub.N.RDBj.convK.0`, upconvs every third index), BasicSR /
  Real-ESRGAN (`conv_first`, `body.N.rdbj.convK`, `conv_body`, `conv_upK`, `conv_hr`, `conv_last`, usually inside
  `params_ema`), BSRGAN / RealSR (`RRDB_trunk`, `trunk_conv`, `upconvK`, `HRconv`); all are mapped onto the old
  layout, which is what the module below is named after;
* pixel-unshuffle inputs (Real-ESRGAN x2plus / 1x models): `conv_first` takes 4× or 16× the output channels;
* any float storage (fp16 files are upcast into a float32 model, as A1111 runs ESRGAN).

Files are read with the restricted unpickler of :mod:`lorabridge.checkpoint`, so a file that tries to run code is
refused without running it. A layout we do not know is an error that lists the keys found.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import CheckpointError, load_torch_file, read_safetensors

UPSCALER_EXTENSIONS = (".pth", ".pt", ".safetensors")


class UpscalerLoadError(ValueError):
    """A file that is not an upscaler we can build; the message names the file and what was found."""


@dataclass(frozen=True)
class RRDBConfig:
    in_nc: int  # channels of conv_first (after pixel-unshuffle)
    out_nc: int
    nf: int  # filters
    nb: int  # RRDB blocks
    gc: int  # growth channels of the dense blocks
    upconvs: int  # nearest-2x + conv stages; the network scale is 2 ** upconvs
    shuffle_factor: int  # 1: none; 2 or 4: pixel-unshuffle of the input

    @property
    def net_scale(self) -> int:
        return 2 ** self.upconvs

    @property
    def scale(self) -> int:
        """The scale the user sees (network scale divided by the unshuffle factor)."""
        return self.net_scale // self.shuffle_factor

    @property
    def input_channels(self) -> int:
        return self.in_nc // (self.shuffle_factor ** 2)

    @property
    def size_multiple(self) -> int:
        # spandrel's SizeRequirements: minimum 2, multiple of 4 for pixel-unshuffle models (minimum rounds up).
        return 4 if self.shuffle_factor > 1 else 1

    @property
    def size_minimum(self) -> int:
        return 4 if self.shuffle_factor > 1 else 2


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, negative_slope=0.2)


class _ConvBlock(nn.Module):
    """Old-layout conv wrapper: the weights live at `<name>.0.weight` (a Sequential(conv, act) in ESRGAN)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.add_module("0", nn.Conv2d(cin, cout, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, "0")(x)


class ResidualDenseBlock5C(nn.Module):
    """Five densely connected convs; the last has no activation; the output is scaled by 0.2 and added."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.conv1 = _ConvBlock(nf, gc)
        self.conv2 = _ConvBlock(nf + gc, gc)
        self.conv3 = _ConvBlock(nf + 2 * gc, gc)
        self.conv4 = _ConvBlock(nf + 3 * gc, gc)
        self.conv5 = _ConvBlock(nf + 4 * gc, nf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = _lrelu(self.conv1(x))
        x2 = _lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = _lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = _lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.RDB1 = ResidualDenseBlock5C(nf, gc)
        self.RDB2 = ResidualDenseBlock5C(nf, gc)
        self.RDB3 = ResidualDenseBlock5C(nf, gc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


class _Trunk(nn.Module):
    """`model.1`: the RRDB blocks and the trunk conv, added to their input (ESRGAN's ShortcutBlock)."""

    def __init__(self, nf: int, nb: int, gc: int) -> None:
        super().__init__()
        self.sub = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)], nn.Conv2d(nf, nf, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sub(x)


class RRDBNet(nn.Module):
    """ESRGAN's generator in the old key layout: model.0 conv_first, model.1 trunk, then per 2× stage
    (nearest upsample, conv, LeakyReLU 0.2) at indices 2..3u+1, then HR conv, LeakyReLU, last conv."""

    def __init__(self, cfg: RRDBConfig) -> None:
        super().__init__()
        self.config = cfg
        layers: dict[str, nn.Module] = {"0": nn.Conv2d(cfg.in_nc, cfg.nf, 3, 1, 1), "1": _Trunk(cfg.nf, cfg.nb, cfg.gc)}
        for k in range(1, cfg.upconvs + 1):
            layers[str(3 * k)] = nn.Conv2d(cfg.nf, cfg.nf, 3, 1, 1)
        hr = 3 * cfg.upconvs + 2
        layers[str(hr)] = nn.Conv2d(cfg.nf, cfg.nf, 3, 1, 1)
        layers[str(hr + 2)] = nn.Conv2d(cfg.nf, cfg.out_nc, 3, 1, 1)
        self.model = nn.ModuleDict(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        s = cfg.shuffle_factor
        h, w = x.shape[-2:]
        if s > 1:
            # Pad to a multiple of the factor (reflect), unshuffle; the crop uses the *network* scale, as spandrel.
            ph, pw = (s - h % s) % s, (s - w % s) % s
            x = F.pad(x, (0, pw, 0, ph), "reflect")
            x = F.pixel_unshuffle(x, s)
        m = self.model
        fea = m["0"](x)
        fea = m["1"](fea)
        for k in range(1, cfg.upconvs + 1):
            fea = _lrelu(m[str(3 * k)](F.interpolate(fea, scale_factor=2, mode="nearest")))
        hr = 3 * cfg.upconvs + 2
        out = m[str(hr + 2)](_lrelu(m[str(hr)](fea)))
        if s > 1:
            out = out[:, :, : h * cfg.net_scale, : w * cfg.net_scale]
        return out


def _pad_to_requirements(x: torch.Tensor, minimum: int, multiple: int) -> torch.Tensor:
    # spandrel `pad_tensor`: bottom/right, reflect up to size-1, the rest replicate.
    h, w = x.shape[-2:]

    def target(v: int) -> int:
        v = max(minimum, v)
        return v if v % multiple == 0 else (v // multiple + 1) * multiple

    pw, ph = target(w) - w, target(h) - h
    if pw or ph:
        rw, rh = min(pw, w - 1), min(ph, h - 1)
        x = F.pad(x, (0, rw, 0, rh), "reflect")
        x = F.pad(x, (0, pw - rw, 0, ph - rh), "replicate")
    return x


class UpscalerModel:
    """A loaded ESRGAN-family file, called as spandrel's `ImageModelDescriptor`: [1,C,H,W] in [0,1] →
    [1,C,H·s,W·s] in [0,1] (size padding, network, clamp, crop)."""

    def __init__(self, path: str, net: RRDBNet, layout: str, stored_dtype: torch.dtype) -> None:
        self.path = path
        self.net = net
        self.layout = layout
        self.stored_dtype = stored_dtype

    @property
    def config(self) -> RRDBConfig:
        return self.net.config

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: "torch.device | str") -> "UpscalerModel":
        self.net.to(device)
        return self

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        """The network alone (no size padding, no clamp)."""
        with torch.no_grad():
            return self.net(x.to(device=self.device, dtype=torch.float32))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected an image tensor [1,C,H,W], got shape {tuple(x.shape)}")
        cfg = self.config
        if x.shape[1] != cfg.input_channels:
            raise ValueError(f"{self.path}: the model takes {cfg.input_channels} channels, the image has {x.shape[1]}")
        h, w = x.shape[-2:]
        with torch.no_grad():
            padded = _pad_to_requirements(x.to(device=self.device, dtype=torch.float32), cfg.size_minimum,
                                          cfg.size_multiple)
            out = self.net(padded).clamp_(0, 1)
            if padded.shape[-2:] != x.shape[-2:]:
                out = out[..., : h * cfg.scale, : w * cfg.scale]
        return out


# ---- state dict → config ----------------------------------------------------------------------------

_UNWRAP_KEYS = ("model_state_dict", "state_dict", "params_ema", "params-ema", "params", "model", "net")
_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$")
_NEW_RDB = re.compile(r"^body\.(\d+)\.rdb([123])\.conv([1-5])\.(weight|bias)$")
_BSR_RDB = re.compile(r"^RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(weight|bias)$")
_UPCONV = re.compile(r"^(?:conv_up|upconv)(\d+)\.(weight|bias)$")


def _unwrap(obj: Any) -> Any:
    """spandrel's canonicalisation: the first known wrapper key that holds a dict (params_ema before params),
    then a single-key dict, then a common `module.`/`netG.` prefix."""
    if isinstance(obj, Mapping):
        for key in _UNWRAP_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        if len(obj) == 1:
            single = next(iter(obj.values()))
            if isinstance(single, Mapping):
                obj = single
        for prefix in ("module.", "netG."):
            if obj and all(isinstance(k, str) and k.startswith(prefix) for k in obj):
                obj = {k[len(prefix):]: v for k, v in obj.items()}
    return obj


def _describe_keys(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}{', …' if len(keys) > limit else ''} ({len(keys)} keys)"


def to_old_layout(sd: Mapping[str, torch.Tensor], path: str = "<state dict>") -> tuple[dict[str, torch.Tensor], str]:
    """Maps a new (BasicSR/Real-ESRGAN) or BSRGAN state dict onto the old ESRGAN keys; returns it and the layout."""
    keys = list(sd)
    if "model.0.weight" in sd and any(_OLD_RDB.match(k) for k in keys):
        if any(".conv1x1." in k for k in keys):
            raise UpscalerLoadError(f"{path}: ESRGAN+ (conv1x1 blocks) is not supported; keys: {_describe_keys(keys)}")
        return dict(sd), "old"
    if "conv_first.weight" in sd and "conv_last.weight" in sd:
        if "conv_body.weight" in sd and any(_NEW_RDB.match(k) for k in keys):
            layout, rdb, trunk = "new", _NEW_RDB, "conv_body"
        elif "trunk_conv.weight" in sd and any(_BSR_RDB.match(k) for k in keys):
            layout, rdb, trunk = "bsrgan", _BSR_RDB, "trunk_conv"
        else:
            raise UpscalerLoadError(f"{path}: not an ESRGAN-family layout we know; keys: {_describe_keys(keys)}")
        blocks = [int(m.group(1)) for k in keys if (m := rdb.match(k))]
        nb = max(blocks) + 1
        old: dict[str, torch.Tensor] = {}
        for k, v in sd.items():
            m = rdb.match(k)
            if m:
                old[f"model.1.sub.{m.group(1)}.RDB{m.group(2)}.conv{m.group(3)}.0.{m.group(4)}"] = v
        ups = []
        for k, v in sd.items():
            m = _UPCONV.match(k)
            if m:
                old[f"model.{3 * int(m.group(1))}.{m.group(2)}"] = v
                ups.append(int(m.group(1)))
        top = 3 * max(ups) if ups else 0
        hr = "conv_hr" if "conv_hr.weight" in sd else "HRconv"
        for kind in ("weight", "bias"):
            old[f"model.0.{kind}"] = sd[f"conv_first.{kind}"]
            old[f"model.1.sub.{nb}.{kind}"] = sd[f"{trunk}.{kind}"]
            if f"{hr}.{kind}" in sd:
                old[f"model.{top + 2}.{kind}"] = sd[f"{hr}.{kind}"]
            old[f"model.{top + 4}.{kind}"] = sd[f"conv_last.{kind}"]
        return old, layout
    raise UpscalerLoadError(f"{path}: not an ESRGAN-family layout we know (no model.0/conv_first with RRDB "
                            f"blocks); keys: {_describe_keys(keys)}")


def config_from_state_dict(sd: Mapping[str, torch.Tensor], path: str = "<state dict>") -> RRDBConfig:
    """The architecture from the old-layout shapes (spandrel's rules; gc read from the shapes too)."""
    indices = sorted({int(m.group(1)) for k in sd if (m := re.match(r"^model\.(\d+)\.", k))})
    if not indices or indices[0] != 0 or 1 not in indices:
        raise UpscalerLoadError(f"{path}: missing model.0 / model.1; keys: {_describe_keys(list(sd))}")
    last = indices[-1]
    upconvs = (last + 1 - 5) // 3
    if upconvs < 0 or last != 3 * upconvs + 4:
        raise UpscalerLoadError(f"{path}: layer indices {indices} do not form an ESRGAN upsampling tail")
    first = sd["model.0.weight"]
    nf, in_nc = int(first.shape[0]), int(first.shape[1])
    out_nc = int(sd[f"model.{last}.weight"].shape[0])
    blocks = {int(m.group(1)) for k in sd if (m := _OLD_RDB.match(k))}
    nb = max(blocks) + 1 if blocks else 0
    if nb == 0 or blocks != set(range(nb)) or f"model.1.sub.{nb}.weight" not in sd:
        raise UpscalerLoadError(f"{path}: RRDB blocks {sorted(blocks)} without a trunk conv model.1.sub.{nb}")
    gc = int(sd["model.1.sub.0.RDB1.conv1.0.weight"].shape[0])
    shuffle = 1
    if in_nc in (out_nc * 4, out_nc * 16):
        shuffle = int(math.isqrt(in_nc // out_nc))
    return RRDBConfig(in_nc=in_nc, out_nc=out_nc, nf=nf, nb=nb, gc=gc, upconvs=upconvs, shuffle_factor=shuffle)


def read_upscaler_state_dict(path: "str | os.PathLike[str]") -> dict[str, torch.Tensor]:
    """Tensors of an upscaler file, unwrapped as spandrel does; never runs code from the file."""
    p = os.fspath(path)
    ext = Path(p).suffix.lower()
    if ext == ".safetensors":
        obj: Any = read_safetensors(p)
    elif ext in (".pth", ".pt", ".ckpt", ".bin"):
        obj = load_torch_file(p)
    else:
        raise UpscalerLoadError(f"{p}: unsupported upscaler file extension {ext!r} (expected .pth, .pt or .safetensors)")
    obj = _unwrap(obj)
    if not isinstance(obj, Mapping):
        raise UpscalerLoadError(f"{p}: holds a {type(obj).__name__}, not a dictionary of tensors")
    sd = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not sd:
        raise UpscalerLoadError(f"{p}: no tensors found (top-level keys: {_describe_keys([str(k) for k in obj])})")
    return sd


def load_upscaler(path: "str | os.PathLike[str]", device: "torch.device | str" = "cpu") -> UpscalerModel:
    """Reads, recognises and builds an ESRGAN-family file (float32 on `device`)."""
    p = os.fspath(path)
    try:
        sd = read_upscaler_state_dict(p)
    except CheckpointError as e:
        raise UpscalerLoadError(str(e)) from None
    old, layout = to_old_layout(sd, p)
    cfg = config_from_state_dict(old, p)
    net = RRDBNet(cfg)
    expected = net.state_dict()
    tensors = dict(old)
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        raise UpscalerLoadError(f"{p}: {layout} ESRGAN layout with unexpected structure: missing "
                                f"{_describe_keys(missing, 6) if missing else 'none'}; unexpected "
                                f"{_describe_keys(unexpected, 6) if unexpected else 'none'}")
    for k, t in expected.items():
        if tuple(tensors[k].shape) != tuple(t.shape):
            raise UpscalerLoadError(f"{p}: {k} has shape {tuple(tensors[k].shape)}, the inferred network "
                                    f"(nf {cfg.nf}, nb {cfg.nb}, gc {cfg.gc}) needs {tuple(t.shape)}")
        if not tensors[k].is_floating_point():
            raise UpscalerLoadError(f"{p}: {k} holds {tensors[k].dtype}, not floating-point weights")
    stored = tensors["model.0.weight"].dtype
    net.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=True)
    for t in net.state_dict().values():
        if not torch.isfinite(t).all():
            raise UpscalerLoadError(f"{p}: weights contain NaN or infinity")
    return UpscalerModel(p, net.eval().requires_grad_(False).to(device), layout, stored)
