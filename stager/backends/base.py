"""The backend interface: crop a context window around the mask, run at the model's
resolution, paste back inside the mask only.

Subclasses set ``name``, ``label``, ``tier`` and ``resolution`` and implement ``run(image,
mask, **params)`` on a ``res x res`` window. ``__call__`` guarantees that pixels outside the
mask are returned bit-exact, so large photos work with 256-px models.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..config import get_settings
from ..images import bbox, check_mask


class BackendUnavailable(RuntimeError):
    """The backend cannot run here; the message says why and which setting enables it."""


def context_window(mask: np.ndarray, scale: float = 1.6, min_side: int = 64
                   ) -> tuple[int, int, int, int]:
    """A square window ``(x0, y0, x1, y1)`` around the mask's box, ``scale`` times its long
    side, shifted to stay inside the image (and shrunk only when the image is smaller)."""
    H, W = mask.shape
    b = bbox(mask)
    if b is None:
        raise ValueError("empty mask has no context window")
    x0, y0, x1, y1 = b
    side = int(np.ceil(max(x1 - x0, y1 - y0) * scale))
    side = max(side, min_side)
    side = min(side, max(H, W))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    wx0 = int(round(cx - side / 2))
    wy0 = int(round(cy - side / 2))
    wx0 = min(max(wx0, 0), max(W - side, 0))
    wy0 = min(max(wy0, 0), max(H - side, 0))
    return wx0, wy0, min(W, wx0 + side), min(H, wy0 + side)


def to_model(image: np.ndarray, mask: np.ndarray, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize a window to ``res x res``: the image by area, the mask conservatively (a model
    pixel is hole if any source pixel under it is)."""
    if image.shape[0] > res:
        img = cv2.resize(image, (res, res), interpolation=cv2.INTER_AREA)
        m = cv2.resize(mask.astype(np.float32), (res, res), interpolation=cv2.INTER_AREA) > 0
    else:
        img = cv2.resize(image, (res, res), interpolation=cv2.INTER_LINEAR)
        m = cv2.resize(mask.astype(np.uint8), (res, res), interpolation=cv2.INTER_NEAREST) > 0
    return img, m


def blend_alpha(mask: np.ndarray, radius: int) -> np.ndarray:
    """Paste weights: 0 outside the mask; inside, ramping from 2/(r+1) at the edge to 1."""
    if radius <= 0:
        return mask.astype(np.float32)
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    return np.where(mask, np.clip((dist + 1.0) / (radius + 1.0), 0.0, 1.0), 0.0).astype(np.float32)


class Backend:
    """Base class of inpainting / staging backends."""

    name = "base"
    label = "base"
    tier = "classical"  # classical | trained compact | pretrained
    resolution = 256
    whole_image = False  # True: the window is always the whole image (vanilla staging)

    def available(self) -> tuple[bool, str]:
        """``(True, what runs)`` or ``(False, why not and the setting that enables it)``."""
        return True, self.label

    def describe(self) -> str:
        return self.label

    def run(self, image: np.ndarray, mask: np.ndarray, **params) -> np.ndarray:
        """Fill ``mask`` in ``image`` (``res x res``); returns ``res x res x 3 uint8``."""
        raise NotImplementedError

    def __call__(self, image: np.ndarray, mask: np.ndarray, **params) -> np.ndarray:
        """Fill ``mask`` (HxW bool, True = hole) in ``image`` (HxWx3 uint8); pixels outside
        the mask come back unchanged."""
        ok, why = self.available()
        if not ok:
            raise BackendUnavailable(f"{self.name}: {why}")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("backends take HxWx3 uint8 RGB images")
        mask = check_mask(mask, image.shape[:2])
        st = get_settings()
        if self.whole_image:
            x0, y0, x1, y1 = 0, 0, image.shape[1], image.shape[0]
        else:
            x0, y0, x1, y1 = context_window(mask, st.context_scale, min_side=self.resolution // 2)
        win, wmask = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
        res = self.resolution
        small, smask = to_model(win, wmask, res)
        out = self.run(small, smask, **params)
        if out.shape[:2] != (res, res):
            raise RuntimeError(f"{self.name} returned {out.shape}, expected {res}x{res}")
        h, w = win.shape[:2]
        up = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC if h > res else cv2.INTER_AREA)
        a = blend_alpha(wmask, st.feather)[..., None]
        merged = win.astype(np.float32) * (1 - a) + up.astype(np.float32) * a
        result = image.copy()
        region = result[y0:y1, x0:x1]
        region[wmask] = np.clip(merged[wmask] + 0.5, 0, 255).astype(np.uint8)
        return result
