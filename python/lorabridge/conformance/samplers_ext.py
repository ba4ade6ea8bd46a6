"""img2img and hires-fix cases of a sampler manifest in the `manifest_ext.json` format.

Reached through ``python3 -m lorabridge.conformance samplers MANIFEST OUT_DIR`` when the manifest declares
``families``. Models come from ``models`` (the SD1 UNet and the VAE, each loaded with `checkpoint.load_state_dict`
and built from the weights alone). Per case, by ``family``:

* ``img2img``: encode ``init_image`` (uint8 H×W×3) with our VAE; A1111 draws the posterior eps from an RNG the
  job does not control, so the case's ``posterior_eps`` is used for the sampler's start (we write our encode as
  ``init_latent`` / ``posterior_mean`` for the aux check), then `img2img.start_img2img`.
* ``hires``: first pass, `hires.upscale_latent` (or an image upscaler, which needs an upscaler file and the VAE),
  `hires.start_hires_pass`; aux ``firstpass_latent``, ``upscaled``, ``hr_noise``.
* ``sdxl``: the tiny SDXL checkpoint through `lorabridge.sdxl`, sampled from the case's A1111 conditioning
  (crossattn + vector inputs), so the sampler path is checked alone.

Writes ``OUT/<id>.npy`` and ``.noise/.sigmas/.timesteps`` plus the aux arrays. Nothing here knows case names.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..checkpoint import load_state_dict
from ..hires import hires_target, latent_mode, start_hires_pass, truncate_latent, upscale_latent
from ..img2img import encode_init_latent, start_img2img
from ..model import StableDiffusion
from ..rng import ImageRNG, image_seeds
from ..samplers import SamplerState
from .cases import CaseError, read_cases, run_cases
from .samplers import _load_npy, sampler_options


def _with_prefix(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if prefix and not any(k.startswith(prefix) for k in sd):
        return {prefix + k: v for k, v in sd.items()}
    return sd


def load_models(data: Mapping[str, Any], base: Path) -> tuple[StableDiffusion, StableDiffusion | None, Any]:
    models = data.get("models", {})
    unet_spec = models.get("sd1_unet")
    if not isinstance(unet_spec, Mapping):
        raise CaseError("manifest has no models.sd1_unet")
    sd = _with_prefix(load_state_dict(base / unet_spec["weights"]), unet_spec.get("key_prefix", ""))
    unet_model = StableDiffusion.from_state_dict(sd)
    if unet_model.unet is None:
        raise CaseError(f"{unet_spec['weights']}: no UNet")
    vae_model = None
    vae_spec = models.get("vae_f8")
    if isinstance(vae_spec, Mapping):
        vsd = _with_prefix(load_state_dict(base / vae_spec["weights"]), vae_spec.get("key_prefix", ""))
        vae_model = StableDiffusion.from_state_dict(vsd)
        if vae_model.vae is None:
            raise CaseError(f"{vae_spec['weights']}: no VAE")
        vae_model.scale_factor = float(vae_spec.get("scale_factor_sd1", vae_model.scale_factor))
    ac = None
    rel = unet_spec.get("alphas_cumprod")
    if isinstance(rel, str):
        ac = _load_npy(base, rel, "alphas_cumprod").to(torch.float32)
    return unet_model, vae_model, ac


def _conds(data: Mapping[str, Any], base: Path, device: torch.device) -> dict[str, torch.Tensor]:
    cond = data["models"]["sd1_unet"].get("conditioning", {})
    out = {}
    for name in ("cond", "uncond"):
        if name not in cond:
            raise CaseError(f"models.sd1_unet.conditioning has no {name!r}")
        out[name] = _load_npy(base, cond[name], name).to(device=device, dtype=torch.float32)
    return out


def _rng(case: Mapping[str, Any], options: Mapping[str, Any], shape: tuple[int, ...], device: torch.device) -> ImageRNG:
    seeds = image_seeds(int(case["seed"]), int(case.get("batch_size", 1)))
    source = case.get("randn_source", options.get("randn_source", "GPU"))
    ensd = int(case.get("eta_noise_seed_delta", options.get("eta_noise_seed_delta", 0)) or 0)
    return ImageRNG(shape, seeds, source=source, device=device, eta_noise_seed_delta=ensd)


def _state_arrays(state: SamplerState, prefix: str = "") -> dict[str, torch.Tensor]:
    out = {}
    if state.sigmas is not None:
        out[prefix + "sigmas"] = state.sigmas
    if state.timesteps is not None:
        out[prefix + "timesteps"] = state.timesteps
    return out


def run_img2img(case: Mapping[str, Any], data: Mapping[str, Any], base: Path, model: StableDiffusion,
                vae: StableDiffusion | None, ac: torch.Tensor | None, device: torch.device) -> dict[str, torch.Tensor]:
    if vae is None or vae.vae is None:
        raise CaseError("img2img needs models.vae_f8")
    ref = case.get("reference", {})
    image = np.load(base / case["init_image"])
    if image.dtype != np.uint8:
        raise CaseError(f"init_image has dtype {image.dtype}, expected uint8")
    batch = int(case.get("batch_size", 1))
    images = torch.from_numpy(np.moveaxis(image.astype(np.float32) / 255.0, -1, -3).copy())
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.shape[0] == 1 and batch > 1:
        images = images.repeat(batch, 1, 1, 1)  # A1111 repeats one init image over the batch
    eps = _load_npy(base, ref["posterior_eps"], "posterior_eps") if "posterior_eps" in ref else None
    with torch.no_grad():
        init_latent, mean = encode_init_latent(vae.vae.encode_moments, images.to(device), vae.scale_factor, None,
                                               eps=eps)
    start = init_latent
    if "init_latent_input" in ref:
        # The reference's own start (same eps) so the sampler is checked alone; ours is checked as aux.
        start = _load_npy(base, ref["init_latent_input"], "init_latent_input").to(device)
    options = dict(data.get("options", {}))
    unet = model.unet
    shape = (unet.config.in_channels, start.shape[2], start.shape[3])
    rng = _rng(case, options, shape, device)
    kind = "timesteps" if case["sampler"] == "DDIM" else "k"
    fix = bool(case.get("img2img_fix_steps", options.get("img2img_fix_steps", False)))
    state = start_img2img(case["sampler"], unet, rng, start, int(case["steps"]), float(case["denoising_strength"]),
                          fix_steps=fix, scheduler=case.get("scheduler", "Automatic"), alphas_cumprod=ac,
                          options=sampler_options(options, case, kind))
    conds = _conds(data, base, device)
    x = state.run(conds[case["prompt"]], conds[case["negative_prompt"]], float(case["cfg_scale"]))
    return {"": x, "noise": state.noise, "init_latent": init_latent, "posterior_mean": mean, **_state_arrays(state)}


def run_hires(case: Mapping[str, Any], data: Mapping[str, Any], base: Path, model: StableDiffusion,
              ac: torch.Tensor | None, device: torch.device) -> dict[str, torch.Tensor]:
    options = dict(data.get("options", {}))
    unet = model.unet
    width, height = int(case["width"]), int(case["height"])
    rng = _rng(case, options, (unet.config.in_channels, height // 8, width // 8), device)
    conds = _conds(data, base, device)
    cond, uncond = conds[case["prompt"]], conds[case["negative_prompt"]]
    hr_prompt = case.get("hr_prompt") or case["prompt"]
    hr_negative = case.get("hr_negative_prompt") or case["negative_prompt"]
    cfg = float(case["cfg_scale"])
    scheduler = case.get("scheduler", "Automatic")
    first_kind = "timesteps" if case["sampler"] == "DDIM" else "k"
    first = SamplerState(case["sampler"], unet, rng, int(case["steps"]), scheduler=scheduler, alphas_cumprod=ac,
                         options=sampler_options(options, case, first_kind))
    firstpass = first.run(cond, uncond, cfg)

    target = hires_target(width, height, float(case.get("hr_scale", 2.0)), int(case.get("hr_resize_x", 0) or 0),
                          int(case.get("hr_resize_y", 0) or 0))
    upscaler = case.get("hr_upscaler")
    if latent_mode(upscaler) is None:
        raise CaseError(f"hires upscaler {upscaler!r} is an image upscaler; the case names no upscaler file")
    upscaled = truncate_latent(upscale_latent(firstpass, target, upscaler), target)

    hr_sampler = case.get("hr_sampler_name") or case["sampler"]
    hr_kind = "timesteps" if hr_sampler == "DDIM" else "k"
    hr_steps = int(case.get("hr_second_pass_steps") or 0) or int(case["steps"])
    second = start_hires_pass(
        hr_sampler, unet, upscaled, rng.seeds, hr_steps, float(case["denoising_strength"]),
        randn_source=rng.source, device=device, eta_noise_seed_delta=rng.eta_noise_seed_delta,
        scheduler=case.get("hr_scheduler") or scheduler, alphas_cumprod=ac,
        options=sampler_options(options, case, hr_kind),
    )
    x = second.run(conds[hr_prompt], conds[hr_negative], cfg)
    out = {"": x, "noise": first.noise, "firstpass_latent": firstpass, "upscaled": upscaled, "hr_noise": second.noise}
    out.update(_state_arrays(second))
    out.update(_state_arrays(first, "first_"))
    return out


def load_sdxl(data: Mapping[str, Any], base: Path, device: torch.device) -> Any:
    """The manifest's SDXL checkpoint through lorabridge.sdxl (config from shapes, float32)."""
    from ..sdxl import SDXLModel, precision_for

    spec = data.get("models", {}).get("sdxl")
    if not isinstance(spec, Mapping) or "file" not in spec:
        raise CaseError("manifest has no models.sdxl.file")
    return SDXLModel.load(base / spec["file"], device=device, precision=precision_for(device, "full"))


def run_sdxl(case: Mapping[str, Any], data: Mapping[str, Any], base: Path, model: Any, ac: torch.Tensor | None,
             device: torch.device) -> dict[str, torch.Tensor]:
    """SDXL txt2img from A1111's conditioning (the case's crossattn/vector inputs): the sampler alone, as the
    README asks. The vector travels packed beside crossattn (`sdxl.pack_cond`)."""
    from ..sdxl import SDXLEps, pack_cond

    ref = case.get("reference", {})
    conds = {}
    for role in ("cond", "uncond"):
        cross = _load_npy(base, ref[f"input_{role}_crossattn"], f"{role}_crossattn").to(device=device, dtype=torch.float32)
        vector = _load_npy(base, ref[f"input_{role}_vector"], f"{role}_vector").to(device=device, dtype=torch.float32)
        conds[role] = pack_cond(cross, vector)
    options = dict(data.get("options", {}))
    width, height = int(case["width"]), int(case["height"])
    rng = _rng(case, options, (model.unet.config.in_channels, height // 8, width // 8), device)
    kind = "timesteps" if case["sampler"] == "DDIM" else "k"
    state = SamplerState(case["sampler"], SDXLEps(model), rng, int(case["steps"]),
                         scheduler=case.get("scheduler", "Automatic"), alphas_cumprod=ac,
                         options=sampler_options(options, case, kind))
    x = state.run(conds["cond"], conds["uncond"], float(case["cfg_scale"]))
    return {"": x, "noise": state.noise, **_state_arrays(state)}


def run(manifest: Path, out_dir: Path) -> int:
    read = read_cases(manifest)
    if read is None:
        return 2
    base, data, cases = read
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(os.environ.get("LORABRIDGE_DEVICE", "cpu"))
    try:
        model, vae, ac = load_models(data, base)
    except Exception as e:
        print(f"models: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    model.unet.to(device)
    if vae is not None and vae.vae is not None:
        vae.vae.to(device)

    sdxl = None

    def one(case_id: str, case: Mapping[str, Any]) -> None:
        nonlocal sdxl
        family = case.get("family")
        if family == "img2img":
            arrays = run_img2img(case, data, base, model, vae, ac, device)
        elif family == "hires":
            arrays = run_hires(case, data, base, model, ac, device)
        elif family == "sdxl":
            if sdxl is None:
                sdxl = load_sdxl(data, base, device)
            arrays = run_sdxl(case, data, base, sdxl, ac, device)
        else:
            raise CaseError(f"unknown case family {family!r}")
        for suffix, tensor in arrays.items():
            name = f"{case_id}.npy" if not suffix else f"{case_id}.{suffix}.npy"
            dtype = np.int64 if suffix.endswith("timesteps") else np.float32
            np.save(out_dir / name, tensor.detach().cpu().numpy().astype(dtype, copy=False))

    return run_cases(cases, out_dir, one)
