"""Image upscaling as A1111 v1.10.1 does it around a model (`upscaler_utils.py`, `upscaler.py`, `images.py`).

* `upscale_with_model`: split the picture into overlapping tiles (`split_grid`; tiles are PIL crops, so a tile
  reaching outside the picture is padded with black and the model sees it), run each tile through the model in
  BGR order, quantise each tile to uint8 on its own, and blend them back with A1111's 8-bit masks
  (`combine_grid`). `tile_size` 0 runs the whole picture at once.
* `upscale`: A1111's `Upscaler.upscale`: up to three model passes towards `(W·scale)//8·8 × (H·scale)//8·8`, then
  LANCZOS to exactly that size.
* `UpscalerCatalog`: the upscalers a user has: A1111's built-ins (None, Lanczos, Nearest) and every ESRGAN-family
  file under `models/ESRGAN` and `models/RealESRGAN`, named as A1111 names them.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np
import torch
from PIL import Image

from .esrgan import UPSCALER_EXTENSIONS, UpscalerModel, load_upscaler

LANCZOS = Image.Resampling.LANCZOS if hasattr(Image, "Resampling") else Image.LANCZOS
NEAREST = Image.Resampling.NEAREST if hasattr(Image, "Resampling") else Image.NEAREST

# A1111 defaults of the "ESRGAN_tile" and "ESRGAN_tile_overlap" settings.
DEFAULT_TILE = 192
DEFAULT_TILE_OVERLAP = 8

TileModel = Callable[[torch.Tensor], torch.Tensor]  # [1,3,h,w] BGR in [0,1] → [1,3,h·s,w·s] in [0,1]


def pil_to_bgr_tensor(im: Image.Image) -> torch.Tensor:
    """RGB picture → float32 [1,3,H,W] BGR; the /255 happens in float64 as in A1111, then float32."""
    a = np.array(im.convert("RGB"))[:, :, ::-1]
    a = np.ascontiguousarray(np.transpose(a, (2, 0, 1))) / 255
    return torch.from_numpy(a).unsqueeze(0).to(torch.float32)


def bgr_tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """[1,3,H,W] BGR → RGB picture: clamp, ×255 in float32, round half to even, uint8 (A1111's conversion)."""
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {t.shape[0]}")
        t = t[0]
    a = t.detach().float().cpu().clamp_(0, 1).numpy()
    a = 255.0 * np.moveaxis(a, 0, 2)
    a = a.round().astype(np.uint8)[:, :, ::-1]
    return Image.fromarray(np.ascontiguousarray(a), "RGB")


@dataclass
class Grid:
    """A1111's `images.Grid`: rows of (y, h, [(x, w, tile)])."""

    tiles: list = field(default_factory=list)
    tile_w: int = 0
    tile_h: int = 0
    image_w: int = 0
    image_h: int = 0
    overlap: int = 0


def split_grid(image: Image.Image, tile_w: int, tile_h: int, overlap: int) -> Grid:
    """Tiles of exactly tile_w × tile_h spread evenly, the last flush with the edge (negative when the picture is
    smaller than a tile)."""
    w, h = image.width, image.height
    if tile_w <= overlap or tile_h <= overlap:
        raise ValueError(f"tile size {tile_w}x{tile_h} must exceed the overlap {overlap}")
    cols = math.ceil((w - overlap) / (tile_w - overlap))
    rows = math.ceil((h - overlap) / (tile_h - overlap))
    dx = (w - tile_w) / (cols - 1) if cols > 1 else 0
    dy = (h - tile_h) / (rows - 1) if rows > 1 else 0
    grid = Grid([], tile_w, tile_h, w, h, overlap)
    for row in range(max(rows, 1)):
        y = int(row * dy)
        if y + tile_h >= h:
            y = h - tile_h
        line = []
        for col in range(max(cols, 1)):
            x = int(col * dx)
            if x + tile_w >= w:
                x = w - tile_w
            line.append([x, tile_w, image.crop((x, y, x + tile_w, y + tile_h))])
        grid.tiles.append([y, tile_h, line])
    return grid


def _mask(length: int, across: int, horizontal: bool) -> Image.Image:
    # uint8(float32(i) * 255 / overlap): a ramp that never reaches 255.
    r = np.arange(length, dtype=np.float32) * 255 / length
    r = r.astype(np.uint8)
    a = np.repeat(r[None, :], across, axis=0) if horizontal else np.repeat(r[:, None], across, axis=1)
    return Image.fromarray(np.ascontiguousarray(a), "L")


def combine_grid(grid: Grid) -> Image.Image:
    """Blends the tiles back: in each row every tile after the first fades in over the overlap (8-bit PIL mask)
    and then overwrites the rest; rows are combined the same way vertically."""
    ov = grid.overlap
    mask_w = _mask(ov, grid.tile_h, True) if ov > 0 else None
    mask_h = _mask(ov, grid.image_w, False) if ov > 0 else None
    combined = Image.new("RGB", (grid.image_w, grid.image_h))
    for y, h, row in grid.tiles:
        line = Image.new("RGB", (grid.image_w, h))
        for x, w, tile in row:
            if x == 0:
                line.paste(tile, (0, 0))
                continue
            if mask_w is not None:
                line.paste(tile.crop((0, 0, ov, h)), (x, 0), mask=mask_w)
            line.paste(tile.crop((ov, 0, w, h)), (x + ov, 0))
        if y == 0:
            combined.paste(line, (0, 0))
            continue
        if mask_h is not None:
            combined.paste(line.crop((0, 0, line.width, ov)), (0, y), mask=mask_h)
        combined.paste(line.crop((0, ov, line.width, h)), (0, y + ov))
    return combined


def upscale_pil_patch(model: TileModel, im: Image.Image) -> Image.Image:
    with torch.no_grad():
        return bgr_tensor_to_pil(model(pil_to_bgr_tensor(im)))


def upscale_with_model(model: TileModel, im: Image.Image, tile_size: int = DEFAULT_TILE,
                       tile_overlap: int = DEFAULT_TILE_OVERLAP,
                       should_cancel: Optional[Callable[[], bool]] = None) -> Image.Image:
    """A1111 `upscaler_utils.upscale_with_model`: one model pass over the picture, tiled."""
    if tile_size <= 0:
        return upscale_pil_patch(model, im)
    grid = split_grid(im, tile_size, tile_size, tile_overlap)
    rows = []
    scale = 1
    for y, h, row in grid.tiles:
        line = []
        for x, w, tile in row:
            if should_cancel is not None and should_cancel():
                raise KeyboardInterrupt("upscale cancelled")
            out = upscale_pil_patch(model, tile)
            scale = out.width // tile.width
            line.append([x * scale, w * scale, out])
        rows.append([y * scale, h * scale, line])
    return combine_grid(Grid(rows, grid.tile_w * scale, grid.tile_h * scale, grid.image_w * scale,
                             grid.image_h * scale, grid.overlap * scale))


def upscale(im: Image.Image, scale: float, one_pass: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """A1111 `Upscaler.upscale`: model passes until the picture covers the destination (at most 3, stopping when a
    pass does not change the size), then LANCZOS to `(int(W·scale//8·8), int(H·scale//8·8))`."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    dest_w = int((im.width * scale) // 8 * 8)
    dest_h = int((im.height * scale) // 8 * 8)
    if dest_w <= 0 or dest_h <= 0:
        raise ValueError(f"{im.width}x{im.height} at scale {scale} is smaller than 8 pixels")
    for i in range(3):
        if im.width >= dest_w and im.height >= dest_h and (i > 0 or scale != 1):
            break
        shape = (im.width, im.height)
        im = one_pass(im)
        if shape == (im.width, im.height):
            break
    if im.width != dest_w or im.height != dest_h:
        im = im.resize((dest_w, dest_h), resample=LANCZOS)
    return im


# ---- the user's upscalers ------------------------------------------------------------------------------

BUILTIN = ("None", "Lanczos", "Nearest")
# A1111's RealESRGAN entries: the file each downloads into models/RealESRGAN, and the name it shows.
REALESRGAN_NAMES = {
    "RealESRGAN_x4plus": "R-ESRGAN 4x+",
    "RealESRGAN_x4plus_anime_6B": "R-ESRGAN 4x+ Anime6B",
    "RealESRGAN_x2plus": "R-ESRGAN 2x+",
}


@dataclass(frozen=True)
class UpscalerEntry:
    name: str
    kind: str  # "builtin" or "model"
    path: Optional[str] = None
    folder: Optional[str] = None  # ESRGAN or RealESRGAN


def _files(folder: Path) -> Iterable[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in UPSCALER_EXTENSIONS)


class UpscalerCatalog:
    """Built-ins plus the files in `<models>/ESRGAN` and `<models>/RealESRGAN` (A1111's `modelloader` folders)."""

    def __init__(self, models_dirs: Iterable["str | os.PathLike[str]"] = (), tile: int = DEFAULT_TILE,
                 tile_overlap: int = DEFAULT_TILE_OVERLAP, device: "torch.device | str" = "cpu") -> None:
        self.tile = int(tile)
        self.tile_overlap = int(tile_overlap)
        self.device = device
        entries = [UpscalerEntry(n, "builtin") for n in BUILTIN]
        for base in models_dirs:
            base = Path(base)
            for folder in ("ESRGAN", "RealESRGAN"):
                for p in _files(base / folder):
                    name = REALESRGAN_NAMES.get(p.stem, p.stem) if folder == "RealESRGAN" else p.stem
                    entries.append(UpscalerEntry(name, "model", str(p), folder))
        self.entries = entries
        self._loaded: dict[str, UpscalerModel] = {}

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def find(self, name: str) -> UpscalerEntry:
        for e in self.entries:
            if e.name == name:
                return e
        lowered = name.lower()
        for e in self.entries:
            if e.name.lower() == lowered:
                return e
        raise ValueError(f"no upscaler named {name!r}; available: {', '.join(self.names())}")

    def model(self, entry: UpscalerEntry) -> UpscalerModel:
        """The loaded network of a file entry (loaded once; a file that fails is an error naming it)."""
        if entry.path is None:
            raise ValueError(f"{entry.name} is a built-in upscaler, it has no model")
        if entry.path not in self._loaded:
            self._loaded[entry.path] = load_upscaler(entry.path, self.device)
        return self._loaded[entry.path]

    def one_pass(self, name: str, should_cancel: Optional[Callable[[], bool]] = None) -> Callable[[Image.Image], Image.Image]:
        """One tiled model pass of a file upscaler (A1111's `do_upscale`)."""
        entry = self.find(name)
        if entry.kind == "builtin":
            raise ValueError(f"{entry.name} is a built-in upscaler without a model; use upscale_image")
        model = self.model(entry)
        return lambda im: upscale_with_model(model, im, self.tile, self.tile_overlap, should_cancel)

    def upscale_image(self, name: str, im: Image.Image, scale: float,
                      should_cancel: Optional[Callable[[], bool]] = None) -> Image.Image:
        """A1111's Extras "Resize" with one upscaler: `Upscaler.upscale(img, scale)`."""
        entry = self.find(name)
        if entry.kind == "builtin":
            if entry.name == "None":  # do_upscale returns the picture; the final LANCZOS does the resize
                return upscale(im, scale, lambda i: i)
            resample = LANCZOS if entry.name == "Lanczos" else NEAREST
            # UpscalerLanczos/Nearest.do_upscale: resize to int(W·scale) × int(H·scale) in one go.
            return upscale(im, scale, lambda i: i.resize((int(i.width * scale), int(i.height * scale)), resample=resample))
        return upscale(im.convert("RGB"), scale, self.one_pass(name, should_cancel))

    def as_image_upscale(self, name: str, should_cancel: Optional[Callable[[], bool]] = None
                         ) -> Optional[Callable[[Image.Image, float], Image.Image]]:
        """The (image, scale) → image function `img2img.resize_image` takes; None for "None" (plain LANCZOS)."""
        if self.find(name).name == "None":
            return None
        return lambda im, scale: self.upscale_image(name, im, scale, should_cancel)
