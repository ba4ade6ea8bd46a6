"""Textual-inversion files read as A1111 reads them, and EmbeddingsWithFixes in the text encoder."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from conftest import SHARED as SHARED_ROOT
import torch

from lorabridge.checkpoint import save_safetensors
from lorabridge.clip_text import CLIPTextConfig, CLIPTextModel, apply_embedding_fixes
from lorabridge.conditioning import encode_prompt
from lorabridge.embeddings import EmbeddingStore, describe, read_embedding

SHARED = SHARED_ROOT / "conformance" / "embeddings"


class _RunsCode:
    """Pickles as a call to os.system: loading it with pickle would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[override]
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pt_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save({"string_to_param": {"*": torch.zeros(1, 4)}, "x": _RunsCode(marker)}, path)
    d = describe(str(path))
    assert d["status"] == "data_issue"
    assert "os" in d["message"] or "posix" in d["message"] or "system" in d["message"]
    assert not marker.exists()


def test_a1111_pt_and_parameterdict_and_parameter(tmp_path: Path) -> None:
    vec = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    torch.save({"string_to_param": {"*": vec}, "name": "other", "step": 7, "sd_checkpoint": "abc"}, tmp_path / "a.pt")
    e = read_embedding(str(tmp_path / "a.pt"))
    assert e is not None and (e.vectors, e.shape, e.step, e.sd_checkpoint, e.name) == (3, 4, 7, "abc", None)
    assert torch.equal(e.vec, vec)

    torch.save({"string_to_param": torch.nn.ParameterDict({"*": torch.nn.Parameter(vec)})}, tmp_path / "p.pt")
    e = read_embedding(str(tmp_path / "p.pt"))
    assert e is not None and torch.equal(e.vec, vec)

    # A diffusers concept whose value is an nn.Parameter: type(v) == torch.Tensor fails in A1111 too.
    torch.save({"<x>": torch.nn.Parameter(vec[0])}, tmp_path / "param.bin")
    assert describe(str(tmp_path / "param.bin"))["exception"] == "Exception"

    torch.save({"<x>": vec[0]}, tmp_path / "one.bin")  # 1-D: one vector
    assert describe(str(tmp_path / "one.bin"))["vec_shape"] == [1, 4]

    torch.save({"string_to_param": {"*": vec, "+": vec}}, tmp_path / "two.pt")
    assert describe(str(tmp_path / "two.pt"))["exception"] == "AssertionError"


def test_safetensors_pairs_and_corrupt(tmp_path: Path) -> None:
    save_safetensors(tmp_path / "xl.safetensors", {"clip_g": torch.zeros(2, 6), "clip_l": torch.ones(2, 4)})
    d = describe(str(tmp_path / "xl.safetensors"))
    assert (d["vectors"], d["shape"], d["vec_shape"]) == (2, 10, {"clip_g": [2, 6], "clip_l": [2, 4]})
    (tmp_path / "bad.safetensors").write_bytes((tmp_path / "xl.safetensors").read_bytes()[:-5])
    bad = describe(str(tmp_path / "bad.safetensors"))
    assert bad["status"] == "error" and bad["exception"] == "SafetensorError" and "bad.safetensors" in bad["message"]


def test_png_text_chunk_takes_the_name_from_the_data(tmp_path: Path) -> None:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    data = {"string_to_param": {"*": {"TORCHTENSOR": [[0.5, 1.5, 2.5]]}}, "name": "from-data", "step": 3}
    info = PngInfo()
    info.add_text("sd-ti-embedding", base64.b64encode(json.dumps(data).encode()).decode())
    Image.new("RGB", (8, 8)).save(tmp_path / "file.png", pnginfo=info)
    d = describe(str(tmp_path / "file.png"))
    assert (d["status"], d["name"], d["vec_shape"], d["step"]) == ("ok", "from-data", [1, 3], 3)
    Image.new("RGB", (8, 8), (200, 100, 50)).save(tmp_path / "plain.png")
    assert describe(str(tmp_path / "plain.png"))["status"] == "ignored"
    Image.new("RGB", (8, 8)).save(tmp_path / "x.preview.png", pnginfo=info)
    assert describe(str(tmp_path / "x.preview.png"))["status"] == "ignored"


def test_every_shared_file_as_the_index_intends(shared_dir: Path) -> None:
    # shared_dir skips when ../shared is absent; present without conformance/embeddings fails.
    index = json.loads((SHARED / "embeddings_index.json").read_text())
    for f in index["files"]:
        if f["intent"] == "ignored" and f["size"] == 0:
            continue  # empty files are skipped by the walk before reading
        d = describe(str(SHARED / "embeddings" / f["file"]))
        if f["intent"] in ("load", "skip", "replaced", "load_then_fail"):
            assert d["status"] == "ok", f["file"]
            assert (d["vectors"], d["shape"]) == (f["vectors"], f["width"]), f["file"]
            if f["format"].startswith(("png", "webp")):
                assert d["name"] == f["name"]
        elif f["intent"] == "ignored":
            assert d["status"] == "ignored", f["file"]
        else:
            assert d["status"] == f["intent"], f["file"]


def _tiny_encoder() -> CLIPTextModel:
    torch.manual_seed(0)
    te = CLIPTextModel(CLIPTextConfig(vocab_size=50, hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                                      num_attention_heads=2, max_position_embeddings=77))
    for p in te.parameters():
        torch.nn.init.normal_(p, std=0.5)
    return te


def test_fixes_equal_the_tokens_whose_vectors_they_carry() -> None:
    te = _tiny_encoder()
    table = te.text_model.embeddings.token_embedding.weight.detach()
    ids = [[48] + [10, 11, 12] + [49] * 73]
    placeholders = [[48] + [0, 0, 12] + [49] * 73]
    weights = [[1.0] + [1.3, 1.3, 0.8] + [1.0] * 73]
    want = encode_prompt(te, [ids], [weights])
    got = encode_prompt(te, [placeholders], [weights], fixes=[[[(0, table[10:12].clone())]]])
    assert torch.equal(got, want)
    without = encode_prompt(te, [placeholders], [weights])
    assert not torch.allclose(without, want)


def test_fix_rules_match_a1111() -> None:
    x = torch.zeros(1, 77, 4)
    emb = torch.ones(5, 4)
    out = apply_embedding_fixes(x, [[(73, emb)]])  # only 3 positions left after offset 73
    assert out[0, 74:77].eq(1).all() and out[0, :74].eq(0).all()
    with pytest.raises(RuntimeError):
        apply_embedding_fixes(x, [[(0, torch.ones(4))]])  # 1-D vectors fail in torch.cat, as in A1111
    with pytest.raises(RuntimeError):
        apply_embedding_fixes(x, [[(0, torch.ones(2, 3))]])  # another width


def test_store_reads_once_and_names_missing_files(tmp_path: Path) -> None:
    torch.save({"v": torch.ones(2, 4)}, tmp_path / "e.pt")
    store = EmbeddingStore()
    a = store.load("k", str(tmp_path / "e.pt"))
    (tmp_path / "e.pt").unlink()
    assert store.load("k", str(tmp_path / "e.pt")) is a
    with pytest.raises(Exception) as err:
        store.load("k2", str(tmp_path / "e.pt"))
    assert "e.pt" in str(err.value)
