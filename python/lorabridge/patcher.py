"""Exact, restorable application of LoRA-family networks to a loaded model.

``Patcher.apply([...Activation])`` makes the model's weights equal to what A1111 v1.10.1 computes for the
same networks in the same prompt order: for every layer, start from the original weight and let each network
compute its update from the current weight (README item 24). Guarantees:

* The first time a layer is touched, an exact copy of its weight (and bias) is kept; a layer that no active
  network reaches any more gets that copy back, so deactivating everything restores the model bit for bit.
  Biases created by ``diff_b``/``b_norm`` on bias-less layers are removed again.
* Only layers whose contributions (network, multiplier, dyn) changed are recomputed. Updates are summed in
  float32 and written back once, in the model's dtype.
* Any exception (including a cancellation requested through ``should_cancel``, checked between layers)
  restores every touched layer to its original and re-raises: the model is never left half-patched.

Per-step multipliers (keyframed LoRAs): re-merge vs. side path, decided by measurement
--------------------------------------------------------------------------------------
A side path ``y = Wx + s·B(Ax)`` costs a rank-r projection of every activation row at every forward (and a
Python hook per layer); a re-merge costs, per changed layer, one pass over the weight (``addmm_`` for plain
LoRA, ``W0 + m·unit`` on a cached unit update for the other weight-independent types), independent of
batch and resolution. ``python/benchmarks/bench_lora.py`` (fp32, CPU, 1 thread, shared 2-core machine, so
±10 % noise; rank-16 LoRA on all 72 transformer layers of the demo UNet, batch 2, steps interleaved):

    (two runs)                                  static          re-merge (merge alone)       side path
    demo UNet, 8x8 latent (the demo's 64 px)    16.1 / 15.8 ms  21.4 / 17.8 ms (1.4 / 1.4 ms)  20.4 / 18.4 ms
    demo UNet, 64x64 latent (SD's 512 px)       1061 / 722 ms   1061 / 702 ms  (1.6 / 5.1 ms)  1150 / 805 ms
    SD1.5 UNet, 192 layers, 1 LoRA: one keyframed re-merge step 203 / 468 ms (0.97x / 3.6x a plain copy of
    the touched tensors in the same run; next to an SD1.5 CPU step of several seconds)

At the demo's toy size both are within noise of each other; at real latent sizes the side path costs
+8-12 % per step while the re-merge is unmeasurable next to the forward. The re-merge also gives exactly the
weights a static merge at that multiplier gives, and works for every network type (a side path cannot
express LoHa/LoKr/OFT/DoRA/IA3 without materialising the update). So this module re-merges. Once a network's
multiplier has changed while it is active, the multiplier-free update of its weight-independent modules is
cached per layer (``_unit_cache``), so a step costs one multiply-add per touched tensor; plain LoRA needs no
cache (one fused GEMM). Cached and uncached paths compute the same expression, bit for bit.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import torch
from torch import nn

from .lbw import BlockWeights
from .networks import LayerSkipped, Network, load_network_file
from .networks.keymap import TE_PREFIX, UNET_PREFIX, layer_map

__all__ = ["Activation", "Cancelled", "Patcher"]


class Cancelled(Exception):
    """Raised by :meth:`Patcher.apply` when ``should_cancel`` returned True; the model has been restored."""


@dataclass(frozen=True)
class Activation:
    """One ``<lora:name:te:unet:dyn>`` entry: absolute multipliers (``unet`` defaults to ``te``) and optional
    LoRA-block-weight ratios (:mod:`lorabridge.lbw`; None or trivial = every layer at ratio 1)."""

    network: Network
    te: float = 1.0
    unet: Optional[float] = None
    dyn: Optional[int] = None
    blocks: Optional[BlockWeights] = None

    @property
    def unet_multiplier(self) -> float:
        return self.te if self.unet is None else self.unet


@dataclass
class _Original:
    module: nn.Module
    weight: torch.Tensor
    bias: Optional[torch.Tensor]  # None: the layer had no bias (one we create is removed on restore)


Entry = tuple[Network, float, Optional[int], float]  # network, multiplier, dyn, block-weight ratio


class Patcher:
    """Applies sets of networks to the layers of one model; see the module docstring."""

    def __init__(self, model: Any) -> None:
        if isinstance(model, Mapping):
            roots = dict(model)
        else:
            roots = {}
            if getattr(model, "unet", None) is not None:
                roots[UNET_PREFIX] = model.unet
            if getattr(model, "text_encoder", None) is not None:
                roots[TE_PREFIX] = model.text_encoder
        # Models other than SD1 (lorabridge.sdxl.SDXLModel) name their own layers and may filter networks.
        self._model = model
        self.layers = model.network_layers() if hasattr(model, "network_layers") else layer_map(roots)
        # A1111 picks the te multiplier when 'transformer' is in the first 20 characters of the layer name.
        self._is_te = {path: "transformer" in name[:20] for name, (path, _) in self.layers.items()}
        self._by_path = {path: module for path, module in self.layers.values()}
        self._a1111_name = {path: name for name, (path, _) in self.layers.items()}
        self._originals: dict[str, _Original] = {}
        self._applied: dict[str, tuple[Entry, ...]] = {}
        self._last: dict[int, tuple[float, float, Optional[int]]] = {}
        self._keyframed: set[int] = set()
        self._unit_cache: dict[tuple[str, int, Optional[int]], tuple[torch.Tensor, Optional[torch.Tensor]]] = {}
        # Per layer path, the reasons networks skipped it in its current merge; replaced on every re-merge and
        # dropped on restore, so keyframed re-merges (every step, every job) never grow it.
        self._layer_errors: dict[str, list[tuple[Network, str]]] = {}
        self._te_key: tuple[tuple[str, str, float, Optional[int]], ...] = ()

    # --- loading --------------------------------------------------------------------------------------
    def load(self, path: "str | os.PathLike[str]", name: Optional[str] = None) -> Network:
        """Read and validate a LoRA-family file against this model (raises NetworkError naming file and key)."""
        network = load_network_file(path, self.layers, name)
        if hasattr(self._model, "filter_network"):
            self._model.filter_network(network)
        return network

    # --- applying -------------------------------------------------------------------------------------
    def apply(self, activations: Sequence[Activation], should_cancel: Optional[Callable[[], bool]] = None) -> int:
        """Make the model equal to the base weights with ``activations`` applied in order.

        Returns the number of layers recomputed. An empty sequence restores the model exactly.
        """
        # A1111 keeps one Network object per name: a network listed twice gets its LAST multipliers twice.
        last = {id(a.network): a for a in activations}
        for a in activations:
            for path, module in a.network.modules.items():
                if self._by_path.get(path) is not module.layer:
                    raise ValueError(f"network {a.network.name!r} ({a.network.source}) was loaded for another model "
                                     f"(layer {path}); load it with this Patcher")
        wanted: dict[str, list[Entry]] = {}
        for a in activations:
            final = last[id(a.network)]
            for path in a.network.modules:
                m = final.te if self._is_te.get(path, False) else final.unet_multiplier
                blocks = final.blocks
                r = 1.0 if blocks is None or blocks.trivial else float(blocks.ratio(self._a1111_name[path]))
                # m = 0 adds exactly nothing in A1111; skipping it keeps originals untouched. A ratio of 0 is not
                # skipped: extra biases are not scaled by it and DoRA still decomposes.
                if m != 0.0:
                    wanted.setdefault(path, []).append((a.network, float(m), final.dyn, r))
        self._track_keyframes(last.values())
        te_key = tuple((a.network.name, a.network.source, float(last[id(a.network)].te), last[id(a.network)].dyn)
                       for a in activations
                       if last[id(a.network)].te != 0.0 and any(self._is_te.get(p, False) for p in a.network.modules))

        changed = [p for p in set(wanted) | set(self._applied) if tuple(wanted.get(p, ())) != self._applied.get(p, ())]
        changed.sort()
        try:
            with torch.no_grad():
                for path in changed:
                    if should_cancel is not None and should_cancel():
                        raise Cancelled("network application was cancelled; the model has been restored")
                    entries = tuple(wanted.get(path, ()))
                    if entries:
                        self._merge(path, entries)
                        self._applied[path] = entries
                    else:
                        self._restore_layer(path)
        except BaseException:
            self.restore()
            raise
        self._te_key = te_key
        return len(changed)

    def restore(self) -> None:
        """Deactivate everything: every touched layer gets its original tensors back, bit for bit."""
        with torch.no_grad():
            for path in list(self._originals):
                self._restore_layer(path)
        self._applied.clear()
        self._unit_cache.clear()
        self._keyframed.clear()
        self._last.clear()
        self._te_key = ()

    def changed_tensors(self) -> dict[str, torch.Tensor]:
        """ldm key → current tensor for every weight/bias of every layer the active networks touch."""
        out: dict[str, torch.Tensor] = {}
        for path, orig in self._originals.items():
            out[f"{path}.weight"] = orig.module.weight.detach()
            bias = getattr(orig.module, "bias", None)
            if bias is not None:
                out[f"{path}.bias"] = bias.detach()
        return out

    def active_networks(self) -> list[Network]:
        """The networks merged into some layer now (in no particular order)."""
        found: dict[int, Network] = {}
        for entries in self._applied.values():
            for entry in entries:
                found[id(entry[0])] = entry[0]
        return list(found.values())

    def forget(self, network: Network) -> None:
        """Drops what is cached for a network that is unloaded, so a later object with the same id() starts clean."""
        key = id(network)
        self._last.pop(key, None)
        self._keyframed.discard(key)
        self._unit_cache = {k: v for k, v in self._unit_cache.items() if k[1] != key}

    @property
    def active_layers(self) -> list[str]:
        return sorted(self._applied)

    @property
    def layer_errors(self) -> list[str]:
        """Why layers of the active networks were left unchanged (A1111 skips them too), one message per
        network and layer as the model is patched now; a new list on every access."""
        return [m for path in sorted(self._layer_errors) for _, m in self._layer_errors[path]]

    def layer_error_summary(self) -> list[tuple[str, str, int, str]]:
        """Per network with layers left unchanged: (name, file, how many layers, the first failing layer's message),
        in layer order, so the user learns which file and key failed (A1111 only logs it)."""
        found: dict[int, list] = {}
        for path in sorted(self._layer_errors):
            for net, message in self._layer_errors[path]:
                entry = found.setdefault(id(net), [net.name, net.source, 0, message])
                entry[2] += 1
        return [tuple(v) for v in found.values()]  # type: ignore[misc]

    def te_state_key(self) -> tuple[tuple[str, str, float, Optional[int]], ...]:
        """Hashable description of what the active networks do to the text encoder, in prompt order
        (name, file, te multiplier, dyn). It belongs in the conditioning cache key: a text encoded under
        other te multipliers is another conditioning."""
        return self._te_key

    # --- internals ------------------------------------------------------------------------------------
    def _track_keyframes(self, finals: Iterable[Activation]) -> None:
        active = set()
        for a in finals:
            key = id(a.network)
            active.add(key)
            now = (a.te, a.unet_multiplier, a.dyn)
            if key in self._last and self._last[key] != now:
                self._keyframed.add(key)
            self._last[key] = now
        for key in list(self._last):
            if key not in active:
                del self._last[key]
                self._keyframed.discard(key)
        if self._unit_cache:
            self._unit_cache = {k: v for k, v in self._unit_cache.items() if k[1] in self._keyframed}

    def _original(self, path: str, module: nn.Module) -> tuple[_Original, bool]:
        """The kept copy of a layer's tensors, and whether it was taken just now (layer still original)."""
        orig = self._originals.get(path)
        if orig is not None:
            return orig, False
        bias = getattr(module, "bias", None)
        orig = _Original(module, module.weight.detach().clone(), None if bias is None else bias.detach().clone())
        self._originals[path] = orig
        return orig, True

    def _unit(self, path: str, net: Network, dyn: Optional[int], weight: torch.Tensor
              ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Multiplier-free update (scale·ΔW, extra bias) of a weight-independent module; cached per layer
        once the network's multiplier has changed while active (keyframed)."""
        module = net.modules[path]
        if id(net) not in self._keyframed:
            return module.compute(weight, 1.0, dyn)
        key = (path, id(net), dyn)
        unit = self._unit_cache.get(key)
        if unit is None:
            unit = module.compute(weight, 1.0, dyn)
            self._unit_cache[key] = unit
        return unit

    def _merge(self, path: str, entries: tuple[Entry, ...]) -> None:
        module = self._by_path[path]
        orig, pristine = self._original(path, module)
        # Accumulate in float32, directly in the layer's own storage when the model is float32 (no extra
        # full-size buffers); `orig` is never written, so an exception here is undone by restore().
        if module.weight.dtype == torch.float32 and module.weight.is_contiguous():
            w = module.weight.data
            if not pristine:
                w.copy_(orig.weight)
        else:
            w = orig.weight.to(torch.float32, copy=True)
        b = None if orig.bias is None else orig.bias.to(torch.float32, copy=True)
        errors: list[tuple[Network, str]] = []
        stacked = _stack_plain_loras(path, entries) if w.is_contiguous() else {}
        for index, (net, m, dyn, ratio) in enumerate(entries):
            nm = net.modules[path]
            if index in stacked:
                factors = stacked[index]
                if factors is not None:  # the first of a run: the whole run in one GEMM
                    w.view(factors[0].shape[0], -1).addmm_(factors[0], factors[1])
                continue
            try:
                if ratio != 1.0:
                    delta, ex_bias = nm.compute(w, m, dyn, ratio)
                    _check_fits(w, delta)
                    w.add_(delta)
                elif nm.add_into(w, m, dyn):
                    continue
                elif nm.weight_independent and nm.dora_scale is None:
                    # w + m·unit: one rounding fewer than A1111's (unit·m) then +, identical cached or not.
                    delta, ex_bias = self._unit(path, net, dyn, w)
                    _check_fits(w, delta)
                    w.add_(delta, alpha=m)
                    ex_bias = None if ex_bias is None else ex_bias * m
                else:
                    delta, ex_bias = nm.compute(w, m, dyn)
                    _check_fits(w, delta)
                    w.add_(delta)
            except LayerSkipped as e:
                errors.append((net, f"{net.name}: {path}: {e} (layer left as it was, as in A1111)"))
                continue
            if ex_bias is not None:
                if b is None:
                    b = ex_bias.reshape(w.shape[0]).clone()
                elif ex_bias.numel() == b.numel():
                    b = b + ex_bias.reshape(b.shape)
                else:
                    errors.append((net, f"{net.name}: {path}: bias of {ex_bias.numel()} values does not fit"))
        if errors:
            self._layer_errors[path] = errors
        else:
            self._layer_errors.pop(path, None)
        if w.data_ptr() != module.weight.data_ptr():
            module.weight.copy_(w)
        if orig.bias is not None:
            module.bias.copy_(b)
        elif b is not None:
            if getattr(module, "bias", None) is None:
                module.bias = nn.Parameter(b.to(device=module.weight.device, dtype=module.weight.dtype),
                                           requires_grad=False)
            else:
                module.bias.copy_(b)
        elif getattr(module, "bias", None) is not None:
            module.bias = None

    def _restore_layer(self, path: str) -> None:
        # Forget the original only once it is back in the layer: a cancellation arrives as an asynchronous
        # KeyboardInterrupt, and one between the two steps must leave the copy for the next restore().
        orig = self._originals.get(path)
        if orig is not None:
            orig.module.weight.copy_(orig.weight)
            if orig.bias is not None:
                orig.module.bias.copy_(orig.bias)
            elif getattr(orig.module, "bias", None) is not None:
                orig.module.bias = None
        self._originals.pop(path, None)
        self._applied.pop(path, None)
        self._layer_errors.pop(path, None)


def _stack_plain_loras(path: str, entries: tuple[Entry, ...]) -> dict[int, Optional[tuple[torch.Tensor, torch.Tensor]]]:
    """Runs of two or more consecutive plain LoRAs (ratio 1) on one layer, as stacked factors: index of the run's
    first entry → (U [out, Σr], D [Σr, in]) with each up already scaled by scale·m; later indices of the run → None.
    Plain LoRA updates do not read the weight, so a run's sum equals applying them one by one (up to rounding), and
    one GEMM over the stacked ranks replaces one full-size pass per LoRA. Weight-dependent modules keep their place."""
    out: dict[int, Optional[tuple[torch.Tensor, torch.Tensor]]] = {}
    run: list[tuple[int, tuple[torch.Tensor, torch.Tensor]]] = []

    def flush() -> None:
        if len(run) >= 2:
            ups = torch.cat([f[0] for _, f in run], dim=1)
            downs = torch.cat([f[1] for _, f in run], dim=0)
            out[run[0][0]] = (ups, downs)
            for i, _ in run[1:]:
                out[i] = None
        run.clear()

    for index, (net, m, dyn, ratio) in enumerate(entries):
        stack = getattr(net.modules[path], "stacked_factors", None)
        factors = stack(m, dyn) if stack is not None and ratio == 1.0 else None
        if factors is None:
            flush()
        else:
            run.append((index, factors))
    flush()
    return out


def _check_fits(weight: torch.Tensor, delta: torch.Tensor) -> None:
    # A1111 writes with copy_(W + ΔW): an update that broadcasts to a larger shape raises and the layer
    # keeps its weight.
    shape = tuple(torch.broadcast_shapes(tuple(weight.shape), tuple(delta.shape)))
    if shape != tuple(weight.shape):
        raise LayerSkipped(f"output with shape {list(weight.shape)} doesn't match the broadcast shape {list(shape)}")
