"""Textual-inversion embedding files, read as A1111 v1.10.1 reads them (``textual_inversion.py``).

The C# side walks the folders, names the files, reads safetensors headers and decides what is loaded, skipped
or matched in prompts (``EmbeddingDatabase``); this module reads the vectors, and describes the files whose
shapes need the whole file (pickles, images).  Formats, in A1111's terms:

* A1111 training ``.pt`` (``string_to_param`` dict with one entry; the pre-1.6 pickle too) and the original TI
  repo's ``.pt`` whose ``string_to_param`` is an ``nn.ParameterDict`` (its ``_parameters`` are used);
* diffusers concepts ``.bin``/``.pt`` and safetensors ``emb_params``: a dict with one key whose value is exactly
  a ``torch.Tensor`` (an ``nn.Parameter`` is not: A1111 tests ``type(v) == torch.Tensor``); 1-D is one vector;
* SDXL safetensors with ``clip_l`` and ``clip_g``: width = both widths added, vectors = rows of ``clip_g``;
* PNG/WebP images: base64 JSON in the ``sd-ti-embedding`` text chunk, or zlib JSON hidden in the low nibbles
  of the pixels left and right of the picture (A1111's ``insert_image_data_embed``); the name comes from the
  data.  ``*.preview.*`` images and images without data are not embeddings.

Pickles go through the restricted unpickler of ``checkpoint.py`` (no code from the file runs); a refused or
unreadable pickle is A1111's "data issue" (``safe.load`` returns None), everything else that fails is an error
named by A1111's exception type.
"""
from __future__ import annotations

import base64
import json
import os
import zlib
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import torch

from .checkpoint import CheckpointError, _build, _Refused, _RestrictedUnpickler, load_torch_file, read_safetensors

IMAGE_EXTS = (".PNG", ".WEBP", ".JXL", ".AVIF")
PICKLE_EXTS = (".BIN", ".PT")
SAFETENSORS_EXTS = (".SAFETENSORS",)

Vec = Union[torch.Tensor, dict[str, torch.Tensor]]


class EmbeddingFileError(Exception):
    """A file A1111 would report as "Error loading embedding"; ``exception`` is A1111's exception type name."""

    def __init__(self, exception: str, message: str) -> None:
        super().__init__(message)
        self.exception = exception


@dataclass
class EmbeddingData:
    """One embedding as A1111's ``create_embedding_from_data`` makes it."""

    vec: Vec  # float32; a dict {clip_l, clip_g, …} for SDXL files
    vectors: int  # placeholder tokens the prompt gets
    shape: int  # width used for the fit test against the text encoder
    name: Optional[str]  # from the data of an image; None: the file stem
    step: Any
    sd_checkpoint: Any
    sd_checkpoint_name: Any

    def vec_shape(self) -> Any:
        if isinstance(self.vec, dict):
            return {k: list(v.shape) for k, v in self.vec.items()}
        return list(self.vec.shape)

    def vector_for(self, key: str = "clip_l") -> torch.Tensor:
        """The rows one text encoder gets (A1111's ``EmbeddingsWithFixes``: ``vec[key]`` of an SDXL dict)."""
        if isinstance(self.vec, dict):
            if key not in self.vec:
                raise KeyError(f"embedding has no {key!r} vectors (has {', '.join(self.vec)})")
            return self.vec[key]
        return self.vec


def split_ext(filename: str) -> tuple[str, str]:
    """``os.path.splitext`` (leading dots belong to the name: ``.dotfile.pt`` → ``.dotfile``)."""
    return os.path.splitext(filename)


# --- pickles ------------------------------------------------------------------------------------------------

class _ParameterDict:
    """Inert stand-in for ``torch.nn.ParameterDict`` (the original TI repo saves one): it keeps the pickled
    ``__dict__`` so ``_parameters`` can be read, and can do nothing else."""

    def __init__(self, *args: Any) -> None:
        self._parameters: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._parameters)


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool = False, backward_hooks: Any = None, *state: Any) -> Any:
    # Kept a Parameter (not a plain tensor as for checkpoints): A1111 rejects a diffusers concept whose value is one.
    return torch.nn.Parameter(data, requires_grad=False)


class _EmbeddingUnpickler(_RestrictedUnpickler):
    """The checkpoint unpickler plus the two types A1111's safe unpickler admits for embeddings."""

    dispatch = dict(_RestrictedUnpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch.nn.modules.container" and name == "ParameterDict":
            return _ParameterDict
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return _rebuild_parameter
        return super().find_class(module, name)

    def _load_build_embedding(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is _ParameterDict:
            if not isinstance(state, dict) or not isinstance(state.get("_parameters", {}), dict):
                raise _Refused("ParameterDict state that is not a dictionary")
            inst._parameters = dict(state.get("_parameters", {}))
            return
        _build(inst, state)

    dispatch[b"b"[0]] = _load_build_embedding


# --- images -------------------------------------------------------------------------------------------------

def _decode_json(data: Union[str, bytes]) -> Any:
    """A1111's ``EmbeddingDecoder``: ``{"TORCHTENSOR": nested lists}`` becomes a tensor."""
    def hook(d: dict[str, Any]) -> Any:
        if "TORCHTENSOR" in d:
            return torch.from_numpy(np.array(d["TORCHTENSOR"]))
        return d
    return json.loads(data, object_hook=hook)


def _lcg_nibbles(n: int) -> np.ndarray:
    """A1111's ``lcg()`` stream (seed 0, ``% 255``), n values, as uint8 low nibbles."""
    out = np.empty(n, dtype=np.uint8)
    seed = 0
    for i in range(n):
        seed = (1664525 * seed + 1013904223) % 4294967296
        out[i] = (seed % 255) & 0x0F
    return out


def _crop_black(img: np.ndarray) -> np.ndarray:
    mask = (img > 0).all(2)
    mask0, mask1 = mask.any(0), mask.any(1)
    col_start, col_end = mask0.argmax(), mask.shape[1] - mask0[::-1].argmax()
    row_start, row_end = mask1.argmax(), mask.shape[0] - mask1[::-1].argmax()
    return img[row_start:row_end, col_start:col_end]


def extract_image_data_embed(image: Any) -> Any:
    """A1111's pixel-data reader: None when the picture has fewer than two black columns (no data)."""
    rgb = np.array(image.convert("RGB").getdata()).reshape(image.size[1], image.size[0], 3).astype(np.uint8)
    nibbles = _crop_black(rgb) & 0x0F
    black_cols = np.where(np.sum(nibbles, axis=(0, 2)) == 0)[0]
    if black_cols.shape[0] < 2:
        return None
    lower = nibbles[:, :black_cols.min(), :].astype(np.uint8)
    upper = nibbles[:, black_cols.max() + 1:, :].astype(np.uint8)
    lower = _lcg_nibbles(lower.size).reshape(lower.shape) ^ lower
    upper = _lcg_nibbles(upper.size).reshape(upper.shape) ^ upper
    block = ((upper << 4) | lower).flatten().tobytes()
    return _decode_json(zlib.decompress(block))


def _read_image(path: str, stem: str) -> tuple[Any, str]:
    from PIL import Image

    with Image.open(path) as image:
        text = getattr(image, "text", None)
        if text is not None and "sd-ti-embedding" in text:
            data = _decode_json(base64.b64decode(text["sd-ti-embedding"]))
        else:
            data = extract_image_data_embed(image)
            if not data:
                return None, stem
    return data, data.get("name", stem)


# --- reading ------------------------------------------------------------------------------------------------

def _tensor(v: Any) -> torch.Tensor:
    return v.detach().to(dtype=torch.float32)


def from_data(data: Any, filename: str) -> EmbeddingData:
    """A1111's ``create_embedding_from_data``, branch for branch (the same checks in the same order)."""
    if "string_to_param" in data:
        param_dict = data["string_to_param"]
        param_dict = getattr(param_dict, "_parameters", param_dict)
        if len(param_dict) != 1:
            raise EmbeddingFileError("AssertionError", "embedding file has multiple terms in it")
        emb = next(iter(param_dict.items()))[1]
        vec: Vec = _tensor(emb)
        shape, vectors = int(vec.shape[-1]), int(vec.shape[0])
    elif type(data) is dict and "clip_g" in data and "clip_l" in data:
        vec = {k: _tensor(v) for k, v in data.items()}
        shape = int(data["clip_g"].shape[-1] + data["clip_l"].shape[-1])
        vectors = int(data["clip_g"].shape[0])
    elif type(data) is dict and type(next(iter(data.values()))) is torch.Tensor:
        if len(data.keys()) != 1:
            raise EmbeddingFileError("AssertionError", "embedding file has multiple terms in it")
        emb = next(iter(data.values()))
        if len(emb.shape) == 1:
            emb = emb.unsqueeze(0)
        vec = _tensor(emb)
        shape, vectors = int(vec.shape[-1]), int(vec.shape[0])
    else:
        raise EmbeddingFileError("Exception", f"Couldn't identify {filename} as neither textual inversion "
                                              "embedding nor diffuser concept.")
    return EmbeddingData(vec, vectors, shape, None, data.get("step", None), data.get("sd_checkpoint", None),
                         data.get("sd_checkpoint_name", None))


def read_embedding(path: str) -> Optional[EmbeddingData]:
    """Reads one file as A1111's ``load_from_file``.

    Returns None for a file that is not an embedding (other extension, preview image, image without data).
    Raises ``EmbeddingFileError`` with ``exception`` "data_issue" for a pickle the safe unpickler refuses (A1111
    prints "data issue" and goes on), or A1111's exception type for any other failure.
    """
    filename = os.path.basename(path)
    stem, ext = split_ext(filename)
    ext = ext.upper()
    name: Optional[str] = None
    try:
        if ext in IMAGE_EXTS:
            if split_ext(stem)[1].upper() == ".PREVIEW":
                return None
            data, name = _read_image(path, stem)
            if data is None:
                return None
        elif ext in PICKLE_EXTS:
            try:
                data = load_torch_file(path, unpickler=_EmbeddingUnpickler)
            except CheckpointError as e:
                raise EmbeddingFileError("data_issue", str(e)) from None
        elif ext in SAFETENSORS_EXTS:
            try:
                data = read_safetensors(path)
            except CheckpointError as e:
                raise EmbeddingFileError("SafetensorError", str(e)) from None
        else:
            return None
        result = from_data(data, filename)
    except EmbeddingFileError:
        raise
    except Exception as e:  # A1111 reports whatever the reading raised, by type, and goes on
        raise EmbeddingFileError(type(e).__name__, f"{path}: {type(e).__name__}: {e}") from None
    if ext in IMAGE_EXTS:
        result.name = name
    return result


def _json_value(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return v.item()
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def describe(path: str) -> dict[str, Any]:
    """What the database needs about one file, as plain values (the C# side registers it)."""
    try:
        e = read_embedding(path)
    except EmbeddingFileError as err:
        if err.exception == "data_issue":
            return {"status": "data_issue", "exception": "UnpicklingError", "message": str(err)}
        return {"status": "error", "exception": err.exception, "message": str(err)}
    if e is None:
        return {"status": "ignored"}
    return {"status": "ok", "name": e.name, "vectors": e.vectors, "shape": e.shape, "vec_shape": e.vec_shape(),
            "step": _json_value(e.step), "sd_checkpoint": _json_value(e.sd_checkpoint),
            "sd_checkpoint_name": _json_value(e.sd_checkpoint_name)}


def describe_files(paths: list[str]) -> str:
    """``describe`` for many files, as one JSON array (one crossing of the bridge)."""
    return json.dumps([describe(p) for p in paths])


class EmbeddingStore:
    """Vectors of the embeddings one text encoder uses, read on first use and kept by key (the C# side's
    registered name plus file, so a replaced file is read again)."""

    def __init__(self) -> None:
        self._loaded: dict[str, EmbeddingData] = {}

    def load(self, key: str, path: str) -> EmbeddingData:
        e = self._loaded.get(key)
        if e is None:
            e = read_embedding(path)
            if e is None:
                raise EmbeddingFileError("Exception", f"{path}: not a textual-inversion embedding")
            self._loaded[key] = e
        return e

    def get(self, key: str) -> EmbeddingData:
        e = self._loaded.get(key)
        if e is None:
            raise KeyError(f"embedding {key!r} is not loaded")
        return e

    def __contains__(self, key: str) -> bool:
        return key in self._loaded


# --- encoding -----------------------------------------------------------------------------------------------

def encode_request(text_encoder: Any, store: EmbeddingStore, request: dict[str, Any], clip_skip: int = 1,
                   key: str = "clip_l") -> torch.Tensor:
    """One A1111 encode call with embeddings: ``request`` = ``{"ids": [text][chunk][77], "weights": …,
    "fixes": [text][chunk][[offset, key, path]]}`` from the C# chunker. ``key``: which vectors of an SDXL file
    this encoder takes. Returns [texts, chunks*77, width]."""
    from .conditioning import encode_prompt

    fixes = [[[(int(off), store.load(str(k), str(p)).vector_for(key)) for off, k, p in chunk] for chunk in text]
             for text in request.get("fixes") or []] or None
    return encode_prompt(text_encoder, request["ids"], request["weights"], clip_skip, fixes=fixes)


_text_encoders: dict[str, Any] = {}


def text_encoder_from(path: str) -> Any:
    """The text encoder of a weights file (a checkpoint or text-encoder-only file), loaded once per path."""
    te = _text_encoders.get(path)
    if te is None:
        from .model import load_checkpoint

        model = load_checkpoint(path)
        if model.text_encoder is None:
            raise ValueError(f"{path}: no CLIP text encoder in these weights")
        te = _text_encoders[path] = model.text_encoder
    return te


def encoder_width(text_encoder: Any) -> int:
    """A1111's ``expected_shape``: the width of the token embeddings."""
    return int(text_encoder.text_model.embeddings.token_embedding.weight.shape[1])


def write_cond(weights: str, out_path: str, calls: list[dict[str, Any]], clip_skip: int = 1) -> list[Optional[str]]:
    """Runs encode calls in order and writes each text's conditioning as ``c<call>_t<text>`` (float32 [77k, width])
    to the ``.npz`` at ``out_path`` (written whole, then renamed). A failing call ends the run, as it ends A1111's
    generation; its entry in the result is the error text, the others are None."""
    te = text_encoder_from(weights)
    store = EmbeddingStore()
    arrays: dict[str, np.ndarray] = {}
    results: list[Optional[str]] = []
    for ci, call in enumerate(calls):
        try:
            z = encode_request(te, store, call, clip_skip)
        except (RuntimeError, EmbeddingFileError, KeyError) as e:
            results.append(f"{type(e).__name__}: {e}")
            break
        for ti in range(z.shape[0]):
            arrays[f"c{ci}_t{ti}"] = z[ti].detach().to("cpu", torch.float32).numpy()
        results.append(None)
    tmp = out_path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, out_path)
    return results
