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
from typing import Optional

import torch

from ..checkpoint import load_state_dict, save_safetensors
from ..model import StableDiffusion
from ..networks import Network, UnsupportedNetworkError
from ..patcher import Activation, Patcher


class CaseNetworks:
    """The networks a manifest's cases request, each file read once. A file A1111 cannot load is reported and left
    out (A1111 shows the error and goes on without that network)."""

    def __init__(self, patcher: Patcher, root: Path) -> None:
        self.patcher = patcher
        self.root = root
        self._cache: dict[str, Optional[Network]] = {}

    def get(self, case_id: str, rel: str, name: Optional[str] = None) -> Optional[Network]:
        if rel not in self._cache:
            try:
                self._cache[rel] = self.patcher.load(self.root / rel, name=name)
            except UnsupportedNetworkError as e:
                print(f"{case_id}: network {name or rel} not loaded: {e}", file=sys.stderr)
                self._cache[rel] = None
        return self._cache[rel]


def apply_case(patcher: Patcher, case_id: str, activations: list[Activation]) -> None:
    """Applies one case's networks and reports the layers they could not merge (left as they were, as in A1111)."""
    patcher.apply(activations)
    for message in patcher.layer_errors:
        print(f"{case_id}: {message}", file=sys.stderr)


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
    networks = CaseNetworks(patcher, root)
    for case_id, case in spec["cases"].items():
        apply_case(patcher, case_id, [Activation(net, te=float(req["te"]), unet=float(req["unet"]), dyn=req.get("dyn"))
                                      for req in case["requested"]
                                      if (net := networks.get(case_id, req["file"], req["name"])) is not None])
        tensors = {k: v.to(torch.float32).contiguous() for k, v in patcher.changed_tensors().items()}
        save_safetensors(out_dir / f"{case_id}.safetensors", tensors)
        patcher.restore()
    print(f"wrote {len(spec['cases'])} cases to {out_dir}")
    return 0
