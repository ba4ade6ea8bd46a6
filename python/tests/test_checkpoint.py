"""Checkpoint reading: hostile pickles are refused without running, broken safetensors give clear errors,
round trips are exact, and the shared conformance weights load identically from .ckpt and .safetensors."""
from __future__ import annotations

import importlib.util
import json
import os
import pickle
import struct
import sys
from pathlib import Path

import pytest
import torch

from lorabridge.checkpoint import (
    CheckpointError,
    load_state_dict,
    load_torch_file,
    read_safetensors,
    read_safetensors_header,
    read_safetensors_metadata,
    save_safetensors,
)


# ----------------------------------------------------------------------------------------------------------
# hostile pickles
# ----------------------------------------------------------------------------------------------------------

class _SystemCall:
    """Pickles as `os.system(cmd)`: loading it with plain pickle would run the command."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):  # type: ignore[override]
        return (os.system, (self.cmd,))


class _ExecCall:
    """Pickles as `builtins.exec(code)`."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):  # type: ignore[override]
        return (exec, (self.code,))


def _payload(marker: Path, kind: str) -> object:
    if kind == "system":
        return _SystemCall(f"echo pwned > '{marker}'")
    return _ExecCall(f"open({str(marker)!r}, 'w').write('pwned')")


@pytest.mark.parametrize("kind", ["system", "exec"])
@pytest.mark.parametrize("fmt", ["zip", "legacy", "plain"])
def test_hostile_pickle_is_refused_and_never_runs(tmp_path: Path, fmt: str, kind: str) -> None:
    marker = tmp_path / "marker.txt"
    evil = _payload(marker, kind)
    path = tmp_path / "evil.ckpt"
    obj = {"state_dict": {"model.diffusion_model.out.2.bias": torch.zeros(4)}, "callback": evil}
    if fmt == "zip":
        torch.save(obj, path)
    elif fmt == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(evil))

    with pytest.raises(CheckpointError) as err:
        load_state_dict(path)
    msg = str(err.value)
    assert str(path) in msg
    expected = "system'" if kind == "system" else ".exec'"
    assert expected in msg and "refused" in msg
    assert not marker.exists()


def test_hostile_plain_pickle_really_is_hostile(tmp_path: Path) -> None:
    # Guards the test above: the same payload does run when unpickled without restrictions.
    marker = tmp_path / "marker.txt"
    pickle.loads(pickle.dumps(_payload(marker, "exec")))
    assert marker.exists()


def test_refuses_unknown_persistent_id(tmp_path: Path) -> None:
    class P(pickle.Pickler):
        def persistent_id(self, obj):  # type: ignore[override]
            return ("module", "os") if obj == "x" else None

    import io
    buf = io.BytesIO()
    P(buf, protocol=2).dump(0x1950A86A20F9469CFC6C)
    P(buf, protocol=2).dump(1001)
    P(buf, protocol=2).dump({})
    P(buf, protocol=2).dump({"a": "x"})
    path = tmp_path / "pid.pt"
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="persistent id"):
        load_torch_file(path)


# ----------------------------------------------------------------------------------------------------------
# benign pickles
# ----------------------------------------------------------------------------------------------------------

def _sample_tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "f32": torch.randn(3, 5, generator=g),
        "f16": torch.randn(7, generator=g).half(),
        "bf16": torch.randn(2, 2, generator=g).bfloat16(),
        "f64": torch.randn(2, 3, 1, generator=g).double(),
        "i64": torch.arange(6).reshape(2, 3),
        "i32": torch.tensor([-1, 2, 3], dtype=torch.int32),
        "i16": torch.tensor([-300, 7], dtype=torch.int16),
        "i8": torch.tensor([-5, 9], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
    }


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].shape == b[k].shape, k
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("zipped", [True, False])
def test_torch_checkpoint_round_trip_and_unwrap(tmp_path: Path, zipped: bool) -> None:
    tensors = _sample_tensors()
    base = torch.arange(12.0)
    tensors["view_a"] = base[2:8].view(2, 3)  # views of one storage must keep their offsets
    tensors["view_b"] = base.view(3, 4).t()
    tensors["param"] = torch.nn.Parameter(torch.ones(2, 2))
    path = tmp_path / "w.ckpt"
    obj = {"global_step": 12, "state_dict": {"state_dict": tensors}, "epoch": 3}
    torch.save(obj, path, _use_new_zipfile_serialization=zipped)
    loaded = load_state_dict(path)
    _assert_same({k: v.detach() for k, v in tensors.items()}, loaded)
    assert not isinstance(loaded["param"], torch.nn.Parameter)


def test_load_torch_file_keeps_other_entries(tmp_path: Path) -> None:
    import collections
    path = tmp_path / "emb.pt"
    od = collections.OrderedDict(a=torch.ones(1))
    torch.save({"name": "x", "step": 5, "set": {1, 2}, "od": od, "size": torch.Size([2, 3])}, path)
    obj = load_torch_file(path)
    assert obj["name"] == "x" and obj["step"] == 5 and obj["set"] == {1, 2} and obj["size"] == (2, 3)
    assert torch.equal(obj["od"]["a"], torch.ones(1))


def test_torch_checkpoint_without_tensors_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "none.pt"
    torch.save({"epoch": 3}, path)
    with pytest.raises(CheckpointError, match="no tensors found.*'epoch'"):
        load_state_dict(path)


def test_truncated_zip_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "t.ckpt"
    torch.save({"state_dict": {"w": torch.randn(64, 64)}}, path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=str(path).replace("\\", "\\\\")):
        load_state_dict(path)


def test_storage_shorter_than_claimed_is_refused(tmp_path: Path) -> None:
    # A data.pkl whose tensor claims more elements than its storage record holds must not read past it.
    import zipfile
    good = tmp_path / "g.ckpt"
    torch.save({"w": torch.zeros(4)}, good)
    bad = tmp_path / "b.ckpt"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("data.pkl"):
                # size (4,) -> (400,): BININT1 4 inside the size tuple becomes BININT2 400
                data = data.replace(b"K\x04\x85", b"M\x90\x01\x85", 1)
            zout.writestr(info, data)
    with pytest.raises(CheckpointError, match="outside its storage"):
        load_state_dict(bad)


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "w.gguf"
    path.write_bytes(b"GGUF")
    with pytest.raises(CheckpointError, match="unsupported checkpoint extension"):
        load_state_dict(path)


# ----------------------------------------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------------------------------------

def test_safetensors_round_trip(tmp_path: Path) -> None:
    tensors = _sample_tensors()
    meta = {"ss_output_name": "démo", "format": "pt"}
    path = tmp_path / "w.safetensors"
    save_safetensors(path, tensors, meta)
    _assert_same(tensors, read_safetensors(path))
    _assert_same(tensors, load_state_dict(path))
    assert read_safetensors_metadata(path) == meta
    header, _ = read_safetensors_header(path)
    assert header["bf16"] == ("BF16", (2, 2))
    # equal inputs give identical bytes; the header is padded so data starts 8-byte aligned
    again = tmp_path / "again.safetensors"
    save_safetensors(again, dict(reversed(list(tensors.items()))), meta)
    assert again.read_bytes() == path.read_bytes()
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert n % 8 == 0


def test_safetensors_readable_by_independent_reader(tmp_path: Path, shared_dir: Path) -> None:
    sys.path.insert(0, str(shared_dir / "conformance"))
    try:
        from _safetensors_np import load_safetensors  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    tensors = {k: v for k, v in _sample_tensors().items() if v.dtype != torch.bfloat16}
    path = tmp_path / "w.safetensors"
    save_safetensors(path, tensors, {"a": "b"})
    arrays, meta = load_safetensors(str(path))
    assert meta == {"a": "b"}
    for k, v in tensors.items():
        assert (arrays[k] == v.numpy()).all() and arrays[k].shape == tuple(v.shape), k


@pytest.mark.skipif(importlib.util.find_spec("safetensors") is None, reason="safetensors package not installed")
def test_safetensors_matches_package(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file  # type: ignore[import-not-found]
    tensors = _sample_tensors()
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    save_safetensors(ours, tensors, {"k": "v"})
    save_file(tensors, str(theirs), metadata={"k": "v"})
    _assert_same(tensors, load_file(str(ours)))
    _assert_same(tensors, read_safetensors(theirs))


def test_safetensors_tensors_do_not_write_through(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_safetensors(path, {"w": torch.zeros(16)})
    before = path.read_bytes()
    t = read_safetensors(path)["w"]
    t += 1
    assert path.read_bytes() == before
    assert torch.equal(read_safetensors(path)["w"], torch.zeros(16))


def _raw(path: Path, header: object, data: bytes = b"", length: int | None = None) -> Path:
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(hb) if length is None else length) + hb + data)
    return path


_GOOD = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}

_BROKEN = [
    ("empty", b"", None, b"", "empty file|truncated"),
    ("short", None, None, b"", "truncated"),
    ("huge_length", json.dumps(_GOOD).encode(), 1 << 40, bytes(8), "exceeds the limit"),
    ("length_past_eof", json.dumps(_GOOD).encode(), 10_000, bytes(8), "past the end of the file"),
    ("not_utf8", b"{\"\xff\xfe\": 1}", None, b"", "not valid UTF-8"),
    ("bad_json", b"{\"a\": {\"dtype\": ", None, b"", "not valid JSON"),
    ("not_object", b"[1, 2]", None, b"", "must be a JSON object"),
    ("bad_metadata", {"__metadata__": {"x": 1}, **_GOOD}, None, bytes(8), "__metadata__ must map strings"),
    ("entry_not_object", {"a": 5}, None, b"", "'a': header entry must be an object"),
    ("missing_field", {"a": {"dtype": "F32", "shape": [2]}}, None, bytes(8), "lacks data_offsets"),
    ("unknown_dtype", {"a": {"dtype": "F4", "shape": [2], "data_offsets": [0, 8]}}, None, bytes(8), "unknown or unsupported dtype 'F4'"),
    ("negative_shape", {"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, None, bytes(8), "shape must be a list of non-negative integers"),
    ("float_shape", {"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, None, bytes(8), "shape must be a list"),
    ("bad_offsets", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, None, bytes(8), "data_offsets must be two"),
    ("reversed_offsets", {"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, None, bytes(8), "end before they begin"),
    ("out_of_range", {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, None, bytes(8), "outside the data section"),
    ("truncated_data", _GOOD, None, bytes(5), "outside the data section"),
    ("shape_mismatch", {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, None, bytes(8), "needs 12 bytes but data_offsets \\[0, 8\\] span 8"),
    ("overlap", {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                 "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, None, bytes(12), "'a' \\[0, 8\\] and 'b' \\[4, 12\\] overlap"),
    ("duplicate_key", b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}',
     None, bytes(8), "duplicate key 'a'"),
    # issue 17: a lone surrogate spelled as a JSON escape, and nesting deep enough to exhaust Python's stack
    ("lone_surrogate", b'{"__metadata__": {"x": "\\ud800"}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}',
     None, bytes(8), "escaped lone surrogate"),
    ("deep_nesting", b'{"__metadata__": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", None, b"", "nested too deeply"),
]


@pytest.mark.parametrize("name,header,length,data,message", _BROKEN, ids=[b[0] for b in _BROKEN])
def test_broken_safetensors_give_clear_errors(tmp_path: Path, name: str, header: object, length: int | None, data: bytes, message: str) -> None:
    path = tmp_path / f"{name}.safetensors"
    if name == "empty":
        path.write_bytes(b"")
    elif name == "short":
        path.write_bytes(b"\x10\x00\x00")
    else:
        _raw(path, header, data, length)
    for reader in (read_safetensors, read_safetensors_metadata):
        with pytest.raises(CheckpointError, match=message) as err:
            reader(path)
        assert str(path) in str(err.value)
    # Through the public entry point (which may use the safetensors package) the error type and file hold.
    with pytest.raises(CheckpointError) as err:
        load_state_dict(path)
    assert str(path) in str(err.value)


def test_unaligned_data_is_read_correctly(tmp_path: Path) -> None:
    # Some writers do not pad the header; the data then starts at an odd offset.
    hb = json.dumps({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}, separators=(",", ":")).encode()
    if (8 + len(hb)) % 4 == 0:
        hb += b" "
    values = torch.tensor([1.5, -2.0, 3.25])
    path = tmp_path / "u.safetensors"
    path.write_bytes(struct.pack("<Q", len(hb)) + hb + values.numpy().tobytes())
    assert torch.equal(read_safetensors(path)["a"], values)


def test_save_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="metadata must map strings"):
        save_safetensors(tmp_path / "x.safetensors", {"a": torch.zeros(1)}, {"n": 1})  # type: ignore[dict-item]
    with pytest.raises(CheckpointError, match="'a' has dtype torch.complex64"):
        save_safetensors(tmp_path / "x.safetensors", {"a": torch.zeros(1, dtype=torch.complex64)})
    assert not (tmp_path / "x.safetensors").exists()


# ----------------------------------------------------------------------------------------------------------
# shared conformance weights
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["unet_small", "vae_small", "clip_small"])
def test_conformance_weights_identical_from_ckpt_and_safetensors(shared_dir: Path, case: str) -> None:
    manifest = json.loads((shared_dir / "conformance/models/manifest.json").read_text())
    weights = manifest["cases"][case]["weights"]
    base = shared_dir / "conformance/models"
    from_ckpt = load_state_dict(base / weights["ckpt"])
    from_st = load_state_dict(base / weights["safetensors"])
    assert len(from_ckpt) == weights["num_tensors"]
    assert all(k.startswith(weights["key_prefix"]) for k in from_ckpt)
    _assert_same(from_ckpt, from_st)
    assert read_safetensors_metadata(base / weights["safetensors"]) == {"format": "pt"}


def test_training_checkpoint_extras_load_without_their_libraries(tmp_path: Path) -> None:
    # Full SD checkpoints carry numpy scalars and pytorch_lightning callback objects beside the weights;
    # they load as inert data without importing (or running) anything.
    import types

    import numpy as np

    mod = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")

    class ModelCheckpoint:
        def __init__(self) -> None:
            self.best_model_path = "/x"

    ModelCheckpoint.__module__ = mod.__name__
    ModelCheckpoint.__qualname__ = "ModelCheckpoint"
    mod.ModelCheckpoint = ModelCheckpoint  # type: ignore[attr-defined]
    fakes = {"pytorch_lightning": types.ModuleType("pytorch_lightning"),
             "pytorch_lightning.callbacks": types.ModuleType("pytorch_lightning.callbacks"), mod.__name__: mod}
    assert not any(name in sys.modules for name in fakes)
    sys.modules.update(fakes)
    try:
        path = tmp_path / "full.ckpt"
        torch.save({"global_step": np.int64(470000), "callbacks": {ModelCheckpoint: ModelCheckpoint()},
                    "model": {"w": torch.ones(2)}}, path)
    finally:
        for name in fakes:
            del sys.modules[name]
    obj = load_torch_file(path)
    assert obj["global_step"] == 470000
    (cb,) = obj["callbacks"].values()
    assert cb.state == {"best_model_path": "/x"}
    assert torch.equal(load_state_dict(path)["w"], torch.ones(2))  # the "model" wrapper is unwrapped too


def test_legacy_storage_larger_than_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.pt"
    torch.save({"w": torch.zeros(3)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    # the persistent id tuple ends with numel 3 (BININT1 3) then the view metadata None
    patched = data.replace(b"K\x03Nt", b"J\x00\x00\x00\x40Nt", 1)
    assert patched != data
    path.write_bytes(patched)
    with pytest.raises(CheckpointError, match="larger than the file"):
        load_state_dict(path)


# ----------------------------------------------------------------------------------------------------------
# resource bombs and half-filled storages
# ----------------------------------------------------------------------------------------------------------

class _StorageRef:
    """Pickles as the persistent id of a legacy float storage (see `_legacy_file`)."""

    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


class _Rebuilt:
    """Pickles as `torch._utils._rebuild_tensor_v2(storage, 0, (n,), (1,))`, followed by a BUILD of `state`
    when one is given, i.e. a call of `Tensor.__setstate__(state)` under plain pickle."""

    def __init__(self, ref: _StorageRef, n: int, state: object = None) -> None:
        self.ref, self.n, self.state = ref, n, state

    def __reduce__(self):  # type: ignore[override]
        import collections

        import torch._utils
        args = (self.ref, 0, (self.n,), (1,), False, collections.OrderedDict())
        return (torch._utils._rebuild_tensor_v2, args) if self.state is None else (torch._utils._rebuild_tensor_v2, args, self.state)


class _LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, _StorageRef):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel, None)
        return None


def _legacy_file(path: Path, obj: object, storages: dict[str, int]) -> Path:
    """A hand-built pre-1.6 checkpoint: magic, protocol, sys info, `obj`, the keys of `storages`, then each
    listed storage as its element count and that many float32 ones."""
    import io

    from lorabridge.checkpoint import _LEGACY_MAGIC
    buf = io.BytesIO()
    for header in (_LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    _LegacyPickler(buf, protocol=2).dump(obj)
    pickle.dump(list(storages), buf, protocol=2)
    for numel in storages.values():
        buf.write(struct.pack("<q", numel) + struct.pack(f"<{numel}f", *([1.0] * numel)))
    path.write_bytes(buf.getvalue())
    return path


def test_legacy_builder_makes_loadable_files(tmp_path: Path) -> None:
    # Guards the hostile cases below: without the hostile part, the same construction loads normally.
    ref = _StorageRef("0", 4)
    path = _legacy_file(tmp_path / "ok.ckpt", {"w": _Rebuilt(ref, 4)}, {"0": 4})
    assert torch.equal(load_state_dict(path)["w"], torch.ones(4))


@pytest.mark.parametrize("state", ["grow", "hooks"])
def test_legacy_tensor_state_is_refused(tmp_path: Path, state: str) -> None:
    # Tensor.__setstate__ would call set_ and grow the 4-element storage to 1M elements (any size, really)
    # from a file of a few hundred bytes, or set requires_grad/backward hooks on a weight.
    import collections
    ref = _StorageRef("0", 4)
    built = (ref, 0, (1_000_000,), (1,)) if state == "grow" else (True, None, collections.OrderedDict())
    path = _legacy_file(tmp_path / "bomb.ckpt", {"w": _Rebuilt(ref, 4, built)}, {"0": 4})
    with pytest.raises(CheckpointError, match=r"bomb\.ckpt: refused to load state \(__setstate__\) for a Tensor"):
        load_state_dict(path)


def test_legacy_storages_together_larger_than_file_are_refused(tmp_path: Path) -> None:
    # Each storage alone fits in the file, but all storage data follows the object, so their sum must too.
    refs = [_StorageRef(str(i), 200) for i in range(10)]
    obj = {"pad": "x" * 1000, **{f"w{i}": _Rebuilt(r, 200) for i, r in enumerate(refs)}}
    path = _legacy_file(tmp_path / "sum.ckpt", obj, {})
    assert 800 < path.stat().st_size < 10 * 800
    with pytest.raises(CheckpointError, match=r"sum\.ckpt: refused to load storage '\d' of 200 elements, larger than the file"):
        load_state_dict(path)


def test_legacy_storage_without_data_is_refused(tmp_path: Path) -> None:
    # A storage used by a tensor but absent from the key list would otherwise reach the model unfilled.
    a, b = _StorageRef("0", 4), _StorageRef("1", 4)
    path = _legacy_file(tmp_path / "hole.ckpt", {"a": _Rebuilt(a, 4), "b": _Rebuilt(b, 4), "pad": "x" * 64}, {"0": 4})
    with pytest.raises(CheckpointError, match=r"hole\.ckpt: storage '1' is used by a tensor but its data is missing"):
        load_state_dict(path)


def test_legacy_storage_listed_twice_is_refused(tmp_path: Path) -> None:
    import io
    ref = _StorageRef("0", 4)
    path = _legacy_file(tmp_path / "twice.ckpt", {"w": _Rebuilt(ref, 4)}, {"0": 4})
    data = path.read_bytes()
    keys = io.BytesIO()
    pickle.dump(["0"], keys, protocol=2)
    twice = io.BytesIO()
    pickle.dump(["0", "0"], twice, protocol=2)
    storage = struct.pack("<q", 4) + struct.pack("<4f", *[1.0] * 4)
    patched = data.replace(keys.getvalue() + storage, twice.getvalue() + storage * 2)
    assert patched != data
    path.write_bytes(patched)
    with pytest.raises(CheckpointError, match=r"twice\.ckpt: storage '0' listed twice"):
        load_state_dict(path)


@pytest.mark.parametrize("which", ["data.pkl", "data/0"])
def test_compressed_zip_record_is_refused(tmp_path: Path, which: str) -> None:
    # torch.save never compresses; a deflated record could inflate to any size from a small file.
    import zipfile
    good = tmp_path / "g.ckpt"
    torch.save({"w": torch.zeros(100_000)}, good)
    bad = tmp_path / "deflated.ckpt"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            method = zipfile.ZIP_DEFLATED if info.filename.endswith(which) else zipfile.ZIP_STORED
            zout.writestr(info.filename, zin.read(info), compress_type=method)
    if which == "data/0":
        assert bad.stat().st_size < good.stat().st_size // 10
    with pytest.raises(CheckpointError, match=rf"deflated\.ckpt: record '[^']*{which}' is compressed"):
        load_state_dict(bad)


@pytest.mark.parametrize("zipped", [True, False])
def test_state_set_by_real_checkpoints_still_loads(tmp_path: Path, zipped: bool) -> None:
    # Module.state_dict() pickles its `_metadata` as OrderedDict state and numpy arrays pickle theirs; both
    # pass the BUILD restriction.
    import numpy as np
    sd = torch.nn.Linear(2, 3).state_dict()
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": sd, "arr": np.arange(6, dtype=np.float32).reshape(2, 3)}, path,
               _use_new_zipfile_serialization=zipped)
    obj = load_torch_file(path)
    assert obj["state_dict"]._metadata == sd._metadata  # type: ignore[attr-defined]
    assert np.array_equal(obj["arr"], np.arange(6, dtype=np.float32).reshape(2, 3))
    _assert_same(dict(sd), load_state_dict(path))


# ----------------------------------------------------------------------------------------------------------
# views larger than their data (issue 17): stride 0 and overlapping strides
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("zipped", [True, False])
@pytest.mark.parametrize("ext", [".pt", ".ckpt"])
def test_stride_zero_view_is_refused_before_densifying(tmp_path: Path, zipped: bool, ext: str) -> None:
    # torch.save keeps an expanded tensor as its 1-element storage with stride 0: a file of under 1 KB whose
    # tensor claims 40000 x 40000 float32 = 6.4 GB as soon as anything copies it.
    path = tmp_path / f"bomb{ext}"
    torch.save({"lora_unet_x.lora_down.weight": torch.zeros(1).expand(40_000, 40_000)}, path,
               _use_new_zipfile_serialization=zipped)
    assert path.stat().st_size < 2000
    with pytest.raises(CheckpointError, match=rf"bomb\{ext}: refused: tensor of size \(40000, 40000\) with stride \(0, 0\) reuses its storage"):
        load_state_dict(path)


def test_overlapping_strides_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "overlap.ckpt"
    base = torch.arange(1000, dtype=torch.float32)
    torch.save({"w": base.as_strided((900, 100), (1, 1))}, path)  # row i = base[i:i+100]: 90,000 from 1,000
    with pytest.raises(CheckpointError, match=r"overlap\.ckpt: refused: tensor of size \(900, 100\) with stride \(1, 1\)"):
        load_state_dict(path)


def test_many_views_of_one_storage_are_bounded_by_the_file(tmp_path: Path) -> None:
    # Each view fits its storage, but 400 keys viewing the same 40 KB storage would describe 16 MB.
    path = tmp_path / "shared.pt"
    base = torch.zeros(10_000)
    torch.save({f"w{i}": base for i in range(400)}, path)
    assert path.stat().st_size < 200_000
    with pytest.raises(CheckpointError, match=r"shared\.pt: refused: its tensors describe more than \d+ bytes, more than twice the file"):
        load_state_dict(path)


def test_legitimate_views_still_load(tmp_path: Path) -> None:
    # Transposes, slices with steps, a tied weight and a zero-size tensor are real and must keep loading.
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = {"t": base.t(), "step": base[:, ::2], "tied_a": base, "tied_b": base, "empty": torch.zeros(0, 5),
          "scalar": torch.tensor(3.0)}
    path = tmp_path / "views.ckpt"
    torch.save(sd, path)
    got = load_state_dict(path)
    for k, v in sd.items():
        assert torch.equal(got[k], v), k


def test_stride_zero_lora_fails_under_a_memory_cap(tmp_path: Path) -> None:
    # The whole LoRA path (load + bind) in a child whose address space is capped well below the 6.4 GB the
    # view describes: it must end with a NetworkError naming the file, not a MemoryError or a kill.
    import subprocess
    import textwrap
    path = tmp_path / "bomb.pt"
    torch.save({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(1).expand(40_000, 40_000),
                "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(1).expand(40_000, 40_000)}, path)
    code = textwrap.dedent(f"""
        import resource, sys
        from lorabridge.networks import load_network_file
        from lorabridge.networks import NetworkError
        cap = 3 << 30
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        try:
            load_network_file({str(path)!r}, {{}})
        except NetworkError as e:
            print("ERR", e)
            sys.exit(0)
        sys.exit(5)
    """)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "bomb.pt: refused: tensor of size (40000, 40000) with stride (0, 0)" in r.stdout
    assert "Traceback" not in r.stderr
