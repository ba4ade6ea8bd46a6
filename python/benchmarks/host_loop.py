"""Pure-Python baseline for the `host-overhead` benchmark (tests/LoraBridge.Benchmarks/HostOverheadBenchmark.cs).

The C# engine drives a generation one bridge call at a time (set_networks when the LoRA multipliers change, then
one guided step). This module replays the same recorded sequence of `Session` calls from a plain Python loop
inside the same embedded interpreter, with one bridge call for the whole loop, so the two timings differ only
by what the host adds per step: the C# engine's bookkeeping, the queue hop to the Python thread, pythonnet
marshalling and bridge.py's argument conversion.

It is not meant to be run on its own; the C# benchmark imports it and calls :func:`run`.
"""
from __future__ import annotations

import gc
import time
from typing import Optional, Sequence

from lorabridge import bridge

NetworkSetting = tuple[str, float, float, Optional[int]]
# One model call: the absolute network settings to apply first (None: unchanged), AND-parts, negative, CFG scale.
StepCommand = tuple[Optional[list[NetworkSetting]], list[tuple[int, float]], int, float]

_commands: list[StepCommand] = []
_inside = [0.0, 0.0]  # wall and Python-thread CPU seconds spent inside Session.step / Session.set_networks
_gc = [0.0, 0.0]  # seconds spent in Python's cyclic garbage collector; start time of the running collection


def _gc_callback(phase: str, info: dict) -> None:
    if phase == "start":
        _gc[1] = time.perf_counter()
    else:
        _gc[0] += time.perf_counter() - _gc[1]


def instrument() -> None:
    """Times every Session.step and Session.set_networks of the loaded session, whoever calls them.

    The bridge's gen_* functions and :func:`run` both reach these methods through the instance, so every path
    pays the same two clock reads per call; the rest of a loop's time is host overhead.
    """
    session = bridge._require_session()
    if _gc_callback not in gc.callbacks:
        gc.callbacks.append(_gc_callback)
    for name in ("step", "set_networks"):
        method = getattr(session, name)
        if getattr(method, "_host_loop_timed", False):
            continue

        def timed(*args: object, _method=method, **kwargs: object) -> object:  # type: ignore[no-untyped-def]
            t, c = time.perf_counter(), time.thread_time()
            try:
                return _method(*args, **kwargs)
            finally:
                _inside[0] += time.perf_counter() - t
                _inside[1] += time.thread_time() - c

        timed._host_loop_timed = True  # type: ignore[attr-defined]
        setattr(session, name, timed)


def counters() -> tuple[float, float, float, float]:
    """(CPU seconds of the calling thread, wall and CPU seconds spent inside timed Session calls so far,
    seconds spent in the garbage collector so far)."""
    return time.thread_time(), _inside[0], _inside[1], _gc[0]


def set_commands(commands: Sequence[Sequence[object]]) -> int:
    """Stores the recorded per-step commands (converted to plain Python values once, outside any timing)."""
    global _commands
    converted: list[StepCommand] = []
    for settings, conds, uncond, cfg in commands:
        nets = None if settings is None else [(str(n), float(te), float(u), None if d is None else int(d))
                                              for n, te, u, d in settings]  # type: ignore[union-attr]
        converted.append((nets, [(int(h), float(w)) for h, w in conds], int(uncond), float(cfg)))  # type: ignore[union-attr]
    _commands = converted
    return len(_commands)


def step_with_networks(handle: int, settings: Optional[list], conds: list, uncond: int, cfg_scale: float) -> int:
    """bridge.gen_set_networks (when `settings` is not None) and bridge.gen_step in one call: what a combined
    bridge function would cost, for the benchmark's one-call-per-step path. Returns the steps left."""
    if settings is not None:
        bridge.gen_set_networks(settings)
    return bridge.gen_step(handle, conds, uncond, cfg_scale)


def run(sampler: str, schedule: str, steps: int, seed: int, batch_size: int, width: int, height: int,
        randn_source: str, eta_noise_seed_delta: int, infotexts: Sequence[str]) -> tuple[float, float, float, float, float, list[bytes]]:
    """Starts a sampling run, times the stored step commands, decodes.

    Returns the loop's wall-clock seconds, the process CPU seconds it used (all threads; on Linux the
    CLOCK_PROCESS_CPUTIME_ID clock the C# side reads too), the CPU seconds of this (the Python) thread alone,
    the wall seconds spent inside Session calls (see :func:`instrument`), the seconds spent in the garbage
    collector and the PNG bytes.

    Start, decode, release and restore are outside the timed part, as in the C# measurement, which times from
    the moment the sampler has started to the moment decoding is requested.
    """
    session = bridge._require_session()
    handle = session.start(sampler, schedule, int(steps), int(seed), int(batch_size), int(width), int(height),
                           randn_source, int(eta_noise_seed_delta))
    try:
        total = session.total_steps(handle)
        if total != len(_commands):
            raise ValueError(f"the sampler needs {total} model calls but {len(_commands)} step commands were recorded")
        c0 = time.process_time()
        th0, in0, _, gc0 = counters()
        t0 = time.perf_counter()
        for settings, conds, uncond, cfg in _commands:
            if settings is not None:
                session.set_networks(settings)
            session.step(handle, conds, uncond, cfg)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0
        th1, in1, _, gc1 = counters()
        pngs = session.decode_png(handle, list(infotexts))
    finally:
        session.release(handle)
        session.restore()
    return elapsed, cpu, th1 - th0, in1 - in0, gc1 - gc0, pngs
