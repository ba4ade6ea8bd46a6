"""LoRA Block Weight: per-block multipliers as the sd-webui-lora-block-weight extension (LBW) defines them.

LBW (hako-mikan, A1111 code path) multiplies ONE tensor of every network module by a ratio chosen from the
module's A1111 layer name before A1111 computes the update: ``up`` for LoRA/LoCon (so with DoRA the ratio acts
inside the decomposition), ``hada_w1_a`` for LoHa, ``lokr_w1`` for LoKr, ``w`` for IA3, ``diff`` (not
``diff_b``) for full, ``w_norm`` (not ``b_norm``) for norm, the ``a1`` term of GLoRA, ``scale`` of OFT. Every
one of those is linear in the raw update, so here it is :meth:`NetworkModule.compute`'s ``ratio`` (applied to
the raw update, extra biases untouched; GLoRA scales its ``W@a2@a1`` term only).

This module holds what does not depend on torch: block ids, the name→block rule (``ratiodealer``: substring
match, last match wins, no match → ratio 1), list expansion to 26 values (``to26``: by LENGTH only, blocks not
in the list get 0), preset tables (``NAME:values`` lines) and elemental presets (``NAME:BLOCKS:ELEMENTS:VALUE``
blocks separated by blank lines). :func:`read_tag` reproduces LBW's own reading of a tag's items
(``loradealer``), quirks included, for the conformance harness; the engine receives the already validated
values from C# (where a wrong count or an unknown preset is an error with its position).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

BLOCKID26 = ["BASE"] + [f"IN{i:02d}" for i in range(12)] + ["M00"] + [f"OUT{i:02d}" for i in range(12)]
BLOCKID17 = ["BASE", "IN01", "IN02", "IN04", "IN05", "IN07", "IN08", "M00",
             "OUT03", "OUT04", "OUT05", "OUT06", "OUT07", "OUT08", "OUT09", "OUT10", "OUT11"]
BLOCKID12 = ["BASE", "IN04", "IN05", "IN07", "IN08", "M00", "OUT00", "OUT01", "OUT02", "OUT03", "OUT04", "OUT05"]
BLOCKID20 = ["BASE"] + [f"IN{i:02d}" for i in range(9)] + ["M00"] + [f"OUT{i:02d}" for i in range(9)]
BLOCKIDFLUX = ["CLIP", "T5", "IN"] + [f"D{i:02d}" for i in range(19)] + [f"S{i:02d}" for i in range(38)] + ["OUT"]
BLOCK_LAYOUTS: dict[int, list[str]] = {12: BLOCKID12, 17: BLOCKID17, 20: BLOCKID20, 26: BLOCKID26, 61: BLOCKIDFLUX}
ALLOWED_COUNTS = tuple(sorted(BLOCK_LAYOUTS))

# Substrings of A1111 layer names, in LBW's order; entries 26 and 27 (SDXL text encoders) mean BASE.
_BLOCK_SUBSTRINGS = (["encoder"] + [f"diffusion_model_input_blocks_{i}_" for i in range(12)]
                     + ["diffusion_model_middle_block_"] + [f"diffusion_model_output_blocks_{i}_" for i in range(12)]
                     + ["embedders", "transformer_resblocks"])

DEFAULT_PRESETS = """NONE:0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0
ALL:1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1
INS:1,1,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0
IND:1,0,0,0,1,1,1,0,0,0,0,0,0,0,0,0,0
INALL:1,1,1,1,1,1,1,0,0,0,0,0,0,0,0,0,0
MIDD:1,0,0,0,1,1,1,1,1,1,1,1,0,0,0,0,0
OUTD:1,0,0,0,0,0,0,0,1,1,1,1,0,0,0,0,0
OUTS:1,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,1
OUTALL:1,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1
ALL0.5:0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5
FLUXALL:""" + ",".join(["1"] * 61)

DEFAULT_ELEMENTAL = "ATTNDEEPON:IN05-OUT05:attn:1\n\nATTNDEEPOFF:IN05-OUT05:attn:0\n\nPROJDEEPOFF:IN05-OUT05:proj:0\n\nXYZ:::1"


class LbwError(ValueError):
    """A block-weight value LBW cannot read (LBW aborts itself for the whole prompt on these)."""


@dataclass(frozen=True)
class BlockWeights:
    """What one network gets from LBW: 26 (or 61) block ratios and the elemental directives text."""

    weights: tuple[float, ...]
    elemental: str = ""

    @property
    def trivial(self) -> bool:
        """All ones and no elemental: LBW leaves such a network alone."""
        return self.elemental == "" and all(w == 1 for w in self.weights)

    def ratio(self, layer_name: str) -> float:
        """The ratio of one A1111 layer name (``ratiodealer``)."""
        return layer_ratio(layer_name, self.weights, self.elemental)


def parse_presets(text: str) -> dict[str, str]:
    """``NAME:values`` lines; lines with ``#``, without ``:`` or with a value count LBW does not know are
    skipped (LBW's ``checkloadcond``). Later lines win."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if ":" not in line or "#" in line or not any(line.count(",") == n - 1 for n in ALLOWED_COUNTS):
            continue
        name, values = line.split(":", 1)
        out[name.strip()] = values
    return out


def parse_elementals(text: str) -> dict[str, str]:
    """Elemental presets: blocks separated by a blank line, ``NAME:directives``."""
    out: dict[str, str] = {}
    for block in text.split("\n\n"):
        if ":" not in block:
            continue
        name, rest = block.split(":", 1)
        out[name.strip()] = rest
    return out


def to26(values: Sequence[float]) -> list[float]:
    """Expands a 12/17/20-value list to the 26 layout by its length alone; missing blocks get 0."""
    if len(values) in (26, 61):
        return list(values)
    ids = BLOCK_LAYOUTS.get(len(values))
    if ids is None:
        raise LbwError(f"{len(values)} block weights; LBW takes {', '.join(map(str, ALLOWED_COUNTS))}")
    out = [0.0] * 26
    for i, block in enumerate(ids):
        out[BLOCKID26.index(block)] = values[i]
    return out


def block_of(layer_name: str) -> Optional[int]:
    """Index into the 26 list of an A1111 layer name (last substring match wins), None when nothing matches."""
    found = None
    for i, sub in enumerate(_BLOCK_SUBSTRINGS):
        if sub in layer_name:
            found = 0 if i >= 26 else i
    return found


def _hyphen(text: str) -> str:
    """``IN05-OUT05`` → every block id between, inclusive, in either order (LBW's ``hyphener``)."""
    parts = text.split(" ")
    for i, part in enumerate(parts):
        if "-" in part:
            a, b = part.split("-")[:2]
            ia, ib = BLOCKID26.index(a), BLOCKID26.index(b)
            lo, hi = min(ia, ib), max(ia, ib)
            parts[i] = " ".join(BLOCKID26[lo:hi + 1])
    return " ".join(parts)


def layer_ratio(layer_name: str, weights: Sequence[float], elemental: str = "") -> float:
    """LBW's ``ratiodealer`` for the SD1/SDXL layouts: the block's weight, then elemental directives
    (``BLOCKS:ELEMENTS:VALUE``, ``NOT`` negates, substring matches against name+block id) replace it."""
    ratio = 1.0
    block_key = ""
    block = block_of(layer_name)
    if block is not None:
        ratio = float(weights[block])
        block_key = BLOCKID26[block]
    if elemental:
        skey = layer_name + block_key
        for d in elemental.replace("\n", ",").split(","):
            if d.count(":") != 2:
                continue
            blocks_text, elems_text, value = d.split(":")
            dbs, dws = _hyphen(blocks_text).split(" "), elems_text.split(" ")
            not_b, dbs = (True, dbs[1:]) if dbs[0] == "NOT" else (False, dbs)
            not_w, dws = (True, dws[1:]) if dws[0] == "NOT" else (False, dws)
            flag = not_b
            for db in dbs:
                if db in skey:
                    flag = not not_b
            if not flag:
                continue
            flag = not_w
            for dw in dws:
                if dw in skey:
                    flag = not not_w
            if flag:
                ratio = float(value)
    return ratio


_INHERITED = re.compile(r"X([+-])?([\d.]+)?")


def _value(text: str, base: object) -> float:
    if text == "R":
        return round(random.random(), 3)
    if text == "U":
        return round(random.uniform(-0.5, 1.5), 3)
    if text[:1] == "X":
        m = _INHERITED.search(text)
        x = float(base)  # type: ignore[arg-type]  # LBW: float(None) raises -> aborts LBW
        if m is None or m.group(1) is None:
            return x
        return x + float(m.group(2)) if m.group(1) == "+" else x - float(m.group(2))
    return float(text)


def _item(items: Sequence[str], target: str, index: Optional[int]) -> Optional[str]:
    """LBW's ``syntaxdealer``: the first item CONTAINING ``target`` (text with it removed), else
    ``items[index]`` when it has no ``=`` (``1`` when it holds a keyframe ``@``)."""
    for item in items:
        if target in item:
            return item.replace(target, "")
    if index is None or index + 1 > len(items) or "=" in items[index]:
        return None
    return items[index] if "@" not in items[index] else "1"


@dataclass(frozen=True)
class TagReading:
    """LBW's reading of one ``<lora:...>`` tag."""

    name: str
    te: float
    unet: float
    blocks: BlockWeights
    sets: bool            # the tag sets block weights or elementals (LBW is active for the prompt)
    start: Optional[int]
    stop: Optional[int]


def read_tag(items: Sequence[str], presets: Mapping[str, str], elementals: Mapping[str, str]) -> TagReading:
    """``loradealer`` for one tag. Raises (ValueError/TypeError) where LBW raises; unknown presets and other
    value counts are silently ignored as LBW does."""
    te_s, unet_s = _item(items, "te=", 1), _item(items, "unet=", 2)
    if te_s is None and unet_s is None:
        te, unet = 1.0, 1.0
    elif te_s is None:
        te = unet = float(unet_s)  # type: ignore[arg-type]
    elif unet_s is None:
        te = unet = float(te_s)
    else:
        te, unet = float(te_s), float(unet_s)
    weights = _item(items, "lbw=", 2)
    if weights is None:
        weights = _item(items, "w=", 2)
    elem = _item(items, "lbwe=", 3)
    start, stop = _item(items, "start=", None), _item(items, "stop=", None)
    step = _item(items, "step=", None)
    if step is not None and "-" in step:
        start, stop = step.split("-")[:2]
    sets = False
    if weights is not None and (weights in presets or any(weights.count(",") == n - 1 for n in ALLOWED_COUNTS)):
        text = presets[weights] if weights in presets else weights
        base = _item(items, "x=", 3) if len(items) >= 4 else 1
        ratios = to26([_value(v.strip(), base) for v in text.split(",")])
        sets = True
    else:
        ratios = [1.0] * 26
    if elem is not None and elem in elementals:
        sets = True
        elem_text = elementals[elem]
    else:
        elem_text = ""
    return TagReading(items[0], te, unet, BlockWeights(tuple(ratios), elem_text), sets,
                      None if start is None else int(start), None if stop is None else int(stop))


def denoiser_multipliers(reading: TagReading, sampling_steps: Sequence[int]) -> tuple[float, float]:
    """te/unet after LBW's ``denoiser_callback`` ran for ``sampling_steps`` (start/stop): a start sets both
    to 0 at sampling step 0 and gives them back once step > start-2; a stop sets both to 0 once step > stop-2."""
    te, unet = reading.te, reading.unet
    start_pending, stop_pending = reading.start is not None, reading.stop is not None
    for s in sampling_steps:
        if start_pending and s == 0:
            te = unet = 0.0
        if start_pending and s > reading.start - 2:  # type: ignore[operator]
            te, unet = reading.te, reading.unet
            start_pending = False
        if stop_pending and s > reading.stop - 2:  # type: ignore[operator]
            te = unet = 0.0
            stop_pending = False
    return te, unet
