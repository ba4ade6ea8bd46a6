"""One loaded checkpoint driven step by step from C#: networks, conditioning, samplers, images.

The C# engine decides *what* (texts, multipliers per step); this module decides *how*. Everything that must
outlive a call (conditioning tensors, running samplers) stays here behind integer handles, so only ids,
multipliers and PNG bytes cross the boundary.
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import torch

from .conditioning import encode_prompt
from .images import encode_pngs
from .lbw import BlockWeights, to26
from .networks import Network, NetworkError
from .patcher import Activation, Patcher
from .rng import ImageRNG, image_seeds
from .samplers import SamplerState

if TYPE_CHECKING:
    from .embeddings import EmbeddingStore

NetworkSetting = tuple[str, float, float, Optional[int]]  # name, te, unet, dyn

# Loaded networks kept for reuse (gen_set_lora_cache); a library user switching among a few LoRAs reads each once.
DEFAULT_LORA_CACHE_MIB = 1024.0


def network_nbytes(network: Network) -> int:
    """Bytes of the tensors a loaded network holds (its modules' factors, biases, scales)."""
    total = 0
    for module in network.modules.values():
        for value in vars(module).values():
            items = value if isinstance(value, (list, tuple)) else (value,)
            total += sum(t.numel() * t.element_size() for t in items if isinstance(t, torch.Tensor))
    return total


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    path: str
    layers: int  # model layers the file reaches


class Session:
    """A checkpoint with its patcher and the tensors the engine refers to by handle."""

    def __init__(self, checkpoint: "str | os.PathLike[str]", device: Optional[str] = None,
                 precision: str = "autocast", no_half_vae: bool = False) -> None:
        self.checkpoint = os.fspath(checkpoint)
        self.device = device or default_device()
        # SD1 or SDXL, told apart from the keys and shapes (lorabridge.sdxl.detect_family); refused families
        # raise with what was recognised. `precision` follows A1111 (see lorabridge.sdxl.precision_for).
        from .model_loading import load_model

        self.precision_mode = precision
        self.model = load_model(self.checkpoint, device=self.device, precision=precision, no_half_vae=no_half_vae)
        self.family = getattr(self.model, "family", "sd1")
        if self.model.missing_parts:
            raise ValueError(f"{self.checkpoint}: cannot generate images, the checkpoint has no "
                             f"{', '.join(self.model.missing_parts)}")
        self.patcher = Patcher(self.model)
        # Least recently used first; bounded by lora_cache_bytes, except for the networks the model holds now.
        self.networks: "OrderedDict[str, Network]" = OrderedDict()
        self._network_paths: dict[str, str] = {}
        self._network_bytes: dict[str, int] = {}
        self.lora_cache_bytes = int(DEFAULT_LORA_CACHE_MIB * 2**20)
        self.networks_evicted = 0
        self.block_weights: dict[str, BlockWeights] = {}
        self.patch_layers = 0      # layers re-merged or restored, cumulative (batch manifests report per job)
        self.patch_seconds = 0.0   # time spent doing it
        self._objects: dict[int, object] = {}
        self._next_handle = 1

    # --- handles -------------------------------------------------------------------------------------
    def _keep(self, obj: object) -> int:
        handle = self._next_handle
        self._next_handle += 1
        self._objects[handle] = obj
        return handle

    def _get(self, handle: int, kind: type) -> object:
        obj = self._objects.get(handle)
        if not isinstance(obj, kind):
            raise KeyError(f"handle {handle} is not a live {kind.__name__}")
        return obj

    def release(self, handle: int) -> bool:
        return self._objects.pop(handle, None) is not None

    # --- networks ------------------------------------------------------------------------------------
    def load_network(self, name: str, path: "str | os.PathLike[str]") -> NetworkInfo:
        """Reads and validates a LoRA-family file once; later activations refer to it by name."""
        return self._load_network(name, path, keep={name})

    def _load_network(self, name: str, path: "str | os.PathLike[str]", keep: set[str]) -> NetworkInfo:
        if name in self.networks:
            self.networks.move_to_end(name)
        else:
            try:
                self.networks[name] = self.patcher.load(path, name)
            except NetworkError:
                # A file made for the other family (SD1 LoRA on SDXL and back) applies where it fits, as in
                # A1111; a file of this family that does not fit stays an error.
                from .checkpoint import load_state_dict
                from .networks.keymap import normalize_keys
                from .sdxl import file_family, load_network_lenient

                groups = {k.partition(".")[0] for k in normalize_keys(load_state_dict(path).keys()).values()}
                if file_family(os.fspath(path), groups) in (self.family, "unknown"):
                    raise
                network = load_network_lenient(path, self.patcher.layers, name)
                if hasattr(self.model, "filter_network"):
                    self.model.filter_network(network)
                self.networks[name] = network
            self._network_bytes[name] = network_nbytes(self.networks[name])
            self._evict_networks(keep)
            warning = self.network_family(name)["warning"]
            if warning:
                import warnings

                warnings.warn(warning, stacklevel=2)
        self._network_paths[name] = os.fspath(path)
        return NetworkInfo(name, os.fspath(path), len(self.networks[name].modules))

    def network_family(self, name: str) -> dict:
        """The family a loaded network was made for (from its key names) against the model's, with a warning
        text when they differ or nothing of it applies; see lorabridge.sdxl.network_family."""
        from .sdxl import network_family

        network = self.networks.get(name)
        if network is None:
            raise KeyError(f"network {name!r} is not loaded; load_network it first")
        return network_family(network, self.family)

    def set_networks(self, settings: Sequence[NetworkSetting],
                     should_cancel: Optional[Callable[[], bool]] = None) -> int:
        """Makes the model equal to the base weights with exactly these networks applied, in order.

        Absolute, so a repeated or lost command cannot drift the weights. Returns the layers recomputed.
        """
        activations = []
        for name, te, unet, dyn in settings:
            network = self.networks.get(name)
            if network is None and name in self._network_paths:
                # Evicted by the cache bound since it was loaded: read again (a file gone meanwhile is an error
                # naming it, never a stale merge).
                self._load_network(name, self._network_paths[name], keep={n for n, *_ in settings})
                network = self.networks.get(name)
            if network is None:
                raise KeyError(f"network {name!r} is not loaded; load_network it first")
            self.networks.move_to_end(name)
            activations.append(Activation(network, float(te), float(unet), None if dyn is None else int(dyn),
                                          self.block_weights.get(name)))
        start = time.perf_counter()
        try:
            n = self.patcher.apply(activations, should_cancel)
        finally:
            self.patch_seconds += time.perf_counter() - start
        self.patch_layers += n
        return n

    def set_lora_cache(self, mib: float) -> None:
        """Bounds the memory of loaded networks kept for reuse (0 keeps only those in use)."""
        if not mib >= 0:
            raise ValueError(f"the LoRA cache size must be 0 or more MiB, got {mib}")
        self.lora_cache_bytes = int(mib * 2**20)
        self._evict_networks(keep=set())

    def _evict_networks(self, keep: set[str]) -> None:
        """Drops least recently used networks until the cache fits its bound; networks the model holds now and
        `keep` stay whatever their size."""
        in_use = {net.name for net in self.patcher.active_networks()} | keep
        total = sum(self._network_bytes.values())
        for name in list(self.networks):
            if total <= self.lora_cache_bytes:
                break
            if name in in_use:
                continue
            network = self.networks.pop(name)
            self.patcher.forget(network)
            total -= self._network_bytes.pop(name, 0)
            self.networks_evicted += 1

    def set_block_weights(self, table: Sequence[tuple[str, Sequence[float], str]]) -> None:
        """Replaces the LoRA block weights by network name (LBW: 12/17/20 values expand to 26 by count)."""
        self.block_weights = {name: BlockWeights(tuple(to26(list(values))), elemental) for name, values, elemental in table}

    def restore(self) -> None:
        """Base weights back, bit for bit."""
        self.patcher.restore()

    # --- conditioning --------------------------------------------------------------------------------
    def encode(self, token_ids: Sequence[Sequence[int]], weights: Sequence[Sequence[float]], clip_skip: int = 1) -> int:
        """Encodes one prompt's 77-token chunks under the text encoder's current network weights."""
        return self.encode_batch([token_ids], [weights], clip_skip)[0]

    def encode_batch(self, token_ids: Sequence[Sequence[Sequence[int]]], weights: Sequence[Sequence[Sequence[float]]],
                     clip_skip: int = 1) -> list[int]:
        """Encodes texts as ONE batch [texts, chunks, 77], as A1111 encodes the texts of one prompt's schedule:
        "Original" emphasis restores the mean of the whole batch, so the batch is part of the result. The caller
        pads texts to the same chunk count with A1111's empty chunk. Returns one handle per text."""
        if self.family != "sd1":
            raise ValueError(f"{self.checkpoint} is an {self.family.upper()} checkpoint; encode with encode_batch_xl")
        counts = {len(t) for t in token_ids}
        if len(counts) != 1:
            raise ValueError(f"every text of a batch needs the same number of chunks, got {sorted(counts)}")
        ids = [[list(c) for c in t] for t in token_ids]
        w = [[list(c) for c in t] for t in weights]
        with self._autocast():
            z = encode_prompt(self.model.text_encoder, ids, w, clip_skip)
        return [self._keep(z[i]) for i in range(z.shape[0])]

    def encode_batch_xl(self, ids_te1: Sequence, ids_te2: Optional[Sequence], weights: Sequence, width: int,
                        height: int, zero_text: bool = False, crop: tuple[int, int] = (0, 0),
                        original_size: Optional[tuple[int, int]] = None, fixes: Optional[Sequence] = None) -> list[int]:
        """SDXL: texts [texts][chunks][77] of one prompt's schedule as one batch (see encode_batch); te2 ids
        None = derived from te1's. ``fixes``: per text and chunk, [offset, key, path] of textual-inversion
        embeddings (read once per key into the session's embedding store). One handle per text, usable wherever
        an SD1 conditioning handle is."""
        from .sdxl import pack_cond

        if self.family != "sdxl":
            raise ValueError(f"{self.checkpoint} is an SD1 checkpoint; encode with encode_batch")
        counts = {len(t) for t in ids_te1}
        if len(counts) != 1:
            raise ValueError(f"every text of a batch needs the same number of chunks, got {sorted(counts)}")
        loaded = None
        if fixes is not None and any(chunk for text in fixes for chunk in text):
            store = self.embeddings()
            loaded = [[[(int(off), store.load(str(k), str(p))) for off, k, p in chunk] for chunk in text] for text in fixes]
        with self._autocast():
            crossattn, vector = self.model.get_learned_conditioning(
                ids_te1, ids_te2, weights, int(width), int(height), zero_text=bool(zero_text), crop=crop,
                original_size=original_size, fixes=loaded)
        packed = pack_cond(crossattn.float(), vector.float())
        return [self._keep(packed[i]) for i in range(packed.shape[0])]

    def embeddings(self) -> "EmbeddingStore":
        """The textual-inversion vectors this checkpoint's prompts used, kept as long as the session."""
        from .embeddings import EmbeddingStore

        store = getattr(self, "embedding_store", None)
        if store is None:
            store = self.embedding_store = EmbeddingStore()
        return store

    def _autocast(self):  # type: ignore[no-untyped-def]
        """torch.autocast(cuda, fp16) when the model runs A1111's default precision on CUDA, else a no-op."""
        from .model_loading import autocast_for

        return autocast_for(self.model, self.device)

    def model_info(self) -> dict:
        """Family, default size and precision of the loaded model (bridge gen_model_info)."""
        if hasattr(self.model, "info"):
            return self.model.info()
        from .model_loading import sd1_info

        return sd1_info(self.model, self.device)

    # --- sampling ------------------------------------------------------------------------------------
    def start(self, sampler: str, schedule: str, steps: int, seed: int, batch_size: int, width: int, height: int,
              randn_source: str = "GPU", eta_noise_seed_delta: int = 0) -> int:
        if width % 8 or height % 8 or width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive multiples of 8, got {width}x{height}")
        unet = self.model.unet
        rng = ImageRNG((unet.config.in_channels, height // 8, width // 8),
                       image_seeds(int(seed), int(batch_size)), source=randn_source, device=self.device,
                       eta_noise_seed_delta=int(eta_noise_seed_delta))
        from .model_loading import eps_model

        state = SamplerState(sampler, eps_model(self.model), rng, int(steps), scheduler=schedule,
                             alphas_cumprod=self.model.alphas_cumprod)
        return self._keep(state)

    def total_steps(self, handle: int) -> int:
        return self._get(handle, SamplerState).total  # type: ignore[union-attr]

    def step(self, handle: int, conds: Sequence[tuple[int, float]], uncond: int, cfg_scale: float) -> int:
        """One guided model call: `conds` are (conditioning handle, AND weight) parts, `uncond` the negative.

        Returns the steps left.
        """
        state: SamplerState = self._get(handle, SamplerState)  # type: ignore[assignment]
        parts = [(self._get(h, torch.Tensor), float(w)) for h, w in conds]
        negative = self._get(uncond, torch.Tensor)
        batch = state.x.shape[0]
        state.step([parts] * batch, [negative] * batch, float(cfg_scale))
        return state.total - state.i

    def decode_png(self, handle: int, infotexts: Sequence[Optional[str]]) -> list[bytes]:
        """Final latent → PNG bytes per image, each with its `parameters` text."""
        state: SamplerState = self._get(handle, SamplerState)  # type: ignore[assignment]
        with torch.no_grad(), self._autocast():
            decoded = self.model.decode_latents(state.x.to(self.device))
        return encode_pngs(decoded, list(infotexts))

    def sampler_params(self, handle: int) -> dict[str, str]:
        from .samplers import infotext_params
        return infotext_params(self._get(handle, SamplerState))  # type: ignore[arg-type]

    def weights_digest(self) -> str:
        """SHA-256 over every parameter and buffer of the model, in name order (restoration checks)."""
        import hashlib

        h = hashlib.sha256()
        for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
            module = getattr(self.model, part, None)
            if module is None:
                continue
            for name, t in sorted(list(module.named_parameters()) + list(module.named_buffers())):
                h.update(name.encode())
                h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
        return h.hexdigest()
