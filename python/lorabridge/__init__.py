"""LoraBridge's Python side: Stable Diffusion 1.x runtime, LoRA-family networks and samplers on torch alone.

C# calls only :mod:`lorabridge.bridge`; everything else is internal.
"""
