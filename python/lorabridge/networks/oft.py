"""OFT and BOFT (``oft_blocks`` 3-D / 4-D, old LyCORIS ``oft_diag``, optional ``rescale``) —
A1111 v1.10.1 ``network_oft.py``.

* Q = B − Bᵀ; when alpha ≠ 0 its Frobenius norm is clamped to alpha·out_dim; R = (I+Q)(I−Q)⁻¹ (inverse in
  float32). ``oft_diag`` is used as R directly (no Cayley transform, no constraint).
* OFT: per block of consecutive output rows, merged = Rᵀ·W_block. BOFT: stage i permutes the rows
  ``(c g k) → (c k g)`` with g = 2, k = 2^i·b/2, multiplies each block by R[i] (not transposed), permutes back.
* ΔW = m·(rescale·merged − W); the scale is forced to 1, so the multiplier blends linearly as in kohya.
"""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from .base import NetworkModule, UnsupportedNetworkError, require


def accepts(w: Mapping[str, torch.Tensor]) -> bool:
    return "oft_blocks" in w or "oft_diag" in w


def _regroup(x: torch.Tensor, outer: int, a: int, b: int) -> torch.Tensor:
    """Rows ``(c a b) → (c b a)`` (einops notation), trailing dims kept."""
    rest = x.shape[1:]
    return x.reshape(outer, a, b, *rest).transpose(1, 2).reshape(outer * a * b, *rest)


class OftModule(NetworkModule):
    kind = "oft"

    def __init__(self, group: str, layer: nn.Module, w: Mapping[str, torch.Tensor]) -> None:
        super().__init__(group, layer, w)
        self.scale = 1.0
        if type(layer) is nn.Linear:
            self.out_dim = layer.out_features
        elif type(layer) is nn.Conv2d:
            self.out_dim = layer.out_channels
        else:
            # A1111 fails with AttributeError (no out_dim) while creating the module: network not loaded.
            raise UnsupportedNetworkError(f"OFT layer {group} matched a layer with unsupported type: {type(layer).__name__}")
        self.is_r = "oft_blocks" not in w
        blocks = w["oft_diag"] if self.is_r else w["oft_blocks"]
        self.blocks = blocks.to(torch.float32)
        self.is_boft = self.blocks.dim() == 4
        alpha = w.get("alpha")
        # A1111 computes alpha·out_dim in the stored dtype (fp16 rounding included); as a Python float it is
        # the same float32 bound for the clamp, and it needs no device.
        self.constraint: Optional[float] = (None if self.is_r or alpha is None
                                            else float((alpha * self.out_dim).item()))
        rescale = w.get("rescale")
        self.rescale = None if rescale is None else rescale.to(torch.float32).reshape(
            -1, *[1] * (layer.weight.dim() - 1))
        if self.is_r:
            self.block_size = int(self.blocks.shape[1])
            self.num_blocks = self.out_dim // self.block_size
        elif self.is_boft:
            self.boft_m = int(self.blocks.shape[0])
            self.num_blocks = int(self.blocks.shape[1])
            self.block_size = int(self.blocks.shape[2])
        else:
            self.num_blocks = int(self.blocks.shape[0])
            self.block_size = self.out_dim // self.num_blocks

    def check_shapes(self, weight_shape: torch.Size) -> None:
        super().check_shapes(weight_shape)
        b = self.block_size
        require(self.blocks.shape[-1] == self.blocks.shape[-2] == b and self.num_blocks * b == self.out_dim,
                f"OFT blocks of shape {tuple(self.blocks.shape)} do not tile {self.out_dim} output rows")
        if not self.is_boft:
            require(self.blocks.shape[0] == self.num_blocks,
                    f"OFT blocks of shape {tuple(self.blocks.shape)} do not tile {self.out_dim} output rows")
        else:
            for i in range(self.boft_m):
                require(b % 2 == 0 and self.out_dim % (2 * (2 ** i) * (b // 2)) == 0,
                        f"BOFT blocks of shape {tuple(self.blocks.shape)} do not fit {self.out_dim} output rows")
        if self.rescale is not None:
            require(self.rescale.shape[0] == self.out_dim,
                    f"rescale of {self.rescale.shape[0]} rows does not fit {self.out_dim} output rows")

    def rotation(self) -> torch.Tensor:
        blocks = self.blocks
        if self.is_r:
            return blocks
        eye = torch.eye(self.block_size, device=blocks.device)
        q = blocks - blocks.transpose(-1, -2)
        if self.constraint is not None and self.constraint != 0:
            norm_q = torch.norm(q.flatten())
            new_norm = torch.clamp(norm_q, max=self.constraint)
            q = q * ((new_norm + 1e-8) / (norm_q + 1e-8))
        return torch.matmul(eye + q, (eye - q).float().inverse())

    def calc_updown(self, weight: torch.Tensor, dyn: Optional[int]):
        r = self.rotation()
        if not self.is_boft:
            wb = weight.reshape(self.num_blocks, self.block_size, *weight.shape[1:])
            merged = torch.einsum("knm,kn...->km...", r, wb).reshape(weight.shape)
        else:
            b, half = self.block_size, self.block_size // 2
            rows = weight.shape[0]
            x = weight
            for i in range(self.boft_m):
                k = (2 ** i) * half
                x = _regroup(x, rows // (2 * k), 2, k)
                xb = x.reshape(rows // b, b, *x.shape[1:])
                x = torch.einsum("dij,dj...->di...", r[i], xb).reshape(weight.shape)
                x = _regroup(x, rows // (2 * k), k, 2)
            merged = x
        if self.rescale is not None:
            merged = self.rescale * merged
        return merged - weight, list(weight.shape), None
