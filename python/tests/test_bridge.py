"""Tests for lorabridge.bridge, the functions C# calls (here called directly from Python)."""
from __future__ import annotations

import ctypes
import os
import sys
import threading
import time

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


def test_echo_round_trips_values() -> None:
    for value in (0, -3, 2.5, "héllo", (1, "a"), None):
        assert bridge.echo(value) == value


def test_fail_raises_named_builtin_with_message() -> None:
    with pytest.raises(ValueError, match="bad thing"):
        bridge.fail("ValueError", "bad thing")
    with pytest.raises(KeyError):
        bridge.fail("KeyError", "k")


def test_fail_rejects_non_exception_names() -> None:
    with pytest.raises(TypeError, match="'len' is not a builtin exception"):
        bridge.fail("len", "x")
    with pytest.raises(TypeError, match="NoSuchError"):
        bridge.fail("NoSuchError", "x")


def test_busy_loop_completes_and_records_state() -> None:
    n = bridge.busy_loop(0.05)
    assert n > 0
    assert bridge.last_loop_state() == ("completed", n)


def test_busy_loop_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind must be"):
        bridge.busy_loop(0.01, "gpu")


@pytest.mark.parametrize("kind", ["python", "torch"])
def test_busy_loop_records_interrupt(kind: str) -> None:
    # The same mechanism the host uses: an asynchronous KeyboardInterrupt on the running thread.
    result: dict[str, object] = {}

    def run() -> None:
        try:
            bridge.busy_loop(30, kind)
        except KeyboardInterrupt:
            result["interrupted"] = True

    worker = threading.Thread(target=run)
    worker.start()
    while bridge.last_loop_state()[0] != "running":
        time.sleep(0.01)
    time.sleep(0.05)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(KeyboardInterrupt))
    worker.join(10)
    assert not worker.is_alive()
    assert result.get("interrupted") is True
    assert bridge.last_loop_state()[0] == "interrupted"


def test_tensor_write_read_through_raw_addresses() -> None:
    h = bridge.tensor_create([4, 3], "float32")
    assert bridge.tensor_info(h) == ((4, 3), "float32", "cpu", 48)
    src = (ctypes.c_float * 12)(*range(12))
    addr, size = bridge.tensor_begin_write(h)
    assert size == 48
    ctypes.memmove(addr, src, size)
    bridge.tensor_end_write(h)
    assert bridge.tensor_sum(h) == sum(range(12))
    bridge.tensor_scale_(h, 2.0)
    addr, size = bridge.tensor_begin_read(h)
    out = (ctypes.c_float * 12)()
    ctypes.memmove(out, addr, size)
    bridge.tensor_end_read(h)
    assert list(out) == [2.0 * i for i in range(12)]


def test_non_contiguous_tensor_goes_through_staging() -> None:
    h = bridge._register(torch.zeros(3, 2).t())  # transposed view: not contiguous
    addr, size = bridge.tensor_begin_write(h)
    ctypes.memmove(addr, (ctypes.c_float * 6)(1, 2, 3, 4, 5, 6), size)
    bridge.tensor_end_write(h)
    assert bridge.tensor_get(h).tolist() == [[1, 2, 3], [4, 5, 6]]
    addr, size = bridge.tensor_begin_read(h)
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
        bridge.tensor_sum(h)


def test_tensor_create_validates_arguments() -> None:
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        bridge.tensor_create([1], "float8")
    with pytest.raises(ValueError, match="negative dimension"):
        bridge.tensor_create([2, -1])
