"""Live previews: A1111's "Approx cheap" factors, its byte conversion, the bridge call during a demo-model run, and the
"auto" / "cheap" / "taesd" method choice with TAESD files in a models folder's VAE-approx."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Optional

import pytest
import torch

from lorabridge import bridge, demo, preview, taesd
from lorabridge.checkpoint import save_safetensors
from lorabridge.generation import Session


def one_hot_latent(channel: int, value: float = 1.0, size: int = 2) -> torch.Tensor:
    latent = torch.zeros(4, size, size)
    latent[channel] = value
    return latent


def test_each_channel_maps_through_a1111s_sd1_factors() -> None:
    # channel 0 → (0.298, 0.207, 0.208); bytes = trunc(255 * (v * 0.5 + 0.5))
    w, h, data = preview.sample_to_rgb(one_hot_latent(0), "sd1")
    assert (w, h) == (2, 2)
    assert tuple(data[:3]) == (int(255 * (0.298 * 0.5 + 0.5)), int(255 * (0.207 * 0.5 + 0.5)), int(255 * (0.208 * 0.5 + 0.5)))
    # channel 3 with a large value saturates: negative factors clamp to 0
    _, _, data = preview.sample_to_rgb(one_hot_latent(3, 10.0), "sd1")
    assert tuple(data[:3]) == (0, 0, 0)
    _, _, data = preview.sample_to_rgb(one_hot_latent(3, -10.0), "sd1")
    assert tuple(data[:3]) == (255, 255, 255)


def test_sdxl_uses_its_own_factors() -> None:
    _, _, sd1 = preview.sample_to_rgb(one_hot_latent(1), "sd1")
    _, _, xl = preview.sample_to_rgb(one_hot_latent(1), "sdxl")
    assert tuple(xl[:3]) == (int(255 * (-0.1953 * 0.5 + 0.5)), int(255 * (-0.0290 * 0.5 + 0.5)), int(255 * (0.0250 * 0.5 + 0.5)))
    assert sd1 != xl


def test_layout_is_row_major_rgb() -> None:
    latent = torch.zeros(4, 2, 3)   # h=2, w=3
    latent[0, 1, 2] = 2.0           # bottom-right pixel only
    w, h, data = preview.sample_to_rgb(latent, "sd1")
    assert (w, h) == (3, 2) and len(data) == 18
    assert data[15] == int(255 * min(1.0, 0.298 * 2 * 0.5 + 0.5))
    assert data[0] == 127           # zero latent → mid grey (0.5 * 255 truncated)


def test_wrong_channel_count_is_refused() -> None:
    with pytest.raises(ValueError, match="4-channel"):
        preview.cheap_approximation(torch.zeros(1, 16, 2, 2))


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> demo.DemoFiles:
    return demo.write_demo_model(tmp_path_factory.mktemp("demo"))


def test_bridge_preview_follows_the_running_sampler(demo_files: demo.DemoFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    session = Session(str(demo_files.checkpoint), device="cpu")
    monkeypatch.setattr(bridge, "_session", session)
    assert preview.gen_latent_preview() is None          # nothing sampling yet
    ids = [[2012] + [300, 301] + [2013] * 74]
    cond = session.encode(ids, [[1.0] * 77])
    uncond = session.encode([[2012] + [2013] * 76], [[1.0] * 77])
    handle = session.start("Euler a", "Automatic", 3, 5, 1, 64, 48)
    before = preview.gen_latent_preview()
    assert before is not None and before[:2] == (8, 6)   # latent size: 64x48 / 8
    session.step(handle, [(cond, 1.0)], uncond, 7.0)
    after = preview.gen_latent_preview()
    assert after is not None and after[:2] == (8, 6) and len(after[2]) == 8 * 6 * 3
    state = session._objects[handle]
    assert after[2] == preview.sample_to_rgb(state.denoised[0], "sd1")[2]   # the denoised prediction, not the noisy x
    assert after[2] != before[2]
    session.release(handle)
    assert preview.gen_latent_preview() is None


# --- preview method: "auto" / "cheap" / "taesd" (A1111's "Live preview method") through the bridge call ---

class _SystemCall:
    """Pickles as `os.system(cmd)`: plain `torch.load` of the file would run the command."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):  # type: ignore[override]
        return (os.system, (self.cmd,))


def _seeded_decoder_weights(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return taesd.TaesdDecoder().state_dict()


def _models_dir(root: Path, name: str = "taesd_decoder.safetensors", weights: Optional[dict] = None) -> Path:
    """`root/models` with `VAE-approx/<name>` holding a seeded random decoder (or `weights`)."""
    folder = root / "models" / "VAE-approx"
    folder.mkdir(parents=True)
    tensors = weights if weights is not None else _seeded_decoder_weights(5)
    if name.endswith(".safetensors"):
        save_safetensors(folder / name, tensors)
    else:
        torch.save(tensors, folder / name)
    return root / "models"


@pytest.fixture()
def sampling(demo_files: demo.DemoFiles, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """A demo-model session with one Euler a step taken on a 64x48 image (latent 8x6)."""
    session = Session(str(demo_files.checkpoint), device="cpu")
    monkeypatch.setattr(bridge, "_session", session)
    cond = session.encode([[2012] + [300, 301] + [2013] * 74], [[1.0] * 77])
    uncond = session.encode([[2012] + [2013] * 76], [[1.0] * 77])
    handle = session.start("Euler a", "Automatic", 3, 5, 1, 64, 48)
    session.step(handle, [(cond, 1.0)], uncond, 7.0)
    yield session
    session.release(handle)


def test_a_taesd_file_in_vae_approx_gives_an_eight_times_larger_preview(sampling: Session, tmp_path: Path) -> None:
    models = _models_dir(tmp_path / "data")
    for method in ("auto", "taesd"):
        w, h, data, used, note = bridge.gen_latent_preview(method, [str(tmp_path / "webui" / "models"), str(models)])
        assert (w, h, used, note) == (64, 48, "taesd", "") and len(data) == 64 * 48 * 3
        # The decoder's own output of the denoised latent, clamped, ·255, truncated.
        state = preview.newest_sampler(sampling)
        decoder = taesd.load_decoder(models / "VAE-approx" / "taesd_decoder.safetensors")
        expected = (255.0 * taesd.decode(decoder, state.denoised[0])).to(torch.uint8).permute(1, 2, 0).contiguous()
        assert data == expected.numpy().tobytes()
        assert len(set(data)) > 1


def test_without_the_file_auto_is_cheap_silently(sampling: Session, tmp_path: Path) -> None:
    w, h, data, used, note = bridge.gen_latent_preview("auto", [str(tmp_path / "models")])
    assert (w, h, used, note) == (8, 6, "cheap", "")
    assert data == preview.sample_to_rgb(preview.newest_sampler(sampling).denoised[0], "sd1")[2]


def test_cheap_ignores_a_taesd_file(sampling: Session, tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    w, h, _, used, note = bridge.gen_latent_preview("cheap", [str(models)])
    assert (w, h, used, note) == (8, 6, "cheap", "")


def test_taesd_without_the_file_falls_back_to_cheap_naming_the_folders(sampling: Session, tmp_path: Path) -> None:
    # An SDXL file does not serve an SD1 model.
    models = _models_dir(tmp_path / "data", "taesdxl_decoder.safetensors")
    webui = tmp_path / "webui" / "models"
    w, h, _, used, note = bridge.gen_latent_preview("taesd", [str(webui), str(models)])
    assert (w, h, used) == (8, 6, "cheap")
    assert "taesd_decoder.safetensors or taesd_decoder.pth" in note and "SD1" in note and "Approx cheap" in note
    assert str(webui / "VAE-approx") in note and str(models / "VAE-approx") in note
    assert "\n" not in note
    _, _, _, _, none = bridge.gen_latent_preview("taesd", [])
    assert "no models folder" in none


def test_a_hostile_pth_decoder_does_not_run_and_the_preview_stays_cheap(sampling: Session, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = dict(_seeded_decoder_weights(1), hook=_SystemCall(f"touch '{marker}'"))
    models = _models_dir(tmp_path, "taesd_decoder.pth", hostile)
    w, h, _, used, note = bridge.gen_latent_preview("auto", [str(models)])
    assert (w, h, used) == (8, 6, "cheap")
    assert str(models / "VAE-approx" / "taesd_decoder.pth") in note and "refused" in note
    assert not marker.exists()


def test_an_unknown_method_is_refused(sampling: Session) -> None:
    with pytest.raises(ValueError, match="auto, cheap, taesd.*'vae'"):
        bridge.gen_latent_preview("vae", [])
