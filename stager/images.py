"""Safe image loading and mask helpers.

Conventions: images are ``HxWx3 uint8`` RGB; products carry alpha as ``HxWx4 uint8``;
masks are ``HxW bool`` with True = the region named.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import get_settings

Source = Union[str, Path, bytes, io.BytesIO, Image.Image, np.ndarray]


class ImageError(ValueError):
    """Bad image input; the message is one line naming the input and the fix."""


def _name(src: Source) -> str:
    if isinstance(src, (str, Path)):
        return Path(src).name
    return "uploaded image"


def _to_8bit(im: Image.Image) -> Image.Image:
    """Integer/float single-channel modes (I;16, I, F) to L by their value range."""
    arr = np.asarray(im, dtype=np.float64)
    if im.mode.startswith("I;16") or (im.mode == "I" and arr.max(initial=0) <= 65535):
        scale = 65535.0 if arr.max(initial=0) > 255 else 255.0
    else:
        lo, hi = float(arr.min(initial=0)), float(arr.max(initial=1))
        arr = (arr - lo) / max(hi - lo, 1e-9)
        scale = 1.0
    out = np.clip(np.round(arr / scale * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(out, mode="L")


def pil_to_array(im: Image.Image, keep_alpha: bool = True) -> np.ndarray:
    """Any PIL mode to ``HxWx3`` (or ``HxWx4`` when it has alpha and ``keep_alpha``) uint8."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        im = _to_8bit(im)
    elif mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        im = im.convert("RGBA")
    elif mode == "CMYK":
        im = im.convert("RGB")
    elif mode not in ("RGB", "RGBA"):
        im = im.convert("RGB")
    if im.mode == "RGBA" and keep_alpha:
        return np.asarray(im, dtype=np.uint8).copy()
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def load_image(src: Source, keep_alpha: bool = True, max_side: int | None = None) -> np.ndarray:
    """Load a file, bytes, PIL image or array as uint8 RGB (``HxWx3``) or RGBA (``HxWx4``).

    Applies EXIF orientation, converts every PIL mode, refuses images over the
    ``max_pixels`` setting, and downsizes to ``max_side`` (default: setting) keeping aspect.
    Raises ``ImageError`` with a one-line message for anything that is not a usable image.
    """
    settings = get_settings()
    name = _name(src)
    if isinstance(src, np.ndarray):
        return _check_array(src, name, keep_alpha)
    Image.MAX_IMAGE_PIXELS = settings.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if isinstance(src, Image.Image):
                im = src
            else:
                if isinstance(src, bytes):
                    src = io.BytesIO(src)
                if isinstance(src, (str, Path)) and not Path(src).is_file():
                    raise ImageError(f"{name}: file not found")
                im = Image.open(src)
            w, h = im.size
            if w * h > settings.max_pixels:
                raise ImageError(
                    f"{name} is {w}x{h} pixels, over the limit of {settings.max_pixels:,}; "
                    "downscale it or raise STAGER_MAX_PIXELS"
                )
            im.load()
            im = ImageOps.exif_transpose(im)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name} is over the limit of {settings.max_pixels:,} pixels; "
                         "downscale it or raise STAGER_MAX_PIXELS") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        what = ("not a known image format" if isinstance(exc, UnidentifiedImageError)
                else "damaged or truncated")
        raise ImageError(f"{name} is not an image that can be read ({what}: use a PNG, JPEG "
                         "or WebP file)") from exc
    if im.size[0] == 0 or im.size[1] == 0:
        raise ImageError(f"{name} is empty (0 pixels)")
    arr = pil_to_array(im, keep_alpha=keep_alpha)
    return limit_side(arr, max_side or settings.max_side)


def _check_array(arr: np.ndarray, name: str, keep_alpha: bool) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{name} has shape {arr.shape}; expected HxWx3 or HxWx4")
    if arr.dtype != np.uint8:
        if arr.dtype == np.uint16:
            arr = (arr.astype(np.float32) / 257.0).round()
        elif np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.shape[2] == 4 and not keep_alpha:
        arr = arr[..., :3]
    return np.ascontiguousarray(arr)


def limit_side(arr: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale (INTER_AREA) so the longest side is at most ``max_side``; RGBA with
    ``resize_rgba``."""
    h, w = arr.shape[:2]
    if max(h, w) <= max_side:
        return arr
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if arr.ndim == 3 and arr.shape[2] == 4:
        return resize_rgba(arr, size, cv2.INTER_AREA)
    return cv2.resize(arr, size, interpolation=cv2.INTER_AREA)


def resize_rgba(rgba: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_AREA
                ) -> np.ndarray:
    """Resize straight-alpha RGBA (uint8) to ``size`` = (width, height) with premultiplied
    colour: a pixel on the edge mixes only the colours of the visible pixels it covers. A
    plain resize also mixes in the colour hidden under alpha 0 (the removed backdrop, often
    white), and the pasted product gets a pale fringe on a dark floor. Where the resized alpha
    is 0 the colour is resized plainly: a product photo's shadow is read from the colour under
    alpha 0 (``segment.cutout_layers``)."""
    a = rgba[..., 3].astype(np.float32)
    prem = rgba[..., :3].astype(np.float32) * (a[..., None] / 255.0)
    prem = cv2.resize(prem, size, interpolation=interpolation)
    a = cv2.resize(a, size, interpolation=interpolation)
    rgb = prem * 255.0 / np.maximum(a, 1e-3)[..., None]
    plain = cv2.resize(rgba[..., :3], size, interpolation=interpolation).astype(np.float32)
    rgb = np.where((a > 0)[..., None], rgb, plain)
    return np.dstack([np.clip(rgb + 0.5, 0, 255), np.clip(a + 0.5, 0, 255)]).astype(np.uint8)


def to_rgb(arr: np.ndarray, background: int = 255) -> np.ndarray:
    """RGBA over a flat background (default white) to RGB; RGB passes through."""
    if arr.shape[2] == 3:
        return arr
    a = arr[..., 3:4].astype(np.float32) / 255.0
    out = arr[..., :3].astype(np.float32) * a + background * (1.0 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def save_png(path: str | Path, arr: np.ndarray) -> Path:
    """Write an RGB/RGBA uint8 array or a bool mask to PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    Image.fromarray(arr).save(path, optimize=False, compress_level=1)
    return path


def load_mask(src: Source) -> np.ndarray:
    """A mask image (any mode) to ``HxW bool`` (True where the image is brighter than mid-grey)."""
    arr = load_image(src, keep_alpha=True, max_side=1 << 16)
    if arr.shape[2] == 4 and arr[..., 3].min() < 255:
        return arr[..., 3] > 127
    return arr[..., :3].mean(axis=2) > 127


# ---------------------------------------------------------------- mask helpers

def disk(radius: int) -> np.ndarray:
    """A filled disk structuring element of the given radius (uint8)."""
    r = max(int(radius), 0)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of a bool mask by a disk of ``radius`` px."""
    if radius <= 0:
        return mask.copy()
    return cv2.dilate(mask.astype(np.uint8), disk(radius)).astype(bool)


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary erosion of a bool mask by a disk of ``radius`` px."""
    if radius <= 0:
        return mask.copy()
    return cv2.erode(mask.astype(np.uint8), disk(radius)).astype(bool)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` half-open box of the True pixels, or None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def check_mask(mask: np.ndarray, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """Validate a mask against an image shape: bool, same size, neither empty nor full."""
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ImageError(f"{name} is {mask.shape[1]}x{mask.shape[0]} but the image is "
                         f"{shape[1]}x{shape[0]}")
    mask = mask.astype(bool)
    if not mask.any():
        raise ImageError(f"{name} is empty: mark the region to fill")
    if mask.all():
        raise ImageError(f"{name} covers the whole image: nothing is left as context")
    return mask


def overlay(image: np.ndarray, mask: np.ndarray, color=(255, 64, 160), alpha: float = 0.45,
            outline: bool = True) -> np.ndarray:
    """Tint ``mask`` on an RGB image (and draw its outline) for display."""
    out = image[..., :3].astype(np.float32).copy()
    c = np.array(color, np.float32)
    out[mask] = out[mask] * (1 - alpha) + c * alpha
    out = out.astype(np.uint8)
    if outline and mask.any():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(v) for v in color), 2)
    return out


def checkerboard(rgba: np.ndarray, cell: int = 16) -> np.ndarray:
    """RGBA over a grey checkerboard (to show alpha) as RGB."""
    h, w = rgba.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // cell) + (xx // cell)) % 2 == 0, 235, 200).astype(np.float32)
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgba[..., :3].astype(np.float32) * a + board[..., None] * (1 - a)
    return out.astype(np.uint8)
