"""Tests for lorabridge.diagnostics, the test and benchmark plumbing C# calls (here called directly from Python)."""
from __future__ import annotations

import ctypes
import threading
import time

import pytest

from lorabridge import bridge, diagnostics


@pytest.fixture(autouse=True)
def _clean_handles():
    yield
    bridge.shutdown_cleanup()


def test_echo_round_trips_values() -> None:
    for value in (0, -3, 2.5, "héllo", (1, "a"), None):
        assert diagnostics.echo(value) == value


def test_fail_raises_named_builtin_with_message() -> None:
    with pytest.raises(ValueError, match="bad thing"):
        diagnostics.fail("ValueError", "bad thing")
    with pytest.raises(KeyError):
        diagnostics.fail("KeyError", "k")


def test_fail_rejects_non_exception_names() -> None:
    with pytest.raises(TypeError, match="'len' is not a builtin exception"):
        diagnostics.fail("len", "x")
    with pytest.raises(TypeError, match="NoSuchError"):
        diagnostics.fail("NoSuchError", "x")


def test_busy_loop_completes_and_records_state() -> None:
    n = diagnostics.busy_loop(0.05)
    assert n > 0
    assert diagnostics.last_loop_state() == {"state": "completed", "iterations": n}


def test_busy_loop_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind must be"):
        diagnostics.busy_loop(0.01, "gpu")


@pytest.mark.parametrize("kind", ["python", "torch"])
def test_busy_loop_records_interrupt(kind: str) -> None:
    # The same mechanism the host uses: an asynchronous KeyboardInterrupt on the running thread.
    result: dict[str, object] = {}

    def run() -> None:
        try:
            diagnostics.busy_loop(30, kind)
        except KeyboardInterrupt:
            result["interrupted"] = True

    worker = threading.Thread(target=run)
    worker.start()
    while diagnostics.last_loop_state()["state"] != "running":
        time.sleep(0.01)
    time.sleep(0.05)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(KeyboardInterrupt))
    worker.join(10)
    assert not worker.is_alive()
    assert result.get("interrupted") is True
    assert diagnostics.last_loop_state()["state"] == "interrupted"


def test_tensor_sum_and_scale_act_on_bridge_handles() -> None:
    h = bridge.tensor_create([3], "float32")
    addr, size = bridge.tensor_begin_write(h)["address"], 12
    ctypes.memmove(addr, (ctypes.c_float * 3)(1.5, 2.0, -0.5), size)
    bridge.tensor_end_write(h)
    assert diagnostics.tensor_sum(h) == 3.0
    diagnostics.tensor_scale_(h, -2.0)
    assert bridge.tensor_get(h).tolist() == [-3.0, -4.0, 1.0]
    bridge.tensor_release(h)
    with pytest.raises(KeyError, match=f"no tensor with handle {h}"):
        diagnostics.tensor_sum(h)


def test_product_module_holds_no_plumbing() -> None:
    for name in ("echo", "fail", "busy_loop", "last_loop_state", "tensor_sum", "tensor_scale_", "last_loop"):
        assert not hasattr(bridge, name), name
