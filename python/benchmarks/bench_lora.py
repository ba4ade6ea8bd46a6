"""LoRA merge cost: activation on the SD1.5-size UNet, and keyframed multipliers on a small demo-like UNet.

Run: ``PYTHONPATH=python /usr/bin/python3 python/benchmarks/bench_lora.py [--repeats N] [--steps N]``.
One run prints the issue-11 figures against their floors: 1 LoRA vs a plain copy of the touched tensors, 8 LoRAs vs
one matmul of all their stacked ranks per layer, keyframed vs static steps at a 64x64 latent.

1. Activating 1, 3 and 8 random LoRAs (rank 16/32, on every layer of every SpatialTransformer: proj_in/out,
   attn1/attn2 q/k/v/out, ff) on the SD1.5-size UNet (random weights, fp32, CPU), against a plain copy of
   the tensors they touch, timed in the same run. Also the cost of one keyframed re-merge step there.
2. Per sampling step on the demo UNet (lorabridge.demo's configuration, random weights, batch 2, at its own
   8x8 latent and at SD's 64x64 latent): a static LoRA (merged once), a keyframed
   LoRA re-merged every step through the patcher, and a keyframed LoRA as a side path y = Wx + s·B(Ax)
   (forward hooks), each as a ratio to the static step.
"""
from __future__ import annotations

import argparse
import re
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lorabridge.networks import Network, load_network
from lorabridge.networks.keymap import UNET_PREFIX
from lorabridge.patcher import Activation, Patcher

# Run as `python3 python/benchmarks/bench_lora.py`, this folder is on sys.path: share bench_unet's model set-up.
from bench_unet import demo_config, random_unet, sd15_config  # noqa: E402

TRANSFORMER_LAYER = re.compile(r"\.\d+\.(proj_in|proj_out|transformer_blocks\.\d+\.(attn[12]\.to_(q|k|v|out\.0)|ff\.net\.(0\.proj|2)))$")


def attention_layers(unet: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in unet.named_modules() if TRANSFORMER_LAYER.search("." + n)]


def random_lora(unet: nn.Module, rank: int, seed: int) -> dict[str, torch.Tensor]:
    """A kohya-format LoRA (compvis-style ``lora_unet_`` names) on every transformer layer."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, m in attention_layers(unet):
        group = "lora_unet_" + name.replace(".", "_")
        w = m.weight
        tail = (1, 1) if w.dim() == 4 else ()
        out[f"{group}.lora_down.weight"] = torch.randn((rank, w.shape[1], *tail), generator=g) * 0.01
        out[f"{group}.lora_up.weight"] = torch.randn((w.shape[0], rank, *tail), generator=g) * 0.01
        out[f"{group}.alpha"] = torch.tensor(float(rank) / 2)
    return out


def best_ms(fn: Callable[[], object], repeats: int, setup: Callable[[], object] = lambda: None) -> float:
    """Best of ``repeats`` timings of ``fn``; ``setup`` runs before each, untimed."""
    times = []
    for _ in range(repeats):
        setup()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return min(times)


def bench_activation(repeats: int) -> None:
    print("building the SD1.5-size UNet (random weights, fp32)...", flush=True)
    unet = random_unet(sd15_config())
    patcher = Patcher({UNET_PREFIX: unet})
    nets = [load_network(random_lora(unet, 16 if i % 2 == 0 else 32, seed=i), patcher.layers, f"lora{i}")
            for i in range(8)]
    touched = [m.weight for _, m in attention_layers(unet)]
    mb = sum(t.numel() * t.element_size() for t in touched) / 2 ** 20
    print(f"{len(touched)} touched layers, {mb:.0f} MiB fp32; torch threads {torch.get_num_threads()}")
    copy_ms = best_ms(lambda: [t.clone() for t in touched], repeats)
    print(f"{'plain copy of the touched tensors':44s} {copy_ms:9.1f} ms   1.00x")
    for n in (1, 3, 8):
        acts = [Activation(net, 1.0) for net in nets[:n]]

        def activate() -> None:
            patcher.restore()
            patcher.apply(acts)

        ms = best_ms(activate, repeats)
        print(f"{'activate ' + str(n) + ' LoRA(s) from scratch':44s} {ms:9.1f} ms {ms / copy_ms:6.2f}x"
              "   (restore + merge)")
        # The merge alone, on a model that holds its base weights (what activating on a fresh model costs); the
        # restore that brings it back between repetitions is untimed.
        ms = best_ms(lambda: patcher.apply(acts), repeats, setup=patcher.restore)
        print(f"{'  merge alone':44s} {ms:9.1f} ms {ms / copy_ms:6.2f}x")
    patcher.restore()
    # Compute floor for 8 LoRAs: per layer ONE matmul of all their stacked ranks into a full-size output
    # (what the patcher's stacked route does, without the bookkeeping).
    stacks = []
    for path, module in [(p, m) for p, m in patcher.layers.values() if any(p in n.modules for n in nets)]:
        mods = [n.modules[path] for n in nets if path in n.modules]
        ups = torch.cat([m_.up2 * m_.calc_scale() for m_ in mods], dim=1)
        downs = torch.cat([m_.down2 for m_ in mods], dim=0)
        w = module.weight.detach()
        stacks.append((w.reshape(w.shape[0], -1), ups, downs, torch.empty_like(w.reshape(w.shape[0], -1))))

    def floor() -> None:
        for w2, ups, downs, out in stacks:
            torch.addmm(w2, ups, downs, out=out)

    floor_ms = best_ms(floor, repeats)
    acts8 = [Activation(net, 1.0) for net in nets]

    def activate8() -> None:
        patcher.restore()
        patcher.apply(acts8)

    ms8 = best_ms(activate8, repeats)
    print(f"{'floor: one matmul of 8 stacked ranks/layer':44s} {floor_ms:9.1f} ms   1.00x")
    print(f"{'activate 8 LoRAs vs that floor':44s} {ms8:9.1f} ms {ms8 / floor_ms:6.2f}x")
    patcher.restore()
    # keyframed: multiplier changes every call; after the first change the unit updates are cached
    step = {"i": 0}

    def keyframe() -> None:
        step["i"] += 1
        patcher.apply([Activation(nets[0], 0.5 + 0.01 * step["i"])])

    keyframe(), keyframe()
    ms = best_ms(keyframe, repeats)
    print(f"{'keyframed re-merge step (1 LoRA, cached)':44s} {ms:9.1f} ms {ms / copy_ms:6.2f}x")
    patcher.restore()


class SidePath:
    """y = Wx + s·scale·up(down(x)) on every LoRA layer, through forward hooks (plain LoRA only)."""

    def __init__(self, unet: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
        self.s = 1.0
        self.handles: list = []
        self.tensors = tensors
        self.attach(unet)

    def attach(self, unet: nn.Module) -> None:
        for name, m in attention_layers(unet):
            group = "lora_unet_" + name.replace(".", "_")
            down, up = self.tensors[f"{group}.lora_down.weight"], self.tensors[f"{group}.lora_up.weight"]
            scale = float(self.tensors[f"{group}.alpha"]) / down.shape[0]
            self.handles.append(m.register_forward_hook(self._hook(down, up, scale, isinstance(m, nn.Conv2d))))

    def _hook(self, down: torch.Tensor, up: torch.Tensor, scale: float, conv: bool):
        if not conv:
            down, up = down.reshape(down.shape[0], -1), up.reshape(up.shape[0], -1)

        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
            x = inputs[0]
            low = F.conv2d(x, down) if conv else F.linear(x, down)
            return output + (self.s * scale) * (F.conv2d(low, up) if conv else F.linear(low, up))
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def bench_keyframed(steps: int, latent: int) -> None:
    cfg = demo_config()
    unet = random_unet(cfg)
    patcher = Patcher({UNET_PREFIX: unet})
    tensors = random_lora(unet, 16, seed=100)
    net: Network = load_network(tensors, patcher.layers, "kf")
    side = SidePath(unet, tensors)
    side.remove()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, cfg.in_channels, latent, latent, generator=g)
    ctx = torch.randn(2, 77, cfg.context_dim, generator=g)
    t = torch.tensor([999.0, 500.0])
    times: dict[str, list[float]] = {"static": [], "remerge": [], "merge_only": [], "side": []}

    def timed(key: str, fn: Callable[[], object]) -> None:
        start = time.perf_counter()
        fn()
        times[key].append((time.perf_counter() - start) * 1000.0)

    # The three modes are interleaved step by step so that load from other processes hits them alike.
    with torch.no_grad():
        patcher.apply([Activation(net, 1.0)])
        unet(x, t, ctx)
        for i in range(steps):
            m = 0.2 + 0.8 * i / steps
            patcher.apply([Activation(net, 1.0)])
            timed("static", lambda: unet(x, t, ctx))
            timed("remerge", lambda: (timed("merge_only", lambda: patcher.apply([Activation(net, m)])), unet(x, t, ctx)))
            patcher.restore()
            side.attach(unet)
            side.s = m
            timed("side", lambda: unet(x, t, ctx))
            side.remove()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"demo UNet ({len(net.modules)} LoRA layers, rank 16), batch 2, {latent}x{latent} latent, "
          f"median of {steps} interleaved steps; torch threads {torch.get_num_threads()}:")
    print(f"{'static LoRA (merged once)':44s} {med['static']:9.2f} ms   1.00x")
    print(f"{'keyframed, re-merge every step':44s} {med['remerge']:9.2f} ms {med['remerge'] / med['static']:6.2f}x"
          f"   (re-merge alone {med['merge_only']:.2f} ms)")
    print(f"{'keyframed, side path y = Wx + s*B(Ax)':44s} {med['side']:9.2f} ms {med['side'] / med['static']:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--latent", type=int, nargs="+", default=[8, 64],
                        help="demo latent sizes (8 = the demo's 64x64 pixels, 64 = SD's 512x512 pixels)")
    parser.add_argument("--skip-sd15", action="store_true", help="only the demo-model keyframe benchmark")
    args = parser.parse_args()
    for latent in args.latent:
        bench_keyframed(args.steps, latent)
    if not args.skip_sd15:
        bench_activation(args.repeats)


if __name__ == "__main__":
    main()
