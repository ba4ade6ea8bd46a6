"""A1111 v1.10.1's txt2img samplers over any eps model, steppable one model call at a time.

The eps model is any callable `eps(x, t, context) -> eps` (an ldm UNet's signature): `t` is a float tensor
of timesteps per batch row (fractional for the k-diffusion samplers, integral for DDIM), `context` the
cross-attention conditioning [N, tokens, width].

`SamplerState` holds the latent between calls; `step(cond, uncond, cfg_scale)` runs exactly one guided model
call and one update, with the conditioning for that step, because the engine changes conditioning and
network weights between steps. Each sampler is one small update function in the style of k-diffusion's
`sampling.py` (Euler, Euler a, DPM++ 2M) and A1111's `sd_samplers_timesteps_impl.py` (DDIM); the guidance
is A1111's `CFGDenoiser.forward` and the eps wrapper k-diffusion's `CompVisDenoiser`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple, Union

import torch

from .rng import ImageRNG, image_seeds
from .schedules import SCHEDULERS, DiscreteSchedule, ddim_timesteps, k_sigmas

EpsModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# (x [B,...], sigma or timestep per image [B]) -> denoised latent (k-diffusion) or guided eps (DDIM).
Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# A prompt's conditioning: a tensor [tokens, width], [1, tokens, width] (every image) or [B, tokens, width];
# or per image a list of (tensor [tokens, width], weight) AND-parts (A1111's composable prompts).
Cond = Union[torch.Tensor, Sequence[Union[torch.Tensor, Sequence[Tuple[torch.Tensor, float]]]]]
Uncond = Union[torch.Tensor, Sequence[torch.Tensor]]


@dataclass
class SamplerOptions:
    """A1111 settings that change sampling; the defaults are A1111's defaults."""

    eta: Optional[float] = None  # None: A1111's option per sampler (eta_ancestral 1.0, eta_ddim 0.0)
    s_churn: float = 0.0  # Euler only, as in A1111
    s_tmin: float = 0.0
    s_tmax: float = 0.0  # 0 means infinity, as A1111's option
    s_noise: float = 1.0
    sigma_min: float = 0.0  # 0: the model's own smallest sigma (Karras/Exponential)
    sigma_max: float = 0.0
    rho: float = 0.0  # 0: the scheduler's default (Karras 7)
    use_old_karras_scheduler_sigmas: bool = False  # Karras/Exponential between 0.1 and 10
    always_discard_next_to_last_sigma: bool = False
    enable_quantization: bool = False  # timesteps snapped to the nearest discrete sigma
    sgm_noise_multiplier: bool = False
    batch_cond_uncond: bool = True  # one model call of 2B; False: cond and uncond in separate calls
    pad_cond_uncond: bool = False  # pad the shorter of cond/uncond with empty-prompt chunks (needs empty_chunk)
    pad_cond_uncond_v0: bool = False  # pad uncond by repeating its last token vector, or truncate it
    empty_chunk: Optional[torch.Tensor] = None  # conditioning of the empty prompt, [tokens, width] or [1, ...]


@dataclass(frozen=True)
class SamplerSpec:
    name: str
    kind: str  # "k": k-diffusion over sigmas; "timesteps": CompVis DDIM over integer timesteps
    update: Callable[["SamplerState", Denoise], None]
    scheduler: Optional[str]  # what "Automatic" resolves to (A1111 options['scheduler']); None: model sigmas
    eta_default: Optional[float]  # None: the sampler has no eta
    discard_next_to_last_sigma: bool = False


def stack_conds(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack [tokens, width] tensors, padding shorter ones by repeating their last token vector (A1111)."""
    count = max(t.shape[0] for t in tensors)
    padded = [t if t.shape[0] == count else torch.cat([t, t[-1:].repeat(count - t.shape[0], 1)]) for t in tensors]
    return torch.stack(padded)


def _as_2d(t: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 2:
        raise ValueError(f"{what} must have shape [tokens, width], got {tuple(t.shape)}")
    return t


def _batched(t: torch.Tensor, batch: int, what: str) -> torch.Tensor:
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"{what} must have shape [tokens, width] or [batch, tokens, width], got {tuple(t.shape)}")
    if t.shape[0] == 1 and batch != 1:
        t = t.expand(batch, -1, -1)
    elif t.shape[0] != batch:
        raise ValueError(f"{what} has batch {t.shape[0]} but the latent has {batch} images")
    return t


def multicond_batch(cond: Cond, batch: int) -> tuple[list[list[tuple[int, float]]], torch.Tensor]:
    """A1111's `reconstruct_multicond_batch`: per image the (row, weight) of each AND-part, and the stacked rows."""
    if isinstance(cond, torch.Tensor):
        return [[(i, 1.0)] for i in range(batch)], _batched(cond, batch, "cond")
    if len(cond) != batch:
        raise ValueError(f"cond has entries for {len(cond)} images but the latent has {batch}")
    tensors: list[torch.Tensor] = []
    conds_list: list[list[tuple[int, float]]] = []
    for i, parts in enumerate(cond):
        if isinstance(parts, torch.Tensor):
            parts = [(parts, 1.0)]
        if len(parts) == 0:
            raise ValueError(f"cond for image {i} has no parts")
        entry = []
        for j, (t, weight) in enumerate(parts):
            entry.append((len(tensors), float(weight)))
            tensors.append(_as_2d(t, f"cond[{i}][{j}]"))
        conds_list.append(entry)
    return conds_list, stack_conds(tensors)


def uncond_batch(uncond: Uncond, batch: int) -> torch.Tensor:
    if isinstance(uncond, torch.Tensor):
        return _batched(uncond, batch, "uncond")
    if len(uncond) != batch:
        raise ValueError(f"uncond has entries for {len(uncond)} images but the latent has {batch}")
    return stack_conds([_as_2d(t, f"uncond[{i}]") for i, t in enumerate(uncond)])


def _pad_cond_uncond(cond: torch.Tensor, uncond: torch.Tensor, empty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # A1111 `CFGDenoiser.pad_cond_uncond`: whole empty-prompt chunks only; a remainder stays unequal.
    num_repeats = (cond.shape[1] - uncond.shape[1]) // empty.shape[0]
    if num_repeats < 0:
        cond = torch.cat([cond, empty[None].repeat(cond.shape[0], -num_repeats, 1)], dim=1)
    elif num_repeats > 0:
        uncond = torch.cat([uncond, empty[None].repeat(uncond.shape[0], num_repeats, 1)], dim=1)
    return cond, uncond


def _pad_cond_uncond_v0(cond: torch.Tensor, uncond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # A1111 `CFGDenoiser.pad_cond_uncond_v0` (DDIM's padding before 1.6.0): only uncond changes.
    if uncond.shape[1] < cond.shape[1]:
        uncond = torch.cat([uncond, uncond[:, -1:].repeat(1, cond.shape[1] - uncond.shape[1], 1)], dim=1)
    elif uncond.shape[1] > cond.shape[1]:
        uncond = uncond[:, : cond.shape[1]]
    return cond, uncond


def cfg_denoise(
    inner: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    sigma: torch.Tensor,
    cond: Cond,
    uncond: Uncond,
    cfg_scale: float,
    options: SamplerOptions,
    parts_out: Optional[dict] = None,
    before_model: Optional[Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None]] = None,
) -> torch.Tensor:
    """A1111 `CFGDenoiser.forward` for txt2img: cond rows then uncond rows through `inner`, then the weighted mix.

    `parts_out`, when given, receives "cond" (the AND-parts mixed at scale 1, i.e. the positive prediction) and
    "uncond" (the negative prediction) per image, for after-CFG hooks such as CFG rescale.

    `before_model`, when given, is A1111's `on_cfg_denoiser`: it gets copies of x [batch, c, h, w], the stacked
    AND-part rows [rows, tokens, width] and the uncond rows [batch, tokens, width] and may change them in place before
    the model sees them (copies, so the sampler's latent and the cached conditionings stay as they are).

    Equal token lengths go through one call of all rows (batch_cond_uncond); unequal lengths, as in A1111
    with its default options, run the cond rows and the uncond rows in separate calls. CFG 1 still runs uncond.
    """
    batch = x.shape[0]
    conds_list, tensor = multicond_batch(cond, batch)
    uncond_t = uncond_batch(uncond, batch)
    tensor = tensor.to(x.device)
    uncond_t = uncond_t.to(x.device)
    if tensor.shape[2] != uncond_t.shape[2]:
        raise ValueError(f"cond width {tensor.shape[2]} differs from uncond width {uncond_t.shape[2]}")
    if before_model is not None:
        x, tensor, uncond_t = x.clone(), tensor.clone(), uncond_t.clone()
        shapes = (x.shape, tensor.shape, uncond_t.shape)
        before_model(x, sigma, tensor, uncond_t)
        if (x.shape, tensor.shape, uncond_t.shape) != shapes:
            raise ValueError(f"a before-model-call hook changed the shapes {[tuple(t) for t in shapes]}; "
                             "change the tensors in place, keeping their shapes")

    repeats = [len(c) for c in conds_list]
    x_in = torch.cat([x[i].expand(n, *x.shape[1:]) for i, n in enumerate(repeats)] + [x])
    sigma_in = torch.cat([sigma[i].expand(n) for i, n in enumerate(repeats)] + [sigma])

    if tensor.shape[1] != uncond_t.shape[1]:
        if options.pad_cond_uncond_v0:
            tensor, uncond_t = _pad_cond_uncond_v0(tensor, uncond_t)
        elif options.pad_cond_uncond:
            if options.empty_chunk is None:
                raise ValueError("pad_cond_uncond needs SamplerOptions.empty_chunk (the empty prompt's conditioning)")
            empty = _as_2d(options.empty_chunk, "empty_chunk").to(device=x.device, dtype=tensor.dtype)
            tensor, uncond_t = _pad_cond_uncond(tensor, uncond_t, empty)

    if tensor.shape[1] == uncond_t.shape[1]:
        cond_in = torch.cat([tensor, uncond_t.to(tensor.dtype)])
        if options.batch_cond_uncond:
            x_out = inner(x_in, sigma_in, cond_in)
        else:
            x_out = torch.zeros_like(x_in)
            for a in range(0, x_out.shape[0], batch):
                x_out[a : a + batch] = inner(x_in[a : a + batch], sigma_in[a : a + batch], cond_in[a : a + batch])
    else:
        x_out = torch.zeros_like(x_in)
        size = batch * 2 if options.batch_cond_uncond else batch
        for a in range(0, tensor.shape[0], size):
            b = min(a + size, tensor.shape[0])
            x_out[a:b] = inner(x_in[a:b], sigma_in[a:b], tensor[a:b])
        x_out[-batch:] = inner(x_in[-batch:], sigma_in[-batch:], uncond_t)

    denoised_uncond = x_out[-batch:]
    denoised = denoised_uncond.clone()
    for i, parts in enumerate(conds_list):
        for row, weight in parts:
            denoised[i] += (x_out[row] - denoised_uncond[i]) * (weight * cfg_scale)
    if parts_out is not None:
        positive = denoised_uncond.clone()
        for i, parts in enumerate(conds_list):
            for row, weight in parts:
                positive[i] += (x_out[row] - denoised_uncond[i]) * weight
        parts_out["cond"] = positive
        parts_out["uncond"] = denoised_uncond.clone()
    return denoised


def _append_dims(t: torch.Tensor, ndim: int) -> torch.Tensor:
    return t[(...,) + (None,) * (ndim - t.ndim)]


def compvis_denoiser(
    model: EpsModel, schedule: DiscreteSchedule, quantize: bool = False
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """k-diffusion `CompVisDenoiser`: denoised = x - sigma * eps(x / sqrt(sigma^2 + 1), t(sigma))."""

    def inner(x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        c_out = _append_dims(-sigma, x.ndim)
        c_in = _append_dims(1 / (sigma**2 + 1.0**2) ** 0.5, x.ndim)
        eps = model(x * c_in, schedule.sigma_to_t(sigma, quantize), context)
        return x + eps * c_out

    return inner


# ---- sampler updates: one model call each; `st.i` is the index of the call being made ----


def _to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    return (x - denoised) / sigma


def _euler(st: "SamplerState", denoise: Denoise) -> None:
    sigmas, i, o = st.sigmas, st.i, st.options
    s_tmax = o.s_tmax or float("inf")
    gamma = min(o.s_churn / (len(sigmas) - 1), 2**0.5 - 1) if o.s_tmin <= sigmas[i] <= s_tmax else 0.0
    # k-diffusion draws this even when gamma is 0, so the stream advances once per step regardless.
    eps = st.draw() * o.s_noise
    sigma_hat = sigmas[i] * (gamma + 1)
    if gamma > 0:
        st.x = st.x + eps * (sigma_hat**2 - sigmas[i] ** 2) ** 0.5
    denoised = denoise(st.x, sigma_hat * st.s_in)
    st.denoised = denoised
    st.x = st.x + _to_d(st.x, sigma_hat, denoised) * (sigmas[i + 1] - sigma_hat)


def _ancestral_step(sigma_from: torch.Tensor, sigma_to: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
    if not eta:
        return sigma_to, torch.zeros_like(sigma_to)
    sigma_up = min(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


def _euler_ancestral(st: "SamplerState", denoise: Denoise) -> None:
    sigmas, i = st.sigmas, st.i
    denoised = denoise(st.x, sigmas[i] * st.s_in)
    st.denoised = denoised
    sigma_down, sigma_up = _ancestral_step(sigmas[i], sigmas[i + 1], st.eta)
    st.x = st.x + _to_d(st.x, sigmas[i], denoised) * (sigma_down - sigmas[i])
    if sigmas[i + 1] > 0:
        # A1111 passes no s_noise to Euler a, so k-diffusion's default 1 applies.
        st.x = st.x + st.draw() * 1.0 * sigma_up


def _dpmpp_2m(st: "SamplerState", denoise: Denoise) -> None:
    sigmas, i = st.sigmas, st.i
    denoised = denoise(st.x, sigmas[i] * st.s_in)
    t, t_next = sigmas[i].log().neg(), sigmas[i + 1].log().neg()
    h = t_next - t
    ratio = t_next.neg().exp() / t.neg().exp()
    if st.old_denoised is None or sigmas[i + 1] == 0:
        st.x = ratio * st.x - (-h).expm1() * denoised
    else:
        h_last = t - sigmas[i - 1].log().neg()
        r = h_last / h
        denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * st.old_denoised
        st.x = ratio * st.x - (-h).expm1() * denoised_d
    st.old_denoised = denoised
    st.denoised = denoised


def _ddim(st: "SamplerState", denoise: Denoise) -> None:
    index = len(st.timesteps) - 1 - st.i
    x = st.x
    e_t = denoise(x, int(st.timesteps[index].item()) * st.s_in)
    # A1111 takes each coefficient through .item() and a float32 ones tensor, i.e. rounds it to float32.
    s_x = x.new_ones((x.shape[0], 1, 1, 1))
    a_t = st.ddim_alphas[index].item() * s_x
    a_prev = st.ddim_alphas_prev[index].item() * s_x
    sigma_t = st.ddim_sigmas[index].item() * s_x
    sqrt_one_minus_at = st.ddim_sqrt_one_minus_alphas[index].item() * s_x
    pred_x0 = (x - sqrt_one_minus_at * e_t) / a_t.sqrt()
    dir_xt = (1.0 - a_prev - sigma_t**2).sqrt() * e_t
    noise = sigma_t * st.draw()
    st.x = a_prev.sqrt() * pred_x0 + dir_xt + noise
    st.denoised = pred_x0


SAMPLERS: dict[str, SamplerSpec] = {
    s.name: s
    for s in (
        SamplerSpec("Euler", "k", _euler, None, None),
        SamplerSpec("Euler a", "k", _euler_ancestral, None, 1.0),
        SamplerSpec("DPM++ 2M", "k", _dpmpp_2m, "Karras", None),
        SamplerSpec("DDIM", "timesteps", _ddim, None, 0.0),
    )
}


def get_sampler(name: str) -> SamplerSpec:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}") from None


class SamplerState:
    """One txt2img sampling run over an `ImageRNG`, advanced one model call at a time.

    `total` is the number of `step` calls (model calls) the run needs: steps for the k-diffusion samplers,
    len(timesteps) - 1 for DDIM (0 at 1 step, where the result is the noise). `i` counts the calls made.
    """

    def __init__(
        self,
        sampler: str,
        model: EpsModel,
        rng: ImageRNG,
        steps: int,
        *,
        scheduler: str = "Automatic",
        alphas_cumprod: Optional[torch.Tensor] = None,
        options: Optional[SamplerOptions] = None,
    ) -> None:
        self.spec = get_sampler(sampler)
        if scheduler not in SCHEDULERS:
            raise ValueError(f"unknown schedule type {scheduler!r}; expected one of {', '.join(SCHEDULERS)}")
        if not rng.is_first:
            raise ValueError("the ImageRNG has already produced its initial noise; give the sampler a fresh one")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        self.model = model
        self.rng = rng
        self.steps = steps
        self.options = options or SamplerOptions()
        self.schedule = DiscreteSchedule(alphas_cumprod)
        self.eta = 0.0
        if self.spec.eta_default is not None:
            self.eta = self.spec.eta_default if self.options.eta is None else float(self.options.eta)
        discard = self.spec.discard_next_to_last_sigma or self.options.always_discard_next_to_last_sigma

        self.noise = rng.next()
        self.i = 0
        # Called inside the guided denoiser right after the CFG combine, before the sampler update uses the result
        # (A1111's on_cfg_after_cfg): hook(denoised, sigma, parts) may change `denoised` in place; `parts` holds the
        # positive ("cond") and negative ("uncond") predictions it was mixed from. None: no call at all.
        self.after_cfg: Optional[Callable[[torch.Tensor, torch.Tensor, dict], None]] = None
        # Called inside the guided denoiser before the model call (A1111's on_cfg_denoiser): hook(x, sigma, cond, uncond)
        # on copies it may change in place (see cfg_denoise). None: no call at all.
        self.before_model: Optional[Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], None]] = None
        self.denoised: Optional[torch.Tensor] = None
        self.old_denoised: Optional[torch.Tensor] = None
        self.s_in = self.noise.new_ones([self.noise.shape[0]])
        self.sigmas: Optional[torch.Tensor] = None
        self.timesteps: Optional[torch.Tensor] = None

        if self.spec.kind == "k":
            # "Automatic" means the sampler's own preference; A1111 records the resolved one as "Schedule type".
            self.schedule_type = self.spec.scheduler if scheduler == "Automatic" else scheduler
            o = self.options
            self.sigmas = k_sigmas(
                self.schedule, steps, self.schedule_type,
                sigma_min=o.sigma_min, sigma_max=o.sigma_max, rho=o.rho, discard_next_to_last_sigma=discard,
                old_karras_sigmas=o.use_old_karras_scheduler_sigmas,
            )
            if o.sgm_noise_multiplier:
                self.x = self.noise * torch.sqrt(1.0 + self.sigmas[0] ** 2.0)
            else:
                self.x = self.noise * self.sigmas[0]
            self.total = len(self.sigmas) - 1
        else:
            # DDIM ignores the schedule type (A1111 `CompVisSampler.get_timesteps`).
            self.schedule_type = None
            self._set_timesteps(ddim_timesteps(steps, discard_next_to_last_sigma=discard))
            self.x = self.noise

    def _set_timesteps(self, ts: torch.Tensor) -> None:
        """DDIM's coefficients for the timesteps it walks (A1111 `ddim` computes them from the list it gets)."""
        ac = self.schedule.alphas_cumprod
        self.timesteps = ts
        self.ddim_alphas = ac[ts]
        self.ddim_alphas_prev = ac[torch.nn.functional.pad(ts[:-1], (1, 0))].to(torch.float64)
        self.ddim_sqrt_one_minus_alphas = torch.sqrt(1 - self.ddim_alphas)
        a64 = self.ddim_alphas.to(torch.float64)
        self.ddim_sigmas = self.eta * torch.sqrt(
            (1 - self.ddim_alphas_prev) / (1 - self.ddim_alphas).to(torch.float64) * (1 - a64 / self.ddim_alphas_prev)
        )
        self.total = max(len(ts) - 1, 0)

    def start_img2img(self, init_latent: torch.Tensor, t_enc: int) -> None:
        """Turns a fresh state built for the full schedule into A1111's `sample_img2img` from `init_latent`.

        k-diffusion: keep `sigmas[steps - t_enc - 1:]` and start at init + noise * sigma; t_enc + 1 calls.
        DDIM: walk `timesteps[:t_enc]` from init noised to `timesteps[t_enc]`; t_enc - 1 calls (the first at
        `timesteps[t_enc - 1]`, as A1111 does). The noise is the seed noise this state already drew.
        """
        if self.i != 0:
            raise RuntimeError("start_img2img needs a state that has not stepped yet")
        init = init_latent.to(device=self.noise.device, dtype=self.noise.dtype)
        if init.shape != self.noise.shape:
            raise ValueError(f"init latent has shape {tuple(init.shape)}, the noise {tuple(self.noise.shape)}")
        if self.sigmas is not None:
            n = len(self.sigmas) - 1
            if not 0 <= t_enc < n:
                raise ValueError(f"t_enc {t_enc} is outside [0, {n - 1}] for {n} steps")
            self.sigmas = self.sigmas[n - t_enc - 1:]
            self.x = init + self.noise * self.sigmas[0]
            self.total = len(self.sigmas) - 1
        else:
            ts = self.timesteps
            if not 0 <= t_enc < len(ts):
                raise ValueError(f"t_enc {t_enc} is outside [0, {len(ts) - 1}] for {len(ts)} DDIM timesteps")
            a_t = self.schedule.alphas_cumprod[ts[t_enc]]
            self.x = init * torch.sqrt(a_t) + self.noise * torch.sqrt(1 - a_t)
            self._set_timesteps(ts[:t_enc])

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def done(self) -> bool:
        return self.i >= self.total

    def draw(self) -> torch.Tensor:
        """The next per-image draw of the run's RNG (what A1111 substitutes for k-diffusion's randn_like)."""
        return self.rng.next().to(device=self.x.device, dtype=self.x.dtype)

    def current_sigma(self) -> float:
        """Noise level of the call about to be made (sigma, or the DDIM timestep)."""
        if self.done:
            raise IndexError(f"{self.name}: all {self.total} steps are done")
        if self.sigmas is not None:
            return self.sigmas[self.i].item()
        return float(self.timesteps[len(self.timesteps) - 1 - self.i].item())

    def denoiser(self, cond: Cond, uncond: Uncond, cfg_scale: float) -> Denoise:
        """The guided denoiser for this step's conditioning."""
        if self.spec.kind == "k":
            inner = compvis_denoiser(self.model, self.schedule, self.options.enable_quantization)
        else:
            inner = self.model
        options = self.options
        hook = getattr(self, "after_cfg", None)
        before = getattr(self, "before_model", None)
        if hook is None and before is None:
            return lambda x, sigma: cfg_denoise(inner, x, sigma, cond, uncond, float(cfg_scale), options)

        def guided(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            parts: Optional[dict] = {} if hook is not None else None
            denoised = cfg_denoise(inner, x, sigma, cond, uncond, float(cfg_scale), options, parts, before)
            if hook is not None:
                hook(denoised, sigma, parts)
            return denoised

        return guided

    def advance(self, denoise: Denoise) -> None:
        """One update with a given denoiser (the guided model for `step`; any callable for tests and hooks)."""
        if self.done:
            raise RuntimeError(f"{self.name}: all {self.total} steps are done; start a new SamplerState")
        with torch.no_grad():
            self.spec.update(self, denoise)
        self.i += 1

    def step(self, cond: Cond, uncond: Uncond, cfg_scale: float) -> None:
        """One guided model call with this step's prompt and negative-prompt conditioning."""
        self.advance(self.denoiser(cond, uncond, cfg_scale))

    def run(self, cond: Cond, uncond: Uncond, cfg_scale: float) -> torch.Tensor:
        """All remaining steps with fixed conditioning; returns the final latent."""
        while not self.done:
            self.step(cond, uncond, cfg_scale)
        return self.x


def sample(
    model: EpsModel,
    sampler: str,
    steps: int,
    cond: Cond,
    uncond: Uncond,
    cfg_scale: float,
    *,
    seed: int,
    batch_size: int = 1,
    width: int = 512,
    height: int = 512,
    randn_source: str = "GPU",
    device: Union[torch.device, str] = "cpu",
    eta_noise_seed_delta: int = 0,
    scheduler: str = "Automatic",
    alphas_cumprod: Optional[torch.Tensor] = None,
    options: Optional[SamplerOptions] = None,
    latent_channels: int = 4,
) -> torch.Tensor:
    """A whole txt2img first pass as A1111 runs it: image i seeded with seed + i; returns the final latent."""
    if width % 8 or height % 8 or width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive multiples of 8, got {width}x{height}")
    rng = ImageRNG(
        (latent_channels, height // 8, width // 8),
        image_seeds(seed, batch_size),
        source=randn_source,
        device=device,
        eta_noise_seed_delta=eta_noise_seed_delta,
    )
    state = SamplerState(sampler, model, rng, steps, scheduler=scheduler, alphas_cumprod=alphas_cumprod, options=options)
    return state.run(cond, uncond, cfg_scale)


def infotext_params(state: SamplerState) -> dict[str, str]:
    """Sampler-related infotext entries A1111 writes for this run (beyond Steps/Sampler/CFG/Seed)."""
    params: dict[str, str] = {}
    if state.spec.kind == "k" and state.schedule_type is not None:
        params["Schedule type"] = state.schedule_type
    if state.spec.eta_default is not None and not math.isclose(state.eta, state.spec.eta_default):
        params["Eta DDIM" if state.spec.kind == "timesteps" else "Eta"] = str(float(state.eta))
    return params
