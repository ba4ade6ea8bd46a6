"""Device check: the SD1 and SDXL demo models end to end, an SDXL-size UNet step and LoRA activation, on a GPU.

Run on a machine with CUDA (defaults: A1111's precision — fp16 weights under autocast, SDPA when torch has it)::

    PYTHONPATH=python python3 python/benchmarks/device_check.py [--device cuda] [--precision autocast|full]
        [--preset sdxl] [--size 1024] [--steps 10] [--json OUT.json]

CPU smoke test (tiny sizes, fp32): ``... device_check.py --device cpu --preset tiny --size 256 --steps 2``.

Prints, and writes as JSON with ``--json`` (or to ``$OUT/device_check.json`` when ``$OUT`` is set):
  * demo models (SD1 ``lorabridge-demo`` and SDXL ``lorabridge-demo-xl``, generated into a temporary folder):
    load time, it/s of Euler a with CFG at ``--demo-size``, whether two runs with one seed give identical
    PNG bytes, and the LoRA at weight 0 giving the same bytes as no LoRA;
  * an SDXL-size UNet (``--preset sdxl`` = SDXL base shapes, random weights) in the run's dtype: it/s of one
    guided step (batch 2 = cond + uncond, ``--size`` px), peak device memory;
  * LoRA activation on that UNet: 1 and 3 rank-32 LoRAs through the patcher (fp32 accumulation, written back in
    the weights' dtype) against a plain copy of the touched tensors, and a bit-exact restore check.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable

import torch

from lorabridge import attention
from lorabridge.generation import Session
from lorabridge.networks import load_network
from lorabridge.networks.keymap import UNET_PREFIX
from lorabridge.patcher import Activation, Patcher
from lorabridge.sdxl import precision_for
from lorabridge.sgm_unet import SDXLUNetModel

from sdxl_synth import preset, random_module, random_unet_lora, transformer_layers  # noqa: E402


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(device: str, fn: Callable[[], Any]) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _digest(tensors: list[torch.Tensor]) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def demo_run(path: str, lora: str, device: str, precision: str, size: int, steps: int) -> dict[str, Any]:
    """Load a demo checkpoint and generate with and without its LoRA (token ids are the demo vocabulary's)."""
    result: dict[str, Any] = {"checkpoint": os.path.basename(path)}
    t0 = time.perf_counter()
    s = Session(path, device=device, precision=precision)
    result["load_s"] = time.perf_counter() - t0
    eos = s.model.text_encoder.config.vocab_size - 1
    ids = [[[eos - 1, 5, 6, 7, 8] + [eos] * 72]]
    empty = [[[eos - 1] + [eos] * 76]]
    ones = [[[1.0] * 77]]
    xl = getattr(s, "family", "sd1") == "sdxl"

    def encode(tokens: list, zero: bool) -> int:
        if xl:
            return s.encode_batch_xl(tokens, None, ones, size, size, zero_text=zero)[0]
        return s.encode_batch(tokens, ones)[0]

    def generate(nets: list) -> tuple[bytes, float]:
        s.set_networks(nets)
        cond, uncond = encode(ids, False), encode(empty, True)
        run = s.start("Euler a", "Automatic", steps, 7, 1, size, size)
        _sync(device)
        start = time.perf_counter()
        while s.step(run, [(cond, 1.0)], uncond, 7.0) > 0:
            pass
        _sync(device)
        it_s = steps / (time.perf_counter() - start)
        png = s.decode_png(run, ["device check"])[0]
        for h in (run, cond, uncond):
            s.release(h)
        return png, it_s

    generate([])  # warm-up (kernels, autotuning)
    a, it_s = generate([])
    b, _ = generate([])
    s.load_network("lora", lora)
    t = _timed(device, lambda: s.set_networks([("lora", 0.8, 0.8, None)]))
    c, _ = generate([("lora", 0.0, 0.0, None)])
    s.restore()
    result.update(it_s=it_s, size=size, steps=steps, same_seed_same_bytes=a == b, lora_weight0_equals_none=a == c,
                  lora_activation_s=t, info=s.model_info())
    return result


def unet_step(p_name: str, device: str, precision: str, size: int, steps: int) -> tuple[dict[str, Any], Any]:
    prec = precision_for(device, precision)
    p = preset(p_name)
    unet = random_module(SDXLUNetModel(p.unet, device="meta"), dtype=prec.dtype, device=device)
    lat = size // 8
    g = torch.Generator(device=device).manual_seed(1)
    x = torch.randn(2, 4, lat, lat, generator=g, device=device)
    ctx = torch.randn(2, 154, p.unet.context_dim, generator=g, device=device)
    y = torch.randn(2, p.unet.adm_in_channels, generator=g, device=device)
    t = torch.tensor([500.0, 500.0], device=device)
    autocast = torch.autocast("cuda", dtype=torch.float16) if prec.autocast else contextlib.nullcontext()

    def step() -> None:
        with torch.no_grad(), autocast:
            out = unet(x, t, ctx, y)
        assert torch.isfinite(out).all(), "non-finite UNet output"

    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = _timed(device, lambda: [step() for _ in range(steps)])
    res = {"preset": p_name, "parameters": sum(q.numel() for q in unet.parameters()), "dtype": str(prec.dtype),
           "autocast": prec.autocast, "sdpa": attention.HAS_SDPA, "size": size, "batch": 2, "steps": steps,
           "it_s": steps / seconds}
    if device.startswith("cuda"):
        res["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
    return res, unet


def lora_activation(unet: Any, device: str, repeats: int = 3) -> dict[str, Any]:
    patcher = Patcher({UNET_PREFIX: unet})
    nets = [load_network(random_unet_lora(unet, 32, seed=i), patcher.layers, f"lora{i}") for i in range(3)]
    touched = [m.weight for _, m in transformer_layers(unet)]
    before = _digest(touched)
    copy_s = min(_timed(device, lambda: [w.clone() for w in touched]) for _ in range(repeats))
    res: dict[str, Any] = {"touched_layers": len(touched), "copy_s": copy_s}
    for k in (1, 3):
        acts = [Activation(n, 1.0) for n in nets[:k]]

        def activate() -> None:
            patcher.restore()
            patcher.apply(acts)

        res[f"activate_{k}_s"] = min(_timed(device, activate) for _ in range(repeats))
        res[f"activate_{k}_vs_copy"] = res[f"activate_{k}_s"] / copy_s
    patcher.restore()
    res["restore_bit_exact"] = _digest(touched) == before
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default="autocast", choices=["autocast", "full"])
    ap.add_argument("--preset", default="sdxl", choices=["sdxl", "half", "tiny"])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--demo-size", type=int, default=512)
    ap.add_argument("--demo-steps", type=int, default=20)
    ap.add_argument("--skip", nargs="*", default=[], choices=["demo", "unet", "lora"])
    ap.add_argument("--json")
    args = ap.parse_args()
    report: dict[str, Any] = {"torch": torch.__version__, "device": args.device, "precision": args.precision}
    if args.device.startswith("cuda"):
        report["device_name"] = torch.cuda.get_device_name(0)
    print(json.dumps(report), flush=True)
    if "demo" not in args.skip:
        from lorabridge.demo import write_demo_model
        from lorabridge.demo_xl import write_demo_model_xl

        with tempfile.TemporaryDirectory() as folder:
            sd1, xl = write_demo_model(folder), write_demo_model_xl(folder)
            for name, (ckpt, lora) in {"sd1_demo": (sd1.checkpoint, sd1.loras[0]),
                                       "sdxl_demo": (xl.checkpoint, xl.lora)}.items():
                report[name] = demo_run(str(ckpt), str(lora), args.device, args.precision, args.demo_size,
                                        args.demo_steps)
                print(name, json.dumps(report[name]), flush=True)
    if "unet" not in args.skip or "lora" not in args.skip:
        res, unet = unet_step(args.preset, args.device, args.precision, args.size, args.steps)
        report["sdxl_unet_step"] = res
        print("sdxl_unet_step", json.dumps(res), flush=True)
        if "lora" not in args.skip:
            report["lora_activation"] = lora_activation(unet, args.device)
            print("lora_activation", json.dumps(report["lora_activation"]), flush=True)
    out = args.json or (os.path.join(os.environ["OUT"], "device_check.json") if os.environ.get("OUT") else None)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    ok = all(report.get(k, {}).get(f, True) for k in ("sd1_demo", "sdxl_demo")
             for f in ("same_seed_same_bytes", "lora_weight0_equals_none"))
    ok = ok and report.get("lora_activation", {}).get("restore_bit_exact", True)
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
