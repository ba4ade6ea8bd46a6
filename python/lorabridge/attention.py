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
        return out.transpose(1, 2).reshape(b, n, inner)
    return _explicit(qh, kh, vh, causal).transpose(1, 2).reshape(b, n, inner)


# Query rows per block of the explicit path: the score block stays around this many elements, so SD1.5's
# 4096-token self-attention never materialises a 1 GB score matrix (about 2x faster on CPU). Every row is
# computed exactly as in one piece, so the result does not depend on the block size.
_BLOCK_ELEMENTS = 1 << 22


def _explicit(qh: torch.Tensor, kh: torch.Tensor, vh: torch.Tensor, causal: bool) -> torch.Tensor:
    b, h, n, d = qh.shape
    nk = kh.shape[2]
    scale = d ** -0.5
    q = qh.reshape(b * h, n, d)
    kt = kh.reshape(b * h, nk, d).transpose(1, 2)
    v = vh.reshape(b * h, nk, vh.shape[-1])
    out = torch.empty(b * h, n, v.shape[-1], dtype=q.dtype, device=q.device)
    rows = max(1, _BLOCK_ELEMENTS // max(1, b * h * nk))
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        sim = torch.bmm(q[:, start:stop], kt) * scale
        if causal:
            key_pos = torch.arange(nk, device=q.device)
            query_pos = torch.arange(start, stop, device=q.device)
            sim = sim.masked_fill(key_pos[None, :] > query_pos[:, None], float("-inf"))
        torch.bmm(sim.softmax(dim=-1), v, out=out[:, start:stop])
    return out.reshape(b, h, n, v.shape[-1])
