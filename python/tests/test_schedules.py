"""Model sigmas, k-diffusion sigma schedules and DDIM timesteps against A1111's reference values."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lorabridge.samplers import SAMPLERS
from lorabridge.schedules import DiscreteSchedule, ddim_timesteps, default_alphas_cumprod, k_sigmas


def _manifest(shared_dir: Path) -> tuple[Path, dict]:
    base = shared_dir / "conformance" / "samplers"
    return base, json.loads((base / "manifest.json").read_text())


def test_default_alphas_cumprod_is_the_sd1_schedule(shared_dir: Path) -> None:
    base, manifest = _manifest(shared_dir)
    ref = np.load(base / manifest["model"]["alphas_cumprod"])
    ac = default_alphas_cumprod()
    assert ac.dtype == torch.float32 and ac.shape == (1000,)
    np.testing.assert_array_equal(ac.numpy(), ref)
    s = DiscreteSchedule()
    assert [s.sigma_min, s.sigma_max] == manifest["model_sigma_min_max"]


def test_checkpoint_alphas_cumprod_is_used() -> None:
    ac = default_alphas_cumprod() ** 1.1
    s = DiscreteSchedule(ac)
    assert s.sigma_max == pytest.approx(float(((1 - ac[-1]) / ac[-1]) ** 0.5))
    assert s.sigma_max != DiscreteSchedule().sigma_max


def test_readme_values() -> None:
    s = DiscreteSchedule()
    np.testing.assert_allclose(k_sigmas(s, 4, None).numpy(), [14.6146, 2.9183, 0.9324, 0.0292, 0], atol=1e-4)
    np.testing.assert_allclose(k_sigmas(s, 4, "Karras").numpy(), [14.6146, 3.1686, 0.4469, 0.0292, 0], atol=1e-4)
    for name in (None, "Karras", "Uniform", "Exponential"):
        one = k_sigmas(s, 1, name)
        assert one.dtype == torch.float32 and one.tolist() == [pytest.approx(s.sigma_max), 0.0]
    assert ddim_timesteps(10).tolist() == [1, 101, 201, 301, 401, 501, 601, 701, 801, 901]
    assert ddim_timesteps(3).tolist() == [1, 334, 667, 999]
    assert len(ddim_timesteps(7)) == 8 and ddim_timesteps(7).tolist()[-1] == 995
    assert ddim_timesteps(1).tolist() == [1]
    assert ddim_timesteps(4).dtype == torch.int64


def test_every_public_case_schedule(shared_dir: Path) -> None:
    base, manifest = _manifest(shared_dir)
    s = DiscreteSchedule()
    for case_id, case in manifest["cases"].items():
        ref = case["reference"]
        if "timesteps" in ref:
            np.testing.assert_array_equal(ddim_timesteps(case["steps"]).numpy(), np.load(base / ref["timesteps"]),
                                          err_msg=case_id)
        else:
            name = case["scheduler"]
            resolved = SAMPLERS[case["sampler"]].scheduler if name == "Automatic" else name
            np.testing.assert_array_equal(k_sigmas(s, case["steps"], resolved).numpy(), np.load(base / ref["sigmas"]),
                                          err_msg=case_id)


def test_sigma_t_maps() -> None:
    s = DiscreteSchedule()
    # Discrete sigmas map to their integer index and back.
    idx = torch.tensor([0, 1, 500, 998, 999])
    t = s.sigma_to_t(s.sigmas[idx])
    np.testing.assert_allclose(t.numpy(), idx.numpy().astype(np.float32), atol=1e-3)
    assert torch.equal(s.sigma_to_t(s.sigmas[idx], quantize=True), idx)
    # Fractional t interpolates log sigma and round-trips.
    frac = torch.tensor([0.25, 123.5, 998.75])
    np.testing.assert_allclose(s.sigma_to_t(s.t_to_sigma(frac)).numpy(), frac.numpy(), atol=2e-3)
    mid = s.t_to_sigma(torch.tensor([10.5]))
    assert mid.item() == pytest.approx(float((s.log_sigmas[10] + s.log_sigmas[11]).div(2).exp()), rel=1e-6)
    # Out-of-range sigmas clamp to the table ends.
    assert s.sigma_to_t(torch.tensor([100.0])).item() == pytest.approx(999.0)
    assert s.sigma_to_t(torch.tensor([1e-4])).item() == pytest.approx(0.0)


def test_overrides_and_discard() -> None:
    s = DiscreteSchedule()
    custom = k_sigmas(s, 5, "Karras", sigma_min=0.5, sigma_max=5.0, rho=3.0)
    assert custom[0].item() == pytest.approx(5.0) and custom[-2].item() == pytest.approx(0.5)
    assert not torch.equal(custom, k_sigmas(s, 5, "Karras", sigma_min=0.5, sigma_max=5.0))
    old = k_sigmas(s, 5, "Karras", old_karras_sigmas=True)
    assert old[0].item() == pytest.approx(10.0) and old[-2].item() == pytest.approx(0.1)
    # Overrides do not touch the model's own (Automatic) schedule.
    assert torch.equal(k_sigmas(s, 5, None, sigma_min=0.5, sigma_max=5.0), k_sigmas(s, 5, None))
    d = k_sigmas(s, 5, None, discard_next_to_last_sigma=True)
    full = k_sigmas(s, 6, None)
    assert torch.equal(d, torch.cat([full[:-2], full[-1:]]))
    assert ddim_timesteps(4, discard_next_to_last_sigma=True).tolist() == ddim_timesteps(5).tolist()


def test_errors() -> None:
    s = DiscreteSchedule()
    with pytest.raises(ValueError, match="unknown schedule type 'Bogus'"):
        k_sigmas(s, 4, "Bogus")
    with pytest.raises(ValueError, match="positive integer"):
        k_sigmas(s, 0, None)
    with pytest.raises(ValueError, match="positive integer"):
        ddim_timesteps(0)
    with pytest.raises(ValueError, match="at most 1000"):
        ddim_timesteps(1001)
    with pytest.raises(ValueError, match="1-D"):
        DiscreteSchedule(torch.ones(2, 2) * 0.5)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        DiscreteSchedule(torch.tensor([0.9, 0.5, 0.0]))
