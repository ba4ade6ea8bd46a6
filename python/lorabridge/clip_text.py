"""CLIP text transformer (openai CLIP text tower) under the Hugging Face ``CLIPTextModel`` key names.

Parameter names match the checkpoint keys after ``cond_stage_model.transformer.`` (``text_model.…``).
pre-LN blocks, quick_gelu, causal mask, no attention mask (SD1.x never passes one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import nn

from .attention import attention


@dataclass(frozen=True)
class CLIPTextConfig:
    vocab_size: int = 49408
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    max_position_embeddings: int = 77
    layer_norm_eps: float = 1e-5
    eos_token_id: Optional[int] = None  # None: pooled token = argmax(ids), as HF does for OpenAI's vocab


@dataclass
class CLIPTextOutput:
    last_hidden_state: torch.Tensor  # final layer norm applied
    hidden_states: list[torch.Tensor]  # [embeddings, layer 1, …]; the layers actually computed
    pooled: torch.Tensor  # last_hidden_state at the end-of-text token


def _fk(device: Any, dtype: Any) -> dict[str, Any]:
    return {"device": device, "dtype": dtype}


class CLIPAttention(nn.Module):
    def __init__(self, cfg: CLIPTextConfig, fk: dict[str, Any]) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.heads = cfg.num_attention_heads
        self.q_proj = nn.Linear(d, d, **fk)
        self.k_proj = nn.Linear(d, d, **fk)
        self.v_proj = nn.Linear(d, d, **fk)
        self.out_proj = nn.Linear(d, d, **fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = attention(self.q_proj(x), self.k_proj(x), self.v_proj(x), self.heads, causal=True)
        return self.out_proj(out)


class CLIPMLP(nn.Module):
    def __init__(self, cfg: CLIPTextConfig, fk: dict[str, Any]) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size, **fk)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size, **fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(x)
        return self.fc2(x * torch.sigmoid(1.702 * x))  # quick_gelu


class CLIPEncoderLayer(nn.Module):
    def __init__(self, cfg: CLIPTextConfig, fk: dict[str, Any]) -> None:
        super().__init__()
        self.self_attn = CLIPAttention(cfg, fk)
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, **fk)
        self.mlp = CLIPMLP(cfg, fk)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, **fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class CLIPEmbeddings(nn.Module):
    def __init__(self, cfg: CLIPTextConfig, fk: dict[str, Any]) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.hidden_size, **fk)
        self.position_embedding = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size, **fk)

    def forward(self, ids: torch.Tensor, fixes: Optional[Sequence[Sequence[tuple[int, torch.Tensor]]]] = None) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        tokens = self.token_embedding(ids)
        if fixes is not None:
            tokens = apply_embedding_fixes(tokens, fixes)
        return tokens + self.position_embedding(pos)[None]


def apply_embedding_fixes(inputs_embeds: torch.Tensor, batch_fixes: Sequence[Sequence[tuple[int, torch.Tensor]]]) -> torch.Tensor:
    """A1111's ``EmbeddingsWithFixes``: per row, each textual-inversion embedding's vectors replace the token
    embeddings after ``offset`` (its placeholders start at position offset + 1), at most up to the last position.

    Done with the same ``torch.cat`` as A1111, so vectors that cannot replace a row (1-D, another width) fail
    with torch's RuntimeError exactly where A1111's do. Rows without fixes are returned unchanged.
    """
    if len(batch_fixes) != inputs_embeds.shape[0]:
        raise ValueError(f"{len(batch_fixes)} fix lists for a batch of {inputs_embeds.shape[0]}")
    if not any(len(f) for f in batch_fixes):
        return inputs_embeds
    rows = []
    for fixes, tensor in zip(batch_fixes, inputs_embeds):
        for offset, vec in fixes:
            emb = vec.to(device=tensor.device, dtype=tensor.dtype)
            emb_len = min(tensor.shape[0] - offset - 1, emb.shape[0])
            tensor = torch.cat([tensor[0:offset + 1], emb[0:emb_len], tensor[offset + 1 + emb_len:]]).to(dtype=inputs_embeds.dtype)
        rows.append(tensor)
    return torch.stack(rows)


class CLIPEncoder(nn.Module):
    def __init__(self, cfg: CLIPTextConfig, fk: dict[str, Any]) -> None:
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(cfg, fk) for _ in range(cfg.num_hidden_layers)])


class CLIPTextTransformer(nn.Module):
    def __init__(self, cfg: CLIPTextConfig, fk: dict[str, Any]) -> None:
        super().__init__()
        self.embeddings = CLIPEmbeddings(cfg, fk)
        self.encoder = CLIPEncoder(cfg, fk)
        self.final_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps, **fk)


class CLIPTextModel(nn.Module):
    """HF-named CLIP text model; ``forward(ids)`` returns all hidden states, ``encode`` A1111's CLIP-skip output."""

    def __init__(self, config: CLIPTextConfig, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.config = config
        self.text_model = CLIPTextTransformer(config, _fk(device, dtype))

    def _check_ids(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2:
            raise ValueError(f"input_ids must be [batch, tokens], got shape {tuple(ids.shape)}")
        if ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"{ids.shape[1]} tokens exceed the {self.config.max_position_embeddings} positions")
        ids = ids.to(torch.long)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.config.vocab_size):
            raise ValueError(f"token id outside the vocabulary [0, {self.config.vocab_size})")
        return ids

    def pooled_index(self, ids: torch.Tensor) -> torch.Tensor:
        """Position of the first end-of-text token per row (HF: argmax of ids, EOS being the largest id)."""
        if self.config.eos_token_id is None:
            return ids.argmax(dim=-1)
        return (ids == self.config.eos_token_id).int().argmax(dim=-1)

    def forward(self, input_ids: torch.Tensor, stop_at_layer: Optional[int] = None,
                fixes: Optional[Sequence[Sequence[tuple[int, torch.Tensor]]]] = None) -> CLIPTextOutput:
        """Runs the tower; ``stop_at_layer`` (1-based) skips the layers after it (then the last state is that layer's).
        ``fixes``: per row, (offset, vectors) of textual-inversion embeddings (see ``apply_embedding_fixes``)."""
        ids = self._check_ids(input_ids.to(self.text_model.embeddings.token_embedding.weight.device))
        tm = self.text_model
        h = tm.embeddings(ids, fixes)
        states = [h]
        layers = tm.encoder.layers if stop_at_layer is None else tm.encoder.layers[:stop_at_layer]
        for layer in layers:
            h = layer(h)
            states.append(h)
        last = tm.final_layer_norm(h)
        pooled = last[torch.arange(last.shape[0], device=last.device), self.pooled_index(ids)]
        return CLIPTextOutput(last, states, pooled)

    def encode(self, input_ids: torch.Tensor, clip_skip: int = 1,
               fixes: Optional[Sequence[Sequence[tuple[int, torch.Tensor]]]] = None) -> torch.Tensor:
        """A1111's ``encode_with_transformers``: skip 1 = last_hidden_state; skip n = final LN of hidden_states[-n]."""
        n = self.config.num_hidden_layers
        if not 1 <= clip_skip <= n:
            raise ValueError(f"clip_skip must be in 1..{n}, got {clip_skip}")
        # hidden_states[-n] is the output of layer (layers - n + 1); later layers are not needed.
        return self.forward(input_ids, stop_at_layer=n - clip_skip + 1, fixes=fixes).last_hidden_state
