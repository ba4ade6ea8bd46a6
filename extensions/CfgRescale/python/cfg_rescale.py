"""φ-rescale of the CFG output (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", §3.4)."""
from __future__ import annotations

import torch


def rescale(denoised: torch.Tensor, cond: torch.Tensor, phi: float) -> None:
    """In place: denoised ← φ · denoised · std(cond) / std(denoised) + (1 − φ) · denoised, per image.

    φ = 0 leaves every element as it was (0 · finite = 0 and 1 · x = x exactly), so the image equals one made
    without the extension.
    """
    dims = tuple(range(1, denoised.dim()))
    std_pos = cond.std(dim=dims, keepdim=True)
    std_cfg = denoised.std(dim=dims, keepdim=True)
    # A flat prediction (std 0) has nothing to rescale.
    factor = torch.where(std_cfg > 0, std_pos / std_cfg.clamp_min(torch.finfo(std_cfg.dtype).tiny), torch.ones_like(std_cfg))
    denoised.copy_(float(phi) * (denoised * factor) + (1.0 - float(phi)) * denoised)
