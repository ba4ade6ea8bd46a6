"""LoRA conformance harness: ``python3 -m lorabridge.conformance lora MANIFEST OUT_DIR``.

For every case of a manifest in the format of ``shared/conformance/lora``: load the base model files through
:mod:`lorabridge.model`, apply the ``requested`` networks in order through :class:`lorabridge.patcher.Patcher`
and write ``OUT_DIR/<case_id>.safetensors`` with every tensor the merge changed or created, under its ldm key,
in float32. The model is restored between cases (which also exercises exact restoration).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from ..checkpoint import load_state_dict, save_safetensors
from ..model import StableDiffusion
from ..networks import Network, UnsupportedNetworkError
from ..patcher import Activation, Patcher


def run(manifest: Path, out_dir: Path) -> int:
    manifest = Path(manifest)
    root = manifest.parent
    spec = json.loads(manifest.read_text(encoding="utf-8"))
    files = spec["base_model"]["files"]
    sd: dict[str, torch.Tensor] = {}
    for part in ("unet", "clip"):
        sd.update(load_state_dict(root / files[part]))
    model = StableDiffusion.from_state_dict(sd, dtype=torch.float32)
    del sd
    patcher = Patcher(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache: dict[str, Network | None] = {}
    for case_id, case in spec["cases"].items():
        activations = []
        for req in case["requested"]:
            rel = req["file"]
            if rel not in cache:
                try:
                    cache[rel] = patcher.load(root / rel, name=req["name"])
                except UnsupportedNetworkError as e:
                    # A1111 shows the error and goes on without this network.
                    print(f"{case_id}: network {req['name']} not loaded: {e}", file=sys.stderr)
                    cache[rel] = None
            net = cache[rel]
            if net is not None:
                activations.append(Activation(net, te=float(req["te"]), unet=float(req["unet"]), dyn=req.get("dyn")))
        patcher.apply(activations)
        for message in patcher.layer_errors:
            print(f"{case_id}: {message}", file=sys.stderr)
        tensors = {k: v.to(torch.float32).contiguous() for k, v in patcher.changed_tensors().items()}
        save_safetensors(out_dir / f"{case_id}.safetensors", tensors)
        patcher.restore()
    print(f"wrote {len(spec['cases'])} cases to {out_dir}")
    return 0
