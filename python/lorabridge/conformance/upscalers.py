"""Upscaler conformance harness: ``python3 -m lorabridge.conformance upscalers MANIFEST OUT_DIR``.

For each case of a manifest in the format of ``shared/conformance/upscalers``: load the case's weights file with
:func:`lorabridge.esrgan.load_upscaler` (restricted unpickler, configuration from the shapes; the manifest's
description of the file is not read), then by ``kind``:

* ``fwd``: the float input through the model as a descriptor call (``out``) and the bare network (``out_raw``);
* ``tiled``: the PNG through one tiled pass with the case's tile size and overlap (``image``; with tile 0 also the
  float tensor before quantisation, ``float_bgr``);
* ``upscale``: the PNG through A1111's ``Upscaler.upscale`` at ``requested_scale``.

Outputs are written under the same relative paths in OUT_DIR (floats as .npy, images as .png).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from PIL import Image

from ..esrgan import UpscalerModel, load_upscaler
from ..upscaler import DEFAULT_TILE, DEFAULT_TILE_OVERLAP, pil_to_bgr_tensor, upscale, upscale_with_model
from .cases import CaseError, read_cases, run_cases


def _save(out_dir: Path, rel: str, value: Any) -> None:
    dest = out_dir / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(value, Image.Image):
        if dest.suffix.lower() == ".png":
            value.save(dest)
        else:
            np.save(dest, np.array(value))
    else:
        np.save(dest, value.detach().cpu().numpy().astype(np.float32))


def run_case(case: Mapping[str, Any], model: UpscalerModel, base: Path, defaults: Mapping[str, Any]) -> dict[str, Any]:
    kind = case["kind"]
    outputs = case.get("outputs", {})
    results: dict[str, Any] = {}
    if kind == "fwd":
        x = torch.from_numpy(np.load(base / case["inputs"]["x"]["file"]))
        for name in outputs:
            if name == "out":
                results[name] = model(x)
            elif name == "out_raw":
                results[name] = model.forward_raw(x)
            else:
                raise CaseError(f"unknown fwd output {name!r}")
        return results
    image = Image.open(base / case["inputs"]["image"]["file"]).convert("RGB")
    tile = int(case.get("tile_size", defaults.get("ESRGAN_tile", DEFAULT_TILE)))
    overlap = int(case.get("tile_overlap", defaults.get("ESRGAN_tile_overlap", DEFAULT_TILE_OVERLAP)))
    if kind == "tiled":
        for name in outputs:
            if name == "image":
                results[name] = upscale_with_model(model, image, tile, overlap)
            elif name.startswith("float"):
                if tile > 0:
                    raise CaseError(f"{name}: a float output exists only without tiling")
                results[name] = model(pil_to_bgr_tensor(image))
            else:
                raise CaseError(f"unknown tiled output {name!r}")
        return results
    if kind == "upscale":
        scale = float(case["requested_scale"])
        results["image"] = upscale(image, scale, lambda im: upscale_with_model(model, im, tile, overlap))
        return results
    raise CaseError(f"unknown case kind {kind!r}")


def run(manifest: Path, out_dir: Path) -> int:
    read = read_cases(manifest)
    if read is None:
        return 2
    base, data, cases = read
    weights = data.get("weights", {})
    defaults = data.get("a1111_defaults", {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded: dict[str, UpscalerModel] = {}

    def one(case_id: str, case: Mapping[str, Any]) -> None:
        wid = case["weights"]
        if wid not in weights:
            raise CaseError(f"weights {wid!r} not in the manifest")
        if wid not in loaded:
            loaded[wid] = load_upscaler(base / weights[wid]["file"])
        for name, value in run_case(case, loaded[wid], base, defaults).items():
            _save(out_dir, case["outputs"][name]["file"], value)

    return run_cases(cases, out_dir, one)
