"""A1111 emphasis and chunked prompt conditioning."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lorabridge.checkpoint import load_state_dict
from lorabridge.conditioning import apply_emphasis, encode_prompt
from lorabridge.model import StableDiffusion


def test_original_emphasis_against_hand_computation():
    z = torch.tensor([[[1.0, 3.0], [2.0, -2.0]]])  # mean 1.0
    w = torch.tensor([[1.0, 2.0]])
    # z*w = [[1,3],[4,-4]] with mean 1.0 → scale 1.0/1.0
    torch.testing.assert_close(apply_emphasis(z, w), torch.tensor([[[1.0, 3.0], [4.0, -4.0]]]))
    w = torch.tensor([[1.5, 1.0]])
    # z*w = [[1.5,4.5],[2,-2]], mean 1.5 → times 1/1.5
    expected = torch.tensor([[[1.5, 4.5], [2.0, -2.0]]]) / 1.5
    torch.testing.assert_close(apply_emphasis(z, w), expected)
    torch.testing.assert_close(apply_emphasis(z, w, "No norm"), torch.tensor([[[1.5, 4.5], [2.0, -2.0]]]))
    assert apply_emphasis(z, w, "Ignore") is z
    with pytest.raises(ValueError, match="unknown emphasis"):
        apply_emphasis(z, w, "Fancy")
    with pytest.raises(ValueError, match="does not match"):
        apply_emphasis(z, torch.ones(1, 3))


def test_emphasis_mean_is_taken_over_the_batch_as_a1111():
    z = torch.tensor([[[1.0]], [[3.0]]])
    w = torch.tensor([[2.0], [1.0]])
    # mean before 2.0; after weighting [2, 3] mean 2.5 → scale 0.8 for both rows
    torch.testing.assert_close(apply_emphasis(z, w), torch.tensor([[[1.6]], [[2.4]]]))


@pytest.fixture(scope="module")
def clip(shared_dir):
    sd = load_state_dict(shared_dir / "conformance/models/clip_small/weights.safetensors")
    return StableDiffusion.from_state_dict(sd).text_encoder, shared_dir / "conformance/models/clip_small"


def test_chunks_encoded_separately_and_concatenated(clip):
    te, base = clip
    ids = np.load(base / "in_input_ids.npy")  # three 77-token chunks
    ones = np.ones(ids.shape, dtype=np.float32)
    cond = encode_prompt(te, ids, ones)  # one prompt, three chunks
    assert cond.shape == (1, 3 * 77, 32)
    ref = np.load(base / "out_last_hidden_state.npy")
    np.testing.assert_allclose(cond[0].numpy(), ref.reshape(3 * 77, 32), atol=2e-5, rtol=1e-4)
    skip2 = encode_prompt(te, ids, ones, clip_skip=2)
    ref2 = np.load(base / "out_penultimate_final_ln.npy")
    np.testing.assert_allclose(skip2[0].numpy(), ref2.reshape(3 * 77, 32), atol=2e-5, rtol=1e-4)
    batched = encode_prompt(te, np.stack([ids[:2], ids[1:]]), np.ones((2, 2, 77), np.float32))
    assert batched.shape == (2, 154, 32)
    torch.testing.assert_close(batched[1, 77:], cond[0, 154:])


def test_weights_change_only_through_emphasis(clip):
    te, base = clip
    ids = np.load(base / "in_input_ids.npy")[:1]
    w = np.ones((1, 77), np.float32)
    w[0, 3:6] = 1.21
    plain = encode_prompt(te, ids, np.ones_like(w))
    weighted = encode_prompt(te, ids, w)
    expected = plain * torch.from_numpy(w)[..., None]
    expected = expected * (plain.mean() / expected.mean())
    torch.testing.assert_close(weighted, expected)
    assert not torch.allclose(weighted, plain)
    with pytest.raises(ValueError, match="differ"):
        encode_prompt(te, ids, np.ones((1, 76), np.float32))
    with pytest.raises(ValueError, match="clip_skip"):
        encode_prompt(te, ids, w, clip_skip=0)
