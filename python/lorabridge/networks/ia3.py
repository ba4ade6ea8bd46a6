"""(IA)^3 (``weight`` + ``on_input``) — A1111 ``network_ia3.py``: W·(1 + m·w) per output row or input column.

On a conv with ``on_input`` = 0 the [out, 1] factor broadcasts against [out, in, k, k] to a larger shape;
A1111's ``copy_`` then raises and the layer stays unchanged. We reproduce that outcome explicitly.
"""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from .base import LayerSkipped, NetworkModule, UnsupportedNetworkError, require


def accepts(w: Mapping[str, torch.Tensor]) -> bool:
    return "weight" in w


class Ia3Module(NetworkModule):
    kind = "ia3"

    def __init__(self, group: str, layer: nn.Module, w: Mapping[str, torch.Tensor]) -> None:
        super().__init__(group, layer, w)
        if "on_input" not in w:
            # A1111: KeyError while creating the module, the whole network is not loaded.
            raise UnsupportedNetworkError(f"ia3 group {group} has no on_input")
        self.scale_vec = w["weight"].to(torch.float32)
        self.on_input = bool(w["on_input"].item())

    def check_shapes(self, weight_shape: torch.Size) -> None:
        super().check_shapes(weight_shape)
        n = weight_shape[1] if self.on_input else weight_shape[0]
        require(len(weight_shape) >= 2 and self.scale_vec.numel() == n,
                f"ia3 weight of {self.scale_vec.numel()} values does not fit the layer weight "
                f"{tuple(weight_shape)} (on_input={int(self.on_input)})")

    def calc_updown(self, weight: torch.Tensor, dyn: Optional[int]):
        w = self.scale_vec
        output_shape = [int(w.shape[0]), int(weight.shape[1])]
        if self.on_input:
            output_shape.reverse()
        else:
            w = w.reshape(-1, 1)
        try:
            shape = torch.broadcast_shapes(tuple(weight.shape), tuple(w.shape))
        except RuntimeError as e:
            raise LayerSkipped(str(e)) from None
        if tuple(shape) != tuple(weight.shape):
            raise LayerSkipped(f"output with shape {list(weight.shape)} doesn't match the broadcast shape {list(shape)}")
        return weight * w, output_shape, None
