"""Pure-Python baseline for the `host-overhead` benchmark (tests/LoraBridge.Benchmarks/HostOverheadBenchmark.cs).

The C# engine drives a generation one bridge call at a time (set_networks when the LoRA multipliers change, then
one guided step). This module replays the same recorded sequence of `Session` calls from a plain Python loop
inside the same embedded interpreter, with one bridge call for the whole loop, so the two timings differ only
by what the host adds per step: the C# engine's bookkeeping, the queue hop to the Python thread, pythonnet
marshalling and bridge.py's argument conversion.

It is not meant to be run on its own; the C# benchmark imports it and calls :func:`run`.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

from lorabridge import bridge

NetworkSetting = tuple[str, float, float, Optional[int]]
# One model call: the absolute network settings to apply first (None: unchanged), AND-parts, negative, CFG scale.
StepCommand = tuple[Optional[list[NetworkSetting]], list[tuple[int, float]], int, float]

_commands: list[StepCommand] = []


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


def run(sampler: str, schedule: str, steps: int, seed: int, batch_size: int, width: int, height: int,
        randn_source: str, eta_noise_seed_delta: int, infotexts: Sequence[str]) -> tuple[float, list[bytes]]:
    """Starts a sampling run, times the stored step commands, decodes; returns (loop seconds, PNG bytes).

    Start, decode, release and restore are outside the timed part, as in the C# measurement, which times from
    the moment the sampler has started to the moment decoding is requested.
    """
    session = bridge._require_session()
    handle = session.start(sampler, schedule, int(steps), int(seed), int(batch_size), int(width), int(height),
                           randn_source, int(eta_noise_seed_delta))
    total = session.total_steps(handle)
    if total != len(_commands):
        session.release(handle)
        raise ValueError(f"the sampler needs {total} model calls but {len(_commands)} step commands were recorded")
    try:
        t0 = time.perf_counter()
        for settings, conds, uncond, cfg in _commands:
            if settings is not None:
                session.set_networks(settings)
            session.step(handle, conds, uncond, cfg)
        elapsed = time.perf_counter() - t0
        pngs = session.decode_png(handle, list(infotexts))
    finally:
        session.release(handle)
        session.restore()
    return elapsed, pngs
