"""Conformance harnesses: run the shared reference manifests through LoraBridge's own loaders and code paths.

Usage: ``python3 -m lorabridge.conformance {models,samplers,lora} MANIFEST OUT_DIR``.
Each kind lives in its own module exposing ``run(manifest: Path, out_dir: Path) -> int``.
"""
