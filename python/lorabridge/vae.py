"""ldm ``AutoencoderKL`` pieces (CompVis ``diffusionmodules/model.py``): Encoder, Decoder, quant convs.

Parameter names match the checkpoint keys after ``first_stage_model.``. The latent scale factor
(0.18215 for SD1.x) is applied by the caller (see :class:`lorabridge.model.StableDiffusion`), as in ldm.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VAEConfig:
    ch: int = 128
    ch_mult: Sequence[int] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_levels: Sequence[int] = ()  # levels whose blocks carry AttnBlocks (SD: none)
    in_channels: int = 3
    out_ch: int = 3
    z_channels: int = 4
    embed_dim: int = 4
    double_z: bool = True
    has_encoder: bool = True
    has_decoder: bool = True


def _fk(device: Any, dtype: Any) -> dict[str, Any]:
    return {"device": device, "dtype": dtype}


def _norm(ch: int, fk: dict[str, Any]) -> nn.GroupNorm:
    return nn.GroupNorm(32, ch, eps=1e-6, affine=True, **fk)


def _swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


class ResnetBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = _fk(device, dtype)
        self.norm1 = _norm(in_ch, fk)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, **fk)
        self.norm2 = _norm(out_ch, fk)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, **fk)
        if in_ch != out_ch:
            self.nin_shortcut = nn.Conv2d(in_ch, out_ch, 1, **fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_swish(self.norm1(x)))
        h = self.conv2(self.dropout(_swish(self.norm2(h))))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1-conv q/k/v/proj_out."""

    def __init__(self, ch: int, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = _fk(device, dtype)
        self.norm = _norm(ch, fk)
        self.q = nn.Conv2d(ch, ch, 1, **fk)
        self.k = nn.Conv2d(ch, ch, 1, **fk)
        self.v = nn.Conv2d(ch, ch, 1, **fk)
        self.proj_out = nn.Conv2d(ch, ch, 1, **fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)
        k = k.reshape(b, c, hh * ww)
        w = (torch.bmm(q, k) * (int(c) ** -0.5)).softmax(dim=2)
        v = v.reshape(b, c, hh * ww)
        h = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(h)


class Downsample(nn.Module):
    def __init__(self, ch: int, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=0, **_fk(device, dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ldm pads right/bottom only, then a stride-2 conv without padding.
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    def __init__(self, ch: int, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1, **_fk(device, dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """Holder matching ldm's ``nn.Module()`` with ``block``/``attn`` lists and an optional resampler."""


class _Mid(nn.Module):
    def __init__(self, ch: int, fk: dict[str, Any]) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(ch, ch, **fk)
        self.attn_1 = AttnBlock(ch, **fk)
        self.block_2 = ResnetBlock(ch, ch, **fk)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(h)))


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = _fk(device, dtype)
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1, **fk)
        in_mult = (1,) + tuple(cfg.ch_mult)
        self.down = nn.ModuleList()
        block_in = cfg.ch
        for level, mult in enumerate(cfg.ch_mult):
            lv = _Level()
            lv.block = nn.ModuleList()
            lv.attn = nn.ModuleList()
            block_in = cfg.ch * in_mult[level]
            block_out = cfg.ch * mult
            for _ in range(cfg.num_res_blocks):
                lv.block.append(ResnetBlock(block_in, block_out, **fk))
                block_in = block_out
                if level in cfg.attention_levels:
                    lv.attn.append(AttnBlock(block_in, **fk))
            if level != len(cfg.ch_mult) - 1:
                lv.downsample = Downsample(block_in, **fk)
            self.down.append(lv)
        self.mid = _Mid(block_in, fk)
        self.norm_out = _norm(block_in, fk)
        self.conv_out = nn.Conv2d(block_in, 2 * cfg.z_channels if cfg.double_z else cfg.z_channels, 3,
                                  padding=1, **fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for lv in self.down:
            for i, block in enumerate(lv.block):
                h = block(h)
                if len(lv.attn):
                    h = lv.attn[i](h)
            if hasattr(lv, "downsample"):
                h = lv.downsample(h)
        h = self.mid(h)
        return self.conv_out(_swish(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = _fk(device, dtype)
        block_in = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, block_in, 3, padding=1, **fk)
        self.mid = _Mid(block_in, fk)
        ups: list[nn.Module] = []
        for level in reversed(range(len(cfg.ch_mult))):
            lv = _Level()
            lv.block = nn.ModuleList()
            lv.attn = nn.ModuleList()
            block_out = cfg.ch * cfg.ch_mult[level]
            for _ in range(cfg.num_res_blocks + 1):
                lv.block.append(ResnetBlock(block_in, block_out, **fk))
                block_in = block_out
                if level in cfg.attention_levels:
                    lv.attn.append(AttnBlock(block_in, **fk))
            if level != 0:
                lv.upsample = Upsample(block_in, **fk)
            ups.insert(0, lv)
        self.up = nn.ModuleList(ups)
        self.norm_out = _norm(block_in, fk)
        self.conv_out = nn.Conv2d(block_in, cfg.out_ch, 3, padding=1, **fk)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for lv in reversed(self.up):
            for i, block in enumerate(lv.block):
                h = block(h)
                if len(lv.attn):
                    h = lv.attn[i](h)
            if hasattr(lv, "upsample"):
                h = lv.upsample(h)
        return self.conv_out(_swish(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    """VAE parts present in a file: encoder + quant_conv and/or decoder + post_quant_conv."""

    def __init__(self, cfg: VAEConfig, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = _fk(device, dtype)
        self.config = cfg
        zc = 2 * cfg.z_channels if cfg.double_z else cfg.z_channels
        if cfg.has_encoder:
            self.encoder = Encoder(cfg, **fk)
            self.quant_conv = nn.Conv2d(zc, 2 * cfg.embed_dim, 1, **fk)
        if cfg.has_decoder:
            self.decoder = Decoder(cfg, **fk)
            self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1, **fk)

    def encode_moments(self, image: torch.Tensor) -> torch.Tensor:
        """Image in [-1, 1] → ``[mean, logvar]`` stacked on channels (logvar not clamped)."""
        if not self.config.has_encoder:
            raise RuntimeError("this VAE has no encoder weights (decoder-only file)")
        dtype = self.quant_conv.weight.dtype
        return self.quant_conv(self.encoder(image.to(dtype))).to(image.dtype)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Unscaled latent → image (about [-1, 1], not clamped)."""
        if not self.config.has_decoder:
            raise RuntimeError("this VAE has no decoder weights (encoder-only file)")
        dtype = self.post_quant_conv.weight.dtype
        return self.decoder(self.post_quant_conv(z.to(dtype))).to(z.dtype)
