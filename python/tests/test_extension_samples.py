"""The Python modules of the sample extensions in extensions/ (CfgRescale, LatentPreview)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

EXTENSIONS = Path(__file__).resolve().parents[2] / "extensions"


def _load(extension: str, module: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(f"sample_{module}", EXTENSIONS / extension / "python" / f"{module}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


cfg_rescale = _load("CfgRescale", "cfg_rescale")
latent_preview = _load("LatentPreview", "latent_preview")


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn((2, 4, 8, 8), generator=g) * 3.0, torch.randn((2, 4, 8, 8), generator=g)


def test_phi_zero_leaves_every_bit() -> None:
    denoised, cond = _pair()
    before = denoised.clone()
    cfg_rescale.rescale(denoised, cond, 0.0)
    assert torch.equal(denoised, before)


def test_phi_one_matches_the_positive_spread_per_image() -> None:
    denoised, cond = _pair(1)
    cfg_rescale.rescale(denoised, cond, 1.0)
    for i in range(2):
        assert float(denoised[i].std()) == pytest.approx(float(cond[i].std()), rel=1e-5)


def test_phi_blends_linearly() -> None:
    denoised, cond = _pair(2)
    full, half = denoised.clone(), denoised.clone()
    cfg_rescale.rescale(full, cond, 1.0)
    cfg_rescale.rescale(half, cond, 0.5)
    assert torch.allclose(half, 0.5 * full + 0.5 * denoised, atol=1e-5)


def test_flat_prediction_is_left_alone() -> None:
    denoised = torch.full((1, 4, 2, 2), 0.25)
    cfg_rescale.rescale(denoised, torch.randn((1, 4, 2, 2)), 0.7)
    assert torch.equal(denoised, torch.full((1, 4, 2, 2), 0.25))


def test_cheap_preview_is_a1111s_linear_map(tmp_path: Path) -> None:
    latent = torch.zeros((1, 4, 2, 3))
    latent[0, 0, 0, 0] = 1.0    # channel 0 alone: (0.298, 0.207, 0.208)
    latent[0, 3, 1, 2] = -1.0   # minus channel 3: (0.184, 0.271, 0.473)
    rgb = latent_preview.to_rgb(latent[0])
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    expect = lambda c: int(255.0 * np.float32(c * 0.5 + 0.5))  # noqa: E731
    assert list(rgb[0, 0]) == [expect(0.298), expect(0.207), expect(0.208)]
    assert list(rgb[1, 2]) == [expect(0.184), expect(0.271), expect(0.473)]
    assert list(rgb[0, 1]) == [127, 127, 127]
    path = str(tmp_path / "p.png")
    assert latent_preview.save_preview(latent, path) == "approx"
    with Image.open(path) as im:
        assert im.size == (3, 2) and np.array_equal(np.asarray(im), rgb)


def test_a_zero_latent_previews_as_one_grey(tmp_path: Path) -> None:
    # The cheap map has no bias term: a zero latent is 0 → 0.5 → 127 in every channel, for both families.
    for sdxl in (False, True):
        rgb = latent_preview.to_rgb(torch.zeros((4, 3, 5)), sdxl)
        assert rgb.shape == (3, 5, 3) and (rgb == 127).all()


def _taesd_file(folder: Path, name: str, seed: int) -> Path:
    from lorabridge.checkpoint import save_safetensors
    from lorabridge.taesd import TaesdDecoder

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    path = folder / name
    save_safetensors(path, TaesdDecoder().state_dict())
    return path


def test_preview_modes_pick_the_file_of_the_models_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folders = [str(tmp_path / "webui" / "VAE-approx"), str(tmp_path / "data" / "VAE-approx")]
    latent = torch.randn((1, 4, 3, 5), generator=torch.Generator().manual_seed(0))
    out = str(tmp_path / "p.png")

    def size() -> tuple[int, int]:
        with Image.open(out) as im:
            return im.size

    # No file: auto is the cheap preview, taesd is an error naming the file names and the folders searched.
    assert latent_preview.save_preview(latent, out, "auto", folders) == "approx" and size() == (5, 3)
    with pytest.raises(FileNotFoundError) as err:
        latent_preview.save_preview(latent, out, "taesd", folders)
    assert "taesd_decoder.safetensors or taesd_decoder.pth" in str(err.value) and folders[1] in str(err.value)
    with pytest.raises(ValueError, match="LatentPreview:Decoder must be one of approx, taesd, auto, got 'vae'"):
        latent_preview.save_preview(latent, out, "vae", folders)

    # Only the SDXL decoder: an SD1 model (no session loaded counts as SD1) still gets the cheap preview.
    xl = _taesd_file(tmp_path / "data" / "VAE-approx", "taesdxl_decoder.safetensors", 1)
    assert latent_preview.save_preview(latent, out, "auto", folders) == "approx" and size() == (5, 3)
    monkeypatch.setattr(latent_preview.preview, "session_family", lambda: "sdxl")
    assert latent_preview.save_preview(latent, out, "auto", folders) == str(xl) and size() == (40, 24)
    monkeypatch.undo()

    sd1 = _taesd_file(tmp_path / "webui" / "VAE-approx", "taesd_decoder.safetensors", 2)
    assert latent_preview.save_preview(latent, out, "taesd", folders) == str(sd1)
    with Image.open(out) as im:
        rgb = np.asarray(im)
    assert rgb.shape == (24, 40, 3)
    from lorabridge import taesd

    expect = (255.0 * taesd.decode(taesd.load_decoder(sd1), latent[0]).permute(1, 2, 0).numpy()).astype(np.uint8)
    assert np.array_equal(rgb, expect)
    # approx ignores the file.
    assert latent_preview.save_preview(latent, out, "approx", folders) == "approx" and size() == (5, 3)
