"""A1111 noise: per-image generators, the NV Philox emulation, ENSD and the later draws."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lorabridge.rng import RNG_SOURCES, ImageRNG, PhiloxGenerator, create_generator, image_seeds, philox4x32_10

SHAPE = (4, 8, 8)


def _manifest(shared_dir: Path) -> tuple[Path, dict]:
    base = shared_dir / "conformance" / "samplers"
    return base, json.loads((base / "manifest.json").read_text())


def test_philox_known_answers() -> None:
    # Random123's published known-answer vectors for philox4x32-10 (counter, key -> output).
    vectors = [
        ([0, 0, 0, 0], (0, 0), [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, (0xFFFFFFFF, 0xFFFFFFFF), [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], (0xA4093822, 0x299F31D0),
         [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
    ]
    counters = np.array([c for c, _, _ in vectors], dtype=np.uint32).T
    for j, (_, key, want) in enumerate(vectors):
        got = philox4x32_10(counters[:, j : j + 1].copy(), key)[:, 0]
        assert [int(v) for v in got] == want


def test_philox_rejects_bad_counter() -> None:
    with pytest.raises(ValueError, match="uint32"):
        philox4x32_10(np.zeros((4, 3), dtype=np.int64), (0, 0))
    with pytest.raises(ValueError, match=r"\[4, n\]"):
        philox4x32_10(np.zeros((3, 3), dtype=np.uint32), (0, 0))


def test_nv_matches_a1111_documented_output() -> None:
    # The example printed in A1111's rng_philox.py docstring (seed 0, shape (3, 4)).
    want = np.array([
        [-0.92466259, -0.42534415, -2.6438457, 0.14518388],
        [-0.12086647, -0.57972564, -0.62285122, -0.32838709],
        [-1.07454231, -0.36314407, -1.67105067, 2.26550497],
    ])
    got = PhiloxGenerator(0).randn((3, 4))
    assert got.dtype == np.float32 and got.shape == (3, 4)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_nv_offset_advances_per_call_and_key_uses_high_word() -> None:
    g = PhiloxGenerator(5)
    a, b = g.randn((2, 3)), g.randn((2, 3))
    assert g.offset == 2
    assert not np.array_equal(a, b)
    # The first call of any generator restarts at offset 0.
    np.testing.assert_array_equal(PhiloxGenerator(5).randn((2, 3)), a)
    # Seeds differing only above bit 32 must give different streams.
    assert not np.array_equal(PhiloxGenerator(5 + (1 << 32)).randn((2, 3)), a)
    # Element k depends only on k: a longer draw starts with the shorter one.
    np.testing.assert_array_equal(PhiloxGenerator(5).randn((10,))[:6], a.reshape(-1))


def test_noise_and_draws_match_reference_for_every_public_case(shared_dir: Path) -> None:
    base, manifest = _manifest(shared_dir)
    sources_seen = set()
    for case_id, case in manifest["cases"].items():
        ref = case["reference"]
        rng = ImageRNG((4, case["height"] // 8, case["width"] // 8), image_seeds(case["seed"], case["batch_size"]),
                       source=case["randn_source"], eta_noise_seed_delta=case["eta_noise_seed_delta"])
        noise = rng.next().numpy()
        np.testing.assert_array_equal(noise, np.load(base / ref["noise"]), err_msg=case_id)
        if "draws" in ref:
            draws = np.load(base / ref["draws"])
            for k in range(draws.shape[0]):
                np.testing.assert_array_equal(rng.next().numpy(), draws[k], err_msg=f"{case_id} draw {k}")
        sources_seen.add(case["randn_source"])
    assert sources_seen == set(RNG_SOURCES)


@pytest.mark.parametrize("source", RNG_SOURCES)
@pytest.mark.parametrize("ensd", [0, 31337])
def test_batch_image_equals_single_run_with_seed_plus_i(source: str, ensd: int) -> None:
    seed = 4294967290  # the batch crosses 2^32
    batch = ImageRNG(SHAPE, image_seeds(seed, 3), source=source, eta_noise_seed_delta=ensd)
    stream = [batch.next() for _ in range(4)]
    for i in range(3):
        single = ImageRNG(SHAPE, [seed + i], source=source, eta_noise_seed_delta=ensd)
        for k in range(4):
            assert torch.equal(single.next()[0], stream[k][i]), (source, ensd, i, k)


@pytest.mark.parametrize("source", RNG_SOURCES)
def test_deterministic_and_seed_dependent(source: str) -> None:
    a = ImageRNG(SHAPE, [1234], source=source)
    b = ImageRNG(SHAPE, [1234], source=source)
    c = ImageRNG(SHAPE, [1235], source=source)
    for _ in range(3):
        xa, xb, xc = a.next(), b.next(), c.next()
        assert xa.dtype == torch.float32 and xa.shape == (1, *SHAPE)
        assert torch.equal(xa, xb)
        assert not torch.equal(xa, xc)


def test_draws_continue_the_stream_and_differ_from_the_noise() -> None:
    rng = ImageRNG(SHAPE, [7], source="CPU")
    noise, draw = rng.next(), rng.next()
    assert rng.draws == 1
    g = torch.Generator().manual_seed(7)
    assert torch.equal(noise[0], torch.randn(SHAPE, generator=g))
    assert torch.equal(draw[0], torch.randn(SHAPE, generator=g))


@pytest.mark.parametrize("source", RNG_SOURCES)
def test_ensd_replaces_generators_after_the_first_draw(source: str) -> None:
    plain = ImageRNG(SHAPE, [99], source=source)
    delta = ImageRNG(SHAPE, [99], source=source, eta_noise_seed_delta=1000)
    assert torch.equal(plain.next(), delta.next())  # initial noise unchanged by ENSD
    draw = delta.next()
    assert not torch.equal(plain.next(), draw)
    # The replacement is a fresh generator for seed + ENSD, so its first output is that seed's first draw.
    assert torch.equal(ImageRNG(SHAPE, [1099], source=source).next(), draw)


def test_gpu_source_equals_cpu_source_on_cpu() -> None:
    gpu = ImageRNG(SHAPE, [3, 4], source="GPU", device="cpu")
    cpu = ImageRNG(SHAPE, [3, 4], source="CPU", device="cpu")
    for _ in range(2):
        assert torch.equal(gpu.next(), cpu.next())


def test_nv_differs_from_cpu() -> None:
    assert not torch.equal(ImageRNG(SHAPE, [3], source="NV").next(), ImageRNG(SHAPE, [3], source="CPU").next())


def test_global_torch_rng_is_untouched() -> None:
    before = torch.get_rng_state()
    rng = ImageRNG(SHAPE, [11, 12], source="GPU", eta_noise_seed_delta=5)
    rng.next()
    rng.next()
    assert torch.equal(torch.get_rng_state(), before)


def test_variation_seed() -> None:
    base = ImageRNG(SHAPE, [10]).next()
    assert torch.equal(ImageRNG(SHAPE, [10], subseeds=[20], subseed_strength=0.0).next(), base)
    mixed = ImageRNG(SHAPE, [10], subseeds=[20], subseed_strength=0.3).next()
    assert mixed.shape == base.shape and not torch.equal(mixed, base)
    assert torch.equal(ImageRNG(SHAPE, [10], subseeds=[20], subseed_strength=0.3).next(), mixed)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_generators_live_on_the_right_device() -> None:
    assert create_generator(1, "GPU", "cuda").device.type == "cuda"
    assert create_generator(1, "CPU", "cuda").device.type == "cpu"
    for source in RNG_SOURCES:
        x = ImageRNG(SHAPE, [1, 2], source=source, device="cuda").next()
        assert x.device.type == "cuda" and x.dtype == torch.float32
    # CPU and NV sources must give the same numbers whatever the device.
    assert torch.equal(ImageRNG(SHAPE, [1], source="NV", device="cuda").next().cpu(), ImageRNG(SHAPE, [1], source="NV").next())
    assert torch.equal(ImageRNG(SHAPE, [1], source="CPU", device="cuda").next().cpu(), ImageRNG(SHAPE, [1], source="CPU").next())


def test_errors() -> None:
    with pytest.raises(ValueError, match="unknown randn source 'TPU'"):
        ImageRNG(SHAPE, [1], source="TPU")
    with pytest.raises(ValueError, match="outside"):
        ImageRNG(SHAPE, [-1])
    with pytest.raises(ValueError, match="outside"):
        PhiloxGenerator(1 << 64)
    with pytest.raises(TypeError, match="integer"):
        ImageRNG(SHAPE, [1.5])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one seed"):
        ImageRNG(SHAPE, [])
    with pytest.raises(ValueError, match="channels, h, w"):
        ImageRNG((4, 8), [1])
    with pytest.raises(ValueError, match="at least 1"):
        image_seeds(1, 0)
    assert image_seeds(3735928559, 2) == [3735928559, 3735928560]
    assert image_seeds(7, 3, variation=True) == [7, 7, 7]
