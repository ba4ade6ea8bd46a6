"""SDXL conformance harness: ``python3 -m lorabridge.conformance sdxl MANIFEST OUT_DIR``.

Loads the manifest's checkpoint through :class:`lorabridge.sdxl.SDXLModel` (config from shapes, float32 on the
CPU), then per case family:

* ``sdxl_unet``: ``eps = unet(x, timesteps, context, y)``;
* ``sdxl_text``: te1/te2 penultimate states and te2's pooled output for the given chunk rows;
* ``sdxl_conditioning``: :meth:`SDXLModel.get_learned_conditioning` on the A1111 token ids and multipliers
  (the empty-negative zeroing decided from ``is_negative_prompt`` and the schedule texts, as A1111 decides it);
* ``merge`` cases: the requested networks through :class:`lorabridge.patcher.Patcher`, every changed checkpoint
  tensor written under its key (te2 q/k/v views written as the whole fused ``in_proj`` tensor).

Nothing here knows case names. The manifest's declared configuration is read for one thing, the attention head
split, which no tensor shape shows (A1111 takes it from the model's yaml) — as the models harness does; every other
value is inferred from the shapes and checked against the declaration (a disagreement fails the run).
``--unet-head-channels`` / ``--text-head-dim`` override the head split.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from ..checkpoint import save_safetensors
from ..patcher import Activation, Patcher
from ..sdxl import TE2_PREFIX, HeadSplit, SDXLModel
from .lora import CaseNetworks, apply_case


def _load_inputs(root: Path, case: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.load(root / spec["file"])) for name, spec in case.get("inputs", {}).items()}


def _write(out_dir: Path, spec: Mapping[str, Any], value: torch.Tensor) -> None:
    path = out_dir / spec["file"]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, value.detach().to(torch.float32).cpu().numpy())


def _find(inputs: Mapping[str, torch.Tensor], *names: str) -> torch.Tensor:
    for n in names:
        if n in inputs:
            return inputs[n]
    raise KeyError(f"none of the inputs {list(names)} is present (have {list(inputs)})")


def _unet(model: SDXLModel, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    x = _find(inputs, "x", "sample").float()
    t = _find(inputs, "timesteps", "t").float()
    ctx = _find(inputs, "context", "crossattn").float()
    y = _find(inputs, "y", "vector").float()
    with torch.no_grad():
        eps = model.unet(x, t, ctx, y)
    return {"eps": eps}


def _text(model: SDXLModel, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ids1 = _find(inputs, "input_ids_te1").long()
    ids2 = _find(inputs, "input_ids_te2").long()
    z1, z2, pooled = model.encode_text(ids1, ids2)
    return {"te1_penultimate": z1, "te2_penultimate": z2, "te2_pooled": pooled}


def _conditioning(model: SDXLModel, inputs: Mapping[str, torch.Tensor], case: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    texts = case.get("schedule_texts", [case.get("prompt", "")])
    zero = bool(case.get("is_negative_prompt")) and all(t == "" for t in texts)
    crossattn, vector = model.get_learned_conditioning(
        _find(inputs, "a1111_tokens_te1"), _find(inputs, "a1111_tokens_te2"), _find(inputs, "a1111_multipliers"),
        int(case["width"]), int(case["height"]), zero_text=zero)
    return {"crossattn": crossattn, "vector": vector}


def _changed_tensors(model: SDXLModel, patcher: Patcher) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key in patcher.changed_tensors():
        path, _, pname = key.rpartition(".")
        ckpt_key = model.checkpoint_key(path, pname)
        module, name = model.module_for_key(ckpt_key)
        out[ckpt_key] = getattr(module, name).detach().to(torch.float32).contiguous().clone()
    return out


def _merge(model: SDXLModel, patcher: Patcher, case_id: str, case: Mapping[str, Any],
           networks: CaseNetworks, out_dir: Path) -> None:
    apply_case(patcher, case_id, [Activation(net, te=float(req["te"]), unet=float(req["unet"]), dyn=req.get("dyn"))
                                  for req in case["requested"]
                                  if (net := networks.get(case_id, req["file"], req["name"])) is not None])
    save_safetensors(out_dir / f"{case_id}.safetensors", _changed_tensors(model, patcher))
    patcher.restore()


def head_split(declared: Mapping[str, Any], opts: argparse.Namespace) -> HeadSplit:
    """The head split to build with: the command line's, else the manifest's (A1111 takes it from the model's
    yaml; no tensor shape shows it), else the rules of :mod:`lorabridge.sdxl`."""
    unet = declared.get("unet", {})
    channels = opts.unet_head_channels or (int(unet["num_head_channels"]) if int(unet.get("num_head_channels", -1)) > 0
                                           else None)
    count = None if channels else (int(unet["num_heads"]) if int(unet.get("num_heads", -1)) > 0 else None)
    te = {k: int(declared[k]["heads"]) for k in ("te1", "te2") if isinstance(declared.get(k), Mapping)
          and "heads" in declared[k]}
    if opts.text_head_dim:
        te = {}
    return HeadSplit(unet_head_channels=channels, unet_num_heads=count, text_head_dim=opts.text_head_dim,
                     te1_heads=te.get("te1"), te2_heads=te.get("te2"))


def config_problems(model: SDXLModel, declared: Mapping[str, Any]) -> list[str]:
    """What the shapes showed that disagrees with the manifest's declared configuration."""
    problems = []
    u = model.unet.config
    have = {"in_channels": u.in_channels, "out_channels": u.out_channels, "model_channels": u.model_channels,
            "channel_mult": list(u.channel_mult), "num_res_blocks": u.num_res_blocks,
            "transformer_depth": list(u.transformer_depth), "context_dim": u.context_dim,
            "adm_in_channels": u.adm_in_channels, "attention_resolutions": u.attention_resolutions,
            "use_linear_in_transformer": u.use_linear_in_transformer}
    for key, value in declared.get("unet", {}).items():
        if key == "attention_resolutions" and isinstance(value, list):
            value = sorted(value)
        if key in have and have[key] != value:
            problems.append(f"unet {key}: manifest {value!r}, inferred {have[key]!r}")
    te1, te2 = model.text_encoder.config, model.text_encoder_2.config
    checks = {("te1", "width"): te1.hidden_size, ("te1", "layers"): te1.num_hidden_layers,
              ("te2", "width"): te2.width, ("te2", "layers"): te2.layers, ("te2", "proj"): te2.projection_dim}
    for (part, key), value in checks.items():
        want = declared.get(part, {}).get(key)
        if want is not None and want != value:
            problems.append(f"{part} {key}: manifest {want!r}, inferred {value!r}")
    return problems


def run(manifest: Path, out_dir: Path, argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m lorabridge.conformance sdxl")
    ap.add_argument("--unet-head-channels", type=int)
    ap.add_argument("--text-head-dim", type=int)
    opts = ap.parse_args(argv or [])
    manifest = Path(manifest)
    root = manifest.parent
    spec = json.loads(manifest.read_text(encoding="utf-8"))
    declared = spec.get("model", {}).get("config_for_reading_only", {})
    model = SDXLModel.load(root / spec["model"]["file"], heads=head_split(declared, opts))
    problems = config_problems(model, declared)
    for problem in problems:
        print(f"configuration: {problem}", file=sys.stderr)
    patcher = Patcher(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    networks = CaseNetworks(patcher, root)
    handlers = {"sdxl_unet": _unet, "sdxl_text": _text}
    failures = 1 if problems else 0
    for case_id, case in spec["cases"].items():
        try:
            if case.get("kind") == "merge":
                _merge(model, patcher, case_id, case, networks, out_dir)
                continue
            inputs = _load_inputs(root, case)
            family = case.get("family", "")
            if family == "sdxl_conditioning":
                results = _conditioning(model, inputs, case)
            elif family in handlers:
                results = handlers[family](model, inputs)
            else:
                print(f"{case_id}: unknown family {family!r}, skipped", file=sys.stderr)
                continue
            for name, out_spec in case["outputs"].items():
                if name not in results:
                    raise KeyError(f"no output named {name!r} (can write {sorted(results)})")
                _write(out_dir, out_spec, results[name])
        except Exception as e:  # one bad case must not hide the others
            failures += 1
            print(f"{case_id}: {type(e).__name__}: {e}", file=sys.stderr)
    print(f"wrote {len(spec['cases']) - failures} of {len(spec['cases'])} cases to {out_dir}")
    return 1 if failures else 0


__all__ = ["run", "TE2_PREFIX"]
