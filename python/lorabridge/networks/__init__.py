"""LoRA-family networks (LoRA/LoCon, LoHa, LoKr, IA3, full, norm, GLoRA, OFT/BOFT, DoRA) bound to a model.

``load_network`` reproduces A1111 v1.10.1 ``networks.py:load_network``: keys are split at their first ``.``
into group and part, groups are matched to model layers (:mod:`.keymap`), and each group becomes the first
module type that accepts its parts, in A1111's order. Before anything is applied, every used tensor is
checked for NaN/inf and every module's shapes against its layer, so a bad file fails with its name and key
and the model is never touched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

import torch
from torch import nn

from . import full, glora, ia3, keymap, loha, lokr, lora, norm, oft
from .base import PATCHED_TYPES, LayerSkipped, NetworkError, NetworkModule, UnsupportedNetworkError

__all__ = ["Network", "NetworkError", "UnsupportedNetworkError", "LayerSkipped", "NetworkModule",
           "load_network", "load_network_file", "MODULE_TYPES"]

# A1111's networks.module_types order: the first type that accepts a group's parts wins.
MODULE_TYPES: list[tuple[Callable[[Mapping[str, torch.Tensor]], bool], type]] = [
    (lora.accepts, lora.LoraModule),
    (loha.accepts, loha.LohaModule),
    (ia3.accepts, ia3.Ia3Module),
    (lokr.accepts, lokr.LokrModule),
    (full.accepts, full.FullModule),
    (norm.accepts, norm.NormModule),
    (glora.accepts, glora.GloraModule),
    (oft.accepts, oft.OftModule),
]


@dataclass(eq=False)
class Network:
    """A loaded network: its modules keyed by the ldm path of the layer they patch.

    ``ignored`` lists the groups that reach no layer (A1111 ignores them silently); ``unapplied`` maps
    groups matched to layers A1111 never patches (Embedding, container modules) to the layer type.
    """

    name: str
    source: str
    modules: dict[str, NetworkModule] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    unapplied: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Network({self.name!r}, {len(self.modules)} layers)"


def load_network(tensors: Mapping[str, torch.Tensor], layers: Mapping[str, tuple[str, nn.Module]],
                 name: str, source: str = "<memory>") -> Network:
    """Bind a LoRA-family state dict to the model layers in ``layers`` (see :func:`keymap.layer_map`)."""
    renamed = keymap.normalize_keys(tensors.keys())
    groups: dict[str, dict[str, torch.Tensor]] = {}
    group_names: dict[str, str] = {}
    file_keys: dict[tuple[str, str], str] = {}
    net = Network(name=name, source=source)
    for file_key, tensor in tensors.items():
        group, _, part = renamed[file_key].partition(".")
        if group == "bundle_emb":
            continue  # bundled textual-inversion embeddings are not a weight patch
        layer_name = keymap.match_group(group, layers)
        if layer_name is None:
            if group not in net.ignored:
                net.ignored.append(group)
            continue
        groups.setdefault(layer_name, {})[part] = tensor
        file_keys[(layer_name, part)] = file_key
        group_names.setdefault(layer_name, group)

    for layer_name, w in groups.items():
        group = group_names[layer_name]
        path, layer = layers[layer_name]
        for key, t in w.items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise NetworkError(f"{source}: {file_keys[(layer_name, key)]} contains NaN or infinite values")
        w = _on_layer_device(w, layer)
        module_type = next((cls for accepts, cls in MODULE_TYPES if accepts(w)), None)
        if module_type is None:
            raise UnsupportedNetworkError(
                f"{source}: could not find a module type (one of lora, loha, ia3, lokr, full, norm, glora, oft) "
                f"for {group} with parts {sorted(w)}")
        try:
            module = module_type(group, layer, w)
        except UnsupportedNetworkError as e:
            raise UnsupportedNetworkError(f"{source}: {e}") from None
        except (KeyError, RuntimeError, ValueError) as e:
            raise NetworkError(f"{source}: {group}: cannot build a {module_type.kind} module: {e}") from None
        if not isinstance(layer, PATCHED_TYPES) or getattr(layer, "weight", None) is None:
            net.unapplied[group] = type(layer).__name__
            continue
        try:
            module.check_shapes(layer.weight.shape)
        except ValueError as e:
            raise NetworkError(f"{source}: {group} ({module.kind}) does not fit {path}: {e}") from None
        net.modules[path] = module
    return net


def _on_layer_device(w: Mapping[str, torch.Tensor], layer: nn.Module) -> dict[str, torch.Tensor]:
    """Files are read on the CPU, but the merge runs where the layer's weight lives (CUDA in the engine), so
    the factors must move there once, at binding. The scalars stay: they are only read as Python numbers,
    and ``.item()`` on a GPU tensor would synchronise once per group."""
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, torch.Tensor):
        return dict(w)  # a container module: never patched, so the tensors are never used
    return {k: t if k in _SCALAR_PARTS else t.to(weight.device) for k, t in w.items()}


# Parts every module type reads with .item() (A1111 does the same), never as tensors.
_SCALAR_PARTS = frozenset({"alpha", "scale", "on_input"})


def load_network_file(path: "str | os.PathLike[str]", layers: Mapping[str, tuple[str, nn.Module]],
                      name: Optional[str] = None) -> Network:
    """Read a LoRA-family file (any format :func:`lorabridge.checkpoint.load_state_dict` reads) and bind it."""
    from ..checkpoint import load_state_dict

    source = os.fspath(path)
    try:
        tensors = load_state_dict(source)
    except NetworkError:
        raise
    except ValueError as e:  # CheckpointError names the file and the problem already
        raise NetworkError(str(e)) from None
    if name is None:
        name = os.path.splitext(os.path.basename(source))[0]
    return load_network(tensors, layers, name, source)
