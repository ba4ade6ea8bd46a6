"""Test and benchmark plumbing that C# calls (LoraBridge.Python.PythonBridge, PythonBridge.Diagnostics.cs).

None of this takes part in generation; it lives apart from ``lorabridge.bridge`` so that the product module holds
only what a generation, `doctor` or an extension needs. It proves the boundary itself: a value's round trip
(``echo``, the call-overhead benchmark), exception mapping (``fail``), cancellation of running Python
(``busy_loop`` / ``last_loop_state``, also the hidden CLI command ``python-loop``) and that bytes written through
the raw-memory tensor channel arrived (``tensor_sum`` / ``tensor_scale_``, over ``bridge``'s handle table).
"""
from __future__ import annotations

import builtins
import time
from typing import Any

import torch

from .bridge import tensor_get

# Outcome of the last busy_loop call; lets tests see that an interrupt really stopped it.
last_loop: dict[str, Any] = {"state": "never-run", "iterations": 0}


def echo(value: Any) -> Any:
    """Returns its argument; the C#→Python round-trip benchmark and tests call it."""
    return value


def fail(kind: str, message: str) -> None:
    """Raises the builtin exception named `kind` from a nested frame (exception-mapping tests)."""
    exc_type = getattr(builtins, kind, None)
    if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
        raise TypeError(f"fail: {kind!r} is not a builtin exception type")
    _raise_nested(exc_type, message)


def _raise_nested(exc_type: type[BaseException], message: str) -> None:
    raise exc_type(message)


def busy_loop(seconds: float, kind: str = "python") -> int:
    """Runs for `seconds` (pure-Python loop, or torch kernels that release the GIL) and
    returns the iteration count; the cancellation tests interrupt it part-way."""
    if kind not in ("python", "torch"):
        raise ValueError(f"busy_loop: kind must be 'python' or 'torch', not {kind!r}")
    last_loop.update(state="running", iterations=0)
    deadline = time.monotonic() + seconds
    iterations = 0
    a = torch.randn(256, 256) if kind == "torch" else None
    try:
        while time.monotonic() < deadline:
            if a is not None:
                a = torch.tanh(a @ a)
            else:
                sum(range(1000))
            iterations += 1
    except KeyboardInterrupt:
        last_loop.update(state="interrupted", iterations=iterations)
        raise
    last_loop.update(state="completed", iterations=iterations)
    return iterations


def last_loop_state() -> dict[str, Any]:
    """{state, iterations} of the last busy_loop; state: never-run, running, interrupted or completed."""
    return {"state": str(last_loop["state"]), "iterations": int(last_loop["iterations"])}


def tensor_sum(handle: int) -> float:
    """Sum in float64 (tests check that written bytes arrived)."""
    return float(tensor_get(handle).double().sum())


def tensor_scale_(handle: int, factor: float) -> None:
    """Multiplies in place (tests check that reads see Python-side changes)."""
    tensor_get(handle).mul_(factor)
