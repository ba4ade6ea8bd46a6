"""LoRA Block Weight conformance: ``python3 -m lorabridge.conformance lbw MANIFEST OUT_DIR``.

For every case of a manifest in the format of ``shared/conformance/lbw``: read each tag's items the way A1111
v1.10.1 (``te``/``unet``/``dyn``) and LBW (:func:`lorabridge.lbw.read_tag`) do, apply the networks through
:class:`lorabridge.patcher.Patcher` with their block weights, and write ``OUT_DIR/<case_id>.safetensors`` with
every tensor the merge changed or created. LBW's quirks are kept (unknown presets and other value counts are
ignored, te/unet from LBW's own parse, first tag of a repeated network), with one documented bug fix: a LoKr
module with ``lokr_w1_a``/``lokr_w1_b`` is scaled like any other (LBW raises TypeError halfway and leaves the
prompt half-scaled). SDXL cases use :class:`lorabridge.sdxl.SDXLModel`; without it they are reported as skipped.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from .. import lbw
from ..checkpoint import load_state_dict, save_safetensors
from ..patcher import Activation, Patcher
from .lora import CaseNetworks, apply_case


def a1111_multipliers(items: Sequence[str]) -> tuple[float, float, Optional[int]]:
    """A1111 v1.10.1 ``ExtraNetworkLora.activate``: positional/named te, unet (defaults to te), dyn."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for item in items:
        parts = item.split("=", 2)
        if len(parts) == 2:
            named[parts[0]] = parts[1]
        else:
            positional.append(item)
    te = float(positional[1]) if len(positional) > 1 else 1.0
    te = float(named.get("te", te))
    unet = float(positional[2]) if len(positional) > 2 else te
    unet = float(named.get("unet", unet))
    dyn = int(positional[3]) if len(positional) > 3 else None
    dyn = int(named["dyn"]) if "dyn" in named else dyn
    return te, unet, dyn


def plan_case(case: dict, presets: dict[str, str], elementals: dict[str, str]
              ) -> list[tuple[str, float, float, Optional[int], Optional[lbw.BlockWeights]]]:
    """(file, te, unet, dyn, block weights) per requested tag, in prompt order, after A1111 and LBW."""
    requested = case["requested"]
    try:
        base = [a1111_multipliers(r["items"]) for r in requested]
    except (ValueError, TypeError):
        return []  # A1111 raises inside activate: no network is loaded for this prompt
    out = [(r["file"], te, unet, dyn, None) for r, (te, unet, dyn) in zip(requested, base)]
    try:
        readings = [lbw.read_tag(r["items"], presets, elementals) for r in requested]
    except (ValueError, TypeError):
        return out  # LBW aborts before scaling anything: A1111's plain merge
    if not any(t.sets or t.start is not None or t.stop is not None for t in readings):
        return out
    steps = case.get("denoiser_sampling_steps") or []
    first: dict[str, int] = {}
    for i, r in enumerate(requested):
        first.setdefault(r["file"], i)
    planned = []
    for i, r in enumerate(requested):
        t = readings[first[r["file"]]]  # one network object: LBW scales it once, with its first tag
        _, unet = lbw.denoiser_multipliers(t, steps)
        planned.append((r["file"], t.te, unet, base[i][2], t.blocks))
    return planned


def _load_sd1(root: Path, files: dict[str, str]):
    from ..model import StableDiffusion
    sd: dict[str, torch.Tensor] = {}
    for part in ("unet", "clip"):
        sd.update(load_state_dict(root / files[part]))
    return StableDiffusion.from_state_dict(sd, dtype=torch.float32)


def _load_sdxl(root: Path, files: dict[str, str]):
    try:  # SDXL support (issue 9); the head split does not matter for merged weights
        from ..sdxl import SDXLModel
    except ImportError:
        return None
    return SDXLModel.load(root / files["checkpoint"])


def run(manifest: Path, out_dir: Path) -> int:
    manifest = Path(manifest)
    root = manifest.parent
    spec = json.loads(manifest.read_text(encoding="utf-8"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    elementals = lbw.parse_elementals(spec.get("lbw_default_elemental", lbw.DEFAULT_ELEMENTAL))
    written = skipped = 0
    for family in ("sd1", "sdxl"):
        cases = {cid: c for cid, c in spec["cases"].items() if c["family"] == family}
        if not cases:
            continue
        files = spec["base_models"][family]["files"]
        model = _load_sd1(root, files) if family == "sd1" else _load_sdxl(root, files)
        if model is None:
            for cid in cases:
                print(f"{cid}: skipped: this build has no {family} model support", file=sys.stderr)
            skipped += len(cases)
            continue
        patcher = Patcher(model)
        networks = CaseNetworks(patcher, root)
        for case_id, case in cases.items():
            presets = lbw.parse_presets(spec.get("lbw_default_presets", lbw.DEFAULT_PRESETS))
            presets.update(lbw.parse_presets("\n".join(f"{k}:{v}" for k, v in case.get("user_presets", {}).items())
                                             if isinstance(case.get("user_presets"), dict)
                                             else str(case.get("user_presets") or "")))
            apply_case(patcher, case_id, [Activation(net, te=te, unet=unet, dyn=dyn, blocks=blocks)
                                          for rel, te, unet, dyn, blocks in plan_case(case, presets, elementals)
                                          if (net := networks.get(case_id, rel)) is not None])
            if family == "sdxl":  # the checkpoint's key layout (MHA in_proj of te2), as the SDXL harness writes it
                from .sdxl import _changed_tensors
                tensors = _changed_tensors(model, patcher)
            else:
                tensors = {k: v.to(torch.float32).contiguous() for k, v in patcher.changed_tensors().items()}
            save_safetensors(out_dir / f"{case_id}.safetensors", tensors)
            patcher.restore()
            written += 1
    print(f"wrote {written} cases to {out_dir}" + (f", skipped {skipped}" if skipped else ""))
    return 0
