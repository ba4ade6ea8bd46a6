"""OpenCLIP text tower (mlfoundations/open_clip ``TextTransformer``), SDXL's second text encoder (bigG role).

Parameter names match the checkpoint keys after ``conditioner.embedders.1.model.``: ``token_embedding``,
``positional_embedding`` [ctx, w], ``transformer.resblocks.N.{ln_1, attn.in_proj_weight/bias (fused q,k,v rows),
attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}``, ``ln_final``, ``text_projection`` [w, proj] (``x @ P``) and the
unused ``logit_scale``. Exact (erf) GELU, causal mask, LayerNorm eps 1e-5.

For LoRA, A1111 patches the fused attention through its q/k/v row blocks; :meth:`MultiheadAttention.row_slices`
hands out ``nn.Linear`` views of those rows that share storage with ``in_proj_weight``, so the generic patcher
writes through to the fused weight (see :mod:`lorabridge.sdxl`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention
from .clip_text import apply_embedding_fixes


@dataclass(frozen=True)
class OpenCLIPTextConfig:
    vocab_size: int = 49408
    width: int = 1280
    heads: int = 20
    layers: int = 32
    context_length: int = 77
    projection_dim: int = 1280
    mlp_width: int = 5120
    layer_norm_eps: float = 1e-5
    logit_scale_shape: tuple[int, ...] = ()  # unused by the text tower; 0-d in open_clip, [1] in some files


@dataclass
class OpenCLIPTextOutput:
    penultimate: torch.Tensor  # input of the last resblock, no ln_final (sgm layer="penultimate")
    last: torch.Tensor  # output of the last resblock, no ln_final
    pooled: torch.Tensor  # ln_final(last)[b, argmax(ids[b])] @ text_projection


class MultiheadAttention(nn.Module):
    """torch ``nn.MultiheadAttention``'s parameters (fused ``in_proj``) with a causal self-attention forward."""

    def __init__(self, width: int, heads: int, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.heads = heads
        self.embed_dim = width
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width, device=device, dtype=dtype))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width, device=device, dtype=dtype))
        self.out_proj = nn.Linear(width, width, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        return self.out_proj(attention(q, k, v, self.heads, causal=True))

    def row_slices(self) -> dict[str, nn.Linear]:
        """``q_proj``/``k_proj``/``v_proj`` Linear modules whose weight and bias are views of the fused rows."""
        w = self.embed_dim
        out = {}
        for i, name in enumerate(("q_proj", "k_proj", "v_proj")):
            lin = nn.Linear.__new__(nn.Linear)
            nn.Module.__init__(lin)
            lin.in_features = lin.out_features = w
            lin.weight = nn.Parameter(self.in_proj_weight.data[i * w:(i + 1) * w], requires_grad=False)
            lin.bias = nn.Parameter(self.in_proj_bias.data[i * w:(i + 1) * w], requires_grad=False)
            out[name] = lin
        return out


class MLP(nn.Module):
    def __init__(self, width: int, hidden: int, fk: dict[str, Any]) -> None:
        super().__init__()
        self.c_fc = nn.Linear(width, hidden, **fk)
        self.c_proj = nn.Linear(hidden, width, **fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, cfg: OpenCLIPTextConfig, fk: dict[str, Any]) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps, **fk)
        self.attn = MultiheadAttention(cfg.width, cfg.heads, **fk)
        self.ln_2 = nn.LayerNorm(cfg.width, eps=cfg.layer_norm_eps, **fk)
        self.mlp = MLP(cfg.width, cfg.mlp_width, fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, cfg: OpenCLIPTextConfig, fk: dict[str, Any]) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(cfg, fk) for _ in range(cfg.layers)])


class OpenCLIPTextModel(nn.Module):
    """open_clip ``CLIP`` text half; ``forward(ids)`` gives sgm's ``FrozenOpenCLIPEmbedder2`` outputs."""

    def __init__(self, config: OpenCLIPTextConfig, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.width, **fk)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.width, **fk))
        self.transformer = Transformer(config, fk)
        self.ln_final = nn.LayerNorm(config.width, eps=config.layer_norm_eps, **fk)
        self.text_projection = nn.Parameter(torch.empty(config.width, config.projection_dim, **fk))
        self.logit_scale = nn.Parameter(torch.empty(config.logit_scale_shape, **fk))

    def forward(self, input_ids: torch.Tensor,
                fixes: Optional[Sequence[Sequence[tuple[int, torch.Tensor]]]] = None) -> OpenCLIPTextOutput:
        """``fixes``: per row, (offset, vectors) of textual-inversion embeddings written over the token embeddings
        before the positions are added (A1111's ``EmbeddingsWithFixes`` on ``token_embedding``)."""
        ids = input_ids.to(device=self.token_embedding.weight.device, dtype=torch.long)
        if ids.dim() != 2 or ids.shape[1] > self.config.context_length:
            raise ValueError(f"input_ids must be [batch, <= {self.config.context_length}], got {tuple(ids.shape)}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.config.vocab_size):
            raise ValueError(f"token id outside the vocabulary [0, {self.config.vocab_size})")
        tokens = self.token_embedding(ids)
        if fixes is not None:
            tokens = apply_embedding_fixes(tokens, fixes)
        x = tokens + self.positional_embedding[: ids.shape[1]].to(self.token_embedding.weight.dtype)
        blocks = self.transformer.resblocks
        for block in blocks[:-1]:
            x = block(x)
        penultimate = x
        last = blocks[-1](x)
        o = self.ln_final(last)
        pooled = o[torch.arange(o.shape[0], device=o.device), ids.argmax(dim=-1)] @ self.text_projection
        return OpenCLIPTextOutput(penultimate, last, pooled)
