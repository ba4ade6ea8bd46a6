"""ESRGAN-family upscalers: A1111/spandrel references, key layouts, fp16, hostile files, tiling and multi-pass rules."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lorabridge.esrgan import RRDBConfig, RRDBNet, UpscalerLoadError, load_upscaler
from lorabridge.upscaler import (UpscalerCatalog, combine_grid, split_grid, upscale, upscale_with_model)

REPO = Path(__file__).resolve().parents[2]


def _weights(shared_dir: Path, name: str) -> Path:
    path = shared_dir / "conformance" / "upscalers" / "weights" / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def _x(h: int = 10, w: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand((1, 3, h, w), generator=torch.Generator().manual_seed(seed))


def test_every_public_upscaler_case_matches_a1111(shared_dir: Path, tmp_path: Path) -> None:
    base = shared_dir / "conformance" / "upscalers"
    if not (base / "manifest.json").is_file():
        pytest.skip("upscaler conformance data not present")
    run = subprocess.run([sys.executable, "-m", "lorabridge.conformance", "upscalers", str(base / "manifest.json"),
                          str(tmp_path)], cwd=REPO / "python", capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    check = subprocess.run([sys.executable, str(base / "compare_upscalers.py"), str(tmp_path)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout[-3000:]
    assert "RESULT: PASS" in check.stdout


# ---- layouts from shapes ----

def _random_net(cfg: RRDBConfig, seed: int = 3) -> RRDBNet:
    torch.manual_seed(seed)
    net = RRDBNet(cfg)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)) * 0.05)
            seed += 1
    return net


def _new_keys(old: dict[str, torch.Tensor], nb: int, upconvs: int, bsrgan: bool = False) -> dict[str, torch.Tensor]:
    """Renames an old-layout state dict into the BasicSR (or BSRGAN) names, as those trainers write them."""
    out = {}
    for k, v in old.items():
        parts = k.split(".")
        if k.startswith("model.1.sub.") and ".RDB" in k:
            n, rdb, conv, kind = parts[3], parts[4][3], parts[5], parts[7]
            out[f"RRDB_trunk.{n}.RDB{rdb}.{conv}.{kind}" if bsrgan else f"body.{n}.rdb{rdb}.{conv}.{kind}"] = v
        elif k.startswith(f"model.1.sub.{nb}."):
            out[("trunk_conv." if bsrgan else "conv_body.") + parts[-1]] = v
        elif parts[1] == "0":
            out["conv_first." + parts[-1]] = v
        elif int(parts[1]) == 3 * upconvs + 2:
            out[("HRconv." if bsrgan else "conv_hr.") + parts[-1]] = v
        elif int(parts[1]) == 3 * upconvs + 4:
            out["conv_last." + parts[-1]] = v
        else:
            out[("upconv" if bsrgan else "conv_up") + f"{int(parts[1]) // 3}.{parts[-1]}"] = v
    return out


@pytest.mark.parametrize("layout,wrap", [("old", None), ("new", "params_ema"), ("bsrgan", None), ("new", "params")])
def test_every_layout_gives_the_same_network(tmp_path: Path, layout: str, wrap: str | None) -> None:
    cfg = RRDBConfig(in_nc=3, out_nc=3, nf=8, nb=2, gc=32, upconvs=1, shuffle_factor=1)
    net = _random_net(cfg)
    old = {k: v.clone() for k, v in net.state_dict().items()}
    sd = old if layout == "old" else _new_keys(old, 2, 1, bsrgan=layout == "bsrgan")
    obj = {wrap: sd} if wrap else sd
    if wrap == "params":  # params_ema wins over params when both are there
        obj = {"params": {k: torch.zeros_like(v) for k, v in sd.items()}, "params_ema": sd}
    path = tmp_path / "m.pth"
    torch.save(obj, path)
    model = load_upscaler(path)
    assert model.layout == layout and model.config == cfg and model.scale == 2
    x = _x()
    assert torch.equal(model.forward_raw(x), net(x))


def test_fp16_files_are_upcast_into_a_float32_network(tmp_path: Path, shared_dir: Path) -> None:
    src = load_upscaler(_weights(shared_dir, "old_x2_nf8_nb1.pth"))
    half = {k: v.half() for k, v in src.net.state_dict().items()}
    torch.save(half, tmp_path / "half.pth")
    model = load_upscaler(tmp_path / "half.pth")
    assert model.stored_dtype == torch.float16
    assert next(model.net.parameters()).dtype == torch.float32
    ref = RRDBNet(src.config)
    ref.load_state_dict({k: v.float() for k, v in half.items()})
    x = _x()
    assert torch.equal(model.forward_raw(x), ref(x))


def test_pixel_unshuffle_1x_model(tmp_path: Path) -> None:
    cfg = RRDBConfig(in_nc=48, out_nc=3, nf=8, nb=1, gc=32, upconvs=2, shuffle_factor=4)
    net = _random_net(cfg)
    torch.save({"params_ema": _new_keys(net.state_dict(), 1, 2)}, tmp_path / "x1.pth")
    model = load_upscaler(tmp_path / "x1.pth")
    assert model.config == cfg and model.scale == 1 and model.config.input_channels == 3
    x = _x(9, 11)  # padded to 12x12 (multiple of 4), then cropped back
    out = model(x)
    assert out.shape == (1, 3, 9, 11) and float(out.min()) >= 0 and float(out.max()) <= 1


def test_unknown_layout_names_the_keys_it_found(tmp_path: Path) -> None:
    torch.save({"encoder.0.weight": torch.zeros(4, 3, 3, 3), "decoder.bias": torch.zeros(4)}, tmp_path / "swin.pth")
    with pytest.raises(UpscalerLoadError) as err:
        load_upscaler(tmp_path / "swin.pth")
    msg = str(err.value)
    assert "swin.pth" in msg and "encoder.0.weight" in msg and "decoder.bias" in msg


def test_shapes_that_do_not_fit_are_named(tmp_path: Path, shared_dir: Path) -> None:
    sd = load_upscaler(_weights(shared_dir, "old_x2_nf8_nb1.pth")).net.state_dict()
    sd["model.3.weight"] = torch.zeros(8, 8, 1, 1)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(UpscalerLoadError, match=r"bad\.pth: model\.3\.weight has shape"):
        load_upscaler(tmp_path / "bad.pth")


class _SystemCall:
    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):  # type: ignore[override]
        return (os.system, (self.cmd,))


def test_hostile_pth_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    (tmp_path / "ESRGAN").mkdir()
    path = tmp_path / "ESRGAN" / "4x-Evil.pth"
    torch.save({"params_ema": {"conv_first.weight": torch.zeros(1)}, "x": _SystemCall(f"touch '{marker}'")}, path)
    catalog = UpscalerCatalog([tmp_path])
    assert "4x-Evil" in catalog.names()  # listing never opens the file
    with pytest.raises(UpscalerLoadError) as err:
        catalog.upscale_image("4x-Evil", Image.new("RGB", (16, 16)), 2.0)
    assert "4x-Evil.pth" in str(err.value) and "refused" in str(err.value)
    assert not marker.exists()


# ---- catalog ----

def test_catalog_lists_builtins_and_both_folders(tmp_path: Path, shared_dir: Path) -> None:
    src = _weights(shared_dir, "old_x2_nf8_nb1.pth")
    (tmp_path / "ESRGAN" / "sub").mkdir(parents=True)
    (tmp_path / "RealESRGAN").mkdir()
    (tmp_path / "ESRGAN" / "sub" / "2x-Test.pth").write_bytes(src.read_bytes())
    (tmp_path / "RealESRGAN" / "RealESRGAN_x4plus.pth").write_bytes(src.read_bytes())
    (tmp_path / "ESRGAN" / "notes.txt").write_text("x")
    catalog = UpscalerCatalog([tmp_path])
    assert catalog.names() == ["None", "Lanczos", "Nearest", "2x-Test", "R-ESRGAN 4x+"]
    with pytest.raises(ValueError, match="available: None, Lanczos"):
        catalog.find("4x-Missing")
    im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 24, 3), dtype=np.uint8))
    out = catalog.upscale_image("2x-test", im, 2.0)
    assert out.size == (48, 40)
    assert catalog.upscale_image("Lanczos", im, 2.0).size == (48, 40)
    assert catalog.upscale_image("None", im, 1.0).size == (24, 16)  # dest rounds down to multiples of 8


# ---- tiling and passes ----

def test_split_grid_puts_small_pictures_at_negative_offsets() -> None:
    im = Image.new("RGB", (200, 104))
    grid = split_grid(im, 192, 192, 8)
    assert [(x, y) for y, _, row in grid.tiles for x, _, _ in row] == [(0, -88), (8, -88)]
    assert all(t.size == (192, 192) for _, _, row in grid.tiles for _, _, t in row)


def test_combine_grid_of_identical_content_is_seamless() -> None:
    a = np.random.default_rng(1).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    grid = split_grid(Image.fromarray(a), 48, 48, 12)
    assert np.array_equal(np.array(combine_grid(grid)), a)


def test_tiled_upscale_feeds_the_model_bgr() -> None:
    seen = []

    def model(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    a = np.zeros((8, 8, 3), dtype=np.uint8)
    a[..., 0] = 255  # pure red
    out = upscale_with_model(model, Image.fromarray(a), tile_size=0)
    assert float(seen[0][0, 2].min()) == 1.0 and float(seen[0][0, 0].max()) == 0.0  # red arrives in channel 2
    assert np.array_equal(np.array(out), np.repeat(np.repeat(a, 2, 0), 2, 1))


def test_multi_pass_rule() -> None:
    passes = []

    def x2(im: Image.Image) -> Image.Image:
        passes.append(im.size)
        return im.resize((im.width * 2, im.height * 2))

    im = Image.new("RGB", (40, 36))
    assert upscale(im, 3.3, x2).size == (128, 112)
    assert passes == [(40, 36), (80, 72)]
    passes.clear()
    assert upscale(im, 1.0, x2).size == (40, 32)  # scale 1 still runs one pass
    assert passes == [(40, 36)]
    passes.clear()
    assert upscale(im, 100, lambda i: i).size == (4000, 3600)  # a pass that does not grow stops the loop
