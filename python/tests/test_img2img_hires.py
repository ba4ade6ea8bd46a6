"""img2img and hires fix: A1111's reference latents (manifest_ext.json), step rules, resize modes, sizes, infotext."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lorabridge.hires import (LATENT_UPSCALE_MODES, hires_infotext, hires_schedule_type, hires_target,
                              start_hires_pass, truncate_latent, upscale_images, upscale_latent)
from lorabridge.img2img import (encode_init_latent, img2img_steps, posterior_generator, resize_image,
                                resize_mode_index, start_img2img)
from lorabridge.rng import ImageRNG
from lorabridge.samplers import SAMPLERS, SamplerState

REPO = Path(__file__).resolve().parents[2]


def _toy_eps(x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    return 0.3 * torch.tanh(x) + 0.05 * torch.cos(t / 100).view(-1, 1, 1, 1) + context.mean()


COND = torch.randn((1, 77, 8), generator=torch.Generator().manual_seed(1))
UNCOND = torch.randn((1, 77, 8), generator=torch.Generator().manual_seed(2))


# ---- A1111 reference ----

def test_every_case_of_manifest_ext_matches_a1111(shared_dir: Path, tmp_path: Path) -> None:
    base = shared_dir / "conformance" / "samplers"
    manifest = base / "manifest_ext.json"
    if not manifest.is_file():
        pytest.skip(f"{manifest} not present")
    cases = list(json.loads(manifest.read_text())["cases"])  # img2img, hires and the SDXL sampler cases
    assert cases
    run = subprocess.run([sys.executable, "-m", "lorabridge.conformance", "samplers", str(manifest), str(tmp_path)],
                         cwd=REPO / "python", capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    check = subprocess.run([sys.executable, str(base / "compare_latents.py"), str(tmp_path), "--manifest", str(manifest),
                            "--strict-aux", "--quiet", "--case", *cases], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-3000:]
    assert f"{len(cases)}/{len(cases)} cases within tolerance" in check.stdout


# ---- steps ----

@pytest.mark.parametrize("steps,strength,fix,expected", [
    (10, 0.3, False, (10, 3)),
    (50, 0.58, False, (50, 28)),  # 0.58 * 50 = 28.999… truncates
    (10, 1.0, False, (10, 9)),  # min(strength, 0.999)
    (10, 0.0, False, (10, 0)),
    (10, 0.55, True, (18, 9)),
    (5, 1.0, True, (5, 4)),
    (10, 0.0, True, (0, 9)),
])
def test_img2img_steps_follow_setup_img2img_steps(steps: int, strength: float, fix: bool, expected: tuple) -> None:
    assert img2img_steps(steps, strength, fix) == expected


@pytest.mark.parametrize("bad", [(0, 0.5), (10, -0.1), (10, 1.5)])
def test_img2img_steps_refuse_bad_values(bad: tuple) -> None:
    with pytest.raises(ValueError):
        img2img_steps(*bad)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_every_sampler_runs_img2img_with_the_expected_number_of_calls(sampler: str) -> None:
    init = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(5))
    rng = ImageRNG((4, 8, 8), [77])
    state = start_img2img(sampler, _toy_eps, rng, init, 10, 0.55)
    expected = 4 if sampler == "DDIM" else 6  # DDIM: t_enc - 1 calls; k-diffusion: t_enc + 1
    assert state.total == expected
    out = state.run(COND, UNCOND, 7.0)
    assert out.shape == init.shape and torch.isfinite(out).all()


def test_strength_zero_with_fix_steps_returns_the_init_latent() -> None:
    init = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(5))
    state = start_img2img("Euler a", _toy_eps, ImageRNG((4, 8, 8), [3]), init, 20, 0.0, fix_steps=True)
    assert state.total == 0
    assert torch.equal(state.run(COND, UNCOND, 7.0), init)


def test_low_strength_stays_close_and_full_strength_forgets_the_init() -> None:
    a = torch.zeros((1, 4, 8, 8))
    b = torch.full((1, 4, 8, 8), 3.0)

    def run(init: torch.Tensor, strength: float) -> torch.Tensor:
        return start_img2img("Euler", _toy_eps, ImageRNG((4, 8, 8), [11]), init, 10, strength).run(COND, UNCOND, 7.0)

    low = run(b, 0.05)
    assert (low - b).abs().max() < 0.2
    # At strength 1 the start is init + noise * sigma_max (14.6): the init's share is small but still present.
    full_a, full_b = run(a, 1.0), run(b, 1.0)
    assert (full_a - full_b).abs().mean() < (a - b).abs().mean()


def test_start_img2img_refuses_a_mismatched_init() -> None:
    with pytest.raises(ValueError, match="shape"):
        start_img2img("Euler", _toy_eps, ImageRNG((4, 8, 8), [1]), torch.zeros((1, 4, 8, 9)), 10, 0.5)


# ---- VAE encode ----

class _Moments:
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.avg_pool2d(x, 8)
        mean = torch.cat([pooled, pooled[:, :1]], dim=1)
        logvar = torch.full_like(mean, -2.0)
        return torch.cat([mean, logvar], dim=1)


def test_encode_draws_one_successive_eps_per_image_from_the_seeded_generator() -> None:
    images = torch.rand((1, 3, 16, 16), generator=torch.Generator().manual_seed(1)).repeat(2, 1, 1, 1)
    s2, m2 = encode_init_latent(_Moments(), images, 0.18215, posterior_generator([5, 6]))
    s1, m1 = encode_init_latent(_Moments(), images[:1], 0.18215, posterior_generator([6]))
    assert torch.equal(s2[:1], s1)  # first image: first draw of manual_seed(last seed)
    assert not torch.equal(s2[0], s2[1])  # second image: the next draw
    assert torch.equal(m2[0], m2[1])
    g = torch.Generator().manual_seed(6)
    e = torch.randn((1, 4, 2, 2), generator=g)
    mean = m1
    assert torch.allclose(s1, 0.18215 * (mean + torch.exp(torch.tensor(-1.0)) * e), atol=1e-7)


# ---- resize modes ----

def _gradient(w: int, h: int) -> Image.Image:
    a = np.zeros((h, w, 3), dtype=np.uint8)
    a[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None]
    a[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    return Image.fromarray(a)


def test_resize_modes_by_name_and_index() -> None:
    assert resize_mode_index("crop and resize") == 1
    assert resize_mode_index(2) == 2
    assert resize_mode_index("3") == 3
    with pytest.raises(ValueError, match="unknown resize mode"):
        resize_mode_index("stretch")


def test_just_resize_stretches() -> None:
    out = resize_image(0, _gradient(100, 50), 64, 64)
    assert out.size == (64, 64)
    assert np.array_equal(np.array(out), np.array(_gradient(100, 50).resize((64, 64), Image.LANCZOS)))


def test_crop_and_resize_fills_the_frame_and_crops_the_sides() -> None:
    src = _gradient(128, 64)
    out = np.array(resize_image(1, src, 64, 64))
    # Scaled to 128x64 (height fits), centred: columns 32..95 of the source.
    expected = np.array(src)[:, 32:96]
    assert out.shape == (64, 64, 3)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 2


def test_resize_and_fill_fits_and_fills_the_bands_from_the_edges() -> None:
    src = _gradient(128, 64)
    out = np.array(resize_image(2, src, 64, 64))
    # Fit: 64x32 in the middle (rows 16..47); bands above and below repeat the first/last row.
    assert out.shape == (64, 64, 3)
    middle = np.array(src.resize((64, 32), Image.LANCZOS))
    assert np.array_equal(out[16:48], middle)
    assert np.abs(out[:16].astype(int) - middle[:1].astype(int)).max() <= 2
    assert np.abs(out[48:].astype(int) - middle[-1:].astype(int)).max() <= 2


# ---- hires sizes and upscales ----

def test_hires_target_truncates_the_scaled_size() -> None:
    t = hires_target(64, 96, 1.3)
    assert (t.width, t.height, t.latent_size) == (83, 124, (15, 10))
    assert t.infotext == {"Hires upscale": "1.3"}
    assert hires_target(512, 512, 2.0).infotext == {"Hires upscale": "2"}


def test_hires_resize_follows_a1111() -> None:
    assert (hires_target(512, 768, 0, 1024, 0).width, hires_target(512, 768, 0, 1024, 0).height) == (1024, 1536)
    assert (hires_target(512, 768, 0, 0, 1024).width, hires_target(512, 768, 0, 0, 1024).height) == (682, 1024)
    t = hires_target(512, 512, 0, 1024, 768)  # wider box: fit the width, crop the height in latent space
    assert (t.width, t.height, t.truncate_x, t.truncate_y) == (1024, 1024, 0, 32)
    assert t.infotext == {"Hires resize": "1024x768"}
    latent = torch.zeros((1, 4, 128, 128))
    assert truncate_latent(latent, t).shape == (1, 4, 96, 128)


@pytest.mark.parametrize("name", list(LATENT_UPSCALE_MODES))
def test_latent_upscale_modes(name: str) -> None:
    x = torch.randn((1, 4, 8, 9), generator=torch.Generator().manual_seed(0))
    out = upscale_latent(x, hires_target(72, 64, 1.5), name)
    assert out.shape == (1, 4, 12, 13)
    mode = LATENT_UPSCALE_MODES[name]
    kw = {"antialias": True} if mode["antialias"] else {}
    assert torch.equal(out, torch.nn.functional.interpolate(x, size=(12, 13), mode=mode["mode"], **kw))


def test_upscale_latent_refuses_an_image_upscaler_name() -> None:
    with pytest.raises(ValueError, match="not a latent upscaler"):
        upscale_latent(torch.zeros((1, 4, 8, 8)), hires_target(64, 64), "R-ESRGAN 4x+")


def test_image_upscaler_path_goes_through_uint8_and_the_upscaler() -> None:
    decoded = torch.linspace(-1, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    calls = []

    def upscale(im: Image.Image, scale: float) -> Image.Image:
        calls.append((im.size, scale))
        return im.resize((im.width * 2, im.height * 2), Image.NEAREST)

    out = upscale_images(decoded, hires_target(16, 16, 2.0), upscale)
    assert calls == [((16, 16), 2.0)]
    assert out.shape == (1, 3, 32, 32) and 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    # Truncation to uint8 as A1111 (not rounding): the value just below 128/255 stays 127.
    rgb = (255.0 * np.moveaxis(((decoded + 1) / 2).clamp(0, 1).numpy(), 1, -1)).astype(np.uint8)
    assert np.array_equal((out[0, :, ::2, ::2].numpy() * 255).round().astype(np.uint8), np.moveaxis(rgb[0], -1, 0))


def test_hires_pass_uses_fresh_noise_from_the_same_seeds() -> None:
    up = torch.randn((2, 4, 12, 16), generator=torch.Generator().manual_seed(3))
    state = start_hires_pass("Euler a", _toy_eps, up, [10, 11], 4, 0.3)
    fresh = ImageRNG((4, 12, 16), [10, 11]).next()
    assert torch.equal(state.noise, fresh)
    assert state.total == 4 and len(state.sigmas) == 5  # fix-steps rule: int(4 / 0.3) = 13 sigmas, last 5 kept


def test_hires_infotext_order_and_values() -> None:
    t = hires_target(64, 64, 2.0)
    params = hires_infotext(t, denoising_strength=0.55, sampler="Euler a", hr_sampler="DPM++ 2M", hr_steps=4,
                            upscaler="Latent")
    assert list(params.items()) == [("Denoising strength", "0.55"), ("Hires sampler", "DPM++ 2M"),
                                    ("Hires upscale", "2"), ("Hires steps", "4"), ("Hires upscaler", "Latent")]
    same = hires_infotext(t, denoising_strength=1.0, sampler="Euler", hr_sampler="Euler", hr_steps=0, upscaler=None)
    assert same == {"Denoising strength": "1", "Hires upscale": "2"}


def test_hires_schedule_type_only_when_it_differs() -> None:
    def state(name: str) -> SamplerState:
        return SamplerState(name, _toy_eps, ImageRNG((4, 8, 8), [1]), 4)

    assert hires_schedule_type(state("Euler a"), state("DPM++ 2M")) == "Karras"
    assert hires_schedule_type(state("DPM++ 2M"), state("DPM++ 2M")) is None
    assert hires_schedule_type(state("Euler"), state("DDIM")) is None
