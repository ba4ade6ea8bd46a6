"""Command-line dispatch for the conformance harnesses."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

KINDS = ("models", "samplers", "lora", "sdxl", "upscalers", "lbw")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m lorabridge.conformance")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out_dir", type=Path)
    args, extra = parser.parse_known_args(argv)
    if not args.manifest.is_file():
        parser.error(f"manifest not found: {args.manifest}")
    module = importlib.import_module(f"lorabridge.conformance.{args.kind}")
    if extra:
        if args.kind != "sdxl":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return int(module.run(args.manifest, args.out_dir, extra))
    return int(module.run(args.manifest, args.out_dir))


if __name__ == "__main__":
    sys.exit(main())
