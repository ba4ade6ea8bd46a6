"""The generation session the C# engine drives: determinism, networks, restoration, handles, errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from lorabridge import demo
from lorabridge.generation import Session



@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> demo.DemoFiles:
    return demo.write_demo_model(tmp_path_factory.mktemp("demo"))


@pytest.fixture()
def session(demo_files: demo.DemoFiles) -> Session:
    s = Session(str(demo_files.checkpoint), device="cpu")
    for path in demo_files.loras:
        s.load_network(path.stem, str(path))
    return s


def chunk(tokens: list[int]) -> tuple[list[list[int]], list[list[float]]]:
    # 2012/2013 are the demo vocabulary's BOS/EOS: the last two ids.
    ids = [2012] + tokens + [2013] * (76 - len(tokens))
    return [ids], [[1.0] * 77]


def run(session: Session, seed: int = 3, tokens: list[int] | None = None, steps: int = 3) -> list[bytes]:
    cond = session.encode(*chunk(tokens or [300, 301, 302]))
    uncond = session.encode(*chunk([]))
    handle = session.start("Euler a", "Automatic", steps, seed, 1, 64, 64)
    while session.step(handle, [(cond, 1.0)], uncond, 7.0):
        pass
    pngs = session.decode_png(handle, ["test"])
    for h in (cond, uncond, handle):
        assert session.release(h)
    return pngs


def test_vocabulary_specials_are_the_last_two_ids(demo_files: demo.DemoFiles) -> None:
    import json

    vocab = json.loads(Path(demo_files.vocab).read_text())
    assert vocab["<|startoftext|>"] == 2012 and vocab["<|endoftext|>"] == 2013


def test_same_seed_same_png_bytes_and_seeds_differ(session: Session) -> None:
    assert run(session, seed=3) == run(session, seed=3)
    assert run(session, seed=3) != run(session, seed=4)
    assert not session._objects  # every handle run() took was released


def test_network_at_zero_equals_no_network_and_restore_is_exact(session: Session) -> None:
    digest = session.weights_digest()
    plain = run(session)
    assert session.set_networks([("demo_style", 0.0, 0.0, None)]) == 0
    assert run(session) == plain
    assert session.set_networks([("demo_style", 1.0, 1.0, None)]) > 0
    assert session.weights_digest() != digest
    assert run(session) != plain
    session.restore()
    assert session.weights_digest() == digest
    assert run(session) == plain


def test_conditioning_follows_text_encoder_weights(session: Session) -> None:
    import torch

    ids, weights = chunk([300, 301])
    before = session._get(session.encode(ids, weights), torch.Tensor)
    session.set_networks([("demo_subject", 1.0, 0.0, None)])
    after = session._get(session.encode(ids, weights), torch.Tensor)
    session.restore()
    assert not torch.equal(before, after)


def test_png_carries_parameters(session: Session) -> None:
    from lorabridge.images import read_png_parameters

    cond = session.encode(*chunk([300]))
    handle = session.start("DDIM", "Automatic", 2, 1, 2, 64, 64)
    assert session.total_steps(handle) == 1
    session.step(handle, [(cond, 1.0)], cond, 5.0)
    pngs = session.decode_png(handle, ["first", "second"])
    assert [read_png_parameters(p) for p in pngs] == ["first", "second"]


def test_errors_name_what_is_wrong(session: Session, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="not loaded"):
        session.set_networks([("missing", 1.0, 1.0, None)])
    with pytest.raises(KeyError, match="handle 999"):
        session.step(999, [], 998, 7.0)
    with pytest.raises(ValueError, match="multiples of 8"):
        session.start("Euler", "Automatic", 2, 1, 1, 60, 64)
    with pytest.raises(ValueError, match="unknown sampler"):
        session.start("Heun++", "Automatic", 2, 1, 1, 64, 64)
    unet_only = tmp_path / "unet_only.safetensors"
    from lorabridge.checkpoint import load_state_dict, save_safetensors

    sd = load_state_dict(session.checkpoint)
    save_safetensors(unet_only, {k: v for k, v in sd.items() if k.startswith("model.diffusion_model.")})
    with pytest.raises(ValueError, match="has no"):
        Session(str(unet_only), device="cpu")


def test_batch_encoding_takes_the_emphasis_mean_over_the_whole_batch(session: Session) -> None:
    """A1111 encodes one prompt's schedule texts together: "Original" emphasis restores the batch's mean."""
    import torch

    plain_ids, plain_w = chunk([300, 301])
    emph_ids, emph_w = chunk([302, 303])
    emph_w = [[1.0, 1.5, 1.5] + [1.0] * 74]
    h_plain, h_emph = session.encode_batch([plain_ids, emph_ids], [plain_w, emph_w])
    together = [session._get(h, torch.Tensor) for h in (h_plain, h_emph)]

    # By hand: the unweighted outputs of both texts, weighted, then scaled by mean(before) / mean(after) of both.
    raw = torch.stack([session._get(session.encode(i, [[1.0] * 77]), torch.Tensor) for i in (plain_ids, emph_ids)])
    weights = torch.tensor([plain_w[0], emph_w[0]])
    weighted = raw * weights[..., None]
    expected = weighted * (raw.mean() / weighted.mean())
    assert torch.allclose(torch.stack(together), expected, atol=1e-6)
    # Encoded alone, the plain text would be unchanged by emphasis; in the batch it is rescaled.
    alone = session._get(session.encode(plain_ids, plain_w), torch.Tensor)
    assert torch.equal(alone, raw[0])
    assert not torch.allclose(together[0], alone)


def test_batch_texts_need_one_chunk_count(session: Session) -> None:
    one_ids, one_w = chunk([300])
    with pytest.raises(ValueError, match="same number of chunks"):
        session.encode_batch([one_ids, one_ids * 2], [one_w, one_w * 2])


def test_lora_cache_evicts_least_recently_used_and_reloads_on_use(session: Session, demo_files: demo.DemoFiles) -> None:
    from lorabridge.generation import network_nbytes

    style, subject = session.networks["demo_style"], session.networks["demo_subject"]
    assert network_nbytes(style) > 0 and network_nbytes(subject) > 0
    session.set_networks([("demo_style", 1.0, 1.0, None)])
    with_style = run(session)
    # A bound of 0 keeps only what the model holds now: demo_style is merged, demo_subject goes.
    session.set_lora_cache(0)
    assert list(session.networks) == ["demo_style"] and session.networks_evicted == 1
    # Using the evicted network reads its file again, and the merge equals the first one.
    session.set_networks([("demo_subject", 1.0, 1.0, None)])
    assert "demo_subject" in session.networks and session.networks["demo_subject"] is not subject
    session.set_networks([("demo_style", 1.0, 1.0, None)])
    assert run(session) == with_style
    session.restore()


def test_lora_cache_reload_of_a_deleted_file_names_it(tmp_path: Path, demo_files: demo.DemoFiles) -> None:
    import shutil

    s = Session(str(demo_files.checkpoint), device="cpu")
    copy = tmp_path / "gone.safetensors"
    shutil.copy(demo_files.loras[0], copy)
    s.load_network("gone", str(copy))
    s.set_lora_cache(0)  # nothing merged: the network is dropped
    assert "gone" not in s.networks
    copy.unlink()
    digest = s.weights_digest()
    with pytest.raises(Exception, match="gone.safetensors"):
        s.set_networks([("gone", 1.0, 1.0, None)])
    assert s.weights_digest() == digest


def test_lora_cache_size_must_not_be_negative(session: Session) -> None:
    with pytest.raises(ValueError, match="0 or more MiB"):
        session.set_lora_cache(-1)
    with pytest.raises(ValueError, match="0 or more MiB"):
        session.set_lora_cache(float("nan"))
