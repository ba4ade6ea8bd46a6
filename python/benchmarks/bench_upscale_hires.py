"""Upscaler tiling overhead and hires-fix overhead, each against a baseline measured in the same run.

Run: ``PYTHONPATH=python /usr/bin/python3 python/benchmarks/bench_upscale_hires.py [--repeats N] [--threads N]``.

1. Tiling: one ESRGAN-family network (random weights, RRDBNet nf 32, nb 4, 4x; Real-ESRGAN-like but smaller) on a
   256x256 picture through A1111's tiled path (tile 192, overlap 8: 4 tiles, per-tile uint8 + 8-bit blending)
   against one plain network forward on the same picture as a float tensor. Ratio = tiled / plain.
2. Hires fix on the demo model (lorabridge.demo, random weights): txt2img 128x128 for 8 Euler a steps, Latent x2,
   8 hires steps at denoise 0.7, timed as a whole (first pass + upscale + noise + second pass + VAE decode) against
   the sum of the two passes' sampler time (the model calls alone). Ratio = total / sampler time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lorabridge import demo
from lorabridge.esrgan import RRDBConfig, RRDBNet, UpscalerModel
from lorabridge.generation import Session
from lorabridge.generation_img import start_hires_run
from lorabridge.upscaler import pil_to_bgr_tensor, upscale_with_model


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_tiling(repeats: int) -> None:
    torch.manual_seed(0)
    cfg = RRDBConfig(in_nc=3, out_nc=3, nf=32, nb=4, gc=32, upconvs=2, shuffle_factor=1)
    net = RRDBNet(cfg).eval().requires_grad_(False)
    model = UpscalerModel("<random>", net, "old", torch.float32)
    a = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    im = Image.fromarray(a)
    x = pil_to_bgr_tensor(im)
    plain = _median(lambda: model.forward_raw(x), repeats)
    tiled = _median(lambda: upscale_with_model(model, im, 192, 8), repeats)
    print(f"upscale 256x256 -> 1024x1024, RRDBNet nf32 nb4 x4: plain forward {plain * 1000:.0f} ms, "
          f"A1111 tiled (192/8, 4 tiles) {tiled * 1000:.0f} ms  -> tiling overhead {tiled / plain:.2f}x")


def bench_hires(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = demo.write_demo_model(Path(tmp))
        s = Session(str(files.checkpoint), device="cpu")
        ids = [2012, 300, 301, 302] + [2013] * 73
        cond = s.encode([ids], [[1.0] * 77])
        uncond = s.encode([[2012] + [2013] * 76], [[1.0] * 77])

        def passes() -> tuple[float, float]:
            sampler_time = 0.0
            t_all = time.perf_counter()
            first = s.start("Euler a", "Automatic", 8, 5, 1, 128, 128)
            t0 = time.perf_counter()
            while s.step(first, [(cond, 1.0)], uncond, 7.0):
                pass
            sampler_time += time.perf_counter() - t0
            second, _ = start_hires_run(s, first, "Euler a", "Automatic", 8, 0.7, 2.0, 0, 0, "Latent")
            t0 = time.perf_counter()
            while s.step(second, [(cond, 1.0)], uncond, 7.0):
                pass
            sampler_time += time.perf_counter() - t0
            s.decode_png(second, ["bench"])
            total = time.perf_counter() - t_all
            s.release(first)
            s.release(second)
            return total, sampler_time

        passes()  # warm-up
        runs = [passes() for _ in range(repeats)]
        total = statistics.median(r[0] for r in runs)
        sampler = statistics.median(r[1] for r in runs)
        print(f"hires fix 128->256 on the demo model (8 + 8 Euler a steps): total {total * 1000:.0f} ms, "
              f"both passes' sampler time {sampler * 1000:.0f} ms  -> total / sampler {total / sampler:.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} thread(s), median of {a.repeats}")
    with torch.no_grad():
        bench_tiling(a.repeats)
        bench_hires(a.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
