"""C# extensions' Python side: module import from an extension folder, value crossing, the after-CFG scope."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lorabridge import bridge, demo, ext_host
from lorabridge.generation import Session
from lorabridge.images import read_png_parameters, to_uint8


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    files = demo.write_demo_model(tmp_path_factory.mktemp("demo"))
    return Session(str(files.checkpoint), device="cpu")


def _ext(tmp_path: Path, name: str, code: str) -> str:
    folder = tmp_path / "python"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(code)
    return str(folder)


def _conds(session: Session) -> tuple[int, int]:
    ids = [[2012, 300, 301] + [2013] * 74]
    return session.encode(ids, [[1.0] * 77]), session.encode([[2012] + [2013] * 76], [[1.0] * 77])


def test_call_converts_values_both_ways(tmp_path: Path) -> None:
    folder = _ext(tmp_path, "lbx_values", "import torch\n"
                  "def f(n, x, s, b, items, d, t):\n"
                  "    t.mul_(2)\n"
                  "    return [n + 1, x * 2, s.upper(), b[::-1], items, {'k': d['a'] + 1}, torch.ones(2), (1, 2), None]\n")
    t = bridge._register(torch.tensor([1.0, 2.0]))
    result = ext_host.call("Ext", folder, "lbx_values", "f",
                           [3, 1.5, "ab", b"\x01\x02", [1, "x"], {"a": 4}, ext_host.TensorRef(t)])
    assert result[:6] == [4, 3.0, "AB", b"\x02\x01", [1, "x"], {"k": 5}]
    assert isinstance(result[6], ext_host.TensorRef)
    assert torch.equal(bridge.tensor_get(result[6].handle), torch.ones(2))
    assert result[7:] == [[1, 2], None]
    assert torch.equal(bridge.tensor_get(t), torch.tensor([2.0, 4.0]))  # the function got the tensor itself


def test_bad_modules_and_functions_name_the_extension(tmp_path: Path) -> None:
    folder = _ext(tmp_path, "lbx_broken", "def f(:\n    pass\n")
    with pytest.raises(SyntaxError) as e:
        ext_host.call("Broken", folder, "lbx_broken", "f", [])
    assert "lbx_broken.py" in str(e.value.filename)
    folder = _ext(tmp_path, "lbx_ok", "def f():\n    return object()\n")
    with pytest.raises(AttributeError, match="extension 'Ok'.*no function 'g'"):
        ext_host.call("Ok", folder, "lbx_ok", "g", [])
    with pytest.raises(TypeError, match=r"lbx_ok.f returned a builtins.object"):
        ext_host.call("Ok", folder, "lbx_ok", "f", [])
    with pytest.raises(ImportError, match="'json' is already imported"):
        _ext(tmp_path, "json", "")
        ext_host.call("Ok", folder, "json", "dumps", [])


def test_after_cfg_zeroing_denoised_gives_a_zero_latent_and_handles_retire(session: Session) -> None:
    cond, uncond = _conds(session)
    handle = session.start("Euler", "Automatic", 3, 5, 1, 64, 64)
    seen: list[tuple[int, int, int, float]] = []

    def callback(tid: int, step: int, total: int, sigma: float, cond: int, uncond: int) -> None:
        seen.append((tid, step, total, sigma))
        d, c, u = bridge.tensor_get(tid), bridge.tensor_get(cond), bridge.tensor_get(uncond)
        assert torch.allclose(d, u + 7.0 * (c - u), atol=1e-4)  # the parts are what the CFG mixed
        d.zero_()

    while ext_host.step_with_after_cfg(session, handle, [(cond, 1.0)], uncond, 7.0, callback):
        pass
    state = session._objects[handle]
    assert [s[1:3] for s in seen] == [(1, 3), (2, 3), (3, 3)]
    assert seen[0][3] == pytest.approx(float(state.sigmas[0]))
    assert state.x.abs().max() < 1e-6  # x·(1 - σ/σ) leaves rounding residue only
    assert state.after_cfg is None
    with pytest.raises(LookupError, match=r"lent to the after-CFG hook of step 1 of 3\) was used after its step"):
        bridge.tensor_get(seen[0][0])
    # The demo VAE (random weights, zero padding) does not decode a zero latent to one colour; the picture is the
    # zero latent's, whatever the seed was.
    rgb, w, h = ext_host.decode_rgb(session, handle)[0]
    with torch.no_grad():
        zero = to_uint8(session.model.decode_latents(torch.zeros_like(state.x)))[0]
    got = np.frombuffer(rgb, dtype=np.uint8).reshape(h, w, 3).astype(int)
    assert (w, h) == (64, 64) and np.abs(got - zero.astype(int)).max() <= 1


def test_callback_exception_propagates_and_leaves_no_handle(session: Session) -> None:
    cond, uncond = _conds(session)
    handle = session.start("Euler a", "Automatic", 2, 5, 1, 64, 64)
    before = bridge.tensor_count()

    def callback(tid: int, step: int, total: int, sigma: float, cond: int, uncond: int) -> None:
        raise RuntimeError("hook broke")

    with pytest.raises(RuntimeError, match="hook broke"):
        ext_host.step_with_after_cfg(session, handle, [(cond, 1.0)], uncond, 7.0, callback)
    assert bridge.tensor_count() == before
    assert session._objects[handle].after_cfg is None


def test_rgb_round_trip_gives_decode_png_bytes(session: Session) -> None:
    cond, uncond = _conds(session)
    handle = session.start("Euler a", "Automatic", 2, 9, 1, 64, 64)
    while session.step(handle, [(cond, 1.0)], uncond, 7.0):
        pass
    expected = session.decode_png(handle, ["a cat\nSteps: 2"])[0]
    rgb, w, h = ext_host.decode_rgb(session, handle)[0]
    assert ext_host.encode_png(rgb, w, h, "a cat\nSteps: 2") == expected
    assert read_png_parameters(expected) == "a cat\nSteps: 2"
    with pytest.raises(ValueError, match="64x64 needs 12288 bytes, got 3"):
        ext_host.encode_png(b"abc", 64, 64, "")
    arr = np.frombuffer(rgb, dtype=np.uint8)
    assert arr.size == 64 * 64 * 3


def _run(session: Session, cond: int, uncond: int, before=None, after=None, seed: int = 5) -> torch.Tensor:
    handle = session.start("Euler", "Automatic", 3, seed, 1, 64, 64)
    while ext_host.step_with_model_hooks(session, handle, [(cond, 1.0)], uncond, 7.0, before, after):
        pass
    state = session._objects[handle]
    assert state.before_model is None and state.after_cfg is None
    return state.x.clone()


def test_before_model_hook_edits_copies_of_the_model_inputs(session: Session) -> None:
    cond, uncond = _conds(session)
    cached = session._objects[cond].clone()
    plain = _run(session, cond, uncond)
    seen: list[tuple[int, int, int, float]] = []

    def noop(tid: int, step: int, total: int, sigma: float, c: int, u: int) -> None:
        seen.append((tid, step, total, sigma))
        assert bridge.tensor_get(tid).shape == (1, 4, 8, 8)
        assert bridge.tensor_get(c).shape == bridge.tensor_get(u).shape == (1, 77, cached.shape[-1])

    assert torch.equal(_run(session, cond, uncond, noop), plain)
    assert [s[1:3] for s in seen] == [(1, 3), (2, 3), (3, 3)] and seen[0][3] > seen[1][3] > seen[2][3] > 0
    with pytest.raises(LookupError, match=r"lent to the before-model-call hook of step 1 of 3\) was used after its step"):
        bridge.tensor_get(seen[0][0])

    def swap(tid: int, step: int, total: int, sigma: float, c: int, u: int) -> None:
        ct, ut = bridge.tensor_get(c), bridge.tensor_get(u)
        old = ct.clone()
        ct.copy_(ut)
        ut.copy_(old)

    # Swapping cond and uncond in the hook is the run with the prompts swapped; the cached conditioning is untouched.
    swapped = _run(session, cond, uncond, swap)
    assert torch.allclose(swapped, _run(session, uncond, cond), atol=1e-5)
    assert not torch.allclose(swapped, plain, atol=1e-3)
    assert torch.equal(session._objects[cond], cached)

    def zero_first(tid: int, step: int, total: int, sigma: float, c: int, u: int) -> None:
        if step == 1:
            bridge.tensor_get(tid).mul_(0)

    a, b = _run(session, cond, uncond, zero_first), _run(session, cond, uncond, zero_first)
    assert torch.equal(a, b) and not torch.allclose(a, plain, atol=1e-3)


def test_before_model_hook_that_changes_a_shape_or_raises_fails_the_step(session: Session) -> None:
    cond, uncond = _conds(session)
    before = bridge.tensor_count()

    def reshape(tid: int, step: int, total: int, sigma: float, c: int, u: int) -> None:
        bridge.tensor_get(c).resize_(1, 10, bridge.tensor_get(c).shape[-1])

    with pytest.raises(ValueError, match="before-model-call hook changed the shapes"):
        _run(session, cond, uncond, reshape)

    def broken(tid: int, step: int, total: int, sigma: float, c: int, u: int) -> None:
        raise RuntimeError("hook broke")

    with pytest.raises(RuntimeError, match="hook broke"):
        _run(session, cond, uncond, broken)
    assert bridge.tensor_count() == before
