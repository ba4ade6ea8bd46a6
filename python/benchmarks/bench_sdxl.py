"""SDXL on the CPU: checkpoint load memory, one UNet step, LoRA activation — each against a baseline in the same run.

Run: ``PYTHONPATH=python /usr/bin/python3 python/benchmarks/bench_sdxl.py [--load-preset sdxl] [--unet-preset sdxl]
[--size 1024] [--lora-preset half] [--skip load step lora] [--threads N]``

1. **load**: writes a synthetic SDXL single-file checkpoint with random **fp16** weights (the shapes of
   ``--load-preset``, streamed to disk), then loads it in a fresh process through ``lorabridge.sdxl.SDXLModel``
   (fp32, CPU, as LoRaBridge runs on a CPU) and prints the load time and the child's peak RSS, as a ratio to
   the file's fp32 size (the size of the model it has to end up holding). Acceptance: < 1.3x.
2. **step**: one UNet call (batch 1, fp32, ``--size`` pixels, so a ``size/8`` latent, 2 x 77 tokens of context)
   of the ``--unet-preset`` UNet with random weights; seconds per step.
3. **lora**: activating 1 and 3 random rank-32 kohya LoRAs (every UNet transformer layer, fp16 factors) on the
   ``--lora-preset`` UNet (weights in ``--lora-dtype``) through the patcher, against a plain copy of the tensors
   they touch. Only the touched layers are materialised (the others never take part).

Presets (see sdxl_synth.py): ``sdxl`` = SDXL base 1.0 shapes, ``half`` = every width halved, ``tiny`` = demo size.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import torch

from lorabridge.networks import load_network
from lorabridge.networks.keymap import UNET_PREFIX
from lorabridge.patcher import Activation, Patcher
from lorabridge.sgm_unet import SDXLUNetModel

from sdxl_synth import preset, random_module, random_unet_lora, transformer_layers, write_synthetic_checkpoint  # noqa: E402,I001


def _rss_now_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child_load(path: str) -> None:
    """Runs in the fresh process: load and report (seconds, baseline RSS, peak RSS) on stdout."""
    from lorabridge.sdxl import SDXLModel

    base = _rss_now_kib()
    start = time.perf_counter()
    model = SDXLModel.load(path)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    params = sum(p.numel() for part in model.parts for p in getattr(model, part).parameters())
    print(f"RESULT {seconds:.3f} {base} {peak} {params} {_rss_now_kib()}")


def bench_load(preset_name: str, keep: str | None) -> None:
    p = preset(preset_name)
    folder = keep or tempfile.mkdtemp(prefix="lb_sdxl_")
    path = os.path.join(folder, f"synthetic_{preset_name}_fp16.safetensors")
    if not os.path.isfile(path):
        print(f"writing a synthetic fp16 SDXL checkpoint ({preset_name}) to {path} ...", flush=True)
        t = time.perf_counter()
        write_synthetic_checkpoint(path, p)
        print(f"  written in {time.perf_counter() - t:.1f} s", flush=True)
    size = os.path.getsize(path)
    try:
        out = subprocess.run([sys.executable, __file__, "--child-load", path], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path[:1] + [os.environ.get("PYTHONPATH", "")])})
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")), None)
        if line is None:
            raise SystemExit(f"the loading process failed:\n{out.stdout}\n{out.stderr}")
        seconds, base, peak, params, after = line.split()[1:]
        fp32 = int(params) * 4
        gib = 2 ** 30
        print(f"file: {size / gib:.2f} GiB fp16 ({int(params) / 1e9:.2f} G parameters); fp32 model size "
              f"{fp32 / gib:.2f} GiB")
        print(f"load time {float(seconds):.1f} s; peak RSS {int(peak) / 2**20:.2f} GiB "
              f"= {int(peak) * 1024 / fp32:.3f}x the fp32 size (process before loading: {int(base) / 2**20:.2f} GiB; "
              f"after: {int(after) / 2**20:.2f} GiB)")
    finally:
        if keep is None:
            os.remove(path)
            os.rmdir(folder)


def bench_step(preset_name: str, size: int, repeats: int) -> None:
    p = preset(preset_name)
    print(f"building the {preset_name} UNet (random weights, fp32) ...", flush=True)
    unet = random_module(SDXLUNetModel(p.unet, device="meta"))
    n = sum(x.numel() for x in unet.parameters())
    g = torch.Generator().manual_seed(1)
    lat = size // 8
    x = torch.randn(1, 4, lat, lat, generator=g)
    ctx = torch.randn(1, 154, p.unet.context_dim, generator=g)
    y = torch.randn(1, p.unet.adm_in_channels, generator=g)
    t = torch.tensor([500.0])
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            out = unet(x, t, ctx, y)
            times.append(time.perf_counter() - start)
    assert torch.isfinite(out).all()
    print(f"UNet step ({preset_name}, {n / 1e9:.2f} G parameters, {size}x{size} px = {lat}x{lat} latent, batch 1, "
          f"fp32, {torch.get_num_threads()} threads): best {min(times):.1f} s of {repeats} "
          f"({1 / min(times):.4f} it/s); peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    del unet


def touched_only_unet(preset_name: str, dtype: torch.dtype) -> SDXLUNetModel:
    """The UNet with real (random) tensors only in the layers the LoRAs touch; everything else stays on the meta
    device. Activation never reads other layers, and this keeps an SDXL-size run within a 24 GB machine (the
    patcher's kept originals double the touched tensors)."""
    unet = SDXLUNetModel(preset(preset_name).unet, device="meta")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, m in transformer_layers(unet):
            m.weight = torch.nn.Parameter((torch.randn(m.weight.shape, generator=g) * m.weight.shape[1] ** -0.5)
                                          .to(dtype), requires_grad=False)
            if m.bias is not None:
                m.bias = torch.nn.Parameter((0.02 * torch.randn(m.bias.shape, generator=g)).to(dtype),
                                            requires_grad=False)
    return unet.eval()


def bench_lora(preset_name: str, repeats: int, dtype: torch.dtype = torch.float32) -> None:
    print(f"building the {preset_name} UNet's transformer layers for LoRA activation (random weights, {dtype}) ...",
          flush=True)
    unet = touched_only_unet(preset_name, dtype)
    patcher = Patcher({UNET_PREFIX: unet})
    nets = [load_network(random_unet_lora(unet, 32, seed=i), patcher.layers, f"lora{i}") for i in range(3)]
    touched = [m.weight for _, m in transformer_layers(unet)]
    mib = sum(t.numel() * t.element_size() for t in touched) / 2 ** 20
    print(f"{len(touched)} touched layers, {sum(t.numel() for t in touched) / 1e9:.2f} G parameters, {mib:.0f} MiB")

    def best(fn) -> float:  # type: ignore[no-untyped-def]
        ts = []
        for _ in range(repeats):
            s = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - s)
        return min(ts) * 1000

    copy_ms = best(lambda: [t.clone() for t in touched])
    print(f"{'plain copy of the touched tensors':40s} {copy_ms:9.1f} ms   1.00x")
    for k in (1, 3):
        acts = [Activation(net, 1.0) for net in nets[:k]]

        def activate() -> None:
            patcher.restore()
            patcher.apply(acts)

        ms = best(activate)
        print(f"{'activate ' + str(k) + ' LoRA(s) (rank 32)':40s} {ms:9.1f} ms {ms / copy_ms:6.2f}x")
    patcher.restore()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child-load", help=argparse.SUPPRESS)
    ap.add_argument("--load-preset", default="sdxl", choices=["sdxl", "half", "tiny"])
    ap.add_argument("--unet-preset", default="sdxl", choices=["sdxl", "half", "tiny"])
    ap.add_argument("--lora-preset", default="sdxl", choices=["sdxl", "half", "tiny"])
    ap.add_argument("--lora-dtype", default="float32", choices=["float32", "float16"],
                    help="dtype of the UNet weights the LoRAs merge into (fp16 as on CUDA: fp32 accumulation)")
    ap.add_argument("--size", type=int, default=1024, help="image size in pixels for the UNet step")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--keep", help="folder to keep (and reuse) the synthetic checkpoint in")
    ap.add_argument("--skip", nargs="*", default=[], choices=["load", "step", "lora"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_load:
        child_load(args.child_load)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if "load" not in args.skip:
        bench_load(args.load_preset, args.keep)
    if "step" not in args.skip:
        bench_step(args.unet_preset, args.size, args.repeats)
    if "lora" not in args.skip:
        bench_lora(args.lora_preset, max(1, args.repeats), getattr(torch, args.lora_dtype))


if __name__ == "__main__":
    main()
