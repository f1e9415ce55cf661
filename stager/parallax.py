"""Layered 2.5D parallax clip of a staged image (the talk's "bonus").

Layers, back to front:

1. the **background plate** (``HxWx3 uint8``): the scene with the product region filled by the
   chosen backend. The caller passes it; only when there is none does this module make the
   classical fallback, a Telea inpaint of the dilated product mask, and says so;
2. the **shadow** (``HxW float32``, a multiplier, 1 = no shadow) that darkens the plate and
   moves with the product. Without one it is estimated as ``image / plate`` around the product
   (only darkening counts);
3. the **product**: the output image's pixels under the product alpha (``HxW float32`` in
   [0, 1], un-premultiplied against the shaded plate so no old background rides along at the
   rim), or under a bool mask (softened inward by a pixel: the image's edge is hard there).

Depth is a ground-plane guess: the floor's inverse depth grows linearly from a horizon line to
1 at the bottom edge, the wall stands at a constant far depth (``WALL_INV``); the product and
its shadow sit at the depth of the product's base line. A camera move displaces each layer in
proportion to its inverse depth, so nearer layers move more:

- ``sway``: sideways and looping; the nearest layer shifts by ``amplitude x width`` at most;
- ``push``: a zoom toward the product; a layer grows by ``1 + PUSH_GAIN x amplitude x t x inv``.

The plate is resampled with border reflection, so every pixel of every frame is painted; what
the product uncovers is the plate. ``animate`` writes MP4 (H.264, yuv420p) or GIF by suffix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .config import get_settings
from .images import ImageError, bbox, dilate

log = logging.getLogger("stager.parallax")

Progress = Callable[[float, str], None]
MOVES = ("sway", "push")
HORIZON = 0.4  # horizon row as a fraction of the height (eye-level room photos)
WALL_INV = 0.1  # inverse depth of the far wall (the bottom edge is 1)
PUSH_GAIN = 4.0  # push: the nearest layer grows by 4 x amplitude over the clip
FALLBACK = "classical fallback: Telea inpaint of the dilated product mask"
GIVEN = "backend plate"


@dataclass
class Layers:
    """The clip's layers for an ``H x W`` frame."""

    plate: np.ndarray  # HxWx3 uint8, the background with the product region filled
    color: np.ndarray  # HxWx3 float32, product colour premultiplied by alpha (~[0, 255 a])
    alpha: np.ndarray  # HxW float32 in [0, 1]
    shadow: np.ndarray  # HxW float32 in (0, 1], 1 = no shadow
    plate_source: str  # GIVEN or FALLBACK
    box: tuple[int, int, int, int]  # product box (x0, y0, x1, y1), alpha > 0.5


@dataclass
class Clip:
    """Rendered frames (each ``HxWx3 uint8``) and how they were made."""

    frames: list[np.ndarray]
    fps: int
    move: str
    amplitude: float
    plate_source: str
    path: Path | None = None

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.fps


def inverse_depth(h: int, horizon: float = HORIZON) -> np.ndarray:
    """Per-row inverse depth, ``(h,) float32`` in [WALL_INV, 1] (1 = nearest, the bottom row):
    the floor's rises linearly from the horizon; above it stands the wall at ``WALL_INV``."""
    y = (np.arange(h, dtype=np.float32) + 0.5) / h
    return np.clip((y - horizon) / (1.0 - horizon), WALL_INV, 1.0).astype(np.float32)


def _as_alpha(alpha: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """(HxW float32 alpha in [0, 1], whether it came from a hard mask)."""
    a = np.asarray(alpha)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.shape != shape:
        raise ImageError(f"the product mask is {a.shape[1::-1] if a.ndim >= 2 else a.shape} "
                         f"but the image is {shape[1]}x{shape[0]}: use the mask of this image")
    hard = a.dtype == bool
    if hard:  # the image's edge is hard too: soften the mask inward only, by a pixel
        a = cv2.GaussianBlur(a.astype(np.float32), (3, 3), 0) * a
    elif a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    else:
        a = a.astype(np.float32)
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ImageError("the product alpha must lie in [0, 1]")
    inside = a > 0.5
    if not inside.any():
        raise ImageError("the product mask is empty: mark the product to animate")
    if inside.all():
        raise ImageError("the product mask covers the whole image: nothing is left as background")
    return a, hard


def _check_rgb(arr: np.ndarray, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ImageError(f"{name} must be an HxWx3 uint8 RGB image (got {arr.dtype} {arr.shape})")
    if shape is not None and arr.shape[:2] != shape:
        raise ImageError(f"{name} is {arr.shape[1]}x{arr.shape[0]} but the image is "
                         f"{shape[1]}x{shape[0]}")
    if min(arr.shape[:2]) < 8:
        raise ImageError(f"{name} is too small for a clip ({arr.shape[1]}x{arr.shape[0]})")
    return arr


def fallback_plate(image: np.ndarray, alpha: np.ndarray, radius: int = 3) -> np.ndarray:
    """The classical fallback plate: Telea inpaint of ``alpha > 0`` dilated by ``radius`` px.
    ``image`` HxWx3 uint8, ``alpha`` HxW float in [0, 1]; returns HxWx3 uint8."""
    hole = dilate(alpha > 0.02, radius)
    return cv2.inpaint(image, hole.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)


def estimate_shadow(image: np.ndarray, plate: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The product's shadow as ``image / plate`` (HxW float32 in (0, 1], 1 = none).

    Only darkening near the product counts (a box around it one product size wide on each
    side); under the product (alpha > 0) it is inpainted from the nearest known shade.
    """
    h, w = alpha.shape
    shade = np.ones((h, w), np.float32)
    x0, y0, x1, y1 = bbox(alpha > 0.5)  # type: ignore[misc]  # checked non-empty by the caller
    bw, bh = x1 - x0, y1 - y0
    rx0, ry0, rx1, ry1 = max(0, x0 - bw), max(0, y0 - bh), min(w, x1 + bw), min(h, y1 + bh)
    img = image[ry0:ry1, rx0:rx1].astype(np.float32).sum(axis=2)
    pl = plate[ry0:ry1, rx0:rx1].astype(np.float32).sum(axis=2)
    ratio = np.clip((img + 1.5) / (pl + 1.5), 0.05, 1.0)
    ratio[ratio > 0.985] = 1.0  # rounding noise is not a shadow
    # under the product the ratio means nothing: carry the shade in from the nearest known
    # pixels (its soft rim may stand in its own contact shadow)
    under = (alpha[ry0:ry1, rx0:rx1] > 0).astype(np.uint8)
    ratio_u8 = np.round(ratio * 255).astype(np.uint8)
    ratio = np.where(under > 0, cv2.inpaint(ratio_u8, under, 3, cv2.INPAINT_TELEA) / 255.0,
                     ratio).astype(np.float32)
    shade[ry0:ry1, rx0:rx1] = ratio
    return shade


def make_layers(image: np.ndarray, alpha: np.ndarray, plate: np.ndarray | None = None,
                shadow: np.ndarray | None = None) -> Layers:
    """Split a staged image into plate, shadow and product layers.

    ``image`` HxWx3 uint8 (the final output), ``alpha`` HxW float in [0, 1] or bool mask,
    ``plate`` HxWx3 uint8 or None (then the Telea fallback), ``shadow`` HxW float multiplier or
    None (then estimated from ``image / plate``; none with the fallback, whose plate keeps it).
    Raises ``ImageError`` with one line for wrong shapes, dtypes or an empty mask.
    """
    image = _check_rgb(image, "the image")
    shape = image.shape[:2]
    a, hard = _as_alpha(alpha, shape)
    if plate is None:
        plate, source = fallback_plate(image, a), FALLBACK
        shade = np.ones(shape, np.float32) if shadow is None else None
    else:
        plate, source = _check_rgb(plate, "the plate", shape), GIVEN
        shade = estimate_shadow(image, plate, a) if shadow is None else None
    if shade is None:
        shade = np.asarray(shadow, dtype=np.float32)
        if shade.shape != shape:
            raise ImageError(f"the shadow layer is {shade.shape} but the image is {shape}")
        if not np.isfinite(shade).all() or shade.min() < 0 or shade.max() > 1:
            raise ImageError("the shadow layer must be a multiplier in [0, 1] (1 = no shadow)")
    if hard:  # every pixel inside a hard mask is product colour
        color = image.astype(np.float32) * a[..., None]
    else:  # image = plate * shade * (1 - a) + colour * a: take the plate back out of the rim.
        # Not clipped to [0, 255 a]: where the shade under the rim was guessed wrong, the layer
        # keeps the difference (and carries it along), so the first frame is the image exactly
        behind = plate.astype(np.float32) * (shade * (1.0 - a))[..., None]
        color = np.where((a > 0)[..., None], image.astype(np.float32) - behind, 0.0)
    return Layers(plate, color, a, shade, source, bbox(a > 0.5))  # type: ignore[arg-type]


def _resolve(seconds, fps, amplitude, move) -> tuple[int, int, float, str]:
    s = get_settings()
    seconds = float(s.parallax_seconds if seconds is None else seconds)
    fps = int(s.parallax_fps if fps is None else fps)
    amplitude = float(s.parallax_amplitude if amplitude is None else amplitude)
    move = str(s.parallax_move if move is None else move).lower().replace("-in", "")
    if move not in MOVES:
        raise ImageError(f"camera move {move!r} is unknown: use sway or push")
    if not 1 <= fps <= 60:
        raise ImageError(f"fps {fps} is out of range (1 to 60)")
    if not 0 < seconds <= 30:
        raise ImageError(f"clip length {seconds} s is out of range (above 0, at most 30)")
    if not 0 < amplitude <= 0.2:
        raise ImageError(f"amplitude {amplitude} is out of range (above 0, at most 0.2)")
    n = round(seconds * fps)
    if n < 4:
        raise ImageError(f"{seconds} s at {fps} fps is {n} frames: a clip needs at least 4")
    return n, fps, amplitude, move


def camera(move: str, n: int) -> np.ndarray:
    """The camera's position per frame, ``(n,) float64``: sway in [-1, 1], looping (a sine
    with a phase of 1/8 frame, so no two consecutive frames coincide); push in [0, 1], eased."""
    k = np.arange(n, dtype=np.float64)
    if move == "sway":
        return np.sin(2 * np.pi * (k + 0.125) / n)
    return 0.5 - 0.5 * np.cos(np.pi * k / (n - 1))


class _Renderer:
    """Draws one frame for a camera position; the grids are computed once per clip."""

    def __init__(self, layers: Layers, amplitude: float, move: str):
        self.L, self.amp, self.move = layers, amplitude, move
        h, w = layers.alpha.shape
        self.h, self.w = h, w
        base = layers.box[3] - 1
        horizon = min(HORIZON, max(0.05, (base + 0.5) / h - 0.1))  # the base is on the floor
        self.inv = inverse_depth(h, horizon)
        self.inv_product = float(self.inv[base])
        x0, y0, x1, y1 = layers.box
        self.centre = ((x0 + x1) / 2.0, (y0 + y1) / 2.0)
        self.xs = np.tile(np.arange(w, dtype=np.float32), (h, 1))
        self.ys = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w))
        support = (layers.alpha > 0) | (layers.shadow < 1)
        sx0, sy0, sx1, sy1 = bbox(support)  # type: ignore[misc]
        self.src0 = np.array([sx0, sy0], np.float64)
        self.src_box = (sx0, sy0, sx1, sy1)
        self.color = np.ascontiguousarray(layers.color[sy0:sy1, sx0:sx1])
        self.alpha = np.ascontiguousarray(layers.alpha[sy0:sy1, sx0:sx1])
        self.shadow = np.ascontiguousarray(layers.shadow[sy0:sy1, sx0:sx1])

    def _plate(self, t: float) -> np.ndarray:
        L, inv = self.L, self.inv
        if self.move == "sway":
            shift = (self.amp * self.w * t) * inv  # (h,) px to the right
            mx = self.xs - shift[:, None]
            my = self.ys
        else:
            cx, cy = self.centre
            rows = np.arange(self.h, dtype=np.float32)
            scale = 1.0 + PUSH_GAIN * self.amp * t * inv
            src = cy + (rows - cy) / scale
            # one fixed-point step: the scale belongs to the source row, not the output row
            src_inv = np.interp(src, rows, inv).astype(np.float32)
            scale = 1.0 + PUSH_GAIN * self.amp * t * src_inv
            src = cy + (rows - cy) / scale
            mx = cx + (self.xs - cx) / scale[:, None]
            my = np.ascontiguousarray(np.broadcast_to(src[:, None], (self.h, self.w)))
        return cv2.remap(L.plate, mx.astype(np.float32), my.astype(np.float32),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

    def _product_affine(self, t: float) -> np.ndarray:
        if self.move == "sway":
            dx = self.amp * self.w * t * self.inv_product
            return np.array([[1, 0, dx], [0, 1, 0]], np.float64)
        s = 1.0 + PUSH_GAIN * self.amp * t * self.inv_product
        cx, cy = self.centre
        return np.array([[s, 0, cx * (1 - s)], [0, s, cy * (1 - s)]], np.float64)

    def __call__(self, t: float) -> np.ndarray:
        frame = self._plate(t)
        M = self._product_affine(t)
        sx0, sy0, sx1, sy1 = self.src_box
        corners = np.array([[sx0, sy0, 1], [sx1, sy0, 1], [sx0, sy1, 1], [sx1, sy1, 1]],
                           np.float64) @ M.T
        rx0 = max(0, int(np.floor(corners[:, 0].min())) - 2)
        ry0 = max(0, int(np.floor(corners[:, 1].min())) - 2)
        rx1 = min(self.w, int(np.ceil(corners[:, 0].max())) + 2)
        ry1 = min(self.h, int(np.ceil(corners[:, 1].max())) + 2)
        if rx1 <= rx0 or ry1 <= ry0:
            return frame
        # map the cropped source straight into the cropped output region
        Mc = M.copy()
        Mc[:, 2] += M[:, :2] @ self.src0 - np.array([rx0, ry0], np.float64)
        size = (rx1 - rx0, ry1 - ry0)
        c = cv2.warpAffine(self.color, Mc, size, flags=cv2.INTER_LINEAR, borderValue=0)
        a = cv2.warpAffine(self.alpha, Mc, size, flags=cv2.INTER_LINEAR, borderValue=0)
        s = cv2.warpAffine(self.shadow, Mc, size, flags=cv2.INTER_LINEAR, borderValue=1)
        bg = frame[ry0:ry1, rx0:rx1].astype(np.float32)
        out = bg * (s * (1.0 - a))[..., None] + c
        frame[ry0:ry1, rx0:rx1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return frame


def make_clip(image: np.ndarray, alpha: np.ndarray, plate: np.ndarray | None = None,
              shadow: np.ndarray | None = None, *, seconds: float | None = None,
              fps: int | None = None, amplitude: float | None = None, move: str | None = None,
              progress: Progress | None = None) -> Clip:
    """Render the clip's frames (each ``HxWx3 uint8``, the image's size).

    Inputs as in ``make_layers``. ``seconds``, ``fps``, ``amplitude`` (the nearest layer's
    largest shift as a fraction of the width, in (0, 0.2]) and ``move`` ("sway" or "push")
    default to the ``STAGER_PARALLAX_*`` settings; ``round(seconds * fps)`` frames, at least 4.
    ``progress(frac, msg)`` is called after each frame with ``frac`` in (0, 1].
    """
    n, fps, amplitude, move = _resolve(seconds, fps, amplitude, move)
    layers = make_layers(image, alpha, plate, shadow)
    if layers.plate_source == FALLBACK:
        log.info("parallax: no plate given; using the %s", FALLBACK)
    render = _Renderer(layers, amplitude, move)
    frames = []
    for k, t in enumerate(camera(move, n)):
        frames.append(render(float(t)))
        if progress is not None:
            progress((k + 1) / n, f"frame {k + 1}/{n}")
    return Clip(frames, fps, move, amplitude, layers.plate_source)


# ------------------------------------------------------------------ writers

SUFFIXES = (".mp4", ".gif")


def _check_frames(frames: list[np.ndarray]) -> tuple[int, int]:
    if len(frames) == 0:
        raise ImageError("no frames to write")
    h, w = frames[0].shape[:2]
    for f in frames:
        if f.shape != (h, w, 3) or f.dtype != np.uint8:
            raise ImageError(f"every frame must be {w}x{h} HxWx3 uint8 (got {f.dtype} {f.shape})")
    return h, w


def write_mp4(frames: list[np.ndarray], path: Path, fps: int,
              progress: Progress | None = None) -> Path:
    """H.264 (libx264, yuv420p, faststart) through imageio-ffmpeg. yuv420p needs even sides:
    an odd width or height gets one edge-replicated column or row."""
    import imageio_ffmpeg

    h, w = _check_frames(frames)
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    writer = imageio_ffmpeg.write_frames(
        str(path), (w + w % 2, h + h % 2), fps=fps, codec="libx264", pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p", quality=None, macro_block_size=1, ffmpeg_log_level="error",
        output_params=["-crf", "20", "-preset", "veryfast", "-movflags", "+faststart"])
    writer.send(None)
    try:
        for k, f in enumerate(frames):
            if pad[0][1] or pad[1][1]:
                f = np.pad(f, pad, mode="edge")
            writer.send(np.ascontiguousarray(f))
            if progress is not None:
                progress((k + 1) / len(frames), f"encoding {k + 1}/{len(frames)}")
    finally:
        writer.close()
    if not path.is_file() or path.stat().st_size == 0:  # ffmpeg reports on stderr only
        raise ImageError(f"ffmpeg could not write {path.name}")
    return path


def write_gif(frames: list[np.ndarray], path: Path, fps: int,
              progress: Progress | None = None) -> Path:
    """An endlessly looping GIF. GIF delays are whole centiseconds, so each frame's delay is
    rounded on the cumulative clock (24 fps -> 4, 4, 4, 5, ... cs) to keep the total length."""
    from PIL import Image

    _check_frames(frames)
    ticks = np.round(np.arange(len(frames) + 1) * 100.0 / fps).astype(int)
    durations = [int(d) * 10 for d in np.maximum(np.diff(ticks), 1)]
    # one adaptive palette for the whole clip, from a mosaic of a few frames: consistent colours
    # and a quantiser run once instead of per frame
    pick = frames[:: max(1, len(frames) // 4)][:4]
    palette = Image.fromarray(np.concatenate(pick, axis=0)).quantize(256, method=Image.Quantize.MEDIANCUT)
    ims = []
    for k, f in enumerate(frames):
        ims.append(Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE))
        if progress is not None:
            progress((k + 1) / len(frames), f"GIF frame {k + 1}/{len(frames)}")
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=durations, loop=0,
                optimize=False, disposal=1)
    return path


def write_clip(frames: list[np.ndarray], out: str | Path, fps: int,
               progress: Progress | None = None) -> Path:
    """Write frames (each ``HxWx3 uint8``) as MP4 or GIF, chosen by the suffix of ``out``."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ImageError(f"{out.name}: unsupported clip format; use .mp4 or .gif")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = write_mp4 if suffix == ".mp4" else write_gif
    return writer(frames, out, int(fps), progress)


def animate(image: np.ndarray, alpha: np.ndarray, out: str | Path,
            plate: np.ndarray | None = None, shadow: np.ndarray | None = None, *,
            seconds: float | None = None, fps: int | None = None,
            amplitude: float | None = None, move: str | None = None,
            progress: Progress | None = None) -> Clip:
    """``make_clip`` then ``write_clip`` to ``out`` (``.mp4`` or ``.gif``); returns the clip with
    ``path`` set. ``progress`` runs 0 -> 0.75 over the frames and 0.75 -> 1 over the encoding."""
    if Path(out).suffix.lower() not in SUFFIXES:  # fail before rendering anything
        raise ImageError(f"{Path(out).name}: unsupported clip format; use .mp4 or .gif")
    sub = (lambda lo, hi: (lambda f, m: progress(lo + (hi - lo) * f, m))) if progress else None
    clip = make_clip(image, alpha, plate, shadow, seconds=seconds, fps=fps,
                     amplitude=amplitude, move=move, progress=sub(0.0, 0.75) if sub else None)
    clip.path = write_clip(clip.frames, out, clip.fps, sub(0.75, 1.0) if sub else None)
    return clip
