"""Key mapping from LoRA-family file keys to model layers, as A1111 v1.10.1 does it.

A1111 (``extensions-builtin/Lora/networks.py``) names every module of the loaded model by its module path
with ``.`` replaced by ``_`` (UNet modules under ``diffusion_model_``, CLIP text modules under
``transformer_``), splits each file key at its first ``.`` into a group and a part, converts the group with
``convert_diffusers_name_to_compvis`` and falls back to a few prefix replacements. Groups that reach no
module are ignored (A1111 only logs them at debug level). This module reproduces that, quirks included
(SD1-only upsampler formula, no ``conv_norm_out`` rule, no conversion for ``oft_unet_``), so a file reaches
exactly the layers it reaches in A1111.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

from torch import nn

# ldm checkpoint prefixes and the A1111 layer-name prefixes they correspond to.
UNET_PREFIX = "model.diffusion_model."
TE_PREFIX = "cond_stage_model.transformer."

_RESNET_PARTS = {
    "conv1": "in_layers_2",
    "conv2": "out_layers_3",
    "norm1": "in_layers_0",
    "norm2": "out_layers_0",
    "time_emb_proj": "emb_layers_1",
    "conv_shortcut": "skip_connection",
}

_RULES: list[tuple[re.Pattern[str], object]] = []


def _rule(pattern: str):
    def register(fn):
        _RULES.append((re.compile(pattern), fn))
        return fn
    return register


def _part(kind: str, name: str) -> str:
    return _RESNET_PARTS.get(name, name) if kind == "resnets" else name


@_rule(r"lora_unet_conv_in(.*)")
def _conv_in(rest: str) -> str:
    return f"diffusion_model_input_blocks_0_0{rest}"


@_rule(r"lora_unet_conv_out(.*)")
def _conv_out(rest: str) -> str:
    return f"diffusion_model_out_2{rest}"


@_rule(r"lora_unet_time_embedding_linear_(\d+)(.*)")
def _time_embed(n: str, rest: str) -> str:
    return f"diffusion_model_time_embed_{int(n) * 2 - 2}{rest}"


@_rule(r"lora_unet_down_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)")
def _down(block: str, kind: str, idx: str, name: str) -> str:
    sub = 1 if kind == "attentions" else 0
    return f"diffusion_model_input_blocks_{1 + int(block) * 3 + int(idx)}_{sub}_{_part(kind, name)}"


@_rule(r"lora_unet_mid_block_(attentions|resnets)_(\d+)_(.+)")
def _mid(kind: str, idx: str, name: str) -> str:
    pos = 1 if kind == "attentions" else int(idx) * 2
    return f"diffusion_model_middle_block_{pos}_{_part(kind, name)}"


@_rule(r"lora_unet_up_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)")
def _up(block: str, kind: str, idx: str, name: str) -> str:
    sub = 1 if kind == "attentions" else 0
    return f"diffusion_model_output_blocks_{int(block) * 3 + int(idx)}_{sub}_{_part(kind, name)}"


@_rule(r"lora_unet_down_blocks_(\d+)_downsamplers_0_conv")
def _downsample(block: str) -> str:
    return f"diffusion_model_input_blocks_{3 + int(block) * 3}_0_op"


@_rule(r"lora_unet_up_blocks_(\d+)_upsamplers_0_conv")
def _upsample(block: str) -> str:
    # A1111's formula assumes SD1, where up_blocks_0 has no attention (so its upsampler is at index 1).
    b = int(block)
    return f"diffusion_model_output_blocks_{2 + b * 3}_{2 if b > 0 else 1}_conv"


@_rule(r"lora_te_text_model_encoder_layers_(\d+)_(.+)")
def _te(layer: str, name: str) -> str:
    return f"transformer_text_model_encoder_layers_{layer}_{name}"


@_rule(r"lora_te2_text_model_encoder_layers_(\d+)_(.+)")
def _te2(layer: str, name: str) -> str:
    # SDXL's second encoder (open_clip naming); never present in an SD1 model, so these keys are ignored.
    name = name.replace("mlp_fc1", "mlp_c_fc").replace("mlp_fc2", "mlp_c_proj").replace("self_attn", "attn")
    return f"1_model_transformer_resblocks_{layer}_{name}"


def convert_diffusers_name_to_compvis(key: str) -> str:
    """A1111's conversion of a kohya (diffusers-style) group name; unknown names come back unchanged."""
    for pattern, fn in _RULES:
        m = pattern.match(key)
        if m:
            return fn(*m.groups())  # type: ignore[operator]
    return key


_X_PROJ = re.compile(r"(.*)_([qkv]_proj)$")


def a1111_layer_name(ldm_module_path: str) -> str:
    """A1111's ``network_layer_name`` for a module given by its ldm path (``model.diffusion_model.x.y``)."""
    if ldm_module_path.startswith("model."):
        path = ldm_module_path[len("model."):]
    elif ldm_module_path.startswith("cond_stage_model."):
        path = ldm_module_path[len("cond_stage_model."):]
    elif ldm_module_path.startswith("conditioner.embedders."):
        # SDXL: A1111 names the embedders' modules "0_transformer_…" (te1) and "1_model_…" (te2).
        path = ldm_module_path[len("conditioner.embedders."):]
    else:
        raise ValueError(f"not an SD1 ldm module path: {ldm_module_path!r}")
    return path.replace(".", "_")


def match_group(group: str, layers: Mapping[str, object]) -> str | None:
    """The A1111 layer name a file group reaches in ``layers`` (keyed by A1111 layer name), or None.

    Same order of attempts as ``networks.py:load_network``: conversion, the ``_[qkv]_proj`` strip (for
    SD2's MultiheadAttention), then the ``lora_unet``/``lora_te1_text_model``/``oft_unet``/``lyco_unet``
    prefix replacements.
    """
    key = convert_diffusers_name_to_compvis(group)
    if key in layers:
        return key
    m = _X_PROJ.match(key)
    if m and m.group(1) in layers:
        return m.group(1)
    candidates: list[str] = []
    if "lora_unet" in group:
        candidates.append(group.replace("lora_unet", "diffusion_model"))
    elif "lora_te1_text_model" in group:
        candidates.append(group.replace("lora_te1_text_model", "0_transformer_text_model"))
        candidates.append(group.replace("lora_te1_text_model", "transformer_text_model"))
    elif "oft_unet" in group:
        candidates.append(group.replace("oft_unet", "diffusion_model"))
    if "lyco_unet" in group:
        candidates.append(group.replace("lyco_unet", "diffusion_model"))
    for c in candidates:
        if c in layers:
            return c
    return None


# Diffusers / PEFT files (``unet.down_blocks.0.attentions.0...to_q.lora.down.weight``,
# ``...to_q.lora_A.weight``, attention-processor ``...processor.to_q_lora.down.weight``) are not read by
# A1111 v1.10.1 for SD1 at all. We accept them by renaming to kohya form first; kohya groups with
# ``lora_A``/``lora_B`` parts are then handled exactly as A1111 handles them.
_DOTTED_PARTS = (
    (".lora.down.weight", "lora_down.weight"),
    (".lora.up.weight", "lora_up.weight"),
    ("_lora.down.weight", "lora_down.weight"),
    ("_lora.up.weight", "lora_up.weight"),
    (".lora_linear_layer.down.weight", "lora_down.weight"),
    (".lora_linear_layer.up.weight", "lora_up.weight"),
    (".lora_A.weight", "lora_A.weight"),
    (".lora_B.weight", "lora_B.weight"),
    (".lora_A.default.weight", "lora_A.weight"),
    (".lora_B.default.weight", "lora_B.weight"),
    (".lora_down.weight", "lora_down.weight"),
    (".lora_up.weight", "lora_up.weight"),
    (".lora_mid.weight", "lora_mid.weight"),
    (".alpha", "alpha"),
    (".dora_scale", "dora_scale"),
)
_DOTTED_PREFIXES = (
    ("base_model.model.", "lora_unet_"),  # PEFT-wrapped UNet
    ("unet.", "lora_unet_"),
    ("text_encoder.", "lora_te_"),
    ("lora_unet.", "lora_unet_"),
    ("lora_te.", "lora_te_"),
    ("down_blocks.", "lora_unet_down_blocks_"),  # diffusers UNet files without the "unet." prefix
    ("mid_block.", "lora_unet_mid_block_"),
    ("up_blocks.", "lora_unet_up_blocks_"),
)


def _dotted_to_kohya(key: str) -> str | None:
    for prefix, kohya in _DOTTED_PREFIXES:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        for suffix, part in _DOTTED_PARTS:
            if rest.endswith(suffix):
                module = rest[: -len(suffix)]
                if ".processor." in module:  # attention-processor LoRA: attn1.processor.to_out -> attn1.to_out.0
                    module = module.replace(".processor.", ".")
                    if module.endswith(".to_out"):
                        module += ".0"
                return f"{kohya}{module.replace('.', '_')}.{part}"
    return None


def normalize_keys(keys: Iterable[str]) -> dict[str, str]:
    """Map every file key to the kohya-style key A1111 would split; dotted diffusers/PEFT keys are renamed."""
    out: dict[str, str] = {}
    for key in keys:
        if key.startswith(("lora_", "oft_", "lyco_", "bundle_emb")):
            out[key] = key
        else:
            out[key] = _dotted_to_kohya(key) or key
    return out


def layer_map(roots: Mapping[str, nn.Module]) -> dict[str, tuple[str, nn.Module]]:
    """A1111 layer name → (ldm module path, module) for every module under the given ldm prefixes.

    ``roots`` maps an ldm prefix (``"model.diffusion_model."``, ``"cond_stage_model.transformer."``) to the
    module whose ``named_modules()`` reproduce the checkpoint names after it.
    """
    out: dict[str, tuple[str, nn.Module]] = {}
    for prefix, root in roots.items():
        for name, module in root.named_modules():
            path = prefix + name if name else prefix.rstrip(".")
            out[a1111_layer_name(path)] = (path, module)
    return out
