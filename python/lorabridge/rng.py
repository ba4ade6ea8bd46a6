"""Initial and ancestral noise exactly as AUTOMATIC1111 v1.10.1 draws it (`modules/rng.py`, `rng_philox.py`).

One generator per image, seeded with that image's seed; every draw is made per image with the per-image
shape and then stacked, so image i of a batch is bit-identical to a batch-1 run seeded with seed+i.
Three sources, named as in A1111's "Random number generator source" option:

* "GPU": a torch generator on the model's device (CUDA's Philox on a GPU; on CPU it equals "CPU").
* "CPU": a CPU torch generator (mt19937), the result moved to the device.
* "NV":  A1111's numpy emulation of CUDA's Philox `randn`, so a CPU run reproduces GPU images.

Unlike A1111 we never touch the global torch RNG: A1111's `torch.manual_seed(seed)` before the first draw
is read by nothing on this path, and a library must not reset its host's global state.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

RNG_SOURCES = ("GPU", "CPU", "NV")

_SEED_LIMIT = 1 << 64

# Philox4x32-10 round multipliers and Weyl key increments (Salmon et al. 2011, as in curand).
_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = 0x9E3779B9
_PHILOX_W1 = 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)

# A1111 keeps these as float32 and lets numpy promote to float64 against uint32 counters; the exact float32
# rounding of the constants is part of the stream, so build them the same way.
_TWO_POW32_INV = float(np.float32(2.3283064e-10))
_TWO_POW32_INV_2PI = float(np.float32(2.3283064e-10 * 6.2831855))


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < _SEED_LIMIT:
        raise ValueError(f"seed {seed} is outside [0, 2^64)")
    return seed


def philox4x32_10(counter: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32 with 10 rounds over a [4, n] uint32 counter array and one (low, high) key; returns [4, n] uint32."""
    if counter.dtype != np.uint32 or counter.ndim != 2 or counter.shape[0] != 4:
        raise ValueError(f"counter must be a uint32 array of shape [4, n], got {counter.dtype} {counter.shape}")
    c0, c1, c2, c3 = (counter[j].astype(np.uint64) for j in range(4))
    k0, k1 = int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF
    for r in range(10):
        p0 = c0 * _PHILOX_M0  # < 2^64: both factors are < 2^32
        p1 = c2 * _PHILOX_M1
        c0, c1, c2, c3 = (
            (p1 >> _SHIFT32) ^ c1 ^ np.uint64(k0),
            p1 & _MASK32,
            (p0 >> _SHIFT32) ^ c3 ^ np.uint64(k1),
            p0 & _MASK32,
        )
        if r < 9:
            k0 = (k0 + _PHILOX_W0) & 0xFFFFFFFF
            k1 = (k1 + _PHILOX_W1) & 0xFFFFFFFF
    return np.stack([c0, c1, c2, c3]).astype(np.uint32)


class PhiloxGenerator:
    """A1111's "NV" source: CPU emulation of `torch.randn(..., device='cuda')` (`rng_philox.Generator`).

    Element k of the n-th `randn` call uses counter (n, 0, k, 0) and key = seed as two 32-bit words, and keeps
    only the first Box-Muller output, computed in float64 and rounded to float32.
    """

    def __init__(self, seed: int) -> None:
        self.seed = _check_seed(seed)
        self.offset = 0

    def randn(self, shape: Sequence[int]) -> np.ndarray:
        shape = tuple(int(s) for s in shape)
        n = int(np.prod(shape, dtype=np.int64))
        if n >= 1 << 32:
            raise ValueError(f"NV randn of {n} elements exceeds the 2^32 per-call counter range")
        counter = np.zeros((4, n), dtype=np.uint32)
        counter[0] = self.offset & 0xFFFFFFFF
        counter[2] = np.arange(n, dtype=np.uint32)
        self.offset += 1
        c = philox4x32_10(counter, (self.seed & 0xFFFFFFFF, self.seed >> 32))
        u = c[0].astype(np.float64) * _TWO_POW32_INV + _TWO_POW32_INV / 2
        v = c[1].astype(np.float64) * _TWO_POW32_INV_2PI + _TWO_POW32_INV_2PI / 2
        out = np.sqrt(-2.0 * np.log(u)) * np.sin(v)
        return out.astype(np.float32).reshape(shape)


Generator = Union[torch.Generator, PhiloxGenerator]


def _generator_device(source: str, device: torch.device) -> torch.device:
    # A1111 uses a CPU generator on mps too (no mps generator existed when this was written).
    if source == "CPU" or device.type == "mps":
        return torch.device("cpu")
    return device


def create_generator(seed: int, source: str, device: torch.device | str) -> Generator:
    """One image's generator, as A1111's `rng.create_generator`."""
    seed = _check_seed(seed)
    device = torch.device(device)
    if source == "NV":
        return PhiloxGenerator(seed)
    if source not in RNG_SOURCES:
        raise ValueError(f"unknown randn source {source!r}; expected one of {', '.join(RNG_SOURCES)}")
    return torch.Generator(device=_generator_device(source, device)).manual_seed(seed)


def randn(shape: Sequence[int], generator: Generator, device: torch.device | str) -> torch.Tensor:
    """One float32 draw of `shape` from `generator`, placed on `device` (A1111's `randn_without_seed`)."""
    device = torch.device(device)
    shape = tuple(int(s) for s in shape)
    if isinstance(generator, PhiloxGenerator):
        return torch.from_numpy(generator.randn(shape)).to(device)
    return torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32).to(device)


def slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation used for variation seeds, as A1111's `rng.slerp` (rows along dim 1)."""
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - val) * omega) / so).unsqueeze(1) * low + (torch.sin(val * omega) / so).unsqueeze(1) * high


class ImageRNG:
    """Per-image noise streams for one batch (A1111's `rng.ImageRNG`).

    `shape` is one image's latent shape, e.g. (4, height // 8, width // 8). The first `next()` returns the
    initial noise [B, *shape]; later calls return the ancestral draws, each image continuing its own stream
    (after the eta-noise-seed-delta replacement, when that option is set).
    """

    def __init__(
        self,
        shape: Sequence[int],
        seeds: Sequence[int],
        *,
        source: str = "GPU",
        device: torch.device | str = "cpu",
        eta_noise_seed_delta: int = 0,
        subseeds: Sequence[int] | None = None,
        subseed_strength: float = 0.0,
    ) -> None:
        if source not in RNG_SOURCES:
            raise ValueError(f"unknown randn source {source!r}; expected one of {', '.join(RNG_SOURCES)}")
        if len(seeds) == 0:
            raise ValueError("ImageRNG needs at least one seed")
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 3 or min(self.shape) <= 0:
            raise ValueError(f"per-image latent shape must be (channels, h, w) with positive sizes, got {self.shape}")
        self.seeds = [_check_seed(s) for s in seeds]
        self.source = source
        self.device = torch.device(device)
        self.eta_noise_seed_delta = int(eta_noise_seed_delta or 0)
        self.subseeds = None if subseeds is None else [_check_seed(s) for s in subseeds]
        self.subseed_strength = float(subseed_strength)
        self.generators: list[Generator] = [create_generator(s, source, self.device) for s in self.seeds]
        self.is_first = True
        self.draws = 0

    @property
    def batch_size(self) -> int:
        return len(self.seeds)

    def first(self) -> torch.Tensor:
        xs = []
        for i, (seed, generator) in enumerate(zip(self.seeds, self.generators)):
            noise = randn(self.shape, generator, self.device)
            if self.subseeds is not None and self.subseed_strength != 0:
                # A1111 draws the variation noise from the freshly reseeded global RNG, which is the same
                # stream as a fresh generator with that seed.
                subseed = 0 if i >= len(self.subseeds) else self.subseeds[i]
                subnoise = randn(self.shape, create_generator(subseed, self.source, self.device), self.device)
                noise = slerp(self.subseed_strength, noise, subnoise)
            xs.append(noise)
        if self.eta_noise_seed_delta:
            self.generators = [
                create_generator(s + self.eta_noise_seed_delta, self.source, self.device) for s in self.seeds
            ]
        self.is_first = False
        return torch.stack(xs)

    def next(self) -> torch.Tensor:
        if self.is_first:
            return self.first()
        self.draws += 1
        return torch.stack([randn(self.shape, g, self.device) for g in self.generators])


def image_seeds(seed: int, count: int, *, variation: bool = False) -> list[int]:
    """A1111's `all_seeds` for one job: image i gets seed + i, or the same seed for all when a variation
    seed is in use (subseed_strength != 0; the variation seeds themselves are then `image_seeds(subseed, count)`).
    """
    seed = _check_seed(seed)
    if count < 1:
        raise ValueError(f"image count must be at least 1, got {count}")
    return [seed] * count if variation else [_check_seed(seed + i) for i in range(count)]
