"""LoKr (``lokr_w1``/``lokr_w1_a,b``, ``lokr_w2``/``lokr_w2_a,b``, CP ``lokr_t2``) — A1111 ``network_lokr.py``.

``lokr_t1`` is ignored, as in A1111; dim (for alpha/dim) is ``w2_b``'s rank, else ``w1_b``'s, else unset.
"""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from .base import NetworkModule, numel, require
from .loha import make_weight_cp


def accepts(w: Mapping[str, torch.Tensor]) -> bool:
    has1 = "lokr_w1" in w or ("lokr_w1_a" in w and "lokr_w1_b" in w)
    has2 = "lokr_w2" in w or ("lokr_w2_a" in w and "lokr_w2_b" in w)
    return has1 and has2


def _f(w: Mapping[str, torch.Tensor], key: str) -> Optional[torch.Tensor]:
    t = w.get(key)
    return None if t is None else t.to(torch.float32)


class LokrModule(NetworkModule):
    kind = "lokr"
    weight_independent = True

    def __init__(self, group: str, layer: nn.Module, w: Mapping[str, torch.Tensor]) -> None:
        super().__init__(group, layer, w)
        self.w1, self.w1a, self.w1b = _f(w, "lokr_w1"), _f(w, "lokr_w1_a"), _f(w, "lokr_w1_b")
        self.w2, self.w2a, self.w2b = _f(w, "lokr_w2"), _f(w, "lokr_w2_a"), _f(w, "lokr_w2_b")
        self.t2 = _f(w, "lokr_t2")
        if self.w1b is not None:
            self.dim = int(self.w1b.shape[0])
        if self.w2b is not None:
            self.dim = int(self.w2b.shape[0])

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        w1 = self.w1 if self.w1 is not None else self.w1a @ self.w1b  # type: ignore[operator]
        if self.w2 is not None:
            w2 = self.w2
        elif self.t2 is None:
            w2 = self.w2a @ self.w2b  # type: ignore[operator]
        else:
            w2 = make_weight_cp(self.t2, self.w2a, self.w2b)  # type: ignore[arg-type]
        return w1, w2

    def check_shapes(self, weight_shape: torch.Size) -> None:
        super().check_shapes(weight_shape)
        try:
            w1, w2 = self._factors()
        except RuntimeError as e:
            raise ValueError(f"lokr factors do not chain: {e}") from None
        require(w1.dim() == 2, f"lokr_w1 must be 2-D, got {tuple(w1.shape)}")
        out = w1.shape[0] * w2.shape[0]
        require(out == weight_shape[0] and numel(w1.shape) * numel(w2.shape) == numel(weight_shape),
                f"kron of {tuple(w1.shape)} and {tuple(w2.shape)} does not fit the layer weight {tuple(weight_shape)}")

    def calc_updown(self, weight: torch.Tensor, dyn: Optional[int]):
        w1, w2 = self._factors()
        output_shape = [int(w1.shape[0] * w2.shape[0]), int(w1.shape[1] * w2.shape[1])]
        if weight.dim() == 4:
            output_shape = list(weight.shape)
        if w2.dim() == 4:
            w1 = w1[:, :, None, None]
        return torch.kron(w1, w2.contiguous()).reshape(output_shape), output_shape, None
