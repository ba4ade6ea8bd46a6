"""img2img, hires fix and upscaling through the session the C# engine drives (demo model)."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lorabridge import demo
from lorabridge.generation import Session
from lorabridge.generation_img import hires_params, start_hires_run, start_img2img_run, upscale_png
from lorabridge.images import read_png_parameters, to_uint8
from lorabridge.img2img import encode_init_latent, image_to_tensor, posterior_generator


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> demo.DemoFiles:
    return demo.write_demo_model(tmp_path_factory.mktemp("demo"))


@pytest.fixture()
def session(demo_files: demo.DemoFiles) -> Session:
    return Session(str(demo_files.checkpoint), device="cpu")


def _conds(session: Session) -> tuple[int, int]:
    ids = [2012, 300, 301, 302] + [2013] * 73
    empty = [2012] + [2013] * 76
    return session.encode([ids], [[1.0] * 77]), session.encode([empty], [[1.0] * 77])


def _finish(session: Session, handle: int, cond: int, uncond: int) -> None:
    while session.total_steps(handle) and session.step(handle, [(cond, 1.0)], uncond, 7.0):
        pass


def _picture(path: Path, w: int = 64, h: int = 64, seed: int = 0) -> Path:
    a = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    a[: h // 2, :, 0] = 250  # some structure: a red top half
    Image.fromarray(a).save(path)
    return path


def _pixels(png: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(png)).convert("RGB"))


def test_img2img_at_denoise_zero_returns_the_vae_round_trip(session: Session, tmp_path: Path) -> None:
    init = _picture(tmp_path / "init.png")
    cond, uncond = _conds(session)
    h = start_img2img_run(session, "Euler a", "Automatic", 10, 42, 1, 64, 64, "GPU", 0, str(init), 0.0,
                          "Just resize", fix_steps=True)
    assert session.total_steps(h) == 0
    png = session.decode_png(h, ["x"])[0]
    model = session.model
    with torch.no_grad():
        latent, _ = encode_init_latent(model.vae.encode_moments, image_to_tensor(Image.open(init)).unsqueeze(0),
                                       model.scale_factor, posterior_generator([42]))
        expected = to_uint8(model.decode_latents(latent))[0]
    assert np.array_equal(_pixels(png), expected)
    # Without fix steps A1111 still runs one step at the smallest sigma: close to the round trip, not equal.
    h2 = start_img2img_run(session, "Euler a", "Automatic", 10, 42, 1, 64, 64, "GPU", 0, str(init), 0.0,
                           "Just resize")
    _finish(session, h2, cond, uncond)
    near = _pixels(session.decode_png(h2, ["x"])[0]).astype(int)
    assert np.abs(near - expected.astype(int)).mean() < 8


def test_img2img_at_denoise_one_ignores_the_picture(session: Session, tmp_path: Path) -> None:
    a, b = _picture(tmp_path / "a.png", seed=1), _picture(tmp_path / "b.png", seed=2)
    cond, uncond = _conds(session)

    def run(path: Path, strength: float) -> np.ndarray:
        h = start_img2img_run(session, "Euler", "Automatic", 8, 7, 1, 64, 64, "GPU", 0, str(path), strength, "Just resize")
        _finish(session, h, cond, uncond)
        return _pixels(session.decode_png(h, ["x"])[0]).astype(int)

    full = np.abs(run(a, 1.0) - run(b, 1.0)).mean()
    half = np.abs(run(a, 0.5) - run(b, 0.5)).mean()
    assert full < half  # the further the denoise, the less of the picture remains
    assert np.array_equal(run(a, 0.6), run(a, 0.6))  # same seed, same pixels


def test_img2img_resizes_and_refuses_unreadable_files(session: Session, tmp_path: Path) -> None:
    wide = _picture(tmp_path / "wide.png", 96, 48)
    for mode in ("Just resize", "Crop and resize", "Resize and fill"):
        h = start_img2img_run(session, "Euler", "Automatic", 4, 1, 1, 64, 64, "GPU", 0, str(wide), 0.5, mode)
        assert session._objects[h].x.shape == (1, 4, 8, 8)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="bad.png"):
        start_img2img_run(session, "Euler", "Automatic", 4, 1, 1, 64, 64, "GPU", 0, str(bad), 0.5, "Just resize")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        start_img2img_run(session, "Euler", "Automatic", 4, 1, 1, 64, 64, "GPU", 0, str(tmp_path / "missing.png"), 0.5,
                          "Just resize")


def test_hires_latent_doubles_the_size_and_is_deterministic(session: Session) -> None:
    cond, uncond = _conds(session)

    def run() -> bytes:
        first = session.start("Euler a", "Automatic", 4, 5, 1, 64, 64)
        _finish(session, first, cond, uncond)
        second, params = start_hires_run(session, first, "DPM++ 2M", "Automatic", 3, 0.5, 2.0, 0, 0, "Latent")
        assert params == {"Hires schedule type": "Karras"}
        assert session.total_steps(second) == 3
        _finish(session, second, cond, uncond)
        return session.decode_png(second, ["x"])[0]

    png = run()
    assert _pixels(png).shape == (128, 128, 3)
    assert png == run()


def test_hires_with_an_esrgan_file(session: Session, tmp_path: Path, shared_dir: Path) -> None:
    src = shared_dir / "conformance" / "upscalers" / "weights" / "old_x2_nf8_nb1.pth"
    if not src.is_file():
        pytest.skip(f"{src} not present")
    (tmp_path / "ESRGAN").mkdir()
    shutil.copy(src, tmp_path / "ESRGAN" / "2x-Tiny.pth")
    from lorabridge.generation_img import catalog

    upscale = catalog([str(tmp_path)]).as_image_upscale("2x-Tiny")
    cond, uncond = _conds(session)
    first = session.start("Euler", "Automatic", 3, 9, 1, 64, 64)
    _finish(session, first, cond, uncond)
    second, _ = start_hires_run(session, first, "Euler", "Automatic", 2, 0.4, 1.5, 0, 0, "2x-Tiny", upscale)
    assert session._objects[second].x.shape == (1, 4, 12, 12)
    src = _picture(tmp_path / "p.png", 40, 36)
    Image.open(src).save(src, pnginfo=_info("parameters", "a cat\nSteps: 3"))
    png, w, h = upscale_png(str(src), [str(tmp_path)], "2x-Tiny", 2.0, 192, 8, "Postprocess upscale by: 2")
    assert (w, h) == (80, 72) and _pixels(png).shape == (72, 80, 3)
    assert read_png_parameters(png) == "a cat\nSteps: 3"  # the source's parameters are kept, as A1111's Extras
    assert Image.open(io.BytesIO(png)).info["postprocessing"] == "Postprocess upscale by: 2"


def _info(key: str, value: str):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    return info


def test_hires_infotext_pairs() -> None:
    assert hires_params(64, 64, 2.0, 0, 0, 0.55, "Euler a", None, 0, "Latent") == [
        ("Denoising strength", "0.55"), ("Hires upscale", "2"), ("Hires upscaler", "Latent")]
