"""The ldm ``UNetModel`` (CompVis stable-diffusion ``openaimodel.py``) as plain torch modules.

Parameter names match the checkpoint keys after ``model.diffusion_model.``; every leaf is a standard
``nn.Linear``/``nn.Conv2d``/``nn.GroupNorm``/``nn.LayerNorm`` so a weight patcher can dispatch on type.
All constructors take ``device``/``dtype`` so a model can be built on the ``meta`` device without
initialising 860M parameters that are about to be overwritten by the checkpoint.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention


@dataclass(frozen=True)
class UNetConfig:
    """ldm UNetModel hyper-parameters (the subset SD1.x/SD2.x use)."""

    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: Sequence[int] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_levels: Sequence[int] = (0, 1, 2)  # level indices; ldm's attention_resolutions = [2**l]
    num_heads: int = 8  # used when num_head_channels == -1
    num_head_channels: int = -1
    transformer_depth: int = 1
    context_dim: int = 768
    use_linear_in_transformer: bool = False

    @property
    def attention_resolutions(self) -> list[int]:
        return [2 ** level for level in self.attention_levels]

    def heads_and_dim(self, ch: int) -> tuple[int, int]:
        """Head count and head width for a transformer of width ``ch`` (ldm's non-legacy rule)."""
        if self.num_head_channels == -1:
            if ch % self.num_heads:
                raise ValueError(f"width {ch} is not divisible by num_heads {self.num_heads}")
            return self.num_heads, ch // self.num_heads
        if ch % self.num_head_channels:
            raise ValueError(f"width {ch} is not divisible by num_head_channels {self.num_head_channels}")
        return ch // self.num_head_channels, self.num_head_channels


def _fk(device: Any, dtype: Any) -> dict[str, Any]:
    return {"device": device, "dtype": dtype}


class GroupNorm32(nn.GroupNorm):
    """ldm's ``normalization()``: GroupNorm(32) evaluated in float32 whatever the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32 and self.weight.dtype == torch.float32:
            return super().forward(x)
        w = self.weight.float() if self.weight is not None else None
        b = self.bias.float() if self.bias is not None else None
        return F.group_norm(x.float(), self.num_groups, w, b, self.eps).type(x.dtype)


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding exactly as ldm: ``cat(cos(t·f), sin(t·f))``, f_i = exp(-ln(max_period)·i/half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    args = timesteps[:, None].float() * freqs.to(timesteps.device)[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedSequential(nn.Sequential):
    """Sequential that hands the time embedding to ResBlocks and the context to transformers."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: Optional[torch.Tensor] = None,
                output_shape: Optional[Sequence[int]] = None) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            elif isinstance(layer, Upsample):
                x = layer(x, output_shape)
            else:
                x = layer(x)
        return x


class ResBlock(nn.Module):
    def __init__(self, channels: int, emb_channels: int, out_channels: int,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = _fk(device, dtype)
        self.in_layers = nn.Sequential(
            GroupNorm32(32, channels, **fk), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1, **fk))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels, **fk))
        self.out_layers = nn.Sequential(
            GroupNorm32(32, out_channels, **fk), nn.SiLU(), nn.Dropout(0.0),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, **fk))
        self.skip_connection: nn.Module = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1, **fk))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).type(h.dtype)[:, :, None, None]
        h = self.out_layers(h)
        return self.skip_connection(x) + h


class Downsample(nn.Module):
    def __init__(self, channels: int, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1, **_fk(device, dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, **_fk(device, dtype))

    def forward(self, x: torch.Tensor, output_shape: Optional[Sequence[int]] = None) -> torch.Tensor:
        # ldm always doubles; odd latent sizes are reconciled where the skip is concatenated (UNetModel.forward),
        # as A1111 does. `output_shape` is accepted for callers that pass it and not used.
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x)


class CrossAttention(nn.Module):
    def __init__(self, query_dim: int, context_dim: Optional[int], heads: int, dim_head: int,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = _fk(device, dtype)
        inner = heads * dim_head
        context_dim = query_dim if context_dim is None else context_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False, **fk)
        self.to_k = nn.Linear(context_dim, inner, bias=False, **fk)
        self.to_v = nn.Linear(context_dim, inner, bias=False, **fk)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim, **fk), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor, context: Optional[torch.Tensor] = None) -> torch.Tensor:
        context = x if context is None else context
        out = attention(self.to_q(x), self.to_k(context), self.to_v(context), self.heads)
        return self.to_out(out)


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2, **_fk(device, dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.Sequential(GEGLU(dim, inner, device, dtype), nn.Dropout(0.0),
                                 nn.Linear(inner, dim, **_fk(device, dtype)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, context_dim: int,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = _fk(device, dtype)
        self.attn1 = CrossAttention(dim, None, heads, dim_head, **fk)
        self.ff = FeedForward(dim, **fk)
        self.attn2 = CrossAttention(dim, context_dim, heads, dim_head, **fk)
        self.norm1 = nn.LayerNorm(dim, **fk)
        self.norm2 = nn.LayerNorm(dim, **fk)
        self.norm3 = nn.LayerNorm(dim, **fk)

    def forward(self, x: torch.Tensor, context: Optional[torch.Tensor]) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    """ldm SpatialTransformer; SD1 uses 1x1-conv proj_in/proj_out, SD2 linear ones."""

    def __init__(self, channels: int, heads: int, dim_head: int, depth: int, context_dim: int,
                 use_linear: bool, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = _fk(device, dtype)
        inner = heads * dim_head
        self.use_linear = use_linear
        # ldm's attention.Normalize: a plain GroupNorm (eps 1e-6), not the float32 GroupNorm32.
        self.norm = nn.GroupNorm(32, channels, eps=1e-6, affine=True, **fk)
        if use_linear:
            self.proj_in: nn.Module = nn.Linear(channels, inner, **fk)
        else:
            self.proj_in = nn.Conv2d(channels, inner, 1, **fk)
        self.transformer_blocks = nn.ModuleList(
            [BasicTransformerBlock(inner, heads, dim_head, context_dim, **fk) for _ in range(depth)])
        if use_linear:
            self.proj_out: nn.Module = nn.Linear(inner, channels, **fk)
        else:
            self.proj_out = nn.Conv2d(inner, channels, 1, **fk)

    def forward(self, x: torch.Tensor, context: Optional[torch.Tensor]) -> torch.Tensor:
        b, c, h, w = x.shape
        x_in = x
        x = self.norm(x)
        if not self.use_linear:
            x = self.proj_in(x)
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, -1)
        if self.use_linear:
            x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x, context)
        if self.use_linear:
            x = self.proj_out(x)
        x = x.reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
        if not self.use_linear:
            x = self.proj_out(x)
        return x + x_in


class UNetModel(nn.Module):
    """ldm ``UNetModel`` with ``use_spatial_transformer=True`` (SD1.x/SD2.x text-to-image UNet)."""

    def __init__(self, config: UNetConfig, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = _fk(device, dtype)
        self.config = config
        mc = config.model_channels
        ted = mc * 4

        def transformer(ch: int) -> SpatialTransformer:
            heads, dim_head = config.heads_and_dim(ch)
            return SpatialTransformer(ch, heads, dim_head, config.transformer_depth, config.context_dim,
                                      config.use_linear_in_transformer, **fk)

        self.time_embed = nn.Sequential(nn.Linear(mc, ted, **fk), nn.SiLU(), nn.Linear(ted, ted, **fk))
        self.input_blocks = nn.ModuleList(
            [TimestepEmbedSequential(nn.Conv2d(config.in_channels, mc, 3, padding=1, **fk))])
        chans = [mc]
        ch = mc
        levels = len(config.channel_mult)
        for level, mult in enumerate(config.channel_mult):
            for _ in range(config.num_res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, ted, mult * mc, **fk)]
                ch = mult * mc
                if level in config.attention_levels:
                    layers.append(transformer(ch))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                chans.append(ch)
            if level != levels - 1:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch, **fk)))
                chans.append(ch)
        self.middle_block = TimestepEmbedSequential(
            ResBlock(ch, ted, ch, **fk), transformer(ch), ResBlock(ch, ted, ch, **fk))
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for i in range(config.num_res_blocks + 1):
                layers = [ResBlock(ch + chans.pop(), ted, mc * mult, **fk)]
                ch = mc * mult
                if level in config.attention_levels:
                    layers.append(transformer(ch))
                if level and i == config.num_res_blocks:
                    layers.append(Upsample(ch, **fk))
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        self.out = nn.Sequential(GroupNorm32(32, ch, **fk), nn.SiLU(),
                                 nn.Conv2d(mc, config.out_channels, 3, padding=1, **fk))

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: Optional[torch.Tensor] = None) -> torch.Tensor:
        """eps (or v) prediction for latents ``x`` [B,C,H,W] at (possibly fractional) ``timesteps`` [B]."""
        dtype = self.time_embed[0].weight.dtype
        if timesteps.dim() == 0:
            timesteps = timesteps.expand(x.shape[0])
        emb = self.time_embed(timestep_embedding(timesteps, self.config.model_channels).to(dtype))
        if context is not None:
            context = context.to(dtype)
        return run_blocks(self, x.to(dtype), emb, context).to(x.dtype)


def run_blocks(unet: nn.Module, h: torch.Tensor, emb: torch.Tensor, context: Optional[torch.Tensor]) -> torch.Tensor:
    """Input blocks, middle block, output blocks with their skip connections, then ``out``: the body of ldm's
    ``UNetModel.forward`` that sgm's SDXL UNet shares (they differ only in how ``emb`` is made)."""
    hs = []
    for module in unet.input_blocks:
        h = module(h, emb, context)
        hs.append(h)
    h = unet.middle_block(h, emb, context)
    for module in unet.output_blocks:
        skip = hs.pop()
        if h.shape[-2:] != skip.shape[-2:]:
            # A1111 `sd_hijack_unet.TorchHijackForUnet.cat` (installed for sgm too): with an odd latent size the
            # doubled (and convolved) tensor is resized to the skip's size, nearest, just before the concatenation.
            h = F.interpolate(h, skip.shape[-2:], mode="nearest")
        h = torch.cat([h, skip], dim=1)
        h = module(h, emb, context, hs[-1].shape if hs else None)
    return unet.out(h)
