"""The Python side of C# extensions: their own modules, calls with typed values, and the sampling-hook scope.

An extension folder may carry a `python/` folder; `call` imports a module from it (the folder goes on `sys.path`)
and calls one function. Values cross as plain data: None, bool, int, float, str, bytes, lists, dicts with `str`
keys, and tensors. A tensor crosses as a `TensorRef` (a handle in `bridge._tensors`): C# holds the handle, the
function gets the torch tensor itself, and a tensor a function returns is registered and handed back as a handle.

`step_with_after_cfg` runs one sampler step with a callback into C# right after the CFG combine (A1111's
`on_cfg_after_cfg`): the denoised tensor is registered for the duration of the callback only, and every handle made
while it runs is retired when it returns, so a handle kept past its step fails with a message saying why.
"""
from __future__ import annotations

import ctypes
import importlib
import os
import re
import sys
from typing import Any, Callable, Optional

import numpy as np
import torch

from . import bridge
from .images import png_bytes, to_uint8
from .samplers import SamplerState

_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_MAX_RETIRED = 4096  # remembered retired handles (for the message); older ones just read as unknown

# Handles registered while a sampling hook runs; retired when it returns. None outside hooks.
_scope: Optional[list[int]] = None


class TensorRef:
    """A tensor handle as it crosses the boundary (C# `TensorHandle`)."""

    __slots__ = ("handle",)

    def __init__(self, handle: int) -> None:
        self.handle = int(handle)

    def __repr__(self) -> str:
        return f"TensorRef({self.handle})"


def bytes_at(address: int, size: int) -> bytes:
    """A copy of `size` bytes at `address` (C# pins a byte[] for the length of the call)."""
    return ctypes.string_at(int(address), int(size))


def _register(t: torch.Tensor) -> int:
    handle = bridge._register(t)
    if _scope is not None:
        _scope.append(handle)
    return handle


def _retire(handles: list[int], label: str) -> None:
    for h in handles:
        bridge._tensors.pop(h, None)
        bridge._staging.pop(h, None)
        bridge._retired[h] = label
    while len(bridge._retired) > _MAX_RETIRED:
        bridge._retired.pop(next(iter(bridge._retired)))


def import_module(extension: str, python_dir: str, module: str) -> Any:
    """Imports `module` from the extension's `python/` folder, which goes first on `sys.path` once.

    A module of that name already imported from elsewhere (another extension, the standard library, lorabridge) is
    refused: sharing one `sys.modules` entry would hand one extension the other's code.
    """
    if not _MODULE_NAME.match(module):
        raise ValueError(f"extension {extension!r}: {module!r} is not a Python module name")
    folder = os.path.realpath(python_dir)
    if not os.path.isdir(folder):
        raise ModuleNotFoundError(f"extension {extension!r} has no python folder ({python_dir})")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    top = module.split(".")[0]
    loaded = sys.modules.get(top)
    if loaded is not None:
        origin = getattr(loaded, "__file__", None) or ""
        if not os.path.realpath(origin).startswith(folder + os.sep):
            raise ImportError(f"extension {extension!r}: a module named {top!r} is already imported from "
                              f"{origin or 'the interpreter'}; give the extension's module a name of its own")
    return importlib.import_module(module)


def call(extension: str, python_dir: str, module: str, function: str, args: list) -> Any:
    """`module.function(*args)` with handles turned into tensors, and the result made crossable."""
    mod = import_module(extension, python_dir, module)
    fn = getattr(mod, function, None)
    if fn is None:
        raise AttributeError(f"extension {extension!r}: module {module!r} ({getattr(mod, '__file__', '?')}) "
                             f"has no function {function!r}")
    if not callable(fn):
        raise TypeError(f"extension {extension!r}: {module}.{function} is a {type(fn).__name__}, not a function")
    result = fn(*[_from_wire(a) for a in args])
    return _to_wire(result, f"{module}.{function}")


def _from_wire(value: Any) -> Any:
    if isinstance(value, TensorRef):
        return bridge.tensor_get(value.handle)
    if isinstance(value, list):
        return [_from_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_wire(v) for k, v in value.items()}
    return value


def _to_wire(value: Any, where: str) -> Any:
    # Exact types only (an IntEnum or a str subclass becomes int / str), so C# can tell them apart by type name.
    if value is None or isinstance(value, bool):
        return value
    for kind in (int, float, str, bytes):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, torch.Tensor):
        return TensorRef(_register(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_to_wire(v, where) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} returned a dict with a {type(k).__name__} key ({k!r}); keys must be str")
            out[k] = _to_wire(v, where)
        return out
    raise TypeError(f"{where} returned a {type(value).__module__}.{type(value).__name__}, which cannot cross to C# "
                    "(None, bool, int, float, str, bytes, list, tuple, dict with str keys, torch.Tensor)")


def step_with_after_cfg(session: Any, handle: int, conds: list, uncond: int, cfg_scale: float,
                        callback: Callable[[int, int, int, float, int, int], None]) -> int:
    """`Session.step` with `callback(denoised, step (1-based), total steps, sigma, cond, uncond)` after the CFG
    combine; denoised, cond and uncond are handles valid during the callback (cond/uncond: the positive and negative
    predictions the CFG mixed)."""
    state: SamplerState = session._get(int(handle), SamplerState)

    def after_cfg(denoised: torch.Tensor, sigma: torch.Tensor, parts: dict) -> None:
        global _scope
        step, total = state.i + 1, state.total
        outer = _scope
        _scope = [bridge._register(t) for t in (denoised, parts["cond"], parts["uncond"])]
        try:
            callback(_scope[0], step, total, float(sigma.flatten()[0]), _scope[1], _scope[2])
        finally:
            _retire(_scope, f"lent to the after-CFG hook of step {step} of {total}")
            _scope = outer

    state.after_cfg = after_cfg
    try:
        return session.step(int(handle), [(int(h), float(w)) for h, w in conds], int(uncond), float(cfg_scale))
    finally:
        state.after_cfg = None


def step_with_model_hooks(session: Any, handle: int, conds: list, uncond: int, cfg_scale: float,
                          before: Optional[Callable[[int, int, int, float, int, int], None]],
                          after: Optional[Callable[[int, int, int, float, int, int], None]]) -> int:
    """`Session.step` with `before(x, step, total, sigma, cond, uncond)` right before the model call (A1111's
    `on_cfg_denoiser`; x, cond and uncond are copies the callback may change in place: the model input, the stacked
    AND-part rows and the negative rows) and/or `after` as in `step_with_after_cfg`. Handles are valid during the
    callback only."""
    state: SamplerState = session._get(int(handle), SamplerState)

    def before_model(x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor, uncond_t: torch.Tensor) -> None:
        global _scope
        step, total = state.i + 1, state.total
        outer = _scope
        _scope = [bridge._register(t) for t in (x, cond, uncond_t)]
        try:
            before(_scope[0], step, total, float(sigma.flatten()[0]), _scope[1], _scope[2])
        finally:
            _retire(_scope, f"lent to the before-model-call hook of step {step} of {total}")
            _scope = outer

    if after is None:
        state.before_model = before_model if before is not None else None
        try:
            return session.step(int(handle), [(int(h), float(w)) for h, w in conds], int(uncond), float(cfg_scale))
        finally:
            state.before_model = None
    state.before_model = before_model if before is not None else None
    try:
        return step_with_after_cfg(session, handle, conds, uncond, cfg_scale, after)
    finally:
        state.before_model = None


def decode_rgb(session: Any, handle: int) -> list:
    """The run's final latents decoded as `decode_png` does, as [(RGB bytes, width, height)] per image."""
    state: SamplerState = session._get(int(handle), SamplerState)
    with torch.no_grad(), session._autocast():
        decoded = session.model.decode_latents(state.x.to(session.device))
    rgb = to_uint8(decoded if decoded.dim() == 4 else decoded.unsqueeze(0))
    return [(img.tobytes(), int(img.shape[1]), int(img.shape[0])) for img in rgb]


def encode_png(rgb: bytes, width: int, height: int, parameters: Optional[str]) -> bytes:
    """RGB bytes (rows top to bottom, 3 bytes a pixel) → PNG with the `parameters` text, as `decode_png` writes."""
    width, height = int(width), int(height)
    if width <= 0 or height <= 0 or len(rgb) != width * height * 3:
        raise ValueError(f"an RGB image of {width}x{height} needs {max(width, 0) * max(height, 0) * 3} bytes, "
                         f"got {len(rgb)}")
    return png_bytes(np.frombuffer(rgb, dtype=np.uint8).reshape(height, width, 3), parameters)
