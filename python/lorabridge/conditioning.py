"""Prompt conditioning from token ids and per-token weights, as A1111 v1.10.1 builds it.

The C# side tokenizes, applies A1111's 75-token chunking and emphasis parsing, and sends for each prompt a
list of 77-token chunks (BOS + 75 + EOS/padding) with one multiplier per token. Here every chunk is encoded
on its own (``sd_hijack_clip.process_tokens``), the emphasis is applied to the chunk's output
(``sd_emphasis``), and the chunks are concatenated along the token axis (``torch.hstack(zs)``).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from .clip_text import CLIPTextModel

EMPHASIS_MODES = ("Original", "No norm", "Ignore", "None")


def apply_emphasis(z: torch.Tensor, multipliers: torch.Tensor, mode: str = "Original") -> torch.Tensor:
    """A1111 emphasis on one chunk's encoder output ``z`` [B, T, C] with ``multipliers`` [B, T].

    "Original": ``z * w``, then rescaled so the mean over the whole chunk tensor (the batch included, as
    A1111 takes it) equals the mean before weighting. "No norm": ``z * w`` only. "Ignore"/"None": unchanged.
    """
    if mode not in EMPHASIS_MODES:
        raise ValueError(f"unknown emphasis mode {mode!r}; expected one of {EMPHASIS_MODES}")
    if tuple(multipliers.shape) != tuple(z.shape[:2]):
        raise ValueError(f"multipliers shape {tuple(multipliers.shape)} does not match tokens {tuple(z.shape[:2])}")
    if mode in ("Ignore", "None"):
        return z
    weighted = z * multipliers.to(z.dtype)[..., None]
    if mode == "No norm":
        return weighted
    return weighted * (z.mean() / weighted.mean())


def _as_chunks(values: Any, name: str, dtype: torch.dtype) -> torch.Tensor:
    """[chunks, T] (one prompt) or [batch, chunks, T] → [batch, chunks, T]."""
    if isinstance(values, torch.Tensor):
        t = values.to(dtype)
    else:
        t = torch.as_tensor(values, dtype=dtype)
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3 or t.shape[1] == 0:
        raise ValueError(f"{name} must be [chunks, tokens] or [batch, chunks, tokens], got shape {tuple(t.shape)}")
    return t


def encode_prompt(text_encoder: CLIPTextModel, token_ids: Any, weights: Any, clip_skip: int = 1,
                  emphasis: str = "Original", fixes: Optional[Sequence[Sequence[Any]]] = None) -> torch.Tensor:
    """Conditioning [batch, chunks*T, width] for token ids and per-token weights of the same shape.

    ``token_ids``/``weights``: nested sequences, numpy arrays or tensors, ``[chunks, T]`` for one prompt or
    ``[batch, chunks, T]``. ``clip_skip`` 1 = last layer; 2 = penultimate layer with the final layer norm.
    ``fixes``: textual-inversion embeddings, ``fixes[text][chunk]`` = list of (offset, vectors) written over the
    token embeddings of that chunk (A1111's ``EmbeddingsWithFixes``); the chunk's emphasis then weights them too.
    """
    ids = _as_chunks(token_ids, "token_ids", torch.long)
    w = _as_chunks(weights, "weights", torch.float32)
    if ids.shape != w.shape:
        raise ValueError(f"token_ids shape {tuple(ids.shape)} and weights shape {tuple(w.shape)} differ")
    device = text_encoder.text_model.embeddings.token_embedding.weight.device
    zs = []
    with torch.no_grad():
        for c in range(ids.shape[1]):
            chunk_fixes = None if fixes is None else [f[c] if c < len(f) else [] for f in fixes]
            z = text_encoder.encode(ids[:, c].to(device), clip_skip=clip_skip, fixes=chunk_fixes)
            zs.append(apply_emphasis(z, w[:, c].to(device), emphasis))
    return torch.cat(zs, dim=1)


def encode_prompts(text_encoder: CLIPTextModel, prompts: Sequence[tuple[Any, Any]], clip_skip: int = 1,
                   emphasis: str = "Original") -> list[torch.Tensor]:
    """Each prompt encoded on its own (its own emphasis mean); returns one [1, chunks*T, width] per prompt."""
    return [encode_prompt(text_encoder, ids, w, clip_skip, emphasis) for ids, w in prompts]
