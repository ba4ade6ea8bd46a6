"""Patcher guarantees: exact restoration, incremental recomputation, failure and cancellation safety, and
file validation that leaves the model untouched."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from lorabridge.checkpoint import load_state_dict, save_safetensors
from lorabridge.model import StableDiffusion
from lorabridge.networks import Network, NetworkError, NetworkModule, load_network
from lorabridge.patcher import Activation, Cancelled, Patcher

LORA_FILES = ["lora_attn", "locon", "loha", "lokr", "ia3", "full", "norm", "glora", "oft", "boft", "dora", "oft_diag"]
Q = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"
Q_PATH = "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn1.to_q"


def _model(shared_dir: Path, dtype: torch.dtype = torch.float32) -> StableDiffusion:
    sd = {}
    for part in ("unet_small", "clip_small"):
        sd.update(load_state_dict(shared_dir / "conformance" / "models" / part / "weights.safetensors"))
    return StableDiffusion.from_state_dict(sd, dtype=dtype)


def snapshot(model: StableDiffusion) -> dict[str, torch.Tensor]:
    out = {}
    for prefix, root in (("u.", model.unet), ("t.", model.text_encoder)):
        for k, v in root.state_dict().items():
            out[prefix + k] = v.detach().clone()
    return out


def assert_identical(model: StableDiffusion, snap: dict[str, torch.Tensor]) -> None:
    now = snapshot(model)
    assert now.keys() == snap.keys(), sorted(now.keys() ^ snap.keys())
    for k, v in snap.items():
        assert now[k].dtype == v.dtype and torch.equal(now[k], v), k


@pytest.fixture(scope="module")
def model(shared_dir: Path) -> StableDiffusion:
    return _model(shared_dir)


@pytest.fixture(scope="module")
def networks(model: StableDiffusion, shared_dir: Path) -> list[Network]:
    p = Patcher(model)
    return [p.load(shared_dir / "conformance" / "lora" / "loras" / f"{n}.safetensors", n) for n in LORA_FILES]


def test_random_sequences_restore_bit_exactly(model: StableDiffusion, networks: list[Network]) -> None:
    snap = snapshot(model)
    patcher = Patcher(model)
    rng = random.Random(1234)
    mults = [0.0, 0.25, 0.5, 1.0, -0.7, 1.3]
    active: list[Activation] = []
    for step in range(1000):
        op = rng.random()
        if op < 0.35 or not active:  # activate one more (sometimes the same network again)
            active.append(Activation(rng.choice(networks), rng.choice(mults), rng.choice(mults + [None]),
                                     rng.choice([None, None, 1, 2])))
        elif op < 0.75:  # change multipliers of one entry (absolute values, as the engine sends them)
            i = rng.randrange(len(active))
            active[i] = Activation(active[i].network, rng.choice(mults), rng.choice(mults), active[i].dyn)
        elif op < 0.95:
            active.pop(rng.randrange(len(active)))
        else:
            active = []
        if len(active) > 5:
            active.pop(0)
        patcher.apply(list(active))
        if step % 100 == 99:
            patcher.apply([])
            assert_identical(model, snap)
    patcher.restore()
    assert_identical(model, snap)


def test_incremental_state_equals_fresh_merge(model: StableDiffusion, networks: list[Network]) -> None:
    rng = random.Random(7)
    a = Patcher(model)
    for _ in range(30):
        acts = [Activation(rng.choice(networks), rng.choice([0.3, 1.0]), rng.choice([0.5, -1.0])) for _ in range(3)]
        a.apply(acts)
        incremental = {k: v.clone() for k, v in a.changed_tensors().items()}
        a.restore()
        a.apply(acts)
        fresh = a.changed_tensors()
        assert incremental.keys() == fresh.keys()
        assert all(torch.equal(incremental[k], fresh[k]) for k in fresh)
    a.restore()


def test_only_changed_layers_are_recomputed(model: StableDiffusion, networks: list[Network]) -> None:
    p = Patcher(model)
    lora = networks[0]
    te_layers = sum(1 for path in lora.modules if path.startswith("cond_stage_model."))
    unet_layers = len(lora.modules) - te_layers
    assert p.apply([Activation(lora, 1.0, 1.0)]) == len(lora.modules)
    assert p.apply([Activation(lora, 1.0, 1.0)]) == 0
    assert p.apply([Activation(lora, 0.5, 1.0)]) == te_layers
    assert p.apply([Activation(lora, 0.5, 0.2)]) == unet_layers
    p.restore()


def test_keyframed_cache_is_bit_identical_to_a_fresh_merge(model: StableDiffusion, networks: list[Network],
                                                           shared_dir: Path) -> None:
    other = _model(shared_dir)  # a second copy of the same weights, merged from scratch every step
    p, fresh = Patcher(model), Patcher(other)
    lora, loha, ia3, full = networks[0], networks[2], networks[4], networks[5]
    rebound = {id(n): fresh.load(n.source, n.name) for n in (lora, loha, ia3, full)}
    for step in range(12):
        m = 0.1 * step - 0.3
        acts = [Activation(lora, m, 1.0 - m), Activation(ia3, 0.5), Activation(loha, 1.0, m), Activation(full, m)]
        p.apply(acts)
        fresh.restore()
        fresh.apply([Activation(rebound[id(a.network)], a.te, a.unet, a.dyn) for a in acts])
        got, want = p.changed_tensors(), fresh.changed_tensors()
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want)
    assert p._unit_cache, "keyframed networks should use cached unit updates"
    p.restore()


class _Exploding(NetworkModule):
    kind = "exploding"

    def calc_updown(self, weight, dyn):
        raise ZeroDivisionError("injected failure inside a merge")


def test_exception_inside_merge_restores_every_layer(model: StableDiffusion, networks: list[Network]) -> None:
    snap = snapshot(model)
    p = Patcher(model)
    p.apply([Activation(networks[0], 1.0), Activation(networks[5], 0.7)])
    bad = Network("bad", "<test>")
    # Layers are merged in path order: the text-encoder layers before this one succeed, the UNet ones wait.
    bad.modules["cond_stage_model.transformer.text_model.final_layer_norm"] = _Exploding(
        "x", p.layers["transformer_text_model_final_layer_norm"][1], {})
    with pytest.raises(ZeroDivisionError):
        p.apply([Activation(networks[1], 1.0), Activation(bad, 1.0), Activation(networks[2], 0.4)])
    assert_identical(model, snap)
    assert not p.active_layers
    p.apply([Activation(networks[0], 1.0)])  # still usable afterwards
    p.restore()
    assert_identical(model, snap)


def test_cancellation_between_layers_restores(model: StableDiffusion, networks: list[Network]) -> None:
    snap = snapshot(model)
    p = Patcher(model)
    p.apply([Activation(networks[3], 1.0)])
    calls = {"n": 0}

    def cancel_after_five() -> bool:
        calls["n"] += 1
        return calls["n"] > 5

    with pytest.raises(Cancelled):
        p.apply([Activation(n, 0.8) for n in networks[:6]], should_cancel=cancel_after_five)
    assert calls["n"] == 6
    assert_identical(model, snap)


def test_fp16_model_writes_in_model_dtype_and_restores(shared_dir: Path) -> None:
    model = _model(shared_dir, torch.float16)
    snap = snapshot(model)
    p = Patcher(model)
    net = p.load(shared_dir / "conformance" / "lora" / "loras" / "full.safetensors")
    p.apply([Activation(net, 1.0)])
    changed = p.changed_tensors()
    assert changed and all(t.dtype == torch.float16 for t in changed.values())
    assert any(not torch.equal(changed[k], snap["u." + k[len("model.diffusion_model."):]])
               for k in changed if k.startswith("model.") and "u." + k[len("model.diffusion_model."):] in snap)
    p.apply([])
    assert_identical(model, snap)


# --- corrupt files -----------------------------------------------------------------------------------------
def _good(path: Path) -> None:
    save_safetensors(path, {f"{Q}.lora_down.weight": torch.randn(4, 64), f"{Q}.lora_up.weight": torch.randn(64, 4),
                            f"{Q}.alpha": torch.tensor(2.0)})


def test_truncated_file(model: StableDiffusion, tmp_path: Path) -> None:
    path = tmp_path / "trunc.safetensors"
    _good(path)
    path.write_bytes(path.read_bytes()[:-300])
    snap = snapshot(model)
    with pytest.raises(NetworkError, match=rf"trunc\.safetensors.*{Q}\.lora_up\.weight"):
        Patcher(model).load(path)
    assert_identical(model, snap)


def test_bad_header(model: StableDiffusion, tmp_path: Path) -> None:
    path = tmp_path / "header.safetensors"
    _good(path)
    data = bytearray(path.read_bytes())
    data[8:16] = b"\xff\xfe{not j"
    path.write_bytes(bytes(data))
    with pytest.raises(NetworkError, match=r"header\.safetensors.*header"):
        Patcher(model).load(path)


def test_shape_that_does_not_fit_leaves_model_untouched(model: StableDiffusion, tmp_path: Path) -> None:
    path = tmp_path / "shape.safetensors"
    ok = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    save_safetensors(path, {f"{ok}.lora_down.weight": torch.randn(4, 32), f"{ok}.lora_up.weight": torch.randn(32, 4),
                            f"{Q}.lora_down.weight": torch.randn(4, 32), f"{Q}.lora_up.weight": torch.randn(64, 4)})
    snap = snapshot(model)
    p = Patcher(model)
    with pytest.raises(NetworkError, match=rf"shape\.safetensors: {Q} \(lora\) does not fit {Q_PATH}.*\(64, 32\)"):
        p.load(path)
    assert_identical(model, snap)


def test_nan_values_leave_model_untouched(model: StableDiffusion, tmp_path: Path) -> None:
    path = tmp_path / "nan.safetensors"
    up = torch.randn(64, 4)
    up[3, 1] = float("inf")
    save_safetensors(path, {f"{Q}.lora_down.weight": torch.randn(4, 64), f"{Q}.lora_up.weight": up})
    snap = snapshot(model)
    with pytest.raises(NetworkError, match=rf"nan\.safetensors: {Q}\.lora_up\.weight contains NaN or infinite"):
        Patcher(model).load(path)
    assert_identical(model, snap)


def test_te_state_key_tracks_text_encoder_multipliers(model: StableDiffusion, networks: list[Network]) -> None:
    p = Patcher(model)
    lora, oft = networks[0], networks[8]  # both touch text-encoder layers
    p.apply([Activation(lora, 0.5, 1.0)])
    key = p.te_state_key()
    p.apply([Activation(lora, 0.5, 0.2)])  # unet-only change: same conditioning
    assert p.te_state_key() == key
    p.apply([Activation(lora, 0.7, 0.2)])
    assert p.te_state_key() != key
    p.apply([Activation(lora, 0.7), Activation(oft, 1.0)])
    swapped = p.te_state_key()
    p.apply([Activation(oft, 1.0), Activation(lora, 0.7)])
    assert p.te_state_key() != swapped  # order matters for order-dependent types
    p.apply([])
    assert p.te_state_key() == ()


def test_network_loaded_for_another_model_is_refused(model: StableDiffusion, networks: list[Network],
                                                     shared_dir: Path) -> None:
    other = Patcher(_model(shared_dir))
    with pytest.raises(ValueError, match="loaded for another model"):
        other.apply([Activation(networks[0], 1.0)])


def test_interrupt_while_restoring_a_layer_keeps_its_original(model: StableDiffusion, networks: list[Network]) -> None:
    snap = snapshot(model)
    p = Patcher(model)
    p.apply([Activation(networks[0], 1.0)])
    path = sorted(p._originals)[len(p._originals) // 2]

    class InterruptOnce(torch.Tensor):
        """The kept original; the first copy back into the layer is hit by a cancellation (C# raises
        KeyboardInterrupt asynchronously, so it can land between any two Python steps)."""
        armed = True

        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if func is torch.Tensor.copy_ and cls.armed:
                cls.armed = False
                raise KeyboardInterrupt
            return super().__torch_function__(func, types, args, kwargs or {})

    p._originals[path].weight = p._originals[path].weight.as_subclass(InterruptOnce)
    with pytest.raises(KeyboardInterrupt):
        p.restore()
    assert not InterruptOnce.armed and path in p._originals
    p.restore()
    assert_identical(model, snap)
    assert not p._originals and not p.active_layers


def test_layer_errors_stay_bounded_under_keyframed_remerges(model: StableDiffusion) -> None:
    p = Patcher(model)
    proj = "lora_unet_down_blocks_1_attentions_0_proj_in"
    path = "model.diffusion_model.input_blocks.4.1.proj_in"
    # [64, 1] ia3 rows on a [64, 32, 1, 1] conv broadcast to a larger shape: A1111 skips the layer.
    skip = load_network({f"{proj}.weight": torch.ones(1, 64, 1, 1), f"{proj}.on_input": torch.tensor([0])},
                        p.layers, "skip")
    lora = load_network({f"{Q}.lora_down.weight": torch.ones(2, 64), f"{Q}.lora_up.weight": torch.ones(64, 2)},
                        p.layers, "ok")
    for step in range(50):  # a keyframed multiplier re-merges the skipped layer every step
        assert p.apply([Activation(lora, 1.0), Activation(skip, 0.1 + step / 100)]) == (2 if step == 0 else 1)
        assert len(p.layer_errors) == 1
    assert p.layer_errors[0].startswith(f"skip: {path}: ") and "broadcast shape" in p.layer_errors[0]
    p.apply([Activation(lora, 1.0)])  # the skipped layer is restored: its error goes with it
    assert p.layer_errors == []
    p.apply([Activation(skip, 1.0)])
    assert len(p.layer_errors) == 1
    p.restore()
    assert p.layer_errors == []
