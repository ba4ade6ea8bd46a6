"""Tests for lorabridge.bridge, the functions C# calls (here called directly from Python); the diagnostics
plumbing is in test_diagnostics.py."""
from __future__ import annotations

import ctypes
import os
import sys

import pytest
import torch

from lorabridge import bridge


@pytest.fixture(autouse=True)
def _clean_handles():
    yield
    bridge.shutdown_cleanup()


def test_runtime_info_describes_this_interpreter() -> None:
    info = bridge.runtime_info()
    assert info["executable"] == sys.executable
    assert info["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert info["torch_version"] == torch.__version__
    assert info["torch_threads"] == torch.get_num_threads()
    assert info["omp_wait_policy_env"] == os.environ.get("OMP_WAIT_POLICY", "")
    assert info["device"] in ("cpu", "cuda")
    assert info["cuda_available"] == torch.cuda.is_available()


def test_blas_library_is_found_in_process_maps_on_linux() -> None:
    if not os.path.exists("/proc/self/maps"):
        pytest.skip("no /proc on this platform")
    bridge.blas_check(64, 1)  # make sure torch's BLAS is loaded
    lib = bridge.runtime_info()["blas_library"]
    # torch links some BLAS (reference, OpenBLAS or MKL); its resolved path must show up.
    assert lib == "" or all(os.path.isabs(p) and os.path.exists(p) for p in lib.split(", "))


def test_blas_check_reports_positive_rate() -> None:
    result = bridge.blas_check(128, 2)
    assert result["seconds"] > 0
    assert result["gflops"] == pytest.approx(2 * 128**3 / result["seconds"] / 1e9)


def _span(result: dict) -> tuple[int, int]:
    assert set(result) == {"address", "bytes"}
    return result["address"], result["bytes"]


def test_tensor_write_read_through_raw_addresses() -> None:
    h = bridge.tensor_create([4, 3], "float32")
    assert bridge.tensor_info(h) == {"shape": [4, 3], "dtype": "float32", "device": "cpu", "bytes": 48}
    src = (ctypes.c_float * 12)(*range(12))
    addr, size = _span(bridge.tensor_begin_write(h))
    assert size == 48
    ctypes.memmove(addr, src, size)
    bridge.tensor_end_write(h)
    assert bridge.tensor_get(h).sum().item() == sum(range(12))
    bridge.tensor_get(h).mul_(2.0)
    addr, size = _span(bridge.tensor_begin_read(h))
    out = (ctypes.c_float * 12)()
    ctypes.memmove(out, addr, size)
    bridge.tensor_end_read(h)
    assert list(out) == [2.0 * i for i in range(12)]


def test_non_contiguous_tensor_goes_through_staging() -> None:
    h = bridge._register(torch.zeros(3, 2).t())  # transposed view: not contiguous
    addr, size = _span(bridge.tensor_begin_write(h))
    ctypes.memmove(addr, (ctypes.c_float * 6)(1, 2, 3, 4, 5, 6), size)
    bridge.tensor_end_write(h)
    assert bridge.tensor_get(h).tolist() == [[1, 2, 3], [4, 5, 6]]
    addr, size = _span(bridge.tensor_begin_read(h))
    out = (ctypes.c_float * 6)()
    ctypes.memmove(out, addr, size)
    bridge.tensor_end_read(h)
    assert list(out) == [1, 2, 3, 4, 5, 6]


def test_tensor_handles_are_released_and_errors_name_the_handle() -> None:
    h = bridge.tensor_create([2], "int64")
    assert bridge.tensor_count() == 1
    assert bridge.tensor_release(h) is True
    assert bridge.tensor_release(h) is False
    with pytest.raises(KeyError, match=f"no tensor with handle {h}"):
        bridge.tensor_info(h)


def test_tensor_create_validates_arguments() -> None:
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        bridge.tensor_create([1], "float8")
    with pytest.raises(ValueError, match="negative dimension"):
        bridge.tensor_create([2, -1])
