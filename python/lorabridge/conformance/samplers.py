"""Samplers conformance harness: txt2img first passes of a sampler manifest through LoraBridge's own code.

For the manifest's model: load the weights file with `checkpoint.load_state_dict`, build the UNet from the
weights alone (`model.StableDiffusion`), check the inferred configuration against the manifest's (read only
for that). For each case: seeds seed+i, the case's RNG source, ENSD, sampler, schedule type, steps, CFG and
size, with the inputs the case names as prompt and negative prompt. Writes `OUT/<case>.npy` (final latent),
`OUT/<case>.noise.npy` and `OUT/<case>.sigmas.npy` or `.timesteps.npy`.

Nothing here knows case names or shapes. Manifest options that change sampling are passed on; an option we
do not implement, set to a non-default value, fails that case instead of being ignored.
Device: $LORABRIDGE_DEVICE (default cpu).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..checkpoint import load_state_dict
from ..model import StableDiffusion
from ..rng import ImageRNG, image_seeds
from ..samplers import SamplerOptions, SamplerState
from .cases import CaseError, read_cases, run_cases

# Manifest option name -> SamplerOptions field.
_OPTION_FIELDS = {
    "s_churn": "s_churn",
    "s_tmin": "s_tmin",
    "s_tmax": "s_tmax",
    "s_noise": "s_noise",
    "sigma_min": "sigma_min",
    "sigma_max": "sigma_max",
    "rho": "rho",
    "always_discard_next_to_last_sigma": "always_discard_next_to_last_sigma",
    "use_old_karras_scheduler_sigmas": "use_old_karras_scheduler_sigmas",
    "enable_quantization": "enable_quantization",
    "sgm_noise_multiplier": "sgm_noise_multiplier",
    "batch_cond_uncond": "batch_cond_uncond",
    "pad_cond_uncond": "pad_cond_uncond",
    "pad_cond_uncond_v0": "pad_cond_uncond_v0",
}
# Options we do not implement, with the value under which they have no effect.
_NEUTRAL_OPTIONS: dict[str, Any] = {
    "s_min_uncond": 0.0,
    "s_min_uncond_all": False,
    "skip_early_cond": 0.0,
    "use_downcasted_alpha_bar": False,
    "sd_noise_schedule": "Default",
    "refiner_switch_by_sample_steps": False,
}


def _load_npy(base: Path, rel: str, what: str) -> torch.Tensor:
    path = base / rel
    if not path.is_file():
        raise CaseError(f"{what}: file not found: {path}")
    return torch.from_numpy(np.load(path))


def load_unet(manifest: Mapping[str, Any], base: Path) -> tuple[StableDiffusion, list[str]]:
    """The manifest model's UNet built from its weights; returns the model and config disagreements."""
    spec = manifest.get("model")
    if not isinstance(spec, Mapping) or "weights" not in spec:
        raise CaseError("manifest has no model.weights")
    weights = base / spec["weights"]
    sd = load_state_dict(weights)
    prefix = spec.get("key_prefix", "")
    # A bare UNet file (no ldm prefix) is placed under the prefix the manifest names, as its keys would be
    # inside a full checkpoint.
    if prefix and not any(k.startswith(prefix) for k in sd):
        sd = {prefix + k: v for k, v in sd.items()}
    model = StableDiffusion.from_state_dict(sd)
    if model.unet is None:
        raise CaseError(f"{weights}: no UNet found under {prefix!r}")
    problems: list[str] = []
    if isinstance(spec.get("config"), Mapping):
        from .models import check_config

        problems = check_config("unet", model.architecture.unet, spec["config"])
    return model, problems


def _alphas_cumprod(manifest: Mapping[str, Any], base: Path, model: StableDiffusion) -> torch.Tensor | None:
    rel = manifest.get("model", {}).get("alphas_cumprod")
    if isinstance(rel, str):
        return _load_npy(base, rel, "model.alphas_cumprod").to(torch.float32)
    return model.alphas_cumprod  # None: the samplers use SD1's default schedule, as A1111 does


def sampler_options(options: Mapping[str, Any], case: Mapping[str, Any], kind: str) -> SamplerOptions:
    for name, neutral in _NEUTRAL_OPTIONS.items():
        if name in options and options[name] != neutral:
            raise CaseError(f"option {name}={options[name]!r} is not supported (only {neutral!r})")
    kwargs = {field: options[name] for name, field in _OPTION_FIELDS.items() if name in options}
    eta = case.get("eta", options.get("eta_ddim" if kind == "timesteps" else "eta_ancestral"))
    return SamplerOptions(eta=None if eta is None else float(eta), **kwargs)


def run_case(
    case: Mapping[str, Any],
    manifest: Mapping[str, Any],
    base: Path,
    unet: torch.nn.Module,
    alphas_cumprod: torch.Tensor | None,
    device: torch.device,
) -> dict[str, np.ndarray]:
    inputs = manifest.get("inputs", {})
    conds = {}
    for role in ("prompt", "negative_prompt"):
        name = case.get(role)
        if name not in inputs:
            raise CaseError(f"{role} names input {name!r}, which the manifest's inputs do not have")
        conds[role] = _load_npy(base, inputs[name], f"inputs.{name}").to(device=device, dtype=torch.float32)

    batch = int(case.get("batch_size", 1))
    channels = unet.config.in_channels
    width, height = int(case["width"]), int(case["height"])
    shape = (channels, height // 8, width // 8)
    if "latent_shape" in case and list(case["latent_shape"]) != [batch, *shape]:
        raise CaseError(f"latent_shape {case['latent_shape']} disagrees with batch/width/height {[batch, *shape]}")
    seeds = image_seeds(int(case["seed"]), batch)
    if "all_seeds" in case and [int(s) for s in case["all_seeds"]] != seeds:
        raise CaseError(f"all_seeds {case['all_seeds']} is not seed+i ({seeds}); variation seeds are not supported")

    options = dict(manifest.get("options", {}))
    source = case.get("randn_source", options.get("randn_source", "GPU"))
    ensd = case.get("eta_noise_seed_delta", options.get("eta_noise_seed_delta", 0))
    rng = ImageRNG(shape, seeds, source=source, device=device, eta_noise_seed_delta=int(ensd or 0))

    def eps(x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return unet(x, t, context)

    kind = "timesteps" if case["sampler"] == "DDIM" else "k"
    state = SamplerState(
        case["sampler"], eps, rng, int(case["steps"]),
        scheduler=case.get("scheduler", "Automatic"),
        alphas_cumprod=alphas_cumprod,
        options=sampler_options(options, case, kind),
    )
    x = state.run(conds["prompt"], conds["negative_prompt"], float(case["cfg_scale"]))
    out = {"": x, "noise": state.noise}
    if state.sigmas is not None:
        out["sigmas"] = state.sigmas
    if state.timesteps is not None:
        out["timesteps"] = state.timesteps
    return {k: v.detach().cpu().numpy() for k, v in out.items()}


def run(manifest: Path, out_dir: Path) -> int:
    data = json.loads(Path(manifest).read_text(encoding="utf-8"))
    if "families" in data:  # manifest_ext.json: img2img / hires / SDXL cases
        from .samplers_ext import run as run_ext

        return run_ext(manifest, out_dir)
    read = read_cases(manifest)
    if read is None:
        return 2
    base, data, cases = read
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(os.environ.get("LORABRIDGE_DEVICE", "cpu"))

    try:
        model, problems = load_unet(data, base)
    except Exception as e:  # the whole run depends on the model: report and stop
        print(f"model: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if problems:
        print("model: inferred UNet config disagrees with the manifest: " + "; ".join(problems), file=sys.stderr)
        return 2
    unet = model.unet.to(device)
    alphas_cumprod = _alphas_cumprod(data, base, model)

    def one(case_id: str, case: Mapping[str, Any]) -> None:
        for suffix, array in run_case(case, data, base, unet, alphas_cumprod, device).items():
            name = f"{case_id}.npy" if not suffix else f"{case_id}.{suffix}.npy"
            dtype = np.int64 if suffix == "timesteps" else np.float32
            np.save(out_dir / name, array.astype(dtype, copy=False))

    return run_cases(cases, out_dir, one)
