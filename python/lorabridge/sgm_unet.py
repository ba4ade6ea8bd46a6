"""The SDXL UNet: Stability-AI generative-models (``sgm``) ``openaimodel.UNetModel`` as SDXL configures it.

It is ldm's UNet (:mod:`lorabridge.unet`, whose blocks it reuses) with three differences that all show in the
checkpoint keys: the transformer depth is per level (``transformer_depth`` list, middle = last entry), the
SpatialTransformers use linear ``proj_in``/``proj_out``, and a ``label_emb`` adds an embedding of the ADM
vector ``y`` (pooled text + size embeddings) to the time embedding::

    emb = time_embed(timestep_embedding(t, model_channels)) + label_emb(y)

Parameter names match the keys after ``model.diffusion_model.``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import nn

from .unet import (Downsample, GroupNorm32, ResBlock, SpatialTransformer, TimestepEmbedSequential, Upsample, run_blocks,
                   timestep_embedding)


@dataclass(frozen=True)
class SDXLUNetConfig:
    """sgm UNetModel hyper-parameters (``sd_xl_base.yaml`` defaults)."""

    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: Sequence[int] = (1, 2, 4)
    num_res_blocks: int = 2
    attention_levels: Sequence[int] = (1, 2)  # sgm attention_resolutions [2, 4] → levels 1, 2
    transformer_depth: Sequence[int] = (0, 2, 10)  # per level
    transformer_depth_middle: int = 10
    num_head_channels: int = 64  # -1: a fixed head count, num_heads
    num_heads: int = -1
    context_dim: int = 2048
    adm_in_channels: int = 2816
    use_linear_in_transformer: bool = True

    @property
    def attention_resolutions(self) -> list[int]:
        return [2 ** level for level in self.attention_levels]

    def heads_and_dim(self, ch: int) -> tuple[int, int]:
        if self.num_head_channels == -1:
            if self.num_heads <= 0 or ch % self.num_heads:
                raise ValueError(f"width {ch} is not divisible by num_heads {self.num_heads}")
            return self.num_heads, ch // self.num_heads
        if ch % self.num_head_channels:
            raise ValueError(f"width {ch} is not divisible by num_head_channels {self.num_head_channels}")
        return ch // self.num_head_channels, self.num_head_channels


class SDXLUNetModel(nn.Module):
    """sgm ``UNetModel`` with ``num_classes="sequential"`` (the ADM vector input ``y``)."""

    def __init__(self, config: SDXLUNetConfig, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.config = config
        mc = config.model_channels
        ted = mc * 4

        def transformer(ch: int, depth: int) -> SpatialTransformer:
            heads, dim_head = config.heads_and_dim(ch)
            return SpatialTransformer(ch, heads, dim_head, depth, config.context_dim,
                                      config.use_linear_in_transformer, **fk)

        self.time_embed = nn.Sequential(nn.Linear(mc, ted, **fk), nn.SiLU(), nn.Linear(ted, ted, **fk))
        self.label_emb = nn.Sequential(nn.Sequential(
            nn.Linear(config.adm_in_channels, ted, **fk), nn.SiLU(), nn.Linear(ted, ted, **fk)))
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
                    layers.append(transformer(ch, config.transformer_depth[level]))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                chans.append(ch)
            if level != levels - 1:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch, **fk)))
                chans.append(ch)
        self.middle_block = TimestepEmbedSequential(
            ResBlock(ch, ted, ch, **fk), transformer(ch, config.transformer_depth_middle), ResBlock(ch, ted, ch, **fk))
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for i in range(config.num_res_blocks + 1):
                layers = [ResBlock(ch + chans.pop(), ted, mc * mult, **fk)]
                ch = mc * mult
                if level in config.attention_levels:
                    # sgm uses the level's input depth for the output blocks too.
                    layers.append(transformer(ch, config.transformer_depth[level]))
                if level and i == config.num_res_blocks:
                    layers.append(Upsample(ch, **fk))
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        self.out = nn.Sequential(GroupNorm32(32, ch, **fk), nn.SiLU(),
                                 nn.Conv2d(mc, config.out_channels, 3, padding=1, **fk))

    def embedding(self, timesteps: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``time_embed(timestep_embedding(t)) + label_emb(y)``, in the model's dtype."""
        dtype = self.time_embed[0].weight.dtype
        emb = self.time_embed(timestep_embedding(timesteps, self.config.model_channels).to(dtype))
        return emb + self.label_emb(y.to(dtype))

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: Optional[torch.Tensor] = None,
                y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """eps for latents ``x`` [B,C,H,W] at (fractional) ``timesteps`` [B], ``context`` [B,T,ctx], ``y`` [B,adm]."""
        if y is None:
            raise ValueError("the SDXL UNet needs the ADM vector y (pooled text + size embeddings)")
        if y.shape[0] != x.shape[0] or y.shape[-1] != self.config.adm_in_channels:
            raise ValueError(f"y has shape {tuple(y.shape)}; expected [{x.shape[0]}, {self.config.adm_in_channels}]")
        dtype = self.time_embed[0].weight.dtype
        if timesteps.dim() == 0:
            timesteps = timesteps.expand(x.shape[0])
        emb = self.embedding(timesteps, y)
        if context is not None:
            context = context.to(dtype)
        return run_blocks(self, x.to(dtype), emb, context).to(x.dtype)
