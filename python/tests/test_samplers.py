"""Samplers: A1111 reference replay, the conformance harness, seeds/batches, the step API and CFG details."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lorabridge.rng import RNG_SOURCES, ImageRNG, image_seeds
from lorabridge.samplers import SAMPLERS, SamplerOptions, SamplerState, cfg_denoise, infotext_params, sample

SHAPE = (4, 8, 8)
WIDTH = 64  # tokens' channel width of the toy conditioning


def _manifest(shared_dir: Path) -> tuple[Path, dict]:
    base = shared_dir / "conformance" / "samplers"
    return base, json.loads((base / "manifest.json").read_text())


class ToyEps:
    """Row-wise eps model that depends on x, t and the context, and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def __call__(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        self.calls.append((x.clone(), t.clone(), context.clone()))
        c = context.mean(dim=(1, 2)).view(-1, 1, 1, 1)
        return 0.5 * torch.tanh(x) + 0.1 * torch.cos(t / 100).view(-1, 1, 1, 1) + c


def _cond(seed: int, tokens: int = 77) -> torch.Tensor:
    return torch.randn((1, tokens, WIDTH), generator=torch.Generator().manual_seed(seed))


COND, UNCOND = _cond(1), _cond(2)


def _state(sampler: str, seeds: list[int], steps: int = 5, source: str = "GPU", ensd: int = 0,
           model: ToyEps | None = None, **kw) -> SamplerState:
    rng = ImageRNG(SHAPE, seeds, source=source, eta_noise_seed_delta=ensd)
    return SamplerState(sampler, model or ToyEps(), rng, steps, **kw)


# ---- A1111 reference ----


def test_replay_of_a1111_denoiser_outputs_reproduces_every_public_case(shared_dir: Path) -> None:
    """Feeding A1111's recorded guided-denoiser outputs back checks noise, draws, sigmas and updates exactly."""
    base, manifest = _manifest(shared_dir)
    for case_id, case in manifest["cases"].items():
        ref = case["reference"]
        rng = ImageRNG((4, case["height"] // 8, case["width"] // 8), image_seeds(case["seed"], case["batch_size"]),
                       source=case["randn_source"], eta_noise_seed_delta=case["eta_noise_seed_delta"])
        state = SamplerState(case["sampler"], ToyEps(), rng, case["steps"], scheduler=case["scheduler"])
        assert state.total == case["denoiser_calls"], case_id
        recorded = {k: np.load(base / ref[k]) for k in ("den_x", "den_sigma", "den_out") if k in ref}
        calls = []

        def replay(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            k = len(calls)
            calls.append(k)
            np.testing.assert_allclose(x.numpy(), recorded["den_x"][k], rtol=0, atol=1e-5, err_msg=f"{case_id} x {k}")
            np.testing.assert_allclose(sigma.numpy(), recorded["den_sigma"][k], rtol=1e-6, err_msg=f"{case_id} sigma {k}")
            return torch.from_numpy(recorded["den_out"][k])

        while not state.done:
            state.advance(replay)
        assert len(calls) == case["denoiser_calls"], case_id
        assert rng.draws == case["rng_draws_after_initial"], case_id
        np.testing.assert_allclose(state.x.numpy(), np.load(base / ref["latent"]), rtol=0, atol=1e-5, err_msg=case_id)


def test_harness_output_passes_the_checker(shared_dir: Path, tmp_path: Path) -> None:
    from lorabridge.conformance import samplers as harness

    base, manifest = _manifest(shared_dir)
    assert harness.run(base / "manifest.json", tmp_path) == 0
    some = next(iter(manifest["cases"]))
    assert (tmp_path / f"{some}.npy").is_file() and (tmp_path / f"{some}.noise.npy").is_file()
    checker = base / "compare_latents.py"
    result = subprocess.run([sys.executable,
                             str(checker), str(tmp_path), "--strict-aux", "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(manifest['cases'])}/{len(manifest['cases'])} cases within tolerance" in result.stdout


def _one_case_manifest(shared_dir: Path, tmp_path: Path, **changes: dict) -> Path:
    base, manifest = _manifest(shared_dir)
    case_id = next(iter(manifest["cases"]))
    m = dict(manifest, cases={case_id: manifest["cases"][case_id]})
    m["model"] = dict(manifest["model"], weights=str(base / manifest["model"]["weights"]),
                      alphas_cumprod=str(base / manifest["model"]["alphas_cumprod"]))
    m["inputs"] = {k: str(base / v) if isinstance(v, str) and v.endswith(".npy") else v
                   for k, v in manifest["inputs"].items()}
    for key, value in changes.items():
        m[key] = dict(m[key], **value)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(m))
    return path


def test_harness_failure_paths(shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lorabridge.conformance import samplers as harness

    ok = _one_case_manifest(shared_dir, tmp_path)
    assert harness.run(ok, tmp_path / "ok") == 0
    wrong_config = _one_case_manifest(shared_dir, tmp_path, model={"config": {"model_channels": 64}})
    assert harness.run(wrong_config, tmp_path / "a") == 2
    assert "model_channels: manifest 64, inferred 32" in capsys.readouterr().err
    unsupported = _one_case_manifest(shared_dir, tmp_path, options={"s_min_uncond": 0.5})
    assert harness.run(unsupported, tmp_path / "b") == 1
    assert "s_min_uncond=0.5 is not supported" in capsys.readouterr().err
    assert not list((tmp_path / "b").glob("*.npy"))


def test_checker_fails_on_a_wrong_latent(shared_dir: Path, tmp_path: Path) -> None:
    """The checker call above can fail: a perturbed latent is rejected."""
    base, manifest = _manifest(shared_dir)
    case_id, case = next(iter(manifest["cases"].items()))
    np.save(tmp_path / f"{case_id}.npy", np.load(base / case["reference"]["latent"]) + 0.01)
    result = subprocess.run([sys.executable, str(base / "compare_latents.py"), str(tmp_path), "--case", case_id],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1


# ---- seeds and batches ----


@pytest.mark.parametrize("sampler", list(SAMPLERS))
@pytest.mark.parametrize("source", RNG_SOURCES)
def test_batch_image_equals_single_image_run(sampler: str, source: str) -> None:
    seed, ensd = 3735928559, 31337
    batch = _state(sampler, image_seeds(seed, 3), source=source, ensd=ensd).run(COND, UNCOND, 7.0)
    for i in range(3):
        single = _state(sampler, [seed + i], source=source, ensd=ensd).run(COND, UNCOND, 7.0)
        torch.testing.assert_close(batch[i : i + 1], single, rtol=0, atol=1e-6)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_deterministic_for_a_seed_and_seeds_differ(sampler: str) -> None:
    a = _state(sampler, [42]).run(COND, UNCOND, 5.0)
    b = _state(sampler, [42]).run(COND, UNCOND, 5.0)
    c = _state(sampler, [43]).run(COND, UNCOND, 5.0)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c, atol=1e-3)
    assert torch.isfinite(a).all()


def test_ancestral_noise_is_used_by_euler_a_only() -> None:
    # ENSD changes only the later draws: Euler a uses them, Euler (s_churn 0) and DPM++ 2M do not.
    for sampler, changes in (("Euler a", True), ("Euler", False), ("DPM++ 2M", False), ("DDIM", False)):
        plain = _state(sampler, [5]).run(COND, UNCOND, 7.0)
        delta = _state(sampler, [5], ensd=31337).run(COND, UNCOND, 7.0)
        assert (not torch.equal(plain, delta)) == changes, sampler


def test_euler_a_with_eta_0_is_euler() -> None:
    euler = _state("Euler", [9]).run(COND, UNCOND, 7.0)
    euler_a = _state("Euler a", [9], options=SamplerOptions(eta=0.0)).run(COND, UNCOND, 7.0)
    torch.testing.assert_close(euler_a, euler, rtol=0, atol=1e-6)


def test_s_churn_uses_the_euler_draws() -> None:
    base = _state("Euler", [9]).run(COND, UNCOND, 7.0)
    churn = _state("Euler", [9], options=SamplerOptions(s_churn=1.0)).run(COND, UNCOND, 7.0)
    other_seed_ensd = _state("Euler", [9], ensd=1, options=SamplerOptions(s_churn=1.0)).run(COND, UNCOND, 7.0)
    assert not torch.equal(base, churn) and not torch.equal(churn, other_seed_ensd)


def test_ddim_eta_uses_the_draws() -> None:
    plain = _state("DDIM", [5], steps=6).run(COND, UNCOND, 7.0)
    eta = _state("DDIM", [5], steps=6, options=SamplerOptions(eta=0.5)).run(COND, UNCOND, 7.0)
    eta_ensd = _state("DDIM", [5], steps=6, ensd=3, options=SamplerOptions(eta=0.5)).run(COND, UNCOND, 7.0)
    assert torch.isfinite(eta).all()
    assert not torch.equal(plain, eta) and not torch.equal(eta, eta_ensd)


def test_sample_equals_stepping() -> None:
    model = ToyEps()
    x = sample(model, "DPM++ 2M", 6, COND, UNCOND, 6.5, seed=77, batch_size=2, width=64, height=64,
               randn_source="NV", scheduler="Karras")
    st = _state("DPM++ 2M", [77, 78], steps=6, source="NV", scheduler="Karras")
    while not st.done:
        st.step(COND, UNCOND, 6.5)
    assert torch.equal(x, st.x)
    with pytest.raises(ValueError, match="multiples of 8"):
        sample(model, "Euler", 2, COND, UNCOND, 7.0, seed=1, width=60)


# ---- the step API ----


def test_state_counts_steps_and_refuses_extra_steps() -> None:
    st = _state("Euler", [1], steps=3)
    assert (st.i, st.total, st.done) == (0, 3, False)
    assert st.current_sigma() == pytest.approx(st.sigmas[0].item())
    torch.testing.assert_close(st.x, st.noise * st.sigmas[0])
    st.step(COND, UNCOND, 7.0)
    assert st.i == 1 and st.denoised is not None
    st.run(COND, UNCOND, 7.0)
    assert st.done and st.i == 3
    with pytest.raises(RuntimeError, match="all 3 steps are done"):
        st.step(COND, UNCOND, 7.0)
    with pytest.raises(IndexError):
        st.current_sigma()


def test_ddim_call_counts_and_one_step_returns_the_noise() -> None:
    assert _state("DDIM", [1], steps=10).total == 9
    assert _state("DDIM", [1], steps=7).total == 7
    one = _state("DDIM", [1], steps=1)
    assert one.done and one.total == 0
    assert torch.equal(one.run(COND, UNCOND, 7.0), one.noise)


def test_one_model_call_of_2b_with_cond_rows_first_even_at_cfg_1() -> None:
    model = ToyEps()
    cond_b = torch.cat([_cond(10), _cond(11)])
    st = _state("Euler", [1, 2], steps=2, model=model)
    st.step(cond_b, UNCOND, 1.0)
    assert len(model.calls) == 1
    x, t, ctx = model.calls[0]
    assert x.shape == (4, *SHAPE) and t.shape == (4,)
    assert torch.equal(ctx[:2], cond_b) and torch.equal(ctx[2], UNCOND[0]) and torch.equal(ctx[3], UNCOND[0])
    assert torch.equal(x[:2], x[2:])


def test_batch_cond_uncond_off_splits_the_call() -> None:
    model = ToyEps()
    off = _state("Euler", [1, 2], steps=3, model=model, options=SamplerOptions(batch_cond_uncond=False))
    off.run(COND, UNCOND, 7.0)
    assert [c[0].shape[0] for c in model.calls] == [2, 2] * 3
    on = _state("Euler", [1, 2], steps=3).run(COND, UNCOND, 7.0)
    torch.testing.assert_close(off.x, on, rtol=1e-5, atol=1e-5)


def test_timesteps_given_to_the_model() -> None:
    ddim = ToyEps()
    _state("DDIM", [1], steps=10, model=ddim).run(COND, UNCOND, 7.0)
    assert [c[1][0].item() for c in ddim.calls] == [901.0, 801.0, 701.0, 601.0, 501.0, 401.0, 301.0, 201.0, 101.0]
    euler = ToyEps()
    _state("Euler", [1], steps=7, model=euler).run(COND, UNCOND, 7.0)
    ts = [c[1][0].item() for c in euler.calls]
    assert ts[0] == pytest.approx(999.0) and any(abs(t - round(t)) > 1e-3 for t in ts)


def test_per_step_conditioning_takes_effect_from_that_step() -> None:
    other = _cond(3)
    a, b = _state("Euler a", [4], steps=4), _state("Euler a", [4], steps=4)
    for k in range(4):
        a.step(COND, UNCOND, 7.0)
        b.step(COND if k < 2 else other, UNCOND, 7.0)
        assert torch.equal(a.x, b.x) == (k < 2)


def test_guidance_mix_is_uncond_plus_scaled_difference() -> None:
    x = torch.randn((2, *SHAPE), generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([3.0, 3.0])

    def inner(x_in: torch.Tensor, s: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        return x_in * 0 + ctx.mean(dim=(1, 2)).view(-1, 1, 1, 1)

    c, u = COND.mean().item(), UNCOND.mean().item()
    out = cfg_denoise(inner, x, sigma, COND, UNCOND, 7.0, SamplerOptions())
    torch.testing.assert_close(out, torch.full_like(x, u + (c - u) * 7.0))
    # AND parts: each part adds its own weighted difference to the uncond result.
    c2 = _cond(5)
    parts = [[(COND[0], 0.7), (c2[0], 0.3)], [(c2[0], 1.0)]]
    out = cfg_denoise(inner, x, sigma, parts, UNCOND, 5.0, SamplerOptions())
    m2 = c2.mean().item()
    torch.testing.assert_close(out[0], torch.full_like(x[0], u + (c - u) * 3.5 + (m2 - u) * 1.5))
    torch.testing.assert_close(out[1], torch.full_like(x[1], u + (m2 - u) * 5.0))


def test_different_cond_and_uncond_lengths() -> None:
    long_cond = _cond(6, tokens=154)
    # A1111 default: no padding, cond rows and uncond rows in separate calls.
    model = ToyEps()
    st = _state("Euler", [1, 2], steps=1, model=model)
    st.step(long_cond, UNCOND, 7.0)
    assert [tuple(c[2].shape) for c in model.calls] == [(2, 154, WIDTH), (2, 77, WIDTH)]
    # Same result as one call per half: the rows are independent.
    ref = _state("Euler", [1, 2], steps=1)
    ref.advance(lambda x, s: (lambda e_c, e_u: e_u + (e_c - e_u) * 7.0)(
        *[x - s.view(-1, 1, 1, 1) * ToyEps()(x / (s.view(-1, 1, 1, 1) ** 2 + 1) ** 0.5,
                                             ref.schedule.sigma_to_t(s), ctx.expand(2, -1, -1))
          for ctx in (long_cond, UNCOND)]))
    torch.testing.assert_close(st.x, ref.x, rtol=1e-5, atol=1e-5)

    # pad_cond_uncond_v0: uncond gets its last token vector repeated; one call.
    model = ToyEps()
    _state("Euler", [1], steps=1, model=model, options=SamplerOptions(pad_cond_uncond_v0=True)).step(long_cond, UNCOND, 7.0)
    assert len(model.calls) == 1
    ctx = model.calls[0][2]
    assert ctx.shape == (2, 154, WIDTH) and torch.equal(ctx[1, :77], UNCOND[0])
    assert torch.equal(ctx[1, 77:], UNCOND[0, -1:].expand(77, -1))

    # pad_cond_uncond: whole empty-prompt chunks appended to the shorter side.
    empty = _cond(8)
    model = ToyEps()
    opts = SamplerOptions(pad_cond_uncond=True, empty_chunk=empty)
    _state("Euler", [1], steps=1, model=model, options=opts).step(UNCOND, long_cond, 7.0)
    assert len(model.calls) == 1 and torch.equal(model.calls[0][2][0, 77:], empty[0])
    with pytest.raises(ValueError, match="empty_chunk"):
        _state("Euler", [1], steps=1, options=SamplerOptions(pad_cond_uncond=True)).step(long_cond, UNCOND, 7.0)


def test_infotext_params(shared_dir: Path) -> None:
    _, manifest = _manifest(shared_dir)
    for case_id, case in manifest["cases"].items():
        st = _state(case["sampler"], [1], steps=2, scheduler=case["scheduler"])
        assert infotext_params(st) == case["infotext_params"], case_id
    assert infotext_params(_state("Euler a", [1], options=SamplerOptions(eta=0.5))) == {"Eta": "0.5"}
    assert infotext_params(_state("DDIM", [1], options=SamplerOptions(eta=0.25))) == {"Eta DDIM": "0.25"}
    assert infotext_params(_state("Euler", [1], scheduler="Uniform")) == {"Schedule type": "Uniform"}


def test_sgm_noise_multiplier() -> None:
    st = _state("Euler", [1], options=SamplerOptions(sgm_noise_multiplier=True))
    torch.testing.assert_close(st.x, st.noise * torch.sqrt(1 + st.sigmas[0] ** 2))


def test_errors() -> None:
    with pytest.raises(ValueError, match="unknown sampler 'Heun'"):
        _state("Heun", [1])
    with pytest.raises(ValueError, match="unknown schedule type 'Bogus'"):
        _state("Euler", [1], scheduler="Bogus")
    with pytest.raises(ValueError, match="positive integer"):
        _state("Euler", [1], steps=0)
    rng = ImageRNG(SHAPE, [1])
    rng.next()
    with pytest.raises(ValueError, match="fresh one"):
        SamplerState("Euler", ToyEps(), rng, 4)
    st = _state("Euler", [1, 2])
    with pytest.raises(ValueError, match="cond has batch 3"):
        st.step(torch.cat([COND] * 3), UNCOND, 7.0)
    with pytest.raises(ValueError, match="uncond has entries for 1 images"):
        st.step(COND, [UNCOND[0]], 7.0)
    with pytest.raises(ValueError, match="width 64 differs from uncond width 32"):
        st.step(COND, UNCOND[..., :32], 7.0)
    with pytest.raises(ValueError, match=r"cond\[0\]\[0\] must have shape"):
        st.step([[(COND[0, 0], 1.0)], [(COND[0], 1.0)]], UNCOND, 7.0)
    assert st.i == 0  # failed steps do not advance the state
