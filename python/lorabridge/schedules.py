"""Noise schedules as A1111 v1.10.1 computes them for SD1 eps models.

Model sigmas come from `alphas_cumprod` (k-diffusion `DiscreteEpsDDPMDenoiser`); sampler sigmas from
`KDiffusionSampler.get_sigmas` (Automatic/Uniform = k-diffusion `DiscreteSchedule.get_sigmas`, Karras =
`get_sigmas_karras` between the model's own extreme sigmas); DDIM timesteps from `CompVisSampler.get_timesteps`.
Everything is float32 on CPU, as A1111 returns it; the sampler moves what it needs.
"""
from __future__ import annotations

import math

import torch

NUM_TRAIN_TIMESTEPS = 1000
# Schedule type names as A1111's UI shows them. "Automatic" is resolved per sampler (see samplers.py).
SCHEDULERS = ("Automatic", "Uniform", "Karras", "Exponential")


def default_alphas_cumprod(
    linear_start: float = 0.00085, linear_end: float = 0.012, timesteps: int = NUM_TRAIN_TIMESTEPS
) -> torch.Tensor:
    """ldm `DDPM.register_schedule` for SD1: betas linear in sqrt, cumprod in float64, stored as float32."""
    betas = torch.linspace(linear_start**0.5, linear_end**0.5, timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).to(torch.float32)


def _check_alphas_cumprod(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    ac = torch.as_tensor(alphas_cumprod).detach().to("cpu", torch.float32)
    if ac.ndim != 1 or ac.numel() < 2:
        raise ValueError(f"alphas_cumprod must be a 1-D tensor with at least 2 entries, got shape {tuple(ac.shape)}")
    if not bool(((ac > 0) & (ac < 1)).all()):
        raise ValueError("alphas_cumprod must lie strictly between 0 and 1 (a zero-terminal-SNR schedule is not supported)")
    return ac


class DiscreteSchedule:
    """The model's discrete sigmas and the continuous t <-> sigma maps of k-diffusion's `DiscreteSchedule`."""

    def __init__(self, alphas_cumprod: torch.Tensor | None = None) -> None:
        ac = default_alphas_cumprod() if alphas_cumprod is None else _check_alphas_cumprod(alphas_cumprod)
        self.alphas_cumprod = ac
        self.sigmas = ((1 - ac) / ac) ** 0.5
        self.log_sigmas = self.sigmas.log()
        self._log_sigmas_on: dict[torch.device, torch.Tensor] = {self.log_sigmas.device: self.log_sigmas}

    @property
    def sigma_min(self) -> float:
        return self.sigmas[0].item()

    @property
    def sigma_max(self) -> float:
        return self.sigmas[-1].item()

    def _log_sigmas(self, device: torch.device) -> torch.Tensor:
        if device not in self._log_sigmas_on:
            self._log_sigmas_on[device] = self.log_sigmas.to(device)
        return self._log_sigmas_on[device]

    def sigma_to_t(self, sigma: torch.Tensor, quantize: bool = False) -> torch.Tensor:
        """Fractional timestep, linear in log sigma between neighbouring discrete sigmas, clamped to the table.

        `quantize` (A1111's enable_quantization) returns the index of the nearest discrete sigma instead.
        """
        log_sigmas = self._log_sigmas(sigma.device)
        log_sigma = sigma.log()
        dists = log_sigma - log_sigmas[:, None]
        if quantize:
            return dists.abs().argmin(dim=0).view(sigma.shape)
        low_idx = dists.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=log_sigmas.shape[0] - 2)
        high_idx = low_idx + 1
        low, high = log_sigmas[low_idx], log_sigmas[high_idx]
        w = ((low - log_sigma) / (low - high)).clamp(0, 1)
        t = (1 - w) * low_idx + w * high_idx
        return t.view(sigma.shape)

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        t = t.float()
        log_sigmas = self._log_sigmas(t.device)
        low_idx, high_idx, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * log_sigmas[low_idx] + w * log_sigmas[high_idx]).exp()

    def get_sigmas(self, n: int) -> torch.Tensor:
        """Uniform in t from the last training step to 0, then a final 0 (A1111 "Automatic"/"Uniform")."""
        t = torch.linspace(len(self.sigmas) - 1, 0, n)
        return append_zero(self.t_to_sigma(t))


def append_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x.new_zeros([1])])


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022) ramp, k-diffusion `get_sigmas_karras` (float32 ramp, float64 endpoints)."""
    ramp = torch.linspace(0, 1, n)
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    return append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def exponential_sigmas(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """k-diffusion `get_sigmas_exponential`: uniform in log sigma."""
    return append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp())


def k_sigmas(
    schedule: DiscreteSchedule,
    steps: int,
    scheduler: str | None,
    *,
    sigma_min: float = 0.0,
    sigma_max: float = 0.0,
    rho: float = 0.0,
    discard_next_to_last_sigma: bool = False,
    old_karras_sigmas: bool = False,
) -> torch.Tensor:
    """`KDiffusionSampler.get_sigmas` for an already resolved schedule type (None or "Uniform" = the model's own).

    `sigma_min`, `sigma_max` and `rho` are A1111's options of the same names: 0 keeps the default (the model's
    extreme sigmas, rho 7); they apply to Karras and Exponential only, as in A1111. `old_karras_sigmas`
    (A1111's use_old_karras_scheduler_sigmas) makes the default range 0.1..10 instead of the model's.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    n = steps + 1 if discard_next_to_last_sigma else steps
    if scheduler in (None, "Uniform"):
        sigmas = schedule.get_sigmas(n)
    elif scheduler in ("Karras", "Exponential"):
        lo, hi = (0.1, 10.0) if old_karras_sigmas else (schedule.sigma_min, schedule.sigma_max)
        # A1111 ignores an override equal to the model's own value, even with the old 0.1..10 range.
        lo = sigma_min if sigma_min not in (0, schedule.sigma_min) else lo
        hi = sigma_max if sigma_max not in (0, schedule.sigma_max) else hi
        if scheduler == "Karras":
            sigmas = karras_sigmas(n, lo, hi, rho if rho != 0 else 7.0)
        else:
            sigmas = exponential_sigmas(n, lo, hi)
    else:
        raise ValueError(f"unknown schedule type {scheduler!r}; expected one of {', '.join(SCHEDULERS)}")
    if discard_next_to_last_sigma:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas


def ddim_timesteps(steps: int, *, discard_next_to_last_sigma: bool = False) -> torch.Tensor:
    """`CompVisSampler.get_timesteps`: every (1000 // steps)-th training step, shifted by one (int64).

    The list can be longer than `steps` when steps does not divide 1000 (7 steps give 8 timesteps).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if discard_next_to_last_sigma:
        steps += 1
    if steps > NUM_TRAIN_TIMESTEPS:
        raise ValueError(f"DDIM supports at most {NUM_TRAIN_TIMESTEPS} steps, got {steps}")
    stride = NUM_TRAIN_TIMESTEPS // steps
    return torch.clip(torch.arange(0, NUM_TRAIN_TIMESTEPS, stride, dtype=torch.int64) + 1, 0, NUM_TRAIN_TIMESTEPS - 1)
