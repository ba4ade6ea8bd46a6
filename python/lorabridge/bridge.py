"""The product module C# calls into (through LoraBridge.Python.PythonBridge); test and benchmark plumbing is in
``lorabridge.diagnostics``. docs/ARCHITECTURE.md lists every function C# calls, and
python/tests/test_bridge_contract.py checks that each exists with the arguments C# passes.

Conventions every function here follows, so the C# side stays a thin typed wrapper:
- arguments are plain scalars, strings, lists/tuples or dicts of those; results C# reads by part are dicts
  (named fields), lists of plain values, or single values;
- tensors never cross the boundary: a prompt's conditioning and a sampling run live in the generation Session
  behind integer handles; tensors that C# reads or writes live in ``_tensors`` behind integer handles;
- what crosses how: tensor data as raw memory (C# copies into / out of the address that ``tensor_begin_write`` /
  ``tensor_begin_read`` return, a CPU contiguous staging buffer); PNG files as one ``bytes`` object read through
  the buffer protocol; token ids and emphasis weights as nested lists ([texts][chunks][77], a few hundred to a few
  thousand numbers per prompt, converted once per prompt, not per step); embedding requests as JSON text.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Optional

import torch

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "uint8": torch.uint8,
}

_tensors: dict[int, torch.Tensor] = {}
# CPU copies of non-CPU (or non-contiguous) tensors while C# reads or writes them.
_staging: dict[int, torch.Tensor] = {}
_next_handle = 1
# Handles retired when the hook they were lent to returned (lorabridge.ext_host): handle -> what it was.
_retired: dict[int, str] = {}


# ---------------------------------------------------------------- runtime information

def runtime_info() -> dict[str, Any]:
    """Interpreter, torch and device facts for `lorabridge doctor` and the tests."""
    info: dict[str, Any] = {
        "python_version": ".".join(str(p) for p in sys.version_info[:3]),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        "torch_version": str(torch.__version__),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS", ""),
        "omp_wait_policy_env": os.environ.get("OMP_WAIT_POLICY", ""),
        "device": "cpu",
        "device_name": "CPU",
        "cuda_available": torch.cuda.is_available(),
        "blas_library": _loaded_blas_library(),
    }
    if info["cuda_available"]:
        info["device"] = "cuda"
        info["device_name"] = torch.cuda.get_device_name(0)
    for module in ("numpy", "PIL"):
        try:
            mod = __import__(module)
            info[f"{module.lower()}_version"] = str(getattr(mod, "__version__", "unknown"))
        except ImportError:
            info[f"{module.lower()}_version"] = ""
    return info


def _loaded_blas_library() -> str:
    """Path of the BLAS shared library mapped into this process ('' when unknown).

    Debian's torch links the generic libblas.so.3 alternative; which implementation is
    behind it (reference or OpenBLAS) only shows in the resolved path.
    """
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return ""
    hits = sorted(p for p in paths if any(k in os.path.basename(p) for k in ("blas", "mkl_rt", "libmkl")))
    return ", ".join(os.path.realpath(p) for p in hits)


def blas_check(size: int = 1024, repeats: int = 3) -> dict[str, float]:
    """Times a float32 size³ matmul on the CPU; returns the best GFLOP/s of `repeats` runs."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)  # warm-up: first call pays thread-pool start-up and page faults
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return {"seconds": best, "gflops": 2.0 * size**3 / best / 1e9}


# ---------------------------------------------------------------- tensor handles

def _register(tensor: torch.Tensor) -> int:
    global _next_handle
    handle = _next_handle
    _next_handle += 1
    _tensors[handle] = tensor
    return handle


def tensor_get(handle: int) -> torch.Tensor:
    """The tensor behind `handle`; later bridge functions use it to accept handles."""
    try:
        return _tensors[handle]
    except KeyError:
        if handle in _retired:
            raise LookupError(f"tensor handle {handle} ({_retired[handle]}) was used after its step: a handle given to "
                              "a hook is valid only while that hook runs") from None
        raise KeyError(f"no tensor with handle {handle} (released or never created)") from None


def tensor_create(shape: tuple[int, ...] | list[int], dtype: str = "float32", device: str = "cpu") -> int:
    """Allocates a zero-filled tensor and returns its handle."""
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(_DTYPES)}")
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise ValueError(f"negative dimension in shape {dims}")
    return _register(torch.zeros(dims, dtype=_DTYPES[dtype], device=device))


def tensor_info(handle: int) -> dict[str, Any]:
    """{shape, dtype (name without "torch."), device, bytes}."""
    t = tensor_get(handle)
    return {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."), "device": str(t.device),
            "bytes": t.numel() * t.element_size()}


def tensor_release(handle: int) -> bool:
    """Drops the handle; True when it existed."""
    _staging.pop(handle, None)
    return _tensors.pop(handle, None) is not None


def tensor_count() -> int:
    """Number of live handles (leak checks)."""
    return len(_tensors)


def _direct(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and t.is_contiguous()


def _stage(handle: int, t: torch.Tensor) -> torch.Tensor:
    buf = _staging.get(handle)
    if buf is None or buf.shape != t.shape or buf.dtype != t.dtype:
        buf = torch.empty(t.shape, dtype=t.dtype, pin_memory=t.device.type == "cuda")
        _staging[handle] = buf
    return buf


def tensor_begin_write(handle: int) -> dict[str, int]:
    """{address, bytes} C# may fill; call tensor_end_write afterwards."""
    t = tensor_get(handle)
    return _span(t if _direct(t) else _stage(handle, t))


def _span(t: torch.Tensor) -> dict[str, int]:
    return {"address": t.data_ptr(), "bytes": t.numel() * t.element_size()}


def tensor_end_write(handle: int) -> None:
    """Moves staged bytes into the tensor (no-op for CPU contiguous tensors)."""
    t = tensor_get(handle)
    if not _direct(t):
        t.copy_(_staging.pop(handle))


def tensor_abort_write(handle: int) -> None:
    """Drops a staged write without touching the tensor (C# found a size mismatch before copying)."""
    _staging.pop(handle, None)


def tensor_begin_read(handle: int) -> dict[str, int]:
    """{address, bytes} C# may copy out of until tensor_end_read."""
    t = tensor_get(handle)
    if _direct(t):
        return _span(t)
    buf = _stage(handle, t)
    buf.copy_(t)
    return _span(buf)


def tensor_end_read(handle: int) -> None:
    """Releases the staging copy of a read."""
    _staging.pop(handle, None)


def shutdown_cleanup() -> None:
    """Drops every handle; the host calls it before finalizing (atexit does not run)."""
    global _session
    _tensors.clear()
    _staging.clear()
    _session = None


# ------------------------------------------------------------------ generation (lorabridge.generation.Session)

_session: Any = None  # lorabridge.generation.Session of the loaded checkpoint


def _require_session() -> Any:
    if _session is None:
        raise RuntimeError("no checkpoint is loaded; call gen_load_checkpoint first")
    return _session


# A1111's --precision / --no-half-vae for the next load (gen_set_precision).
_precision: dict[str, Any] = {"precision": "autocast", "no_half_vae": False}


def gen_load_checkpoint(path: str) -> bool:
    """Loads `path` unless it is already loaded; True when a load happened. A failed load keeps the old model."""
    global _session
    from .generation import Session

    if (_session is not None and _session.checkpoint == path
            and getattr(_session, "precision_settings", _precision) == _precision):
        return False
    session = Session(path, precision=_precision["precision"], no_half_vae=_precision["no_half_vae"])
    session.precision_settings = dict(_precision)
    if _lora_cache_mib[0] is not None:
        session.set_lora_cache(_lora_cache_mib[0])
    if _session is not None:
        _session.restore()
    _session = session
    return True


def gen_load_network(name: str, path: str) -> int:
    import warnings

    # The C# catalog reports a LoRA made for the other family itself; Python's warning would print it twice.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _require_session().load_network(name, path).layers


def gen_set_networks(settings: list) -> int:
    import warnings

    with warnings.catch_warnings():  # a network evicted from the LoRA cache is read again here (see gen_load_network)
        warnings.simplefilter("ignore", UserWarning)
        return _require_session().set_networks([(str(n), float(te), float(u), None if d is None else int(d))
                                                for n, te, u, d in settings])


def gen_set_block_weights(table: list) -> None:
    """LoRA block weights by network name: [(name, values (12/17/20/26/61), elemental text)]; [] clears."""
    _require_session().set_block_weights([(str(n), [float(v) for v in w], str(e)) for n, w, e in table])


def gen_patch_totals() -> dict[str, Any]:
    """{layers, seconds}: layers patched and seconds spent patching since the session was created; 0 without one."""
    if _session is None:
        return {"layers": 0, "seconds": 0.0}
    return {"layers": int(_session.patch_layers), "seconds": float(_session.patch_seconds)}


def gen_layer_errors() -> list:
    """Networks whose layers failed to merge as the model is patched now: [{name, file, layers, first}] (first: the
    first failing layer's message)."""
    if _session is None:
        return []
    return [{"name": name, "file": file, "layers": int(layers), "first": first}
            for name, file, layers, first in _session.patcher.layer_error_summary()]


def gen_restore() -> None:
    if _session is not None:
        _session.restore()


def gen_encode(token_ids: list, weights: list, clip_skip: int) -> list:
    """Texts [texts][chunks][77] encoded as one batch (A1111 encodes one prompt's schedule together)."""
    return _require_session().encode_batch(token_ids, weights, int(clip_skip))


def gen_start(sampler: str, schedule: str, steps: int, seed: int, batch_size: int, width: int, height: int,
              randn_source: str, eta_noise_seed_delta: int) -> dict[str, Any]:
    s = _require_session()
    handle = s.start(sampler, schedule, steps, seed, batch_size, width, height, randn_source, eta_noise_seed_delta)
    return _run(s, handle, s.sampler_params(handle))


def _run(session: Any, handle: int, params: dict) -> dict[str, Any]:
    """What C# reads of a started sampling run: handle, model calls, infotext (key, value) pairs in A1111's order."""
    return {"handle": int(handle), "total_calls": int(session.total_steps(handle)),
            "infotext": [(str(k), str(v)) for k, v in params.items()]}


def gen_step(handle: int, conds: list, uncond: int, cfg_scale: float) -> int:
    return _require_session().step(int(handle), [(int(h), float(w)) for h, w in conds], int(uncond), float(cfg_scale))


def gen_decode_png(handle: int, infotexts: list) -> list:
    return _require_session().decode_png(int(handle), [str(t) for t in infotexts])


def gen_release(handle: int) -> bool:
    return _session is not None and _session.release(int(handle))


def gen_weights_digest() -> str:
    return _require_session().weights_digest()


def gen_set_precision(precision: str = "autocast", no_half_vae: bool = False) -> bool:
    """A1111's `--precision full|autocast` and `--no-half-vae` for the next gen_load_checkpoint (a loaded model
    with other settings is reloaded by it). True when the settings changed. CPU runs are fp32 either way."""
    from .sdxl import precision_for

    precision_for("cpu", str(precision), bool(no_half_vae))  # validates the name
    new = {"precision": str(precision), "no_half_vae": bool(no_half_vae)}
    changed = new != _precision
    _precision.update(new)
    return changed


# Memory bound of the loaded-LoRA cache (gen_set_lora_cache), for the current and later sessions.
_lora_cache_mib: list[Optional[float]] = [None]  # None: the session's default


def gen_set_lora_cache(mib: float) -> int:
    """Bounds the memory of loaded LoRA-family networks kept between jobs (least recently used go first; the ones
    the model holds stay). Returns how many networks are loaded now."""
    mib = float(mib)
    if not mib >= 0:
        raise ValueError(f"the LoRA cache size must be 0 or more MiB, got {mib}")
    _lora_cache_mib[0] = mib
    if _session is None:
        return 0
    _session.set_lora_cache(mib)
    return len(_session.networks)


def gen_model_info() -> dict:
    """Family ("sd1"/"sdxl"), default size, text encoders, VAE scale, ADM width, precision of the loaded model."""
    return _require_session().model_info()


def checkpoint_family(path: str) -> dict:
    """Family, support, what was recognised and default size of a checkpoint, from its keys and shapes only."""
    from .model_loading import checkpoint_family as _family

    return _family(path)


def gen_encode_xl(ids_te1: list, ids_te2: Any, weights: list, width: int, height: int, zero_text: bool,
                  crop_top: int = 0, crop_left: int = 0, original_width: int = 0, original_height: int = 0,
                  fixes_json: str = "") -> list:
    """SDXL texts [texts][chunks][77] of one prompt's schedule, encoded as one batch; one handle per text.

    ids_te2 None: derived from ids_te1 (0 after the first end token). zero_text: A1111's empty negative prompt
    (every schedule text ''), text parts zeroed. original size 0: the image size. fixes_json: textual-inversion
    embeddings, [text][chunk][[offset, key, path]] as JSON ("" for none)."""
    import json

    original = None
    if int(original_width) > 0 and int(original_height) > 0:
        original = (int(original_width), int(original_height))
    fixes = json.loads(fixes_json) if fixes_json else None
    return _require_session().encode_batch_xl(ids_te1, ids_te2, weights, int(width), int(height), bool(zero_text),
                                              (int(crop_top), int(crop_left)), original, fixes)


def gen_network_family(name: str) -> dict:
    """Which family a loaded network was made for and how much of it reaches this model, with a warning text
    when it was made for another family (A1111 applies it anyway; its non-matching keys change nothing)."""
    return _require_session().network_family(name)


def ensure_demo_model_xl(folder: str) -> str:
    """The SDXL demo checkpoint in `folder` (beside the SD1 demo, same tokenizer), written on first use."""
    from pathlib import Path

    from . import demo_xl

    checkpoint = Path(folder) / "Stable-diffusion" / f"{demo_xl.CHECKPOINT_NAME}.safetensors"
    if not checkpoint.is_file():
        demo_xl.write_demo_model_xl(folder)
    return str(checkpoint)


def ensure_demo_model(folder: str) -> str:
    """The built-in demo checkpoint in `folder`, written on first use (its checkpoint file is written last)."""
    from pathlib import Path

    from . import demo

    checkpoint = Path(folder) / "Stable-diffusion" / f"{demo.CHECKPOINT_NAME}.safetensors"
    if not checkpoint.is_file():
        demo.write_demo_model(folder)
    return str(checkpoint)


# --- textual-inversion embeddings ----------------------------------------------------------------------------

def emb_describe_files(paths: list) -> str:
    """JSON array: one `lorabridge.embeddings.describe` object per path (pickles, images, safetensors)."""
    from .embeddings import describe_files

    return describe_files([str(p) for p in paths])


def gen_encode_fixed(request_json: str, clip_skip: int) -> list:
    """`gen_encode` with textual-inversion vectors written at their placeholders (request: ids, weights, fixes)."""
    import json

    from .embeddings import encode_request

    s = _require_session()
    z = encode_request(s.model.text_encoder, s.embeddings(), json.loads(request_json), int(clip_skip))
    return [s._keep(z[i]) for i in range(z.shape[0])]


def emb_text_encoder_width(weights: str) -> int:
    from .embeddings import encoder_width, text_encoder_from

    return encoder_width(text_encoder_from(str(weights)))


def emb_write_cond(weights: str, out_path: str, calls_json: str) -> str:
    """Conformance: runs encode calls on a text encoder, writes their outputs to an .npz; JSON list of errors."""
    import json

    from .embeddings import write_cond

    return json.dumps(write_cond(str(weights), str(out_path), json.loads(calls_json)))


# ------------------------------------------------------------------ img2img, hires fix, upscalers (generation_img)

def _upscaler_fn(models_dirs: list, name: Any, tile: int, tile_overlap: int) -> Any:
    """(image, scale) -> image for an image-upscaler name, None for LANCZOS / latent modes."""
    from .generation_img import catalog
    from .hires import latent_mode

    if name is None or str(name) in ("", "None") or latent_mode(str(name)) is not None:
        return None
    device = _session.device if _session is not None else "cpu"
    return catalog([str(d) for d in models_dirs], int(tile), int(tile_overlap), device).as_image_upscale(str(name))


def gen_start_img2img(sampler: str, schedule: str, steps: int, seed: int, batch_size: int, width: int, height: int,
                      randn_source: str, eta_noise_seed_delta: int, image_path: str, strength: float, resize_mode: str,
                      fix_steps: bool, upscaler: Any, models_dirs: list, tile: int, tile_overlap: int) -> dict[str, Any]:
    """img2img start (A1111 StableDiffusionProcessingImg2Img): handle, model calls, sampler infotext entries."""
    from .generation_img import start_img2img_run

    s = _require_session()
    up = _upscaler_fn(models_dirs, upscaler, tile, tile_overlap)
    handle = start_img2img_run(s, sampler, schedule, int(steps), int(seed), int(batch_size), int(width), int(height),
                               randn_source, int(eta_noise_seed_delta), str(image_path), float(strength),
                               str(resize_mode), bool(fix_steps), up)
    return _run(s, handle, s.sampler_params(handle))


def gen_start_hires(first_handle: int, sampler: str, schedule: str, steps: int, strength: float, scale: float,
                    resize_x: int, resize_y: int, upscaler: Any, models_dirs: list, tile: int, tile_overlap: int) -> dict[str, Any]:
    """Hires second pass after a finished first pass: handle, model calls, infotext entries of the pass."""
    from .generation_img import start_hires_run

    s = _require_session()
    name = None if upscaler is None else str(upscaler)
    up = _upscaler_fn(models_dirs, name, tile, tile_overlap)
    handle, params = start_hires_run(s, int(first_handle), sampler, schedule, int(steps), float(strength),
                                     float(scale), int(resize_x), int(resize_y), name, up)
    return _run(s, handle, params)


def hires_infotext(width: int, height: int, scale: float, resize_x: int, resize_y: int, strength: float, sampler: str,
                   hr_sampler: Any, hr_steps: int, upscaler: Any) -> list:
    """The hires entries A1111 writes, in its order, as (key, value) pairs."""
    from .generation_img import hires_params

    return hires_params(width, height, scale, resize_x, resize_y, strength, sampler,
                        None if hr_sampler is None else str(hr_sampler), hr_steps,
                        None if upscaler is None else str(upscaler))


def upscalers_list(models_dirs: list) -> list:
    """{name, kind, path} of every upscaler: built-ins, then files in <dir>/ESRGAN and <dir>/RealESRGAN."""
    from .upscaler import UpscalerCatalog

    return [{"name": e.name, "kind": e.kind, "path": e.path or ""}
            for e in UpscalerCatalog([str(d) for d in models_dirs]).entries]


def upscale_image(image_path: str, models_dirs: list, name: str, scale: float, tile: int, tile_overlap: int,
                  postprocessing: Any) -> dict[str, Any]:
    """A1111 Extras with one upscaler: {png (bytes), width, height}."""
    from .generation_img import upscale_png

    device = _session.device if _session is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    png, width, height = upscale_png(str(image_path), [str(d) for d in models_dirs], str(name), float(scale), int(tile),
                                     int(tile_overlap), None if postprocessing is None else str(postprocessing), device)
    return {"png": png, "width": int(width), "height": int(height)}


def gen_names() -> dict[str, list[str]]:
    """The sampler, schedule-type and RNG-source names generation accepts, so the host can refuse a typo before
    a checkpoint loads (issue 17). Read from the modules that define them, so a new sampler is known at once."""
    from .rng import RNG_SOURCES
    from .samplers import SAMPLERS
    from .schedules import SCHEDULERS
    return {"samplers": list(SAMPLERS), "schedules": list(SCHEDULERS), "rng_sources": list(RNG_SOURCES)}


# ------------------------------------------------------------------ C# extensions (lorabridge.ext_host)

def ext_call(extension: str, python_dir: str, module: str, function: str, args: list) -> Any:
    """An extension's `module.function(*args)` from its own python/ folder; tensors cross as handles."""
    from . import ext_host

    return ext_host.call(str(extension), str(python_dir), str(module), str(function), list(args))


def ext_tensor_ref(handle: int) -> Any:
    """The crossing form of a tensor handle (C# `TensorHandle`) for ext_call arguments."""
    from . import ext_host

    return ext_host.TensorRef(int(handle))


def ext_bytes_at(address: int, size: int) -> bytes:
    from . import ext_host

    return ext_host.bytes_at(address, size)


def gen_step_after_cfg(handle: int, conds: list, uncond: int, cfg_scale: float, callback: Any) -> int:
    """gen_step with callback(denoised handle, step, total, sigma) right after the CFG combine."""
    from . import ext_host

    return ext_host.step_with_after_cfg(_require_session(), int(handle), conds, int(uncond), float(cfg_scale), callback)


def gen_step_hooked(handle: int, conds: list, uncond: int, cfg_scale: float, before: Any, after: Any) -> int:
    """gen_step with before(x, step, total, sigma, cond, uncond) before the model call and/or after(...) after CFG."""
    from . import ext_host

    return ext_host.step_with_model_hooks(_require_session(), int(handle), conds, int(uncond), float(cfg_scale), before, after)


def gen_decode_rgb(handle: int) -> list:
    """Final latents → [(RGB bytes, width, height)], the pixels gen_decode_png would write."""
    from . import ext_host

    return ext_host.decode_rgb(_require_session(), int(handle))


def png_encode_rgb(rgb: bytes, width: int, height: int, parameters: str) -> bytes:
    from . import ext_host

    return ext_host.encode_png(rgb, int(width), int(height), str(parameters))


def gen_latent_preview(method: str, models_dirs: list[str]) -> Optional[tuple[int, int, bytes, str, str]]:
    """The running job's live preview by `method` ("auto", "cheap", "taesd"; TAESD files in `models_dirs`'
    VAE-approx) as (width, height, RGB bytes, method used: "cheap" or "taesd", note: empty, or why TAESD was not
    used), or None when nothing is sampling (see lorabridge.preview)."""
    from .preview import gen_latent_preview as preview

    return preview(method, models_dirs)
