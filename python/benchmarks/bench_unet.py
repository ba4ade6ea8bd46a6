"""Time one UNet step on CPU: the SD1.5-size UNet vs a small demo-size UNet (fp32, 64x64 latent, batch 2).

Run: ``PYTHONPATH=python /usr/bin/python3 python/benchmarks/bench_unet.py [--repeats N] [--demo FILE]``.
The SD1.5 configuration is inferred from ../shared/conformance/models/sd15_keys.tsv exactly as a user's file
would be (random weights; speed does not depend on values). ``--demo`` times the UNet of a checkpoint file
instead of the demo configuration from :func:`lorabridge.demo.demo_configs`. Prints ms per step and the SD1.5/demo ratio.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import torch

from lorabridge import arch
from lorabridge.model import load_checkpoint
from lorabridge.unet import UNetConfig, UNetModel

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def demo_config() -> UNetConfig:
    """The built-in demo model's UNet configuration (random weights; speed does not depend on values)."""
    from lorabridge.demo import demo_configs

    return demo_configs(49408)[0]


def sd15_config() -> UNetConfig:
    with open(SHARED / "conformance/models/sd15_keys.tsv", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    sd = {k: torch.empty([int(x) for x in s.split(",")] if s else [], device="meta")
          for k, s in rows if k.startswith(arch.UNET_PREFIX)}
    cfg = arch.detect(sd).unet
    assert cfg is not None
    return cfg


def random_unet(cfg: UNetConfig) -> UNetModel:
    # Build on meta and fill with scaled noise: the default init of 860M parameters would dominate setup.
    unet = UNetModel(cfg, device="meta").to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in unet.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) * (fan_in ** -0.5 if p.dim() > 1 else 0.02))
    return unet.eval().requires_grad_(False)


def time_step(unet: UNetModel, repeats: int, latent: int = 64, batch: int = 2) -> float:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, unet.config.in_channels, latent, latent, generator=g)
    ctx = torch.randn(batch, 77, unet.config.context_dim, generator=g)
    t = torch.tensor([999.0, 500.0][:batch])
    times = []
    with torch.no_grad():
        unet(x, t, ctx)  # warm-up: allocator and oneDNN primitive caches
        for _ in range(repeats):
            start = time.perf_counter()
            unet(x, t, ctx)
            times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--demo", type=Path, help="a demo checkpoint whose UNet to time instead of the built-in small one")
    a = ap.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, fp32 CPU, latent 64x64, batch 2")
    if a.demo:
        demo = load_checkpoint(a.demo).unet
        if demo is None:
            raise SystemExit(f"{a.demo} has no UNet")
        label = a.demo.name
    else:
        demo, label = random_unet(demo_config()), "demo configuration, random weights"
    n_demo = sum(p.numel() for p in demo.parameters())
    demo_ms = time_step(demo, max(a.repeats, 5))
    print(f"demo   ({label}, {n_demo / 1e6:.2f}M params): {demo_ms:9.1f} ms/step")
    del demo
    sd15 = random_unet(sd15_config())
    n_sd = sum(p.numel() for p in sd15.parameters())
    sd_ms = time_step(sd15, a.repeats)
    print(f"SD1.5  (inferred from sd15_keys.tsv, {n_sd / 1e6:.1f}M params): {sd_ms:9.1f} ms/step")
    print(f"ratio SD1.5 / demo: {sd_ms / demo_ms:.1f}x")


if __name__ == "__main__":
    main()
