"""Layout recognition and configuration inference from checkpoint keys and shapes."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from lorabridge import arch
from lorabridge.arch import ArchitectureError
from lorabridge.clip_text import CLIPTextConfig, CLIPTextModel
from lorabridge.model import StableDiffusion
from lorabridge.unet import UNetConfig, UNetModel
from lorabridge.vae import AutoencoderKL, VAEConfig


def _read_tsv(path: Path) -> list[tuple[str, list[int]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    return [(r[0], [int(x) for x in r[1].split(",")] if r[1] else []) for r in rows]


@pytest.fixture(scope="module")
def sd15_shapes(shared_dir: Path) -> list[tuple[str, list[int]]]:
    return _read_tsv(shared_dir / "conformance/models/sd15_keys.tsv")


def _meta_sd(shapes: list[tuple[str, list[int]]]) -> dict[str, torch.Tensor]:
    # Meta tensors carry shape and dtype without memory: the full SD1.5 layout costs nothing.
    return {k: torch.empty(s, device="meta", dtype=torch.float16) for k, s in shapes}


def test_sd15_layout_inferred(sd15_shapes):
    a = arch.detect(_meta_sd(sd15_shapes))
    assert a.unet == UNetConfig(in_channels=4, out_channels=4, model_channels=320, channel_mult=(1, 2, 4, 4),
                                num_res_blocks=2, attention_levels=(0, 1, 2), num_heads=8, num_head_channels=-1,
                                transformer_depth=1, context_dim=768, use_linear_in_transformer=False)
    assert a.unet.attention_resolutions == [1, 2, 4]
    assert a.vae == VAEConfig(ch=128, ch_mult=(1, 2, 4, 4), num_res_blocks=2, attention_levels=(), z_channels=4,
                              embed_dim=4)
    assert a.text_encoder is not None
    te = a.text_encoder
    assert (te.vocab_size, te.hidden_size, te.intermediate_size, te.num_hidden_layers, te.num_attention_heads,
            te.max_position_embeddings, te.eos_token_id) == (49408, 768, 3072, 12, 12, 77, 49407)
    assert a.ignored_keys == ["cond_stage_model.transformer.text_model.embeddings.position_ids"]


def test_sd15_instantiated_with_file_parameter_counts(sd15_shapes):
    sd = _meta_sd(sd15_shapes)
    sd["alphas_cumprod"] = torch.linspace(0.999, 0.005, 1000)
    model = StableDiffusion.from_state_dict(sd, dtype=torch.float16, device="meta")
    assert model.parts == ["unet", "vae", "text_encoder"] and model.missing_parts == []
    counts = {p: sum(t.numel() for t in getattr(model, p).parameters()) for p in model.parts}
    assert counts == {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480}
    assert model.unet.input_blocks[1][0].in_layers[2].weight.dtype == torch.float16
    assert model.alphas_cumprod is not None and model.alphas_cumprod.dtype == torch.float32
    assert model.alphas_cumprod.shape == (1000,)
    # module_for_key resolves every file key to a standard leaf module
    leaves = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.Embedding)
    for key, shape in sd15_shapes:
        if key.endswith("position_ids"):
            continue
        module, pname = model.module_for_key(key)
        assert isinstance(module, leaves), key
        assert list(getattr(module, pname).shape) == shape, key
    m, p = model.module_for_key("model.diffusion_model.input_blocks.1.1.proj_in.weight")
    assert isinstance(m, torch.nn.Conv2d) and p == "weight"
    m, p = model.module_for_key("cond_stage_model.transformer.text_model.encoder.layers.3.self_attn.q_proj")
    assert isinstance(m, torch.nn.Linear) and p == ""
    with pytest.raises(KeyError, match="input_blocks.99"):
        model.module_for_key("model.diffusion_model.input_blocks.99.0.weight")


def test_aux_keys_ignored_and_schedule_kept(shared_dir, sd15_shapes):
    aux = _read_tsv(shared_dir / "conformance/models/sd15_keys_aux.tsv")
    sd = _meta_sd(sd15_shapes)
    sd.update({k: torch.empty(s, device="meta") for k, s in aux})
    ac = torch.linspace(0.99, 0.01, 1000)
    sd["alphas_cumprod"] = ac
    a = arch.detect(sd)
    assert a.alphas_cumprod is ac
    assert len(a.ignored_keys) == len(aux) + 1
    assert a.unet is not None and a.vae is not None and a.text_encoder is not None


def test_sd2_openclip_text_encoder_rejected(sd15_shapes):
    sd = {k: v for k, v in _meta_sd(sd15_shapes).items() if not k.startswith("cond_stage_model.")}
    sd["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"] = torch.empty(3072, 1024, device="meta")
    sd["cond_stage_model.model.token_embedding.weight"] = torch.empty(49408, 1024, device="meta")
    with pytest.raises(ArchitectureError, match=r"SD2\.x OpenCLIP.*cond_stage_model\.model\.token_embedding"):
        arch.detect(sd)


def test_sdxl_rejected():
    sd = {"conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight":
          torch.empty(49408, 768, device="meta"),
          "model.diffusion_model.input_blocks.0.0.weight": torch.empty(320, 4, 3, 3, device="meta")}
    with pytest.raises(ArchitectureError, match="SDXL conditioner"):
        arch.detect(sd)
    sd2 = {"model.diffusion_model.label_emb.0.0.weight": torch.empty(1280, 2816, device="meta")}
    with pytest.raises(ArchitectureError, match="label_emb"):
        arch.detect(sd2)


def test_inpainting_unet_rejected(sd15_shapes):
    sd = _meta_sd(sd15_shapes)
    sd["model.diffusion_model.input_blocks.0.0.weight"] = torch.empty(320, 9, 3, 3, device="meta")
    with pytest.raises(ArchitectureError, match=r"9 input and 4 output channels.*inpainting"):
        arch.detect(sd)


def test_missing_and_unexpected_keys_named(sd15_shapes):
    sd = _meta_sd(sd15_shapes)
    del sd["model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_v.weight"]
    with pytest.raises(ArchitectureError, match=r"missing keys: model\.diffusion_model\.middle_block\.1\.transformer_blocks\.0\.attn2\.to_v\.weight"):
        arch.detect(sd)
    sd = _meta_sd(sd15_shapes)
    sd["first_stage_model.decoder.extra.weight"] = torch.empty(3, device="meta")
    with pytest.raises(ArchitectureError, match=r"unexpected keys: first_stage_model\.decoder\.extra\.weight"):
        arch.detect(sd)
    sd = _meta_sd(sd15_shapes)
    sd["some_other_model.weight"] = torch.empty(3, device="meta")
    with pytest.raises(ArchitectureError, match=r"outside the ldm layout: some_other_model\.weight; recognised: unet"):
        arch.detect(sd)
    sd = _meta_sd(sd15_shapes)
    sd["first_stage_model.decoder.conv_out.weight"] = torch.empty(3, 128, 1, 1, device="meta")
    with pytest.raises(ArchitectureError, match=r"shape mismatches: first_stage_model\.decoder\.conv_out\.weight"):
        arch.detect(sd)
    with pytest.raises(ArchitectureError, match="no ldm part recognised"):
        arch.detect({"foo": torch.zeros(1)})


@pytest.mark.parametrize("cfg", [
    UNetConfig(model_channels=32, channel_mult=(1, 2), attention_levels=(1,), num_heads=-1, num_head_channels=32,
               context_dim=64),
    # SD2-style: linear proj_in/proj_out, 64-channel heads, depth 2, attention on the last level too
    UNetConfig(model_channels=64, channel_mult=(1, 2, 3), num_res_blocks=1, attention_levels=(0, 1, 2), num_heads=-1,
               num_head_channels=64, transformer_depth=2, context_dim=96, use_linear_in_transformer=True),
    # SD1-family widths keep 8 heads (narrowest 256 / 8 = 32 channels per head)
    UNetConfig(model_channels=256, channel_mult=(1, 1), num_res_blocks=1, attention_levels=(0,), num_heads=8,
               context_dim=32),
])
def test_unet_config_round_trip(cfg):
    sd = {"model.diffusion_model." + k: v for k, v in UNetModel(cfg, device="meta").state_dict().items()}
    assert arch.detect(sd).unet == cfg


def test_vae_and_clip_round_trip_including_partial_files():
    vcfg = VAEConfig(ch=32, ch_mult=(1, 2, 4), num_res_blocks=1, attention_levels=(2,), z_channels=4, embed_dim=3)
    sd = {"first_stage_model." + k: v for k, v in AutoencoderKL(vcfg, device="meta").state_dict().items()}
    assert arch.detect(sd).vae == vcfg
    dec_only = {k: v for k, v in sd.items() if ".encoder." not in k and "quant_conv" not in k or "post_quant" in k}
    got = arch.detect(dec_only).vae
    assert got is not None and got.has_decoder and not got.has_encoder and got.ch_mult == (1, 2, 4)
    bare = {k[len("first_stage_model."):]: v for k, v in sd.items()}  # a standalone .vae file
    bare["loss.discriminator.main.0.weight"] = torch.empty(64, 3, 4, 4, device="meta")  # training leftovers
    assert arch.detect(bare).vae == vcfg
    ccfg = CLIPTextConfig(vocab_size=1000, hidden_size=128, intermediate_size=200, num_hidden_layers=3,
                          num_attention_heads=2, max_position_embeddings=40, eos_token_id=999)
    csd = {"cond_stage_model.transformer." + k: v for k, v in CLIPTextModel(ccfg, device="meta").state_dict().items()}
    assert arch.detect(csd).text_encoder == ccfg
    # keys from transformers versions without the text_model level are accepted (as A1111 does)
    old = {k.replace("transformer.text_model.", "transformer."): v for k, v in csd.items()}
    assert arch.detect(old).text_encoder == ccfg
