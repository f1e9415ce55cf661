"""Layered 2.5D parallax animation of a staged image (the talk's "bonus").

Depth is a ground-plane guess: pixels lower in the frame are nearer; the product (mask) is a
separate layer at the depth of its base. The camera sways sideways; each layer shifts by its
inverse depth, and the background behind the product is filled (Telea) so no hole opens up.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .images import ImageError, bbox, check_mask, dilate


def depth_map(h: int, w: int, horizon: float = 0.4) -> np.ndarray:
    """Inverse depth in [0, 1] (1 = nearest): constant above the horizon, rising below it."""
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    inv = np.clip((y - horizon) / (1 - horizon), 0, 1) * 0.8 + 0.2
    return np.repeat(inv, w, axis=1)


def frames(image: np.ndarray, mask: np.ndarray, n: int = 48, amplitude: float = 0.025
           ) -> list[np.ndarray]:
    """``n`` RGB frames of a sideways sway; ``amplitude`` is the nearest layer's shift as a
    fraction of the width."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError("parallax needs an RGB image")
    mask = check_mask(mask, image.shape[:2], "the product mask")
    h, w = mask.shape
    hole = dilate(mask, 3)
    back = cv2.inpaint(image, hole.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    inv = depth_map(h, w)
    y1 = bbox(mask)[3]
    product_inv = float(inv[min(y1, h - 1), 0])
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0)
    out = []
    for k in range(n):
        t = float(np.sin(2 * np.pi * (k + 0.5) / n))  # half-step phase: no repeated frames
        shift = amplitude * w * t
        bg = cv2.remap(back, (xs - shift * inv).astype(np.float32), ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        dx = shift * product_inv
        M = np.float32([[1, 0, dx], [0, 1, 0]])
        fg = cv2.warpAffine(image, M, (w, h), borderMode=cv2.BORDER_REFLECT)
        a = cv2.warpAffine(alpha, M, (w, h))[..., None]
        out.append(np.clip(bg * (1 - a) + fg * a + 0.5, 0, 255).astype(np.uint8))
    return out


def animate(image: np.ndarray, mask: np.ndarray, out: Path, frames: int = 48, fps: int = 24) -> Path:
    """Write the animation as a GIF (any suffix other than .gif gets .gif appended)."""
    out = Path(out)
    if out.suffix.lower() != ".gif":
        out = out.with_suffix(out.suffix + ".gif") if out.suffix else out.with_suffix(".gif")
    fr = globals()["frames"](image, mask, frames)
    out.parent.mkdir(parents=True, exist_ok=True)
    ims = [Image.fromarray(f) for f in fr]
    ims[0].save(out, save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)
    return out
