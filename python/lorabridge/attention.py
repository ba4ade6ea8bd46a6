"""Multi-head attention core shared by the UNet, VAE and CLIP modules.

torch 2.x gets ``F.scaled_dot_product_attention`` (fused kernels on CUDA); torch 1.x gets the explicit
``softmax(q kᵀ · scale) v`` that CompVis ldm and openai CLIP compute, in the same order of operations so
float32 CPU results stay within a few ulp of the reference code.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, inner = x.shape
    return x.reshape(b, n, heads, inner // heads).transpose(1, 2)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
              causal: bool = False, use_sdpa: Optional[bool] = None) -> torch.Tensor:
    """Attention over ``[batch, tokens, heads*head_dim]`` inputs; returns the same layout."""
    b, n, inner = q.shape
    qh, kh, vh = (_split_heads(t, heads) for t in (q, k, v))
    if use_sdpa is None:
        use_sdpa = HAS_SDPA
    if use_sdpa:
        out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=causal)
    else:
        scale = (inner // heads) ** -0.5
        sim = torch.matmul(qh, kh.transpose(-1, -2)) * scale
        if causal:
            mask = torch.ones(sim.shape[-2], sim.shape[-1], dtype=torch.bool, device=sim.device).triu(1)
            sim = sim.masked_fill(mask, float("-inf"))
        out = torch.matmul(sim.softmax(dim=-1), vh)
    return out.transpose(1, 2).reshape(b, n, inner)
