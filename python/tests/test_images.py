"""uint8 conversion as A1111 does it, and PNG bytes whose `parameters` text survives a round trip."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lorabridge.images import encode_pngs, from_uint8, png_bytes, read_png_parameters, to_uint8


def test_to_uint8_values_and_layout() -> None:
    # channel c, row h, column w holds a distinct value so the axis move is checked too
    values = torch.tensor([-3.0, -1.0, 0.0, 0.999, 1.0, 5.0])
    x = torch.zeros(2, 3, 1, 6)
    x[1, 2, 0] = values
    out = to_uint8(x)
    assert out.shape == (2, 1, 6, 3) and out.dtype == np.uint8
    # clamp, then truncation (not rounding): 0 -> 127.5 -> 127, 0.999 -> 254.87 -> 254
    assert out[1, 0, :, 2].tolist() == [0, 0, 127, 254, 255, 255]
    assert out[0].max() == 127 and out[1, :, :, :2].max() == 127
    assert to_uint8(x[1]).shape == (1, 6, 3)


def test_to_uint8_computes_in_float32() -> None:
    # Values at and beside the k/255 boundaries land on different integers in float32 and float64; A1111
    # computes in float32 (float32 array times a Python float), so must we.
    k = np.arange(256, dtype=np.float32)
    x = np.float32(2) * k / np.float32(255) - np.float32(1)
    xs = np.concatenate([x, np.nextafter(x, np.float32(2)), np.nextafter(x, np.float32(-2))]).astype(np.float32)
    img = torch.from_numpy(xs).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    ours = to_uint8(img)[0, 0, :, 0]
    f32 = (np.float32(255.0) * np.clip((xs + np.float32(1)) / np.float32(2), 0, 1)).astype(np.uint8)
    f64 = (255.0 * np.clip((xs.astype(np.float64) + 1.0) / 2.0, 0, 1)).astype(np.uint8)
    assert (f32 != f64).any()  # the inputs do reach values where precision matters
    assert np.array_equal(ours, f32)


def test_to_uint8_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        to_uint8(torch.zeros(1, 4, 8, 8))


def test_from_uint8_scaling() -> None:
    rgb = np.array([[[0, 255, 51]]], dtype=np.uint8)
    x = from_uint8(rgb)
    assert x.shape == (1, 3, 1, 1)
    assert torch.allclose(x.flatten(), torch.tensor([-1.0, 1.0, 51 / 255 * 2 - 1]))


@pytest.mark.parametrize("text,chunk", [
    ("a photo of a cat\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Seed: 1", b"tEXt"),
    ("caf\u00e9 <lora:x:0.5>", b"tEXt"),           # latin-1 still goes to tEXt
    ("\u732b\u306e\u5199\u771f, Seed: 3", b"iTXt"),  # not latin-1: iTXt, as Pillow's add_text does for A1111
])
def test_png_parameters_round_trip(tmp_path: Path, text: str, chunk: bytes) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8)
    data = png_bytes(rgb, text)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert chunk + b"parameters" in data
    assert read_png_parameters(data) == text
    path = tmp_path / "00000-1.png"
    path.write_bytes(data)
    assert read_png_parameters(path) == text
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGB" and np.array_equal(np.asarray(im), rgb)
    assert png_bytes(rgb, text) == data  # deterministic


def test_png_without_parameters() -> None:
    data = png_bytes(np.zeros((4, 4, 3), dtype=np.uint8))
    assert b"parameters" not in data
    assert read_png_parameters(data) is None


def test_png_bytes_rejects_non_uint8() -> None:
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((4, 4, 3), dtype=np.float32))


def test_encode_pngs_batch() -> None:
    g = torch.Generator().manual_seed(0)
    decoded = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    pngs = encode_pngs(decoded, ["first", "second"])
    assert [read_png_parameters(p) for p in pngs] == ["first", "second"]
    expected = to_uint8(decoded)
    for i, p in enumerate(pngs):
        with Image.open(io.BytesIO(p)) as im:
            assert np.array_equal(np.asarray(im), expected[i])
    assert [read_png_parameters(p) for p in encode_pngs(decoded, "same")] == ["same", "same"]
    with pytest.raises(ValueError, match="3 parameter texts for 2 images"):
        encode_pngs(decoded, ["a", "b", "c"])
