"""Full weight difference (``diff``, optional ``diff_b``) — A1111 ``network_full.py``.

On a layer without bias, ``diff_b`` creates one (A1111 assigns a new Parameter); the patcher removes it
again on restore.
"""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from .base import NetworkModule, numel, require


def accepts(w: Mapping[str, torch.Tensor]) -> bool:
    return "diff" in w


class FullModule(NetworkModule):
    kind = "full"
    weight_independent = True

    def __init__(self, group: str, layer: nn.Module, w: Mapping[str, torch.Tensor]) -> None:
        super().__init__(group, layer, w)
        self.diff = w["diff"].to(torch.float32)
        self.diff_b = None if w.get("diff_b") is None else w["diff_b"].to(torch.float32)

    def check_shapes(self, weight_shape: torch.Size) -> None:
        super().check_shapes(weight_shape)
        require(numel(self.diff.shape) == numel(weight_shape),
                f"diff of shape {tuple(self.diff.shape)} does not fit the layer weight {tuple(weight_shape)}")
        if self.diff_b is not None:
            require(self.diff_b.numel() == weight_shape[0],
                    f"diff_b of shape {tuple(self.diff_b.shape)} does not fit a layer with {weight_shape[0]} outputs")

    def calc_updown(self, weight: torch.Tensor, dyn: Optional[int]):
        return self.diff, list(self.diff.shape), self.diff_b
