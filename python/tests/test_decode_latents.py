"""``decode_latents`` must scale latents exactly as ldm/A1111 do before the VAE decoder."""
from __future__ import annotations

from pathlib import Path

import torch

from lorabridge.checkpoint import load_state_dict
from lorabridge.model import StableDiffusion


def test_decode_latents_is_bit_identical_to_ldm_scaling(shared_dir: Path) -> None:
    sd = load_state_dict(shared_dir / "conformance" / "models" / "vae_small" / "weights.safetensors")
    model = StableDiffusion.from_state_dict(sd)
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(7))
    ldm = (1.0 / 0.18215) * z  # ldm decode_first_stage / A1111: 1. / scale_factor * z
    # The test only means something if the two roundings differ (1 ulp in about a fifth of the elements).
    assert not torch.equal(ldm, z / 0.18215)
    with torch.no_grad():
        assert torch.equal(model.decode_latents(z), model.vae.decode(ldm))
