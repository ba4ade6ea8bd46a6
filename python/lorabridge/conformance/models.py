"""Models conformance harness: run a manifest's module cases through LoraBridge's own loader and modules.

For each case: load every weights file it lists (``.ckpt``/``.safetensors``, any float storage; compute in
float32), infer the architecture from the weights as for a user's file, check the inference against the
manifest's config, make the call and write every output (and the intermediates we can
observe) as ``.npy`` under the same relative path in OUT_DIR.

Nothing here knows case names: the part to call is the one the weights hold (``weights.key_prefix`` picks
one when a file holds several), the inputs are matched to the part's call by name/rank/dtype, and each
output name selects what to return (see ``_unet_outputs``, ``_vae_outputs``, ``_clip_outputs``).

``--weights all`` (default) computes every case from each weights file and fails if the formats disagree
beyond the case tolerance, writing the first format's outputs; ``--weights ckpt`` / ``safetensors`` uses only
that format, so the checker can be run once per format (through the generic dispatcher: set
``LORABRIDGE_CONFORMANCE_WEIGHTS=ckpt``).

The manifest's config is read for two things: the attention head split, which the weights cannot show
(``num_heads``/``num_head_channels`` for a UNet, ``num_attention_heads`` for CLIP; A1111 takes it from the model's
yaml), is used to build the modules; everything else is checked against what the shapes show, and any
disagreement fails the case.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np
import torch
from torch import nn

from .. import arch as _arch
from ..checkpoint import load_state_dict
from ..model import StableDiffusion
from .cases import CaseError

WEIGHT_SUFFIXES = (".ckpt", ".safetensors", ".pt", ".pth", ".bin")


def weight_files(case: Mapping[str, Any], base: Path) -> dict[str, Path]:
    """Format name (file suffix) → path, for every weights entry that names a checkpoint file."""
    files: dict[str, Path] = {}
    for value in case.get("weights", {}).values():
        if isinstance(value, str) and value.lower().endswith(WEIGHT_SUFFIXES):
            files.setdefault(Path(value).suffix.lstrip(".").lower(), base / value)
    return files


# ---------------------------------------------------------------------------------------- config check

def _norm(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    return v


def _flatten(cfg: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v))
        else:
            out[k] = v
    return out


# The attention head split is the one hyper-parameter the weights do not show (q/k/v are width x width whatever the
# split); A1111 takes it from the model's config file. The harness does the same with the manifest's config.
UNET_HEAD_KEYS = ("num_heads", "num_head_channels")  # ldm UNetModel names
CLIP_HEAD_KEYS = ("num_attention_heads", "heads", "transformer_heads")  # HF CLIPTextConfig, openai CLIP names


def manifest_heads(manifest_cfg: Mapping[str, Any]) -> tuple[Optional[dict[str, int]], Optional[int]]:
    """``(unet_heads, clip_heads)`` for :meth:`StableDiffusion.from_state_dict` from a case's config; None where the
    config does not state a split (then :mod:`lorabridge.arch`'s SD1/SD2 rules apply)."""
    cfg = _flatten(manifest_cfg)
    unet = None
    if any(k in cfg for k in UNET_HEAD_KEYS):
        unet = {k: int(cfg.get(k, -1)) for k in UNET_HEAD_KEYS}
        if unet["num_heads"] <= 0 and unet["num_head_channels"] <= 0:
            raise CaseError(f"config states neither a positive num_heads nor num_head_channels: {unet}")
    clip = next((int(cfg[k]) for k in CLIP_HEAD_KEYS if k in cfg), None)
    if clip is not None and clip <= 0:
        raise CaseError(f"config states {clip} CLIP attention heads")
    return unet, clip


def check_config(part: str, inferred: Any, manifest_cfg: Mapping[str, Any]) -> list[str]:
    """Disagreements between the config inferred from the weights' shapes and the manifest's (keys a config object
    does not have, e.g. ``image_size``, are skipped; the head split is not checked: it was taken from the manifest)."""
    cfg = _flatten(manifest_cfg)
    problems = []
    for key, want in cfg.items():
        if key in UNET_HEAD_KEYS or key in CLIP_HEAD_KEYS:
            continue
        if hasattr(inferred, key):
            have = getattr(inferred, key)
            if not callable(have) and _norm(have) != _norm(want):
                problems.append(f"{key}: manifest {want!r}, inferred {have!r}")
    if part == "vae" and "attn_resolutions" in cfg and "resolution" in cfg:
        res = int(cfg["resolution"])
        want_levels = [lv for lv in range(len(inferred.ch_mult)) if res // 2 ** lv in cfg["attn_resolutions"]]
        if want_levels != list(inferred.attention_levels):
            problems.append(f"attention levels: manifest {want_levels}, inferred {list(inferred.attention_levels)}")
    return problems


# ---------------------------------------------------------------------------------------- calls per part

def _pick(inputs: Mapping[str, torch.Tensor], aliases: tuple[str, ...], test: Callable[[torch.Tensor], bool],
          role: str) -> torch.Tensor:
    named = [n for n in inputs if n.lower() in aliases]
    if len(named) == 1:
        return inputs[named[0]]
    fits = [n for n, t in inputs.items() if test(t)]
    if len(fits) != 1:
        raise CaseError(f"cannot tell which input is the {role}: candidates {fits or list(inputs)}")
    return inputs[fits[0]]


def _unet_outputs(model: StableDiffusion, inputs: Mapping[str, torch.Tensor], outputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    unet = model.unet
    assert unet is not None
    x = _pick(inputs, ("x", "sample", "latent", "latents", "x_in"), lambda t: t.dim() == 4, "latent input")
    ts = _pick(inputs, ("timesteps", "timestep", "t"), lambda t: t.dim() <= 1, "timesteps")
    ctx = _pick(inputs, ("context", "cond", "encoder_hidden_states", "c_crossattn"), lambda t: t.dim() == 3, "context")
    if len(outputs) != 1:
        raise CaseError(f"a UNet call has one output, the case declares {list(outputs)}")
    return {next(iter(outputs)): unet(x, ts, ctx)}


def _vae_outputs(model: StableDiffusion, inputs: Mapping[str, torch.Tensor], outputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    vae = model.vae
    assert vae is not None
    cfg = vae.config
    result = {}
    for name in outputs:
        low = name.lower()
        if "moment" in low:
            image = _pick(inputs, ("image", "image_in", "x"), lambda t: t.dim() == 4 and t.shape[1] == cfg.in_channels,
                          "image to encode")
            result[name] = vae.encode_moments(image)
        elif any(w in low for w in ("image", "decod", "recon", "sample")):
            z = _pick(inputs, ("z", "latent", "latents"), lambda t: t.dim() == 4 and t.shape[1] == cfg.embed_dim,
                      "latent to decode")
            result[name] = vae.decode(z)
        else:
            raise CaseError(f"VAE output '{name}': expected a name with 'moments' (encode) or 'image' (decode)")
    return result


def _clip_outputs(model: StableDiffusion, inputs: Mapping[str, torch.Tensor], outputs: Mapping[str, Any],
                  intermediates: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    te = model.text_encoder
    assert te is not None
    ids = _pick(inputs, ("input_ids", "ids", "tokens"), lambda t: not t.is_floating_point(), "token ids")
    out = te(ids)
    hs = out.hidden_states
    named: dict[str, Callable[[], torch.Tensor]] = {
        "last_hidden_state": lambda: out.last_hidden_state,
        "pooled": lambda: out.pooled,
        "pooler_output": lambda: out.pooled,
        "penultimate_hidden_state": lambda: hs[-2],
        "penultimate_final_ln": lambda: te.text_model.final_layer_norm(hs[-2]),  # A1111 CLIP skip 2
    }
    result = {}
    for name in list(outputs) + list(intermediates):
        m = re.fullmatch(r"hidden_states[.\[](-?\d+)\]?", name)
        if m:
            result[name] = hs[int(m.group(1))]
        elif name in named:
            result[name] = named[name]()
        elif name in outputs:
            raise CaseError(f"CLIP output '{name}' is not one the text encoder provides ({', '.join(named)}, hidden_states.N)")
    return result


def _hooked(module: nn.Module, names: list[str]) -> tuple[dict[str, torch.Tensor], list[Any]]:
    """Forward hooks recording the output of each named submodule (intermediates are optional)."""
    seen: dict[str, torch.Tensor] = {}
    handles = []
    mods = dict(module.named_modules())
    for name in names:
        if name in mods:
            handles.append(mods[name].register_forward_hook(
                lambda _m, _i, o, name=name: seen.__setitem__(name, o.detach().clone())))
    return seen, handles


def choose_part(model: StableDiffusion, case: Mapping[str, Any]) -> str:
    """The part the case calls: the only one the weights hold, or the one named by ``weights.key_prefix``."""
    prefix = case.get("weights", {}).get("key_prefix")
    parts = model.parts
    chosen = [p for p in parts if _arch.PREFIXES[p] == prefix] or parts
    if len(chosen) != 1:
        raise CaseError(f"weights hold {parts}; cannot tell which to call (no matching key_prefix)")
    return chosen[0]


def compute_case(model: StableDiffusion, case: Mapping[str, Any], base: Path) -> dict[str, np.ndarray]:
    part = choose_part(model, case)
    inputs = {n: torch.from_numpy(np.load(base / spec["file"])) for n, spec in case.get("inputs", {}).items()}
    outputs = case.get("outputs", {})
    inter = case.get("intermediates", {}) or {}
    module = getattr(model, part)
    seen, handles = _hooked(module, list(inter))
    try:
        with torch.no_grad():
            if part == "unet":
                result = _unet_outputs(model, inputs, outputs)
            elif part == "vae":
                result = _vae_outputs(model, inputs, outputs)
            else:
                result = _clip_outputs(model, inputs, outputs, inter)
    finally:
        for h in handles:
            h.remove()
    result = {**seen, **result}
    arrays: dict[str, np.ndarray] = {}
    for name, spec in list(outputs.items()) + list(inter.items()):
        if name not in result:
            continue  # intermediates we cannot observe are optional
        arr = result[name].detach().cpu().float().numpy().astype(spec.get("dtype", "float32"))
        if "shape" in spec and list(arr.shape) != list(spec["shape"]):
            raise CaseError(f"output '{name}' has shape {list(arr.shape)}, manifest says {spec['shape']}")
        arrays[spec["file"]] = arr
    return arrays


def run(manifest: Path, out_dir: Path, weights: Optional[str] = None, cases: Optional[list[str]] = None) -> int:
    """Write every case's outputs; 0 when all cases ran. ``weights`` defaults to $LORABRIDGE_CONFORMANCE_WEIGHTS
    or ``all`` (the env var lets ``python3 -m lorabridge.conformance models`` run one format)."""
    weights = weights or os.environ.get("LORABRIDGE_CONFORMANCE_WEIGHTS") or "all"
    manifest = Path(manifest)
    out_dir = Path(out_dir)
    base = manifest.parent
    spec = json.loads(manifest.read_text())
    failures = 0
    for name, case in spec["cases"].items():
        if cases and name not in cases:
            continue
        try:
            files = weight_files(case, base)
            if weights != "all":
                files = {weights: files[weights]} if weights in files else {}
            if not files:
                raise CaseError(f"no weights file of format '{weights}' listed")
            per_format: dict[str, dict[str, np.ndarray]] = {}
            for fmt, path in files.items():
                unet_heads, clip_heads = manifest_heads(case.get("config", {}))
                try:
                    model = StableDiffusion.from_state_dict(load_state_dict(path), dtype=torch.float32,
                                                            unet_heads=unet_heads, clip_heads=clip_heads)
                except _arch.ArchitectureError as e:
                    raise CaseError(f"{path.name}: {e} (head split from the manifest: unet {unet_heads}, "
                                    f"clip {clip_heads})") from None
                part = choose_part(model, case)
                problems = check_config(part, getattr(model.architecture, part), case.get("config", {}))
                if problems:
                    raise CaseError(f"{path.name}: inferred {part} config disagrees with the manifest: "
                                    + "; ".join(problems))
                per_format[fmt] = compute_case(model, case, base)
            first_fmt, first = next(iter(per_format.items()))
            tol = case.get("tolerance", {})
            for fmt, arrays in per_format.items():
                for rel, arr in arrays.items():
                    if not np.allclose(arr, first[rel], atol=tol.get("atol", 0.0), rtol=tol.get("rtol", 0.0)):
                        raise CaseError(f"{rel}: outputs from .{fmt} and .{first_fmt} weights differ "
                                        f"(max abs {np.abs(arr - first[rel]).max():.3g})")
            for rel, arr in first.items():
                dest = out_dir / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                np.save(dest, arr)
            print(f"{name}: wrote {len(first)} arrays from {', '.join('.' + f for f in per_format)} weights")
        except Exception as e:  # one broken case must not hide the others' results
            failures += 1
            print(f"{name}: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m lorabridge.conformance.models")
    ap.add_argument("manifest", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--weights", default=None, help="ckpt, safetensors or all (default: every listed format)")
    ap.add_argument("--case", nargs="*")
    a = ap.parse_args(argv)
    return run(a.manifest, a.out_dir, a.weights, a.case)


if __name__ == "__main__":
    sys.exit(main())
