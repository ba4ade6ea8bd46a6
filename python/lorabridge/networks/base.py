"""What every LoRA-family layer module shares: scale, extra bias, DoRA and the multiplier.

Mirrors A1111 v1.10.1 ``network.py:NetworkModule`` (``calc_scale``, ``finalize_updown``,
``apply_weight_decompose``): the raw update is reshaped, multiplied by the scale, DoRA-decomposed, then
multiplied by the multiplier; an extra bias (``diff_b``, ``b_norm``) gets the multiplier only. All math runs
in float32 on the current weight of the layer, which already includes the networks applied before.
"""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn


class NetworkError(ValueError):
    """A LoRA-family file cannot be used with this model; the message names the file and the key."""


class UnsupportedNetworkError(NetworkError):
    """A1111 refuses the whole network (an exception while creating one of its modules).

    The conformance harness skips such a network as A1111 does; the engine reports it.
    """


class LayerSkipped(Exception):
    """A1111 raises a RuntimeError for this layer and leaves it unchanged (caught in
    ``network_apply_weights``); the message is the reason."""


# Layer types A1111's lora_patches.py patches; groups matched to anything else are loaded but never applied.
PATCHED_TYPES = (nn.Linear, nn.Conv2d, nn.GroupNorm, nn.LayerNorm, nn.MultiheadAttention)


class NetworkModule:
    """One key group of a network bound to one model layer."""

    kind = "?"
    # True when the update does not depend on the current weight, so `delta(W) = multiplier * unit` and the
    # patcher may cache `unit` for keyframed multipliers.
    weight_independent = False

    def __init__(self, group: str, layer: nn.Module, w: Mapping[str, torch.Tensor]) -> None:
        self.group = group
        self.layer = layer
        self.dim: Optional[int] = None
        # A1111 reads alpha/scale with .item() in the stored dtype: fp16 0.7 is 0.7001953125.
        self.alpha: Optional[float] = float(w["alpha"].item()) if "alpha" in w else None
        self.scale: Optional[float] = float(w["scale"].item()) if "scale" in w else None
        self.bias = _f32(w.get("bias"))
        self.dora_scale = _f32(w.get("dora_scale"))

    # --- per type -------------------------------------------------------------------------------------
    def calc_updown(self, weight: torch.Tensor, dyn: Optional[int]) -> tuple[torch.Tensor, list[int], Optional[torch.Tensor]]:
        """(raw update, A1111's output_shape, extra bias) for the current float32 weight."""
        raise NotImplementedError

    def check_shapes(self, weight_shape: torch.Size) -> None:
        """Raise ValueError when the tensors cannot fit a layer of this weight shape."""
        if self.dora_scale is not None:
            _broadcasts_to(self.dora_scale.shape, weight_shape, "dora_scale")

    def add_into(self, weight: torch.Tensor, multiplier: float, dyn: Optional[int]) -> bool:
        """Add this module's update to ``weight`` in place by a fused route, if the type has one."""
        return False

    # --- shared ---------------------------------------------------------------------------------------
    def calc_scale(self) -> float:
        if self.scale is not None:
            return self.scale
        if self.dim is not None and self.alpha is not None:
            return self.alpha / self.dim
        return 1.0

    def calc_updown_ratio(self, weight: torch.Tensor, dyn: Optional[int], ratio: float
                          ) -> tuple[torch.Tensor, list[int], Optional[torch.Tensor]]:
        """:meth:`calc_updown` with a block-weight ratio (:mod:`lorabridge.lbw`) on the tensor LBW scales.
        For every type but GLoRA that tensor enters the raw update linearly and extra biases are not scaled."""
        updown, output_shape, ex_bias = self.calc_updown(weight, dyn)
        return (updown if ratio == 1.0 else updown * ratio), output_shape, ex_bias

    def compute(self, weight: torch.Tensor, multiplier: float, dyn: Optional[int] = None, ratio: float = 1.0
                ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(weight delta, bias delta or None) for the current float32 ``weight`` at ``multiplier``; ``ratio`` is a
        block weight, applied to the raw update before scale, extra bias and DoRA, as LBW does."""
        updown, output_shape, ex_bias = self.calc_updown_ratio(weight, dyn, ratio)
        if self.bias is not None:
            updown = updown.reshape(self.bias.shape) + self.bias
            updown = updown.reshape(output_shape)
        if len(output_shape) == 4:
            updown = updown.reshape(output_shape)
        if weight.numel() == updown.numel():
            updown = updown.reshape(weight.shape)
        if ex_bias is not None:
            ex_bias = ex_bias * multiplier
        updown = updown * self.calc_scale()
        if self.dora_scale is not None:
            updown = self.decompose(updown, weight)
        return updown * multiplier, ex_bias

    def decompose(self, updown: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """DoRA as A1111 v1.10.1 applies it: the norm is taken per INPUT channel (over dim 0 and the spatial
        dims), so LyCORIS >= 2.2 files (``dora_scale`` [out, 1]) are silently broadcast to [out, in]."""
        merged = updown + weight
        spatial = [1] * (weight.dim() - 2)
        norm = (merged.transpose(0, 1).reshape(merged.shape[1], -1).norm(dim=1, keepdim=True)
                .reshape(merged.shape[1], 1, *spatial).transpose(0, 1))
        return merged * (self.dora_scale / norm) - weight


def _f32(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if t is None else t.to(torch.float32)


def _broadcasts_to(shape: torch.Size, target: torch.Size, what: str) -> None:
    try:
        if tuple(torch.broadcast_shapes(tuple(shape), tuple(target))) != tuple(target):
            raise RuntimeError
    except RuntimeError:
        raise ValueError(f"{what} of shape {tuple(shape)} does not fit the layer weight {tuple(target)}") from None


def require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def numel(shape: "list[int] | torch.Size") -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n
