"""GLoRA — A1111 ``network_glora.py``: ΔW = b2@b1 + (W@a2)@a1, alpha required but unused (scale 1).

This is LyCORIS's layout before 2024-05-18 (a1 [r, in], a2 [in, r], b1 [r, in], b2 [out, r]). With the newer
layout, or on a conv, A1111's matmuls raise and the layer stays unchanged; we check the shapes first and
report the same outcome.
"""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from .base import LayerSkipped, NetworkModule

PARTS = ("a1.weight", "a2.weight", "alpha", "b1.weight", "b2.weight")


def accepts(w: Mapping[str, torch.Tensor]) -> bool:
    return all(p in w for p in PARTS)


class GloraModule(NetworkModule):
    kind = "glora"

    def __init__(self, group: str, layer: nn.Module, w: Mapping[str, torch.Tensor]) -> None:
        super().__init__(group, layer, w)
        self.a1, self.a2, self.b1, self.b2 = (w[p].to(torch.float32) for p in ("a1.weight", "a2.weight", "b1.weight", "b2.weight"))

    def calc_updown(self, weight: torch.Tensor, dyn: Optional[int]):
        a1, a2, b1, b2 = self.a1, self.a2, self.b1, self.b2
        output_shape = [int(a1.shape[0]), int(b1.shape[-1])]
        try:
            updown = (b2 @ b1) + ((weight @ a2) @ a1)
        except RuntimeError as e:
            raise LayerSkipped(str(e)) from None
        return updown, output_shape, None

    def calc_updown_ratio(self, weight: torch.Tensor, dyn: Optional[int], ratio: float):
        # LBW scales a1 only: the W@a2@a1 term, not b2@b1.
        if ratio == 1.0:
            return self.calc_updown(weight, dyn)
        output_shape = [int(self.a1.shape[0]), int(self.b1.shape[-1])]
        try:
            updown = (self.b2 @ self.b1) + ((weight @ self.a2) @ (self.a1 * ratio))
        except RuntimeError as e:
            raise LayerSkipped(str(e)) from None
        return updown, output_shape, None
