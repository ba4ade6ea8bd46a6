"""LoRA and LoCon (``lora_up``/``lora_down``, PEFT ``lora_A``/``lora_B``, CP ``lora_mid``) —
A1111 ``network_lora.py`` + ``lyco_helpers.rebuild_conventional``/``rebuild_cp_decomposition``."""
from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from .base import NetworkModule, UnsupportedNetworkError, numel, require


def accepts(w: Mapping[str, torch.Tensor]) -> bool:
    return ("lora_up.weight" in w and "lora_down.weight" in w) or ("lora_A.weight" in w and "lora_B.weight" in w)


class LoraModule(NetworkModule):
    kind = "lora"
    weight_independent = True

    def __init__(self, group: str, layer: nn.Module, w: Mapping[str, torch.Tensor]) -> None:
        super().__init__(group, layer, w)
        up = w.get("lora_up.weight", w.get("lora_B.weight"))
        down = w.get("lora_down.weight", w.get("lora_A.weight"))
        assert up is not None and down is not None
        mid = w.get("lora_mid.weight")
        if type(layer) is nn.Linear:
            up, down = up.reshape(up.shape[0], -1), down.reshape(down.shape[0], -1)
            mid = None if mid is None else mid.reshape(mid.shape[0], -1)
        elif type(layer) is nn.Conv2d:
            # A1111 turns each factor into a conv: a 2-D down becomes [r, in, 1, 1], up is always 1x1.
            if down.dim() == 2:
                down = down.reshape(down.shape[0], -1, 1, 1)
            up = up.reshape(up.shape[0], -1, 1, 1)
        else:
            raise UnsupportedNetworkError(
                f"Lora layer {group} matched a layer with unsupported type: {type(layer).__name__}")
        self.up = up.to(torch.float32)
        self.down = down.to(torch.float32)
        self.mid = None if mid is None else mid.to(torch.float32)
        self.dim = int(self.down.shape[0])
        self.up2 = self.up.reshape(self.up.shape[0], -1).contiguous()
        self.down2 = self.down.reshape(self.down.shape[0], -1).contiguous()

    def stacked_factors(self, multiplier: float, dyn: Optional[int]) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """(up·scale·m [out, r], down [r, in]) for merging several plain LoRAs of one layer in one GEMM, or None
        when this module needs its own route (CP mid, DoRA, bias)."""
        if self.mid is not None or self.dora_scale is not None or self.bias is not None:
            return None
        up2, down2 = self.up2, self.down2
        if dyn is not None:
            up2, down2 = up2[:, :dyn], down2[:dyn, :]
        return up2 * (self.calc_scale() * multiplier), down2

    def add_into(self, weight: torch.Tensor, multiplier: float, dyn: Optional[int]) -> bool:
        """W += (scale·m)·up@down as one GEMM (no full-size temporaries). A1111 rounds (up@down)·scale·m
        in three steps; the difference is a rounding of the update, far inside the conformance tolerance."""
        if self.mid is not None or self.dora_scale is not None or self.bias is not None or not weight.is_contiguous():
            return False
        up2, down2 = self.up2, self.down2
        if dyn is not None:
            up2, down2 = up2[:, :dyn], down2[:dyn, :]
        weight.view(up2.shape[0], -1).addmm_(up2, down2, alpha=self.calc_scale() * multiplier)
        return True

    def check_shapes(self, weight_shape: torch.Size) -> None:
        super().check_shapes(weight_shape)
        up2 = self.up.reshape(self.up.shape[0], -1)
        down2 = self.down.reshape(self.down.shape[0], -1)
        if self.mid is not None:
            require(self.mid.dim() == 4 and up2.shape[1] == self.mid.shape[0] and down2.shape[0] == self.mid.shape[1],
                    f"lora_up {tuple(self.up.shape)}, lora_mid {tuple(self.mid.shape)} and lora_down "
                    f"{tuple(self.down.shape)} do not chain")
            out = [up2.shape[0], down2.shape[1], *self.mid.shape[2:]]
        else:
            require(up2.shape[1] == down2.shape[0],
                    f"lora_up {tuple(self.up.shape)} and lora_down {tuple(self.down.shape)} have different ranks")
            out = [up2.shape[0], down2.shape[1]]
        require(out[0] == weight_shape[0] and numel(out) == numel(weight_shape),
                f"lora update of shape {tuple(out)} does not fit the layer weight {tuple(weight_shape)}")

    def calc_updown(self, weight: torch.Tensor, dyn: Optional[int]):
        up, down = self.up, self.down
        output_shape = [int(up.shape[0]), int(down.shape[1])]
        up2 = up.reshape(up.shape[0], -1)
        down2 = down.reshape(down.shape[0], -1)
        if self.mid is not None:
            # dyn does not apply to the CP form (A1111 passes it only to rebuild_conventional).
            updown = torch.einsum("nmkl,in,mj->ijkl", self.mid, up2, down2)
            output_shape += list(self.mid.shape[2:])
        else:
            if down.dim() == 4:
                output_shape += list(down.shape[2:])
            if dyn is not None:
                up2, down2 = up2[:, :dyn], down2[:dyn, :]
            updown = (up2 @ down2).reshape(output_shape)
        return updown, output_shape, None
