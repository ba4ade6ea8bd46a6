"""Live previews: A1111's "Approx cheap" factors, its byte conversion, and the bridge call during a demo-model run."""
from __future__ import annotations

import pytest
import torch

from lorabridge import bridge, demo, preview
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
