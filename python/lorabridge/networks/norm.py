"""Norm-layer difference (``w_norm`` and ``b_norm``, both required) — A1111 ``network_norm.py``."""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from .base import NetworkModule, numel, require


def accepts(w: Mapping[str, torch.Tensor]) -> bool:
    return "w_norm" in w and "b_norm" in w


class NormModule(NetworkModule):
    kind = "norm"
    weight_independent = True

    def __init__(self, group: str, layer: nn.Module, w: Mapping[str, torch.Tensor]) -> None:
        super().__init__(group, layer, w)
        self.w_norm = w["w_norm"].to(torch.float32)
        self.b_norm = w["b_norm"].to(torch.float32)

    def check_shapes(self, weight_shape: torch.Size) -> None:
        super().check_shapes(weight_shape)
        for name, t in (("w_norm", self.w_norm), ("b_norm", self.b_norm)):
            require(numel(t.shape) == numel(weight_shape),
                    f"{name} of shape {tuple(t.shape)} does not fit the layer weight {tuple(weight_shape)}")

    def calc_updown(self, weight: torch.Tensor, dyn: Optional[int]):
        return self.w_norm, list(self.w_norm.shape), self.b_norm
