"""The TAESD decoder (lorabridge.taesd): the published key layout, loading through the restricted readers, a
hand-set file whose output is computed here independently, clear refusals, and file lookup by model family."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lorabridge import taesd
from lorabridge.checkpoint import CheckpointError, save_safetensors

BLOCKS = [3, 4, 5, 8, 9, 10, 13, 14, 15, 18]
UPSAMPLE_CONVS = [7, 12, 17]


def _random_weights(seed: int) -> dict[str, torch.Tensor]:
    """A module's `state_dict()` as trainers save it (an OrderedDict with `_metadata`, which a .pth pickles too)."""
    torch.manual_seed(seed)
    return taesd.TaesdDecoder().state_dict()


def _write(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    if path.suffix == ".safetensors":
        save_safetensors(path, tensors)
    else:
        torch.save(tensors, path)
    return path


def test_the_key_layout_is_the_published_decoders() -> None:
    shapes = taesd.expected_shapes()
    # madebyollin/taesd's Decoder: nn.Sequential indices, conv 4→64 at 1, blocks with conv.0/2/4, bias-free
    # convs after each upsample, output conv 64→3 at 19.
    assert len(shapes) == 2 + 6 * len(BLOCKS) + len(UPSAMPLE_CONVS) + 2
    assert shapes["1.weight"] == (64, 4, 3, 3) and shapes["1.bias"] == (64,)
    for b in BLOCKS:
        for i in (0, 2, 4):
            assert shapes[f"{b}.conv.{i}.weight"] == (64, 64, 3, 3) and shapes[f"{b}.conv.{i}.bias"] == (64,)
    for c in UPSAMPLE_CONVS:
        assert shapes[f"{c}.weight"] == (64, 64, 3, 3) and f"{c}.bias" not in shapes
    assert shapes["19.weight"] == (3, 64, 3, 3) and shapes["19.bias"] == (3,)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".legacy.pth"])
def test_random_weights_decode_to_eight_times_the_latent_in_unit_range(tmp_path: Path, suffix: str) -> None:
    weights = _random_weights(7)
    path = tmp_path / f"taesd_decoder{suffix}"
    if suffix == ".legacy.pth":  # torch's pre-1.6 format, as old copies of the file may be
        torch.save(weights, path, _use_new_zipfile_serialization=False)
    else:
        _write(path, weights)
    decoder = taesd.load_decoder(path)
    for k, v in decoder.state_dict().items():
        assert torch.equal(v, weights[k]), k
    latent = torch.randn((2, 4, 5, 7), generator=torch.Generator().manual_seed(1)) * 2
    out = taesd.decode(decoder, latent)
    assert out.shape == (2, 3, 40, 56) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float(out.std()) > 0.0
    single = taesd.decode(decoder, latent[1])
    assert single.shape == (3, 40, 56) and torch.allclose(single, out[1], atol=1e-6)


def test_safetensors_and_pth_of_the_same_weights_decode_the_same(tmp_path: Path) -> None:
    weights = _random_weights(3)
    a = taesd.load_decoder(_write(tmp_path / "a.safetensors", weights))
    b = taesd.load_decoder(_write(tmp_path / "b.pth", weights))
    latent = torch.randn((1, 4, 3, 3), generator=torch.Generator().manual_seed(2))
    assert torch.equal(taesd.decode(a, latent), taesd.decode(b, latent))


def test_fp16_files_load_into_a_float32_decoder(tmp_path: Path) -> None:
    weights = {k: v.half() for k, v in _random_weights(4).items()}
    decoder = taesd.load_decoder(_write(tmp_path / "half.safetensors", weights))
    assert all(v.dtype == torch.float32 for v in decoder.state_dict().values())
    assert torch.equal(decoder.state_dict()["19.weight"], weights["19.weight"].float())


def _hand_set(tmp_path: Path, block_bias: list[float], out_w: list[float], out_b: list[float]) -> Path:
    """Every weight zero except: input conv passes latent channel 0 to feature 0 (centre tap 1), each block's last
    conv adds a bias to feature 0, each upsample conv passes feature 0 through, the output conv maps feature 0 to
    RGB with `out_w` and adds `out_b`."""
    w = {k: torch.zeros(s) for k, s in taesd.expected_shapes().items()}
    w["1.weight"][0, 0, 1, 1] = 1.0
    for b, bias in zip(BLOCKS, block_bias):
        w[f"{b}.conv.4.bias"][0] = bias
    for c in UPSAMPLE_CONVS:
        w[f"{c}.weight"][0, 0, 1, 1] = 1.0
    for ch in range(3):
        w["19.weight"][ch, 0, 1, 1] = out_w[ch]
    w["19.bias"] = torch.tensor(out_b)
    return _write(tmp_path / "taesd_decoder.safetensors", w)


def test_a_hand_set_decoder_gives_the_output_computed_by_hand(tmp_path: Path) -> None:
    block_bias = [0.01 * (i + 1) for i in range(len(BLOCKS))]  # 0.01 … 0.10, sum 0.55
    out_w, out_b = [0.5, 0.25, -0.5], [0.1, 0.2, 0.9]
    decoder = taesd.load_decoder(_hand_set(tmp_path, block_bias, out_w, out_b))
    latent = torch.randn((1, 4, 3, 4), generator=torch.Generator().manual_seed(5)) * 2
    latent[0, 0, 0, 0] = -1.0  # feature 0 is cut to 0 by the ReLU after the input conv
    latent[0, 0, 2, 3] = 9.0   # the soft clamp bounds it below 3
    out = taesd.decode(decoder, latent)[0].numpy()
    assert out.shape == (3, 24, 32)

    # By hand: f = ReLU(3·tanh(L0 / 3)); every block adds its bias to the (non-negative) feature 0 and keeps it
    # non-negative, so it ends at f + Σ biases; nearest upsampling ×2 three times repeats each latent pixel over 8×8;
    # the output conv's centre tap gives w·(f + Σ) + b per channel, clamped to [0, 1]. Latent channels 1–3 meet
    # only zero weights.
    total = sum(block_bias)
    expected = np.zeros((3, 24, 32), dtype=np.float64)
    for y in range(24):
        for x in range(32):
            f = max(0.0, 3.0 * math.tanh(float(latent[0, 0, y // 8, x // 8]) / 3.0))
            for ch in range(3):
                expected[ch, y, x] = min(1.0, max(0.0, out_w[ch] * (f + total) + out_b[ch]))
    assert np.abs(out - expected).max() < 1e-5
    # The picked pixels: a cut feature gives w·Σ + b exactly; the clamped one stays below w·(3 + Σ) + b.
    assert out[:, 0, 0] == pytest.approx([0.5 * 0.55 + 0.1, 0.25 * 0.55 + 0.2, 0.9 - 0.5 * 0.55], abs=1e-6)
    assert out[0, 23, 31] == pytest.approx(min(1.0, 0.5 * (3 * math.tanh(3.0) + 0.55) + 0.1), abs=1e-6)
    # Some red values went over 1 and were clamped; no channel left [0, 1].
    assert float(out[0].max()) == 1.0 and float(out.min()) >= 0.0


def test_wrong_keys_and_shapes_are_refused_naming_file_and_key(tmp_path: Path) -> None:
    good = _random_weights(0)

    missing = dict(good)
    del missing["12.weight"]
    path = _write(tmp_path / "missing.safetensors", missing)
    with pytest.raises(taesd.TaesdLoadError) as err:
        taesd.load_decoder(path)
    assert str(path) in str(err.value) and "missing key(s) 12.weight" in str(err.value)

    extra = dict(good, **{"12.bias": torch.zeros(64)})
    path = _write(tmp_path / "extra.pth", extra)
    with pytest.raises(taesd.TaesdLoadError) as err:
        taesd.load_decoder(path)
    assert str(path) in str(err.value) and "unexpected key(s) 12.bias" in str(err.value)

    shaped = dict(good, **{"19.weight": torch.zeros((3, 64, 1, 1))})
    path = _write(tmp_path / "shape.safetensors", shaped)
    with pytest.raises(taesd.TaesdLoadError) as err:
        taesd.load_decoder(path)
    assert str(err.value) == f"{path}: key 19.weight has shape (3, 64, 1, 1), a TAESD decoder needs (3, 64, 3, 3)"

    integers = dict(good, **{"1.bias": torch.zeros(64, dtype=torch.int32)})
    path = _write(tmp_path / "ints.safetensors", integers)
    with pytest.raises(taesd.TaesdLoadError, match=r"key 1\.bias holds torch\.int32"):
        taesd.load_decoder(path)

    # A TAESD-SD3/FLUX decoder (16 latent channels) is not an SD1/SDXL one.
    wide = dict(good, **{"1.weight": torch.zeros((64, 16, 3, 3))})
    path = _write(tmp_path / "taesd3_decoder.safetensors", wide)
    with pytest.raises(taesd.TaesdLoadError, match=r"key 1\.weight has shape \(64, 16, 3, 3\)"):
        taesd.load_decoder(path)

    with pytest.raises(taesd.TaesdLoadError, match=r"must be a \.safetensors or \.pth file, not \.ckpt"):
        taesd.load_decoder(tmp_path / "taesd_decoder.ckpt")


class _SystemCall:
    """Pickles as `os.system(cmd)`: plain `torch.load` of the file would run the command."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):  # type: ignore[override]
        return (os.system, (self.cmd,))


def test_a_hostile_pth_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "taesd_decoder.pth"
    torch.save(dict(_random_weights(1), hook=_SystemCall(f"touch '{marker}'")), path)
    with pytest.raises(CheckpointError) as err:
        taesd.load_decoder(path)
    assert str(path) in str(err.value) and "refused" in str(err.value) and "system" in str(err.value)
    assert not marker.exists()


def test_decoder_files_are_found_by_family_in_folder_order(tmp_path: Path) -> None:
    first, second = tmp_path / "webui" / "VAE-approx", tmp_path / "data" / "VAE-approx"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    folders = [str(first), str(tmp_path / "absent"), str(second)]
    assert taesd.find_decoder("sd1", folders) is None
    (second / "taesd_decoder.pth").write_bytes(b"x")
    (second / "taesdxl_decoder.safetensors").write_bytes(b"x")
    assert taesd.find_decoder("sd1", folders) == str(second / "taesd_decoder.pth")
    assert taesd.find_decoder("sdxl", folders) == str(second / "taesdxl_decoder.safetensors")
    (first / "taesd_decoder.pth").write_bytes(b"x")
    assert taesd.find_decoder("sd1", folders) == str(first / "taesd_decoder.pth")
    (first / "taesd_decoder.safetensors").write_bytes(b"x")
    assert taesd.find_decoder("sd1", folders) == str(first / "taesd_decoder.safetensors")
    assert taesd.decoder_file_names("sdxl") == ["taesdxl_decoder.safetensors", "taesdxl_decoder.pth"]
    with pytest.raises(ValueError, match="no TAESD decoder for model family 'sd3'"):
        taesd.find_decoder("sd3", folders)


def test_the_cache_reads_a_replaced_file_again(tmp_path: Path) -> None:
    path = _write(tmp_path / "taesd_decoder.safetensors", _random_weights(10))
    a = taesd.cached_decoder(str(path), "cpu")
    assert taesd.cached_decoder(str(path), "cpu") is a
    _write(path, _random_weights(11))
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1_000_000_000))
    b = taesd.cached_decoder(str(path), "cpu")
    assert b is not a and not torch.equal(a.state_dict()["1.weight"], b.state_dict()["1.weight"])
