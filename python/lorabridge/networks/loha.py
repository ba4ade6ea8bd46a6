"""LoHa (``hada_w1_a/b``, ``hada_w2_a/b``, Tucker ``hada_t1``/``hada_t2``) — A1111 ``network_hada.py``."""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from .base import NetworkModule, numel, require

PARTS = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")


def accepts(w: Mapping[str, torch.Tensor]) -> bool:
    return all(p in w for p in PARTS)


def make_weight_cp(t: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor) -> torch.Tensor:
    """Tucker rebuild: t [p, q, k, l], wa [p, out], wb [q, in] → [out, in, k, l] (lyco_helpers order)."""
    temp = torch.einsum("ijkl,jr->irkl", t, wb)
    return torch.einsum("ijkl,ir->rjkl", temp, wa)


def _conventional(a: torch.Tensor, b: torch.Tensor, shape: list[int]) -> torch.Tensor:
    return (a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1)).reshape(shape)


class LohaModule(NetworkModule):
    kind = "loha"
    weight_independent = True

    def __init__(self, group: str, layer: nn.Module, w: Mapping[str, torch.Tensor]) -> None:
        super().__init__(group, layer, w)
        self.w1a, self.w1b, self.w2a, self.w2b = (w[p].to(torch.float32) for p in PARTS)
        self.t1 = None if w.get("hada_t1") is None else w["hada_t1"].to(torch.float32)
        self.t2 = None if w.get("hada_t2") is None else w["hada_t2"].to(torch.float32)
        self.dim = int(self.w1b.shape[0])

    def _output_shape(self) -> list[int]:
        if self.t1 is not None:
            return [int(self.w1a.shape[1]), int(self.w1b.shape[1]), *self.t1.shape[2:]]
        shape = [int(self.w1a.shape[0]), int(self.w1b.shape[1])]
        return shape + list(self.w1b.shape[2:]) if self.w1b.dim() == 4 else shape

    def check_shapes(self, weight_shape: torch.Size) -> None:
        super().check_shapes(weight_shape)
        try:
            shape = list(self.calc_updown(torch.empty(0), None)[0].shape)
        except RuntimeError as e:
            raise ValueError(f"hada factors do not chain: {e}") from None
        require(shape[0] == weight_shape[0] and numel(shape) == numel(weight_shape),
                f"loha update of shape {tuple(shape)} does not fit the layer weight {tuple(weight_shape)}")

    def calc_updown(self, weight: torch.Tensor, dyn: Optional[int]):
        output_shape = self._output_shape()
        if self.t1 is not None:
            u1 = make_weight_cp(self.t1, self.w1a, self.w1b)
        else:
            u1 = _conventional(self.w1a, self.w1b, output_shape)
        if self.t2 is not None:
            u2 = make_weight_cp(self.t2, self.w2a, self.w2b)
        else:
            u2 = _conventional(self.w2a, self.w2b, output_shape)
        return u1 * u2, output_shape, None
