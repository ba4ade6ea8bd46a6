"""The demo vocabulary (CLIP file format, trained by the project) and the demo model with its two LoRAs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lorabridge import bpe_train
from lorabridge.bpe_train import BOS, EOS, build_vocab, bytes_to_unicode, encode, train_bpe, write_demo_tokenizer
from lorabridge.checkpoint import load_state_dict, read_safetensors_metadata
from lorabridge.demo import LORA_NAMES, demo_configs, write_demo_model


# ----------------------------------------------------------------------------------------------------------
# BPE
# ----------------------------------------------------------------------------------------------------------

def _read_merges(path: Path) -> tuple[str, list[tuple[str, str]]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""  # newline-terminated
    merges = [tuple(line.split(" ")) for line in lines[1:-1]]
    assert all(len(m) == 2 for m in merges)
    return lines[0], merges  # type: ignore[return-value]


def test_train_bpe_small_example() -> None:
    # "ab" x3 and "abc": (a, b</w>) is the most frequent pair; then (a, b) and (b, c</w>) tie at 1 and the
    # smaller pair text wins; the last merge joins what is left of "abc".
    assert train_bpe("ab ab ab abc", 10) == [("a", "b</w>"), ("a", "b"), ("ab", "c</w>")]
    assert train_bpe("ab ab ab abc", 1) == [("a", "b</w>")]
    assert train_bpe("ab ab ab abc", 10, min_frequency=2) == [("a", "b</w>")]
    assert train_bpe("# a comment line\nab", 10) == [("a", "b</w>")]
    # the file format gives each token one id, so a repeated merge result is an error, not a silent gap
    assert build_vocab([("a", "b")])["ab"] == 512
    with pytest.raises(ValueError, match="duplicate token"):
        build_vocab([("a", "b"), ("a", "b")])


def test_demo_vocabulary_format(tmp_path: Path, shared_dir: Path) -> None:
    vocab = write_demo_tokenizer(tmp_path)
    on_disk = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert on_disk == vocab
    header, merges = _read_merges(tmp_path / "merges.txt")
    assert header == "#version: 0.2"
    assert len(merges) == bpe_train.DEMO_MERGES

    ids = sorted(vocab.values())
    assert ids == list(range(len(vocab))) and len(vocab) == 512 + len(merges) + 2
    by_id = {i: t for t, i in vocab.items()}
    assert by_id[len(vocab) - 2] == BOS and by_id[len(vocab) - 1] == EOS
    # The same 512 base symbols in the same order as CLIP's own file (layout only; the merges are ours).
    clip = json.loads((shared_dir / "data/clip/vocab.json").read_text(encoding="utf-8"))
    assert all(by_id[i] == t for t, i in clip.items() if i < 512)
    assert [by_id[i] for i in range(256)] == list(bytes_to_unicode().values())
    for rank, (a, b) in enumerate(merges):
        assert vocab[a + b] == 512 + rank
        assert vocab[a] < vocab[a + b] and vocab[b] < vocab[a + b]  # parts exist before they are merged
    # Not OpenAI's merges: a copy would share its merge order.
    clip_header, clip_merges = _read_merges(shared_dir / "data/clip/merges.txt")
    assert clip_header == header
    assert merges[:100] != clip_merges[:100]
    assert len(set(merges) & set(clip_merges)) < len(merges)


def test_demo_vocabulary_is_deterministic(tmp_path: Path) -> None:
    bpe_train.demo_merges.cache_clear()
    write_demo_tokenizer(tmp_path / "a")
    bpe_train.demo_merges.cache_clear()
    write_demo_tokenizer(tmp_path / "b")
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_demo_vocabulary_encodes_prompts(tmp_path: Path) -> None:
    vocab = write_demo_tokenizer(tmp_path)
    _, merges = _read_merges(tmp_path / "merges.txt")
    by_id = {i: t for t, i in vocab.items()}
    decoder = {c: b for b, c in bytes_to_unicode().items()}

    def decode(ids: list[int]) -> str:
        text = "".join(by_id[i] for i in ids).replace("</w>", " ")
        return bytes(decoder[c] for c in text if c != " ").decode("utf-8")

    prompt = "a photo of a cat, masterpiece, (best quality:1.2) <lora:demo_style:0.8> xylophone café"
    ids = encode(prompt, vocab, merges)
    assert decode(ids) == prompt.replace(" ", "")
    # Words the corpus uses often become single tokens; unseen ones fall back to pieces.
    assert [by_id[i] for i in encode("a photo of a cat", vocab, merges)] == ["a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>"]
    assert len(encode("xylophone", vocab, merges)) > 1
    assert encode("<|startoftext|>hi<|endoftext|>", vocab, merges)[0] == vocab[BOS]


# ----------------------------------------------------------------------------------------------------------
# demo model
# ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    return write_demo_model(tmp_path_factory.mktemp("demo"), seed=0)


def test_demo_files_layout(demo) -> None:
    assert demo.checkpoint == demo.root / "Stable-diffusion" / "lorabridge-demo.safetensors"
    assert demo.vocab == demo.root / "tokenizer" / "vocab.json" and demo.merges.is_file()
    assert [p.name for p in demo.loras] == [f"{n}.safetensors" for n in LORA_NAMES]
    assert all(p.parent == demo.root / "Lora" for p in (*demo.loras, *demo.sidecars))
    assert demo.checkpoint.stat().st_size < 8_000_000


def test_demo_checkpoint_loads_and_is_recognised(demo) -> None:
    from lorabridge.model import StableDiffusion
    from lorabridge.schedules import default_alphas_cumprod

    vocab = json.loads(demo.vocab.read_text(encoding="utf-8"))
    sd = load_state_dict(demo.checkpoint)
    assert all(v.dtype == torch.float16 for k, v in sd.items() if k not in ("alphas_cumprod",) and v.is_floating_point())
    model = StableDiffusion.from_state_dict(sd)
    assert model.parts == ["unet", "vae", "text_encoder"]
    unet_cfg, vae_cfg, text_cfg = demo_configs(len(vocab))
    assert model.architecture.unet == unet_cfg
    assert model.architecture.vae == vae_cfg
    assert model.architecture.text_encoder == text_cfg
    assert text_cfg.eos_token_id == vocab[EOS]
    assert "cond_stage_model.transformer.text_model.embeddings.position_ids" in model.architecture.ignored_keys
    assert torch.equal(model.alphas_cumprod, default_alphas_cumprod())
    # 64x64 pixels <-> 8x8 latents, as SD's 8x VAE
    with torch.no_grad():
        assert model.vae.decode(torch.zeros(1, 4, 8, 8)).shape == (1, 3, 64, 64)
        assert model.vae.encode_moments(torch.zeros(1, 3, 64, 64)).shape == (1, 8, 8, 8)


def test_demo_is_deterministic_by_seed(demo, tmp_path: Path) -> None:
    again = write_demo_model(tmp_path / "same", seed=0)
    for a, b in zip((demo.checkpoint, demo.vocab, demo.merges, *demo.loras, *demo.sidecars),
                    (again.checkpoint, again.vocab, again.merges, *again.loras, *again.sidecars)):
        assert a.read_bytes() == b.read_bytes(), a.name
    other = write_demo_model(tmp_path / "other", seed=1)
    assert other.checkpoint.read_bytes() != demo.checkpoint.read_bytes()
    assert other.loras[0].read_bytes() != demo.loras[0].read_bytes()


def test_demo_loras_reach_attention_layers(demo) -> None:
    from lorabridge.model import StableDiffusion
    from lorabridge.patcher import Patcher

    model = StableDiffusion.from_state_dict(load_state_dict(demo.checkpoint))
    patcher = Patcher(model)
    reached: dict[str, set[str]] = {}
    for path, name in zip(demo.loras, LORA_NAMES):
        tensors = load_state_dict(path)
        groups = {k.split(".", 1)[0] for k in tensors}
        assert all(k.startswith(("lora_unet_", "lora_te_")) for k in groups)
        assert {k.split(".", 1)[1] for k in tensors} == {"lora_down.weight", "lora_up.weight", "alpha"}
        net = patcher.load(path)
        assert net.ignored == [] and not net.unapplied
        assert len(net.modules) == len(groups)
        reached[name] = set(net.modules)
        meta = read_safetensors_metadata(path)
        assert meta["ss_output_name"] == name and meta["ss_network_module"] == "networks.lora"
        side = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        assert side["activation text"] and 0 < side["preferred weight"] <= 1 and side["sd version"] == "SD1"
    style, subject = reached["demo_style"], reached["demo_subject"]
    assert all(p.startswith("model.diffusion_model.") and ".transformer_blocks." in p or p.endswith(("proj_in", "proj_out"))
               for p in style)
    # every SpatialTransformer of the demo UNet (2 down, 1 mid, 3 up) is reached
    assert len({p.split(".transformer_blocks.")[0].rsplit(".proj_", 1)[0] for p in style}) == 6
    assert any(p.startswith("cond_stage_model.transformer.") for p in subject)
    assert any(p.endswith("attn2.to_k") for p in subject)


def _generate(model, tokens_of, prompt: str, seed: int = 1) -> torch.Tensor:
    from lorabridge.conditioning import encode_prompt
    from lorabridge.samplers import sample

    ids = [tokens_of(prompt)]
    cond = encode_prompt(model.text_encoder, ids, [[1.0] * 77])
    uncond = encode_prompt(model.text_encoder, [tokens_of("")], [[1.0] * 77])
    eps = lambda x, t, c: model.unet(x, t, context=c)  # noqa: E731
    with torch.no_grad():
        latent = sample(eps, "Euler a", 6, cond, uncond, 7.0, seed=seed, width=64, height=64,
                        alphas_cumprod=model.alphas_cumprod)
        return model.decode_latents(latent)


def test_demo_generates_images_that_respond_to_prompt_and_lora(demo) -> None:
    from lorabridge.images import to_uint8
    from lorabridge.model import StableDiffusion
    from lorabridge.patcher import Activation, Patcher

    vocab = json.loads(demo.vocab.read_text(encoding="utf-8"))
    _, merges = _read_merges(demo.merges)

    def tokens_of(text: str) -> list[int]:
        ids = [vocab[BOS]] + encode(text, vocab, merges)[:75] + [vocab[EOS]]
        return ids + [vocab[EOS]] * (77 - len(ids))

    model = StableDiffusion.from_state_dict(load_state_dict(demo.checkpoint))
    cat = _generate(model, tokens_of, "a photo of a cat")
    pixels = to_uint8(cat).astype(float)
    assert torch.isfinite(cat).all()
    assert pixels.std() > 20  # not blank
    assert ((pixels == 0) | (pixels == 255)).mean() < 0.1  # not saturated static
    assert torch.equal(cat, _generate(model, tokens_of, "a photo of a cat"))
    castle = _generate(model, tokens_of, "a castle on a hill at sunset")
    assert abs(to_uint8(castle).astype(float) - pixels).mean() > 5.0  # about 13-25 for seeds 0-2

    patcher = Patcher(model)
    style = patcher.load(demo.loras[0])
    patcher.apply([Activation(style, 1.0)])
    styled = _generate(model, tokens_of, "a photo of a cat")
    assert abs(to_uint8(styled).astype(float) - pixels).mean() > 5.0  # about 28
    patcher.apply([])
    assert torch.equal(_generate(model, tokens_of, "a photo of a cat"), cat)
