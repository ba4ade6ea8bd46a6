"""Safe checkpoint reading and writing: `.safetensors` and PyTorch pickles (`.ckpt`, `.pt`, `.pth`, `.bin`).

Users point LoraBridge at files downloaded from anywhere, so nothing here may run code from a file:

* `.safetensors` is read by the `safetensors` package when it is installed, otherwise by a validating,
  memory-mapped reader of our own (every header field is checked before any byte of data is trusted).
* PyTorch pickles are read by our own zip/legacy-format reader with a restricted unpickler that admits only
  tensor/storage rebuild functions and plain containers.  `torch.load` is deliberately not used: torch
  1.13.0 silently replaces a caller's `pickle_module` with `pickle` when `weights_only` is False, and
  `weights_only` itself does not exist on every torch we must support.
"""
from __future__ import annotations

import collections
import io
import json
import mmap
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping

import numpy as np
import torch

__all__ = [
    "CheckpointError",
    "load_state_dict",
    "load_torch_file",
    "read_safetensors",
    "read_safetensors_header",
    "read_safetensors_metadata",
    "save_safetensors",
    "SAFETENSORS_DTYPES",
]


class CheckpointError(ValueError):
    """A checkpoint file could not be read; the message names the file and the problem."""


# ---------------------------------------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------------------------------------

# The reference implementation refuses headers above 100 MB; a real SD header is about 100 KB.
MAX_HEADER_BYTES = 100_000_000

SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
# float8 types exist only on newer torch; a file using them is refused on older ones with a clear error.
for _name, _attr in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")):
    if hasattr(torch, _attr):
        SAFETENSORS_DTYPES[_name] = getattr(torch, _attr)
_DTYPE_TO_ST = {v: k for k, v in SAFETENSORS_DTYPES.items()}


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise CheckpointError(f"duplicate key {k!r} in the JSON header")
        out[k] = v
    return out


def _parse_safetensors_header(path: str, prefix: bytes, file_size: int) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Validates the header; returns (data section start, {name: (dtype, shape, begin, end)}, metadata)."""
    if file_size < 8 or len(prefix) < 8:
        raise CheckpointError(f"{path}: truncated safetensors file ({file_size} bytes; the 8-byte header length is missing)")
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > MAX_HEADER_BYTES:
        raise CheckpointError(f"{path}: safetensors header length {n} exceeds the limit of {MAX_HEADER_BYTES} bytes (corrupt or not a safetensors file)")
    if 8 + n > file_size:
        raise CheckpointError(f"{path}: safetensors header length {n} runs past the end of the file ({file_size} bytes): truncated or corrupt")
    raw = prefix[8:8 + n]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: safetensors header is not valid UTF-8 (byte {e.start + 8})") from None
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: safetensors header is not valid JSON: {e.msg} at header byte {e.pos}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: safetensors header is nested too deeply (corrupt or hostile)") from None
    try:
        # JSON escapes can spell lone surrogates ("\\ud800"), which no UTF-8 consumer (the C# host) accepts.
        json.dumps(header, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise CheckpointError(f"{path}: safetensors header holds an escaped lone surrogate (invalid Unicode)") from None
    except RecursionError:
        raise CheckpointError(f"{path}: safetensors header is nested too deeply (corrupt or hostile)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header must be a JSON object, got {type(header).__name__}")

    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise CheckpointError(f"{path}: safetensors __metadata__ must map strings to strings")

    data_start = 8 + n
    data_len = file_size - data_start
    entries: dict[str, tuple[torch.dtype, tuple[int, ...], int, int]] = {}
    for name, info in header.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict):
            raise CheckpointError(f"{where}: header entry must be an object")
        missing = [k for k in ("dtype", "shape", "data_offsets") if k not in info]
        if missing:
            raise CheckpointError(f"{where}: header entry lacks {', '.join(missing)}")
        dtype_name = info["dtype"]
        if dtype_name not in SAFETENSORS_DTYPES:
            raise CheckpointError(f"{where}: unknown or unsupported dtype {dtype_name!r} (supported: {', '.join(SAFETENSORS_DTYPES)})")
        dtype = SAFETENSORS_DTYPES[dtype_name]
        shape = info["shape"]
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise CheckpointError(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
        offsets = info["data_offsets"]
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int and o >= 0 for o in offsets)):
            raise CheckpointError(f"{where}: data_offsets must be two non-negative integers, got {offsets!r}")
        begin, end = offsets
        if end < begin:
            raise CheckpointError(f"{where}: data_offsets [{begin}, {end}] end before they begin")
        if end > data_len:
            raise CheckpointError(f"{where}: data_offsets [{begin}, {end}] lie outside the data section ({data_len} bytes): truncated or corrupt")
        numel = 1
        for d in shape:
            numel *= d
        expected = numel * _itemsize(dtype)
        if expected != end - begin:
            raise CheckpointError(f"{where}: shape {shape} of {dtype_name} needs {expected} bytes but data_offsets [{begin}, {end}] span {end - begin}")
        entries[name] = (dtype, tuple(shape), begin, end)

    # Sorting by start makes the overlap check linear; zero-length ranges cannot overlap anything.
    spans = sorted((b, e, k) for k, (_, _, b, e) in entries.items() if e > b)
    for (b0, e0, k0), (b1, e1, k1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise CheckpointError(f"{path}: tensors {k0!r} [{b0}, {e0}] and {k1!r} [{b1}, {e1}] overlap")
    return data_start, entries, metadata


def read_safetensors_header(path: "str | os.PathLike[str]") -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, str]]:
    """Returns ({name: (dtype name, shape)}, metadata) after validating the whole header; reads no tensor data."""
    p = str(path)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) == 8:
                (n,) = struct.unpack("<Q", head)
                if n <= MAX_HEADER_BYTES:
                    head += f.read(n)
    except OSError as e:
        raise CheckpointError(f"{p}: cannot read: {e.strerror or e}") from None
    _, entries, metadata = _parse_safetensors_header(p, head, size)
    return {k: (_DTYPE_TO_ST[d], s) for k, (d, s, _, _) in entries.items()}, metadata


def read_safetensors_metadata(path: "str | os.PathLike[str]") -> dict[str, str]:
    """The `__metadata__` map of a `.safetensors` file (empty when it has none)."""
    return read_safetensors_header(path)[1]


def read_safetensors(path: "str | os.PathLike[str]") -> dict[str, torch.Tensor]:
    """Our own validating reader.  Tensors are backed by a private copy-on-write memory map of the file, so
    nothing is read until used and writing to a tensor never reaches the file."""
    p = str(path)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise CheckpointError(f"{p}: empty file (truncated safetensors)")
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    except OSError as e:
        raise CheckpointError(f"{p}: cannot read: {e.strerror or e}") from None
    (n,) = struct.unpack("<Q", mm[:8]) if size >= 8 else (0,)
    # Only slice the header out when its length is plausible; the parser reports the bad length otherwise.
    prefix = mm[: 8 + n] if n <= MAX_HEADER_BYTES and 8 + n <= size else mm[:8]
    data_start, entries, _ = _parse_safetensors_header(p, prefix, size)
    out: dict[str, torch.Tensor] = {}
    for name, (dtype, shape, begin, end) in entries.items():
        out[name] = _tensor_from_buffer(mm, dtype, shape, data_start + begin, end - begin)
    return out


def _tensor_from_buffer(buf: Any, dtype: torch.dtype, shape: tuple[int, ...], offset: int, nbytes: int) -> torch.Tensor:
    if nbytes == 0:
        return torch.empty(shape, dtype=dtype)
    itemsize = _itemsize(dtype)
    if offset % itemsize == 0:
        t = torch.frombuffer(buf, dtype=dtype, count=nbytes // itemsize, offset=offset)
    else:
        # Writers that skip header padding leave data unaligned; kernels expect aligned storage, so copy.
        t = torch.frombuffer(bytearray(buf[offset:offset + nbytes]), dtype=dtype)
    if sys.byteorder == "big" and itemsize > 1:
        t = t.view(torch.uint8).view(-1, itemsize).flip(1).contiguous().view(dtype)
    return t.reshape(shape)


def _read_with_package(path: str) -> dict[str, torch.Tensor] | None:
    try:
        from safetensors.torch import load_file  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        return load_file(path, device="cpu")
    except Exception as e:  # the package raises its own SafetensorError and OSError
        raise CheckpointError(f"{path}: {e}") from None


def save_safetensors(path: "str | os.PathLike[str]", tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> None:
    """Writes `tensors` (names sorted, so equal inputs give identical bytes) and optional string metadata.

    The file is written beside the target and renamed into place, so a reader never sees half a file."""
    p = Path(path)
    header: dict[str, Any] = {}
    if metadata:
        bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise CheckpointError(f"{p}: metadata must map strings to strings; bad entries: {bad[:5]}")
        header["__metadata__"] = dict(metadata)
    prepared: list[torch.Tensor] = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if not isinstance(name, str) or name == "__metadata__":
            raise CheckpointError(f"{p}: invalid tensor name {name!r}")
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{p}: {name!r} is a {type(t).__name__}, not a torch.Tensor")
        if t.dtype not in _DTYPE_TO_ST:
            raise CheckpointError(f"{p}: tensor {name!r} has dtype {t.dtype}, which safetensors cannot store")
        t = t.detach().to("cpu").contiguous()
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPE_TO_ST[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        prepared.append(t)
        offset += nbytes
    hb = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hb += b" " * (-len(hb) % 8)  # data must start 8-byte aligned so readers can map it in place
    tmp = p.with_name(p.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(hb)))
            f.write(hb)
            for t in prepared:  # one tensor at a time, so a large file never needs a second copy in memory
                data = t.reshape(-1).view(torch.uint8) if t.dtype != torch.bool else t.reshape(-1).to(torch.uint8)
                if sys.byteorder == "big" and t.element_size() > 1:
                    data = data.view(-1, t.element_size()).flip(1).reshape(-1)
                f.write(data.numpy().tobytes())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------------------
# PyTorch pickles
# ---------------------------------------------------------------------------------------------------------

_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _StorageType:
    """Stands in for `torch.FloatStorage` etc.: the pickle only names the class to say which dtype follows."""

    def __init__(self, name: str, dtype: torch.dtype) -> None:
        self.name, self.dtype = name, dtype


class _Inert:
    """Stand-in for training-framework objects (pytorch_lightning callbacks) that full SD checkpoints carry
    beside the weights: it absorbs their state and can do nothing else."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _Refused(pickle.UnpicklingError):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _rebuild_tensor(storage: torch.Tensor, storage_offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor):
        raise _Refused(f"tensor rebuild from a {type(storage).__name__} instead of a storage")
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride) or any(not isinstance(v, int) or v < 0 for v in (*size, *stride, storage_offset)):
        raise _Refused(f"tensor rebuild with invalid size {size} / stride {stride} / offset {storage_offset}")
    if all(s > 0 for s in size):
        last = storage_offset + sum((s - 1) * st for s, st in zip(size, stride))
        if last >= storage.numel():
            raise _Refused(f"tensor of size {size} stride {stride} at offset {storage_offset} lies outside its storage of {storage.numel()} elements")
        _check_no_overlap(size, stride)
    return torch.as_strided(storage, size, stride, storage_offset)


class _ViewTooLarge(CheckpointError):
    pass


def _check_no_overlap(size: tuple[int, ...], stride: tuple[int, ...]) -> None:
    """Refuses views in which two elements share one storage slot (stride 0 or overlapping strides).  Such a
    view is tiny on disk but every consumer densifies it (`.to()`, `.contiguous()`, a copy into the model): an
    800-byte file with a 1-element storage and stride 0 becomes 12.8 GB.  torch.save only writes such views for
    `expand()`ed tensors, which no weights file holds.  Sufficient condition for no overlap: with the dimensions
    sorted by stride, each stride exceeds the furthest element reachable with the smaller ones."""
    reach = 0
    for s, st in sorted(((s, st) for s, st in zip(size, stride) if s > 1), key=lambda p: p[1]):
        if st <= reach:
            raise _ViewTooLarge(f"tensor of size {size} with stride {stride} reuses its storage elements (an expanded or "
                                "overlapping view, larger than the data the file holds)")
        reach += (s - 1) * st


def _rebuild_tensor_v2(storage: torch.Tensor, storage_offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                       requires_grad: bool = False, backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage: torch.Tensor, storage_offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                       requires_grad: bool, backward_hooks: Any, dtype: torch.dtype, metadata: Any = None) -> torch.Tensor:
    # v3 carries an untyped (byte) storage plus the dtype; newer torch uses it for dtypes without a legacy class.
    if not isinstance(dtype, torch.dtype) or not isinstance(storage, torch.Tensor):
        raise _Refused("tensor rebuild (v3) with an invalid dtype or storage")
    if storage.dtype != dtype:
        storage = storage.view(torch.uint8).view(dtype)
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool = False, backward_hooks: Any = None, *state: Any) -> torch.Tensor:
    # Weights are data here: a plain tensor is what the model loader copies from.
    return data


def _numpy_multiarray() -> Any:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:
        from numpy.core import multiarray
    return multiarray


def _allowed_global(module: str, name: str) -> Any:
    """The complete list of globals a weights pickle may name.  Everything else is refused."""
    if module in ("torch", "torch.cuda") and name in _STORAGE_DTYPES:
        return _StorageType(name, _STORAGE_DTYPES[name])
    if module == "torch._utils":
        if name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2 if name.endswith("v2") else _rebuild_tensor
        if name == "_rebuild_tensor_v3":
            return _rebuild_tensor_v3
        if name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return _rebuild_parameter
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    if module == "torch" and name == "Size":
        return torch.Size
    if module == "torch" and name == "device":
        return torch.device
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict
    if module in ("builtins", "__builtin__") and name in ("set", "frozenset"):
        return {"set": set, "frozenset": frozenset}[name]
    # Numpy scalars (e.g. `global_step`) and arrays that training scripts store beside the weights.
    if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("scalar", "_reconstruct"):
        return getattr(_numpy_multiarray(), name)
    if module == "numpy" and name in ("dtype", "ndarray"):
        return getattr(np, name)
    if module == "_codecs" and name == "encode":
        import codecs
        return codecs.encode
    if module.startswith("pytorch_lightning.") and name in ("ModelCheckpoint", "model_checkpoint"):
        return _Inert
    raise _Refused(f"global '{module}.{name}'")


def _build(inst: Any, state: Any) -> None:
    """BUILD (`__setstate__`) for the few object kinds a weights pickle legitimately sets state on.  Above all
    never on a tensor: `Tensor.__setstate__` calls `set_`, which can point a tensor at any size of a resizable
    storage (a tiny file growing into gigabytes) or attach backward hooks."""
    if isinstance(inst, (_Inert, np.ndarray, np.dtype)):
        inst.__setstate__(state)
        return
    if type(inst) is collections.OrderedDict and isinstance(state, dict) and all(isinstance(k, str) for k in state):
        inst.__dict__.update(state)  # state_dict() keeps its `_metadata` here
        return
    raise _Refused(f"state (__setstate__) for a {type(inst).__name__}")


class _RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """The pure-Python unpickler, because the C one offers no hook for BUILD.  It costs about 25 µs more per
    tensor (some 60 ms for a full SD checkpoint), small beside reading the weights themselves."""

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, file: BinaryIO, load_storage: Callable[[tuple[Any, ...]], torch.Tensor] | None = None) -> None:
        super().__init__(file, encoding="utf-8")
        self._load_storage = load_storage

    def find_class(self, module: str, name: str) -> Any:
        return _allowed_global(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if self._load_storage is None or not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise _Refused(f"persistent id {str(pid)[:80]!r}")
        return self._load_storage(pid)

    def _load_build(self) -> None:
        state = self.stack.pop()
        _build(self.stack[-1], state)

    dispatch[pickle.BUILD[0]] = _load_build


class _FileData:
    """Zero-copy access to the bytes of one file: a private copy-on-write map, read lazily."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as f:
            self.size = os.fstat(f.fileno()).st_size
            self.mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) if self.size else None


def _stored_record(path: str, zf: zipfile.ZipFile, name: str, file_size: int) -> zipfile.ZipInfo:
    """torch.save never compresses, and a compressed record could inflate to any size from a small file."""
    info = zf.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        raise CheckpointError(f"{path}: record {name!r} is compressed (method {info.compress_type}); PyTorch "
                              "checkpoints store records uncompressed, so this file is refused")
    if info.file_size > file_size:
        raise CheckpointError(f"{path}: record {name!r} claims {info.file_size} bytes, more than the whole file ({file_size})")
    return info


def _load_zip(path: str, data: _FileData, unpickler: type = None) -> Any:  # type: ignore[assignment]
    unpickler = unpickler or _RestrictedUnpickler
    assert data.mm is not None
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: corrupt zip archive: {e}") from None
    with zf:
        names = zf.namelist()
        pkls = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if any(n.endswith("/constants.pkl") for n in names) or any("/code/" in n for n in names):
            raise CheckpointError(f"{path}: TorchScript archives are not supported (save the state_dict instead)")
        if len(pkls) != 1:
            raise CheckpointError(f"{path}: zip archive is not a PyTorch checkpoint (no single '<name>/data.pkl' record)")
        prefix = pkls[0][: -len("data.pkl")]
        if prefix + "byteorder" in names:
            order = zf.read(_stored_record(path, zf, prefix + "byteorder", data.size))
            if order.strip() not in (b"little", b""):
                raise CheckpointError(f"{path}: big-endian checkpoints are not supported")
        storages: dict[str, torch.Tensor] = {}
        stored = [0]

        def record(key: str) -> tuple[Any, int, int]:
            name = f"{prefix}data/{key}"
            if name not in names:
                raise _Refused(f"storage record 'data/{key}' missing from the archive")
            info = _stored_record(path, zf, name, data.size)
            hdr = data.mm[info.header_offset: info.header_offset + 30]
            if len(hdr) == 30 and hdr[:4] == b"PK\x03\x04":
                n_len, x_len = struct.unpack("<HH", hdr[26:30])
                start = info.header_offset + 30 + n_len + x_len
                if start + info.file_size <= data.size:
                    return data.mm, start, info.file_size
            raw = bytearray(zf.read(info))  # stored, so at most the file's own bytes
            return raw, 0, len(raw)

        def load_storage(pid: tuple[Any, ...]) -> torch.Tensor:
            if len(pid) != 5 or not isinstance(pid[1], _StorageType):
                raise _Refused(f"storage id {str(pid)[:80]!r}")
            _, stype, key, _location, numel = pid
            key = str(key)
            if key not in storages:
                buf, off, nbytes = record(key)
                need = int(numel) * _itemsize(stype.dtype)
                if nbytes < need:
                    raise _Refused(f"storage record 'data/{key}' has {nbytes} bytes, {need} expected (truncated)")
                # Several directory entries may point at one record's bytes; the storages together still
                # cannot hold more than the file.
                stored[0] += need
                if stored[0] > data.size:
                    raise _ViewTooLarge(f"its storages add up to {stored[0]} bytes, more than the file's {data.size} "
                                        "(records sharing data)")
                storages[key] = _tensor_from_buffer(buf, stype.dtype, (int(numel),), off, need)
            t = storages[key]
            return t if t.dtype == stype.dtype else t.view(torch.uint8).view(stype.dtype)

        pkl = zf.read(_stored_record(path, zf, pkls[0], data.size))
        return unpickler(io.BytesIO(pkl), load_storage).load()


def _load_legacy(path: str, f: BinaryIO, file_size: int, unpickler: type = None) -> Any:  # type: ignore[assignment]
    """The pre-1.6 format: pickled magic, protocol, sys info, the object, then storage keys and raw data."""
    unpickler = unpickler or _RestrictedUnpickler
    magic = _RestrictedUnpickler(f).load()
    if magic != _LEGACY_MAGIC:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (a plain pickle; refusing to interpret it)")
    if _RestrictedUnpickler(f).load() != 1001:
        raise CheckpointError(f"{path}: unsupported legacy checkpoint protocol version")
    _RestrictedUnpickler(f).load()  # sys info: endianness and type sizes of the writer
    storages: dict[str, torch.Tensor] = {}
    total = 0

    def load_storage(pid: tuple[Any, ...]) -> torch.Tensor:
        nonlocal total
        if len(pid) != 6 or not isinstance(pid[1], _StorageType):
            raise _Refused(f"storage id {str(pid)[:80]!r}")
        _, stype, key, _location, numel, view = pid
        key = str(key)
        if key not in storages:
            if not isinstance(numel, int) or numel < 0:
                raise _Refused(f"storage {key!r} with invalid size {numel!r}")
            nbytes = numel * _itemsize(stype.dtype)
            total += nbytes
            # Every storage's bytes follow the object in the file, so together they cannot exceed it.
            if total > file_size:
                raise _Refused(f"storage {key!r} of {numel} elements, larger than the file")
            # Backed by a bytearray, not torch.empty: the storage cannot be resized, and until it is filled
            # from the file it holds zeros rather than heap garbage.
            storages[key] = (torch.frombuffer(bytearray(nbytes), dtype=stype.dtype) if nbytes
                             else torch.empty(0, dtype=stype.dtype))
        root = storages[key]
        if root.dtype != stype.dtype:
            raise _Refused(f"storage {key!r} used as both {root.dtype} and {stype.dtype}")
        if view is not None:
            if (not isinstance(view, tuple) or len(view) != 3 or not all(isinstance(v, int) for v in view[1:])
                    or view[1] < 0 or view[2] < 0 or view[1] + view[2] > root.numel()):
                raise _Refused(f"view {str(view)[:80]!r} of storage {key!r} ({root.numel()} elements)")
            return root[view[1]: view[1] + view[2]]
        return root

    obj = unpickler(f, load_storage).load()
    keys = _RestrictedUnpickler(f).load()
    if not isinstance(keys, list):
        raise CheckpointError(f"{path}: corrupt legacy checkpoint (storage key list is a {type(keys).__name__})")
    filled: set[str] = set()
    for key in keys:
        key = str(key)
        if key not in storages:
            raise CheckpointError(f"{path}: storage {key!r} listed but never used (corrupt legacy checkpoint)")
        if key in filled:
            raise CheckpointError(f"{path}: storage {key!r} listed twice (corrupt legacy checkpoint)")
        t = storages[key]
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointError(f"{path}: truncated legacy checkpoint (storage {key!r} missing)")
        (numel,) = struct.unpack("<q", head)
        nbytes = t.numel() * t.element_size()
        if numel != t.numel():
            raise CheckpointError(f"{path}: storage {key!r} has {numel} elements on disk, {t.numel()} expected")
        if nbytes and f.readinto(memoryview(t.view(torch.uint8).numpy())) != nbytes:  # type: ignore[attr-defined]
            raise CheckpointError(f"{path}: truncated legacy checkpoint in storage {key!r}")
        filled.add(key)
    unfilled = [k for k in storages if k not in filled]
    if unfilled:
        raise CheckpointError(f"{path}: storage {unfilled[0]!r} is used by a tensor but its data is missing from "
                              f"the file ({len(unfilled)} such storage(s); corrupt legacy checkpoint)")
    return obj


def load_torch_file(path: "str | os.PathLike[str]", unpickler: type = None) -> Any:  # type: ignore[assignment]
    """Reads a PyTorch pickle (zip or legacy format) without running code from it; returns the saved object
    with tensors on the CPU.  Any global outside the tensor/container allow-list raises `CheckpointError`.
    `unpickler`: a subclass of the restricted unpickler that admits a few more inert types for one caller
    (textual-inversion files: `ParameterDict`); it decides the object's pickle, never the storage reads."""
    p = str(path)
    try:
        data = _FileData(p)
    except OSError as e:
        raise CheckpointError(f"{p}: cannot read: {e.strerror or e}") from None
    if data.mm is None:
        raise CheckpointError(f"{p}: empty file")
    try:
        if data.mm[:4] == b"PK\x03\x04":
            return _load_zip(p, data, unpickler)
        return _load_legacy(p, io.BytesIO(data.mm), data.size, unpickler)
    except _ViewTooLarge as e:
        raise CheckpointError(f"{p}: refused: {e}") from None
    except RecursionError:
        raise CheckpointError(f"{p}: corrupt or hostile PyTorch checkpoint: objects nested too deeply") from None
    except _Refused as e:
        raise CheckpointError(f"{p}: refused to load {e.what}: the file may try to run code, and only tensor "
                              "data and plain containers are allowed") from None
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RuntimeError, struct.error, zipfile.BadZipFile, UnicodeDecodeError, MemoryError) as e:
        raise CheckpointError(f"{p}: corrupt or unsupported PyTorch checkpoint: {type(e).__name__}: {e}") from None


def _unwrap_state_dict(path: str, obj: Any) -> dict[str, torch.Tensor]:
    # Trainers nest the weights: {"state_dict": {...}}, sometimes twice, or {"model": {...}}.
    for _ in range(4):
        if not isinstance(obj, Mapping):
            break
        if isinstance(obj.get("state_dict"), Mapping):
            obj = obj["state_dict"]
        elif isinstance(obj.get("model"), Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            obj = obj["model"]
        else:
            break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: checkpoint holds a {type(obj).__name__}, not a dictionary of tensors")
    out: dict[str, torch.Tensor] = {}
    for k, v in obj.items():
        if isinstance(v, np.ndarray) and v.dtype != object:
            v = torch.from_numpy(v)
        if isinstance(k, str) and isinstance(v, torch.Tensor):
            out[k] = v
    if not out:
        keys = ", ".join(repr(k) for k in list(obj)[:10])
        raise CheckpointError(f"{path}: no tensors found (top-level keys: {keys or 'none'})")
    _check_total_size(path, out)
    return out


def _check_total_size(path: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """Each view already lies within its storage, but many keys may name one storage (or one pickled tensor
    object), and every consumer copies each key: 400 keys on one 40 KB storage become 16 MB, 10,000 keys on
    a 1 MB one become 10 GB.  Tied weights are the only legitimate sharing and at most double a file, so the
    tensors may describe twice the file plus 1 MiB; checked here, before anything densifies them."""
    try:
        file_size = os.path.getsize(path)
    except OSError:
        return
    limit = 2 * file_size + (1 << 20)
    total = 0
    for t in tensors.values():
        total += t.numel() * t.element_size()
        if total > limit:
            raise CheckpointError(f"{path}: refused: its tensors describe more than {total} bytes, more than twice the "
                                  f"file's {file_size} bytes (keys sharing storage); nothing was allocated")


def load_state_dict(path: "str | os.PathLike[str]") -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint, keyed exactly as stored (EMA copies, schedule buffers and `position_ids`
    are passed through; the model loader decides what to ignore).  CPU tensors, stored dtype."""
    p = str(path)
    ext = Path(p).suffix.lower()
    if ext == ".safetensors":
        tensors = _read_with_package(p)
        return tensors if tensors is not None else read_safetensors(p)
    if ext in (".ckpt", ".pt", ".pth", ".bin"):
        return _unwrap_state_dict(p, load_torch_file(p))
    raise CheckpointError(f"{p}: unsupported checkpoint extension {ext!r} (expected .safetensors, .ckpt, .pt, .pth or .bin)")
