"""SDXL single-file checkpoints: family detection, streaming load, the model and its text conditioning.

Layout (what A1111 and ComfyUI read):
  * ``model.diffusion_model.*``                          sgm UNet (:mod:`lorabridge.sgm_unet`)
  * ``conditioner.embedders.0.transformer.text_model.*`` te1, CLIP-L role, HF names (:mod:`lorabridge.clip_text`)
  * ``conditioner.embedders.1.model.*``                  te2, OpenCLIP bigG role (:mod:`lorabridge.open_clip_text`)
  * ``first_stage_model.*``                              KL VAE (:mod:`lorabridge.vae`), scale factor 0.13025

Every configuration value comes from tensor shapes. Two values are not visible in any shape, and follow
documented rules (``unet_head_channels`` / ``text_head_dim`` override them):
  * UNet heads: 64 channels per head (``sd_xl_base.yaml``) when every attention width is at least 320 (every
    real SDXL-family UNet); narrower toy UNets get 16-channel heads (sgm's tiny test configs).
  * Text heads: 64 channels per head for widths ≥ 256 (CLIP-L 768 → 12, bigG 1280 → 20); toy towers 8.

Loading never holds two copies of the weights: the modules are built on the ``meta`` device and every
parameter is read from the file straight into its final dtype/device one tensor at a time (a ``.safetensors``
file is read with positioned reads, not mapped, so its pages do not stay in the process's memory).
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import torch
from torch import nn

from . import arch as _arch
from .clip_text import CLIPTextConfig, CLIPTextModel
from .conditioning import apply_emphasis
from .open_clip_text import OpenCLIPTextConfig, OpenCLIPTextModel
from .sgm_unet import SDXLUNetConfig, SDXLUNetModel
from .unet import timestep_embedding
from .vae import AutoencoderKL, VAEConfig

SDXL_SCALE_FACTOR = 0.13025  # sd_xl_base.yaml scale_factor
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TE1_PREFIX = "conditioner.embedders.0.transformer."
TE2_PREFIX = "conditioner.embedders.1.model."
PREFIXES = {"unet": UNET_PREFIX, "vae": VAE_PREFIX, "text_encoder": TE1_PREFIX, "text_encoder_2": TE2_PREFIX}
SIZE_EMBED_DIM = 256  # ConcatTimestepEmbedderND outdim in sd_xl_base.yaml


class ArchitectureError(_arch.ArchitectureError):
    """Same type the SD1 loader raises, so callers handle one error class."""


# ------------------------------------------------------------------------------------ tensor sources

class TensorSource:
    """Shapes of every tensor in a checkpoint, and its tensors one at a time (``take`` forgets a tensor)."""

    path: str
    shapes: dict[str, tuple[int, ...]]

    def take(self, key: str) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def meta(self) -> dict[str, torch.Tensor]:
        """Shape-only stand-ins (``meta`` tensors): the config inference reads nothing but shapes."""
        return {k: torch.empty(s, device="meta") for k, s in self.shapes.items()}


class DictSource(TensorSource):
    """Tensors already in memory (a pickle checkpoint or a test's state dict)."""

    def __init__(self, tensors: dict[str, torch.Tensor], path: str = "<memory>") -> None:
        self.path = path
        self.tensors = tensors
        self.shapes = {k: tuple(v.shape) for k, v in tensors.items()}

    def take(self, key: str) -> torch.Tensor:
        return self.tensors.pop(key)


class SafetensorsSource(TensorSource):
    """A validated ``.safetensors`` header plus positioned reads of single tensors."""

    def __init__(self, path: str) -> None:
        from .checkpoint import MAX_HEADER_BYTES, CheckpointError, _parse_safetensors_header

        self.path = path
        try:
            self._file = open(path, "rb")
        except OSError as e:
            raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
        size = os.fstat(self._file.fileno()).st_size
        head = self._file.read(8)
        if len(head) == 8:
            (n,) = struct.unpack("<Q", head)
            if n <= MAX_HEADER_BYTES:
                head += self._file.read(n)
        try:
            self._start, self._entries, self.metadata = _parse_safetensors_header(path, head, size)
        except Exception:
            self._file.close()
            raise
        self.shapes = {k: s for k, (_, s, _, _) in self._entries.items()}

    def dtype(self, key: str) -> torch.dtype:
        return self._entries[key][0]

    def take(self, key: str) -> torch.Tensor:
        from .checkpoint import CheckpointError

        dtype, shape, begin, end = self._entries[key]
        out = torch.empty(shape, dtype=dtype)
        if end > begin:
            view = memoryview(out.view(-1).view(torch.uint8).numpy()) if dtype != torch.bool else None
            buf = bytearray(end - begin) if view is None else view
            got = os.preadv(self._file.fileno(), [buf], self._start + begin) if hasattr(os, "preadv") else None
            if got is None:
                self._file.seek(self._start + begin)
                got = self._file.readinto(buf)
            if got != end - begin:
                raise CheckpointError(f"{self.path}: tensor {key!r}: read {got} of {end - begin} bytes "
                                      f"(file truncated or changed while loading)")
            if view is None:
                out = torch.frombuffer(buf, dtype=dtype).reshape(shape)
        if struct.pack("=H", 1) != struct.pack("<H", 1) and out.element_size() > 1:
            out = out.view(torch.uint8).view(-1, out.element_size()).flip(1).contiguous().view(dtype).reshape(shape)
        return out

    def close(self) -> None:
        self._file.close()


def open_source(path: "str | os.PathLike[str]") -> TensorSource:
    """A tensor source for any checkpoint file LoraBridge reads (never executes pickled code)."""
    p = os.fspath(path)
    if p.lower().endswith(".safetensors"):
        return SafetensorsSource(p)
    from .checkpoint import load_state_dict

    return DictSource(load_state_dict(p), p)


# ------------------------------------------------------------------------------------ family detection

@dataclass(frozen=True)
class FamilyInfo:
    family: str  # "sd1", "sdxl", "sdxl-refiner", "sd2", "inpainting", "unknown", ...
    supported: bool
    detail: str  # what was recognised, for messages

    @property
    def default_size(self) -> int:
        return 1024 if self.family == "sdxl" else 512

    def as_dict(self) -> dict[str, Any]:
        fam = self.family if self.family in ("sd1", "sdxl") else self.family
        return {"family": fam, "supported": self.supported, "detail": self.detail,
                "default_width": self.default_size, "default_height": self.default_size}


def _count(shapes: Mapping[str, Any], prefix: str) -> int:
    return sum(1 for k in shapes if k.startswith(prefix))


def detect_family(shapes: Mapping[str, Sequence[int]]) -> FamilyInfo:
    """Which model family a checkpoint's keys and shapes describe (no tensor data needed)."""
    unet_in = shapes.get(UNET_PREFIX + "input_blocks.0.0.weight")
    in_ch = int(unet_in[1]) if unet_in is not None and len(unet_in) == 4 else None
    adm = shapes.get(UNET_PREFIX + "label_emb.0.0.weight")
    has_te1 = _count(shapes, TE1_PREFIX) > 0
    has_te2 = _count(shapes, TE2_PREFIX) > 0
    refiner_te = _count(shapes, "conditioner.embedders.0.model.") > 0
    parts = []
    if unet_in is not None:
        parts.append(f"UNet with {in_ch} input channels" + (f" and ADM input {adm[1]}" if adm else ""))
    for prefix, what in ((TE1_PREFIX, "CLIP-L text encoder (conditioner.embedders.0.transformer)"),
                         (TE2_PREFIX, "OpenCLIP text encoder (conditioner.embedders.1.model)"),
                         ("conditioner.embedders.0.model.", "OpenCLIP text encoder (conditioner.embedders.0.model)"),
                         ("cond_stage_model.transformer.", "CLIP text encoder (cond_stage_model.transformer)"),
                         ("cond_stage_model.model.", "OpenCLIP text encoder (cond_stage_model.model)"),
                         (VAE_PREFIX, "KL VAE")):
        n = _count(shapes, prefix)
        if n:
            parts.append(f"{what}, {n} tensors")
    seen = "; ".join(parts) or f"no known part among {len(shapes)} keys"
    if refiner_te or (adm is not None and has_te2 and not has_te1):
        return FamilyInfo("sdxl-refiner", False, f"SDXL refiner ({seen}); only SDXL base-architecture "
                                                 "checkpoints are supported")
    if adm is not None and not (has_te1 or has_te2):
        return FamilyInfo("adm-unet", False, f"class/size-conditioned UNet without SDXL text encoders ({seen}): an "
                                             "SD2 unCLIP model or a UNet-only file; full SDXL checkpoints are needed")
    if has_te1 or has_te2:
        if in_ch is not None and in_ch != 4:
            kind = "inpainting" if in_ch == 9 else f"{in_ch}-channel"
            return FamilyInfo("sdxl-inpainting", False, f"SDXL {kind} UNet ({seen}); only text-to-image "
                                                        "UNets with 4 input channels are supported")
        return FamilyInfo("sdxl", True, f"SDXL ({seen})")
    if _count(shapes, "cond_stage_model.model.") or (
            UNET_PREFIX + "input_blocks.1.1.proj_in.weight" in shapes
            and len(shapes[UNET_PREFIX + "input_blocks.1.1.proj_in.weight"]) == 2):
        return FamilyInfo("sd2", False, f"SD2.x ({seen}); SD2.x checkpoints are not supported yet")
    if in_ch is not None and in_ch != 4:
        kind = "inpainting" if in_ch == 9 else f"{in_ch}-channel"
        return FamilyInfo("sd1-inpainting", False, f"SD1.x {kind} UNet ({seen}); only text-to-image UNets "
                                                   "with 4 input channels are supported")
    if unet_in is not None or _count(shapes, "cond_stage_model.transformer.") or _count(shapes, VAE_PREFIX):
        return FamilyInfo("sd1", True, f"SD1.x ({seen})")
    return FamilyInfo("unknown", False, f"unknown model family ({seen})")


def checkpoint_shapes(path: "str | os.PathLike[str]") -> dict[str, tuple[int, ...]]:
    """Keys and shapes of a checkpoint; a ``.safetensors`` file's header only."""
    p = os.fspath(path)
    if p.lower().endswith(".safetensors"):
        from .checkpoint import read_safetensors_header

        return {k: tuple(s) for k, (_, s) in read_safetensors_header(p)[0].items()}
    from .checkpoint import load_state_dict

    return {k: tuple(v.shape) for k, v in load_state_dict(p).items()}


# ------------------------------------------------------------------------------------ config inference

@dataclass
class SDXLArchitecture:
    unet: SDXLUNetConfig
    vae: Optional[VAEConfig]
    text_encoder: CLIPTextConfig
    text_encoder_2: OpenCLIPTextConfig
    keys: dict[str, dict[str, str]]  # part → {module key: checkpoint key}


def _text_heads(width: int, head_dim: Optional[int]) -> int:
    d = head_dim if head_dim else (64 if width >= 256 and width % 64 == 0 else 8)
    if width % d:
        raise ArchitectureError(f"text width {width} is not divisible by the head width {d}")
    return width // d


def infer_unet_config(sd: Mapping[str, torch.Tensor], head_channels: Optional[int] = None,
                      num_heads: Optional[int] = None) -> SDXLUNetConfig:
    """sgm UNet config from prefix-stripped (meta) tensors: the level structure as ldm's, plus depths and ADM."""
    base = _arch.infer_unet_config(sd, heads={"num_heads": -1, "num_head_channels": 1})
    if not base.use_linear_in_transformer:
        raise ArchitectureError("UNet uses 1x1-conv proj_in; SDXL UNets use linear projections")
    if "label_emb.0.0.weight" not in sd:
        raise ArchitectureError("UNet has no label_emb.0.0 (the ADM input SDXL conditions on)")
    adm = tuple(sd["label_emb.0.0.weight"].shape)[1]
    per_level = base.num_res_blocks + 1
    depths = []
    for level in range(len(base.channel_mult)):
        first = 1 + level * per_level
        ids = _arch._indices(sd, rf"input_blocks\.{first}\.1\.transformer_blocks\.(\d+)\.")
        depths.append(len(ids))
    middle = len(_arch._indices(sd, r"middle_block\.1\.transformer_blocks\.(\d+)\."))
    widths = [base.model_channels * base.channel_mult[lv] for lv in base.attention_levels] or [base.model_channels]
    if num_heads:
        head_channels = -1
        bad = [w for w in widths if w % num_heads]
        if bad:
            raise ArchitectureError(f"UNet attention widths {bad} cannot be split into {num_heads} heads")
    else:
        if head_channels is None:
            head_channels = 64 if min(widths) >= 320 else 16
        bad = [w for w in widths + [base.model_channels * base.channel_mult[-1]] if w % head_channels]
        if bad:
            raise ArchitectureError(f"UNet attention widths {bad} are not multiples of {head_channels}-channel heads")
    return SDXLUNetConfig(in_channels=base.in_channels, out_channels=base.out_channels,
                          model_channels=base.model_channels, channel_mult=tuple(base.channel_mult),
                          num_res_blocks=base.num_res_blocks, attention_levels=tuple(base.attention_levels),
                          transformer_depth=tuple(depths), transformer_depth_middle=middle,
                          num_head_channels=head_channels, num_heads=num_heads or -1, context_dim=base.context_dim,
                          adm_in_channels=adm,
                          use_linear_in_transformer=True)


def infer_open_clip_config(sd: Mapping[str, torch.Tensor], head_dim: Optional[int] = None) -> OpenCLIPTextConfig:
    part = "OpenCLIP text encoder"
    vocab, width = _arch._shape(sd, "token_embedding.weight", part)
    ctx = _arch._shape(sd, "positional_embedding", part)[0]
    layers = len(_arch._indices(sd, r"transformer\.resblocks\.(\d+)\."))
    if layers == 0:
        raise ArchitectureError("OpenCLIP text encoder has no transformer.resblocks.* keys")
    mlp = _arch._shape(sd, "transformer.resblocks.0.mlp.c_fc.weight", part)[0]
    proj = _arch._shape(sd, "text_projection", part)[1]
    logit = tuple(sd["logit_scale"].shape) if "logit_scale" in sd else ()
    return OpenCLIPTextConfig(vocab_size=vocab, width=width, heads=_text_heads(width, head_dim), layers=layers,
                              context_length=ctx, projection_dim=proj, mlp_width=mlp, logit_scale_shape=logit)


def _split(shapes: Mapping[str, Any]) -> tuple[dict[str, dict[str, str]], list[str]]:
    keys: dict[str, dict[str, str]] = {p: {} for p in PREFIXES}
    unexpected = []
    for key in shapes:
        # Besides ldm's ignorable keys: sgm's discretization buffers (denoiser.sigmas/log_sigmas) and open_clip's
        # causal attn_mask buffer, which some SDXL files carry; both are recomputed, never read.
        if (_arch._is_ignorable(key) or key == "alphas_cumprod" or key.startswith("denoiser.")
                or key.endswith(".attn_mask")):
            continue
        for part, prefix in PREFIXES.items():
            if key.startswith(prefix):
                name = key[len(prefix):]
                keys[part][_arch._normalise_clip_key(name) if part == "text_encoder" else name] = key
                break
        else:
            unexpected.append(key)
    return keys, unexpected


@dataclass(frozen=True)
class HeadSplit:
    """The attention head split, which no tensor shape shows (A1111 takes it from the model's yaml). Unset
    fields follow the rules in the module docstring."""

    unet_head_channels: Optional[int] = None
    unet_num_heads: Optional[int] = None
    text_head_dim: Optional[int] = None
    te1_heads: Optional[int] = None
    te2_heads: Optional[int] = None


def _heads(width: int, count: Optional[int], head_dim: Optional[int], what: str) -> int:
    if count:
        if width % count:
            raise ArchitectureError(f"{what} width {width} cannot be split into {count} heads")
        return count
    return _text_heads(width, head_dim)


def detect(source: TensorSource, unet_head_channels: Optional[int] = None,
           text_head_dim: Optional[int] = None, heads: Optional[HeadSplit] = None) -> SDXLArchitecture:
    """Family check, config inference and exact key/shape agreement with the modules, from shapes only."""
    fam = detect_family(source.shapes)
    if fam.family != "sdxl":
        raise ArchitectureError(f"{source.path}: not an SDXL base checkpoint: {fam.detail}")
    keys, unexpected = _split(source.shapes)
    if unexpected:
        raise ArchitectureError(f"{source.path}: unexpected keys outside the SDXL layout: {_arch._sample(unexpected)}")
    for part in ("unet", "text_encoder", "text_encoder_2"):
        if not keys[part]:
            raise ArchitectureError(f"{source.path}: the SDXL checkpoint has no {part} ({PREFIXES[part]}*)")
    meta = {p: {k: torch.empty(source.shapes[full], device="meta") for k, full in ks.items()}
            for p, ks in keys.items()}
    h = heads or HeadSplit(unet_head_channels=unet_head_channels, text_head_dim=text_head_dim)
    try:
        unet = infer_unet_config(meta["unet"], h.unet_head_channels, h.unet_num_heads)
        te1 = _arch.infer_clip_config(meta["text_encoder"])
        te1 = replace(te1, num_attention_heads=_heads(te1.hidden_size, h.te1_heads, h.text_head_dim, "te1"))
        te2 = infer_open_clip_config(meta["text_encoder_2"], h.text_head_dim)
        te2 = replace(te2, heads=_heads(te2.width, h.te2_heads, h.text_head_dim, "te2"))
        vae = _arch.infer_vae_config(meta["vae"]) if keys["vae"] else None
    except (ArchitectureError, _arch.ArchitectureError) as e:
        raise ArchitectureError(f"{source.path}: {e}") from None
    a = SDXLArchitecture(unet, vae, te1, te2, keys)
    for part, module in _meta_modules(a).items():
        _arch.check_against_module(part, module, meta[part], PREFIXES[part])
    return a


_CLASSES: dict[str, Callable[..., nn.Module]] = {"unet": SDXLUNetModel, "vae": AutoencoderKL,
                                                 "text_encoder": CLIPTextModel, "text_encoder_2": OpenCLIPTextModel}


def _meta_modules(a: SDXLArchitecture) -> dict[str, nn.Module]:
    out = {}
    for part, cls in _CLASSES.items():
        cfg = getattr(a, part)
        if cfg is not None:
            out[part] = cls(cfg, device="meta")
    return out


# ------------------------------------------------------------------------------------ the model

@dataclass(frozen=True)
class Precision:
    """How a model runs: ``dtype`` of the UNet/text weights, autocast on CUDA, the VAE's dtype."""

    dtype: torch.dtype = torch.float32
    vae_dtype: torch.dtype = torch.float32
    autocast: bool = False


def precision_for(device: Any, mode: str = "autocast", no_half_vae: bool = False) -> Precision:
    """A1111's defaults: CUDA fp16 weights under autocast (VAE fp16 unless ``--no-half-vae``); ``full`` and
    every CPU run in fp32."""
    if mode not in ("autocast", "full"):
        raise ValueError(f"precision must be 'autocast' or 'full', not {mode!r}")
    if torch.device(device).type != "cuda" or mode == "full":
        return Precision()
    return Precision(torch.float16, torch.float32 if no_half_vae else torch.float16, True)


class SDXLModel:
    """A loaded SDXL base checkpoint: ``unet``, ``vae``, ``text_encoder`` (te1) and ``text_encoder_2`` (te2)."""

    family = "sdxl"

    def __init__(self, architecture: SDXLArchitecture, unet: SDXLUNetModel, vae: Optional[AutoencoderKL],
                 text_encoder: CLIPTextModel, text_encoder_2: OpenCLIPTextModel,
                 precision: Precision = Precision(), path: str = "") -> None:
        self.architecture = architecture
        self.unet = unet
        self.vae = vae
        self.text_encoder = text_encoder
        self.text_encoder_2 = text_encoder_2
        self.alphas_cumprod: Optional[torch.Tensor] = None  # sgm's LegacyDDPMDiscretization = SD1's default
        self.scale_factor = SDXL_SCALE_FACTOR
        self.precision = precision
        self.path = path
        self._module_index: dict[str, dict[str, nn.Module]] = {}

    @classmethod
    def load(cls, path: "str | os.PathLike[str]", device: Any = "cpu", precision: Optional[Precision] = None,
             unet_head_channels: Optional[int] = None, text_head_dim: Optional[int] = None,
             heads: Optional[HeadSplit] = None) -> "SDXLModel":
        source = open_source(path)
        try:
            return cls.from_source(source, device, precision, unet_head_channels, text_head_dim, heads)
        finally:
            if isinstance(source, SafetensorsSource):
                source.close()

    @classmethod
    def from_source(cls, source: TensorSource, device: Any = "cpu", precision: Optional[Precision] = None,
                    unet_head_channels: Optional[int] = None, text_head_dim: Optional[int] = None,
                    heads: Optional[HeadSplit] = None) -> "SDXLModel":
        precision = precision or Precision()
        a = detect(source, unet_head_channels, text_head_dim, heads)
        modules = _meta_modules(a)
        for part, module in modules.items():
            dtype = precision.vae_dtype if part == "vae" else precision.dtype
            # The text encoders run in fp32 on CPU; on CUDA A1111 keeps them in the model dtype too.
            _materialise(module, a.keys[part], source, device, dtype)
            module.eval().requires_grad_(False)
        return cls(a, modules["unet"], modules.get("vae"), modules["text_encoder"],  # type: ignore[arg-type]
                   modules["text_encoder_2"], precision, source.path)  # type: ignore[arg-type]

    @classmethod
    def from_state_dict(cls, sd: dict[str, torch.Tensor], **kwargs: Any) -> "SDXLModel":
        return cls.from_source(DictSource(dict(sd)), **kwargs)

    # --- parts ------------------------------------------------------------------------------------------
    @property
    def parts(self) -> list[str]:
        return [p for p in PREFIXES if getattr(self, p) is not None]

    @property
    def missing_parts(self) -> list[str]:
        return [p for p in PREFIXES if getattr(self, p) is None]

    @property
    def device(self) -> torch.device:
        return self.unet.time_embed[0].weight.device

    def info(self) -> dict[str, Any]:
        return {"family": "sdxl", "default_width": 1024, "default_height": 1024, "text_encoders": 2,
                "vae_scale": self.scale_factor, "adm_in_channels": self.unet.config.adm_in_channels,
                "precision": "autocast" if self.precision.autocast else "full",
                "dtype": str(self.precision.dtype).removeprefix("torch."), "device": self.device.type}

    def module_for_key(self, key: str) -> tuple[nn.Module, str]:
        """Leaf module and parameter name for a full checkpoint key (as :meth:`StableDiffusion.module_for_key`)."""
        from .model import _resolve

        for part, prefix in PREFIXES.items():
            if key.startswith(prefix):
                module = getattr(self, part)
                if module is None:
                    raise KeyError(f"{key}: this checkpoint has no {part}")
                path = key[len(prefix):]
                if part == "text_encoder":
                    path = _arch._normalise_clip_key(path)
                if part not in self._module_index:
                    self._module_index[part] = dict(module.named_modules())
                return _resolve(self._module_index[part], path, key)
        raise KeyError(f"{key}: not under a known SDXL prefix ({', '.join(PREFIXES.values())})")

    # --- networks ---------------------------------------------------------------------------------------
    def network_layers(self) -> dict[str, tuple[str, nn.Module]]:
        """A1111 layer name → (checkpoint module path, module) for LoRA binding (see :mod:`.networks.keymap`).

        te2's fused attention also appears as ``…_attn_{q,k,v}_proj`` Linear views of the ``in_proj`` rows, so
        the generic patcher writes A1111's ``vstack([Δq, Δk, Δv])`` into ``in_proj_weight`` block by block.
        """
        from .networks.keymap import layer_map

        layers = layer_map({UNET_PREFIX: self.unet, "conditioner.embedders.0.transformer.": self.text_encoder,
                            TE2_PREFIX: self.text_encoder_2})
        from .networks.keymap import a1111_layer_name

        for i, block in enumerate(self.text_encoder_2.transformer.resblocks):
            for name, lin in block.attn.row_slices().items():
                path = f"{TE2_PREFIX}transformer.resblocks.{i}.attn.{name}"
                layers[a1111_layer_name(path)] = (path, lin)
        return layers

    def filter_network(self, network: Any) -> None:
        """A1111 patches te2's fused attention only when a layer has all of q, k, v and out (the
        ``nn.MultiheadAttention`` branch of ``network_apply_weights``; ``out_proj`` alone is never reached
        because MultiheadAttention does not call its forward). Partial groups are dropped here."""
        rx = re.compile(re.escape(TE2_PREFIX) + r"transformer\.resblocks\.(\d+)\.attn\.(q_proj|k_proj|v_proj|out_proj)$")
        by_block: dict[str, set[str]] = {}
        for path in network.modules:
            m = rx.match(path)
            if m:
                by_block.setdefault(m.group(1), set()).add(m.group(2))
        for block, present in by_block.items():
            if present != {"q_proj", "k_proj", "v_proj", "out_proj"}:
                for p in present:
                    path = f"{TE2_PREFIX}transformer.resblocks.{block}.attn.{p}"
                    del network.modules[path]
                    network.unapplied[path] = ("te2 attention needs q, k, v and out together "
                                               f"(has {', '.join(sorted(present))})")

    @staticmethod
    def checkpoint_key(path: str, pname: str) -> str:
        """The checkpoint key that holds layer ``path``'s ``pname``; te2's q/k/v views live in ``in_proj_*``."""
        m = re.match(r"(.*\.attn)\.(q|k|v)_proj$", path)
        if m and path.startswith(TE2_PREFIX):
            return f"{m.group(1)}.in_proj_{pname}"
        return f"{path}.{pname}"

    # --- images -----------------------------------------------------------------------------------------
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        if self.vae is None:
            raise RuntimeError("this checkpoint has no VAE")
        dtype = self.vae.decoder.conv_in.weight.dtype
        out = self.vae.decode(((1.0 / self.scale_factor) * latents).to(dtype))
        if dtype != torch.float32 and not bool(torch.isfinite(out).all()):
            # A1111's "Automatically revert VAE to 32-bit floats" (on by default): retry in fp32.
            self.vae.to(torch.float32)
            out = self.vae.decode((1.0 / self.scale_factor) * latents.float())
        return out.float()

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        if self.vae is None:
            raise RuntimeError("this checkpoint has no VAE")
        dtype = self.vae.decoder.conv_in.weight.dtype if self.vae.decoder is not None else torch.float32
        mean = self.vae.encode_moments(image.to(dtype)).chunk(2, dim=1)[0]
        return mean.float() * self.scale_factor

    # --- conditioning -----------------------------------------------------------------------------------
    def encode_text(self, ids_te1: torch.Tensor, ids_te2: torch.Tensor, fixes_te1: Optional[Sequence] = None,
                    fixes_te2: Optional[Sequence] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One chunk per row: (te1 penultimate, te2 penultimate, te2 pooled), float32. ``fixes_te*``: per row,
        (offset, vectors) of textual-inversion embeddings for that encoder."""
        n = self.text_encoder.config.num_hidden_layers
        with torch.no_grad():
            z1 = self.text_encoder(ids_te1, stop_at_layer=n - 1, fixes=fixes_te1).hidden_states[-1]
            out2 = self.text_encoder_2(ids_te2, fixes=fixes_te2)
        return z1.float(), out2.penultimate.float(), out2.pooled.float()

    def get_learned_conditioning(self, ids_te1: Any, ids_te2: Any, weights: Any, width: int, height: int,
                                 zero_text: bool = False, crop: tuple[int, int] = (0, 0),
                                 original_size: Optional[tuple[int, int]] = None,
                                 emphasis: str = "Original",
                                 fixes: Optional[Sequence[Sequence[Sequence[tuple[int, Any]]]]] = None
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """A1111 v1.10.1 ``sd_models_xl.get_learned_conditioning`` for token ids [S, chunks, 77] of both
        tokenizers and their multipliers: (crossattn [S, 77·chunks, w1+w2], vector [S, proj + 6·256]).

        ``original_size`` is (width, height); None means the image size, as A1111's txt2img. ``fixes``: per text
        and chunk, (offset, embedding) of textual-inversion embeddings (``lorabridge.embeddings.EmbeddingData``):
        te1 gets their ``clip_l`` vectors and te2 their ``clip_g`` vectors, as A1111's two
        ``EmbeddingsWithFixes``."""
        dev = self.text_encoder.text_model.embeddings.token_embedding.weight.device
        ids1 = _chunks(ids_te1, torch.long).to(dev)
        ids2 = te2_ids(ids1, self.text_encoder.config.vocab_size - 1) if ids_te2 is None else _chunks(ids_te2, torch.long).to(dev)
        w = _chunks(weights, torch.float32).to(dev)
        if not (ids1.shape == ids2.shape == w.shape):
            raise ValueError(f"ids_te1 {tuple(ids1.shape)}, ids_te2 {tuple(ids2.shape)} and weights {tuple(w.shape)} "
                             "must have the same [texts, chunks, 77] shape")
        zs = []
        pooled = None
        for c in range(ids1.shape[1]):
            f1 = f2 = None
            if fixes is not None:
                f1 = [[(off, e.vector_for("clip_l")) for off, e in text[c]] for text in fixes]
                f2 = [[(off, e.vector_for("clip_g")) for off, e in text[c]] for text in fixes]
            z1, z2, p = self.encode_text(ids1[:, c], ids2[:, c], f1, f2)
            if pooled is None:
                pooled = p  # te2 pooled of the first chunk, before emphasis
            zs.append(torch.cat([apply_emphasis(z1, w[:, c], emphasis), apply_emphasis(z2, w[:, c], emphasis)], -1))
        crossattn = torch.cat(zs, dim=1)
        assert pooled is not None
        if zero_text:
            crossattn = torch.zeros_like(crossattn)
            pooled = torch.zeros_like(pooled)
        ow, oh = original_size or (width, height)
        sizes = size_embedding([oh, ow, crop[0], crop[1], height, width], crossattn.shape[0]).to(dev)
        return crossattn, torch.cat([pooled, sizes], dim=1)


def te2_ids(ids_te1: torch.Tensor, eos: int) -> torch.Tensor:
    """A1111's te2 tokens: te1's chunk with every position after the first end token set to 0 (``id_pad``)."""
    ids = ids_te1.clone()
    flat = ids.reshape(-1, ids.shape[-1])
    for row in flat:
        hits = (row == eos).nonzero()
        if len(hits):
            row[int(hits[0]) + 1:] = 0
    return flat.reshape(ids.shape)


def size_embedding(values: Sequence[float], batch: int) -> torch.Tensor:
    """sgm ``ConcatTimestepEmbedderND`` of (orig h, orig w, crop top, crop left, target h, target w): each value
    through ``timestep_embedding(v, 256)`` (cos first), concatenated; [batch, 6·256]."""
    t = torch.tensor([float(v) for v in values], dtype=torch.float32)
    emb = timestep_embedding(t, SIZE_EMBED_DIM).reshape(1, -1)
    return emb.expand(batch, -1).clone()


def _chunks(values: Any, dtype: torch.dtype) -> torch.Tensor:
    t = values.to(dtype) if isinstance(values, torch.Tensor) else torch.as_tensor(values, dtype=dtype)
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3 or t.shape[1] == 0:
        raise ValueError(f"expected [texts, chunks, tokens], got shape {tuple(t.shape)}")
    return t


def _materialise(module: nn.Module, keys: Mapping[str, str], source: TensorSource, device: Any,
                 dtype: torch.dtype) -> None:
    """Give every meta parameter the file's tensor, read and converted one at a time (see the module doc)."""
    for name, sub in module.named_modules():
        for pname, param in list(sub._parameters.items()):
            if param is None:
                continue
            key = f"{name}.{pname}" if name else pname
            src = source.take(keys[key])
            value = src.to(device=device, dtype=dtype if src.is_floating_point() else src.dtype, copy=True)
            del src
            sub._parameters[pname] = nn.Parameter(value, requires_grad=False)


class SDXLEps:
    """The sampler's ``eps(x, t, context)`` for SDXL: ``context`` carries crossattn and, in extra columns of
    every token row, the ADM vector (see :func:`pack_cond`), so the SD1 guidance code (stacking, padding,
    AND-weights, cond/uncond batching) moves both together without knowing about SDXL — as A1111's
    ``DictWithShape`` does. Runs under CUDA autocast when the model's precision asks for it."""

    def __init__(self, model: SDXLModel) -> None:
        self.model = model
        self.context_dim = model.unet.config.context_dim

    def __call__(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        crossattn, y = unpack_cond(context, self.context_dim)
        if self.model.precision.autocast and x.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                return self.model.unet(x, t, crossattn, y).float()
        return self.model.unet(x, t, crossattn, y)


def pack_cond(crossattn: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """[..., T, ctx] and [..., adm] → [..., T, ctx + adm]: the vector repeated on every token row."""
    rows = vector.unsqueeze(-2).expand(*crossattn.shape[:-1], vector.shape[-1])
    return torch.cat([crossattn, rows.to(crossattn.dtype)], dim=-1)


def unpack_cond(packed: torch.Tensor, context_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_cond` ([B, T, ctx + adm] → crossattn, vector of the first row)."""
    return packed[..., :context_dim], packed[..., 0, context_dim:]


# ------------------------------------------------------------------------------------ network families

_SDXL_MARKERS = re.compile(r"^lora_te[12]_|^lora_unet_(input_blocks_[78]_1|output_blocks_[0-5]_1|label_emb|"
                           r"down_blocks_2_attentions|up_blocks_0_attentions)")
_SD1_MARKERS = re.compile(r"^lora_te_|^lora_unet_(input_blocks_[12]_1|output_blocks_(9|10|11)_1|"
                          r"down_blocks_0_attentions|up_blocks_3_attentions)")


def lora_family(groups: Iterable[str]) -> str:
    """"sdxl", "sd1" or "unknown" from a network's key groups: the text-encoder prefixes kohya writes
    (``lora_te1_``/``lora_te2_`` vs ``lora_te_``) and attention blocks only one of the UNets has."""
    groups = list(groups)
    xl = sum(1 for g in groups if _SDXL_MARKERS.match(g))
    sd1 = sum(1 for g in groups if _SD1_MARKERS.match(g))
    if xl and not sd1:
        return "sdxl"
    if sd1 and not xl:
        return "sd1"
    return "unknown" if not (xl or sd1) else ("sdxl" if xl > sd1 else "sd1")


def _metadata_family(path: str) -> str:
    """kohya's ``ss_base_model_version`` (``sd_v1``, ``sdxl_base_v1-0``, ``sd_v2``…) when the file has it."""
    if not path.lower().endswith(".safetensors") or not os.path.isfile(path):
        return "unknown"
    from .checkpoint import read_safetensors_metadata

    try:
        version = read_safetensors_metadata(path).get("ss_base_model_version", "")
    except ValueError:
        return "unknown"
    if version.startswith("sdxl"):
        return "sdxl"
    if version.startswith("sd_v1"):
        return "sd1"
    if version.startswith("sd_v2"):
        return "sd2"
    return "unknown"


def file_family(path: str, groups: Iterable[str]) -> str:
    family = _metadata_family(path)
    return family if family != "unknown" else lora_family(groups)


def load_network_lenient(path: "str | os.PathLike[str]", layers: Mapping[str, tuple[str, nn.Module]],
                         name: str) -> Any:
    """A network made for another family, bound group by group: groups whose tensors do not fit the layer
    they name are left out (recorded in ``unapplied``) instead of failing the whole file — A1111 logs such
    layers as errors and leaves them unchanged, so the result is the same."""
    from .checkpoint import load_state_dict
    from .networks import Network, NetworkError, load_network
    from .networks.keymap import normalize_keys

    source = os.fspath(path)
    tensors = load_state_dict(source)
    renamed = normalize_keys(tensors.keys())
    by_group: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        by_group.setdefault(renamed[key].partition(".")[0], {})[key] = tensor
    net = Network(name=name, source=source)
    for group, part in by_group.items():
        try:
            one = load_network(part, layers, name, source)
        except NetworkError as e:
            net.unapplied[group] = f"does not fit: {e}"
            continue
        net.modules.update(one.modules)
        net.ignored.extend(g for g in one.ignored if g not in net.ignored)
        net.unapplied.update(one.unapplied)
    return net


def network_family(network: Any, model_family: str) -> dict[str, Any]:
    groups = [m.group for m in network.modules.values()] + list(network.ignored) + list(network.unapplied)
    family = file_family(network.source, groups)
    matched = len(network.modules)
    total = matched + len(network.ignored) + len(network.unapplied)
    warning = ""
    names = {"sd1": "SD1", "sdxl": "SDXL", "sd2": "SD2"}
    if family in names and family != model_family:
        warning = (f"{network.name} was made for {names[family]} but the checkpoint is {names.get(model_family, model_family)}; "
                   f"{matched} of {total} of its layers apply, the rest change nothing")
    elif matched == 0 and total:
        warning = f"{network.name}: none of its {total} layers exist in this {names.get(model_family, model_family)} checkpoint"
    return {"family": family, "model_family": model_family, "matched": matched, "unmatched": total - matched,
            "warning": warning}
