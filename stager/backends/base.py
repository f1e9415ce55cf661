"""The backend interface: crop a context window around the mask, run it at a working
resolution, paste the fill back inside the mask only.

Subclasses set ``name``, ``label``, ``tier`` and ``resolution`` and implement ``run(image,
mask, **params)``. Fully convolutional backends (``fully_conv = True``: EdgeConnect, Telea)
run at the window's *native* resolution, so a gap keeps its detail; only a window whose long
side exceeds ``STAGER_FILL_MAX_SIDE`` is downscaled, and the window is padded (reflect) to a
multiple of ``pad_mod``. Fixed-size models (pix2pix, the compact diffusion model) run at
``resolution x resolution``. ``__call__`` guarantees that pixels outside the mask come back
bit-exact and that inside it only the fill is used (no blend with what the hole held: that
would bring the old product back as a halo).
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


def working_size(h: int, w: int, max_side: int, pad_mod: int) -> tuple[int, int, float]:
    """(padded height, padded width, scale) for a native-resolution run of an ``h x w`` window:
    ``scale`` < 1 only when the long side exceeds ``max_side``."""
    s = min(1.0, max_side / max(h, w))
    sh, sw = max(1, int(round(h * s))), max(1, int(round(w * s)))
    return -(-sh // pad_mod) * pad_mod, -(-sw // pad_mod) * pad_mod, s


def resize_mask(mask: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize a bool mask conservatively (a pixel is hole if any source pixel under it is)."""
    if mask.shape == (h, w):
        return mask.copy()
    if mask.shape[0] > h:
        return cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0
    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0


class Backend:
    """Base class of inpainting / staging backends."""

    name = "base"
    label = "base"
    tier = "classical"  # classical | trained compact | pretrained
    resolution = 256  # fixed-size models: the side they run at
    fully_conv = False  # True: run at the window's native resolution (capped, padded)
    pad_mod = 8  # native runs pad the window to a multiple of this
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
        h, w = win.shape[:2]
        if self.fully_conv:
            out = self._run_native(win, wmask, st.fill_max_side, **params)
        else:
            res = self.resolution
            small, smask = to_model(win, wmask, res)
            out = self.run(small, smask, **params)
            if out.shape[:2] != (res, res):
                raise RuntimeError(f"{self.name} returned {out.shape}, expected {res}x{res}")
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC if h > res
                             else cv2.INTER_AREA)
        result = image.copy()
        result[y0:y1, x0:x1][wmask] = out[wmask]
        return result

    def _run_native(self, win: np.ndarray, wmask: np.ndarray, max_side: int, **params
                    ) -> np.ndarray:
        """Run on the window at its own resolution (downscaled only above ``max_side``),
        reflect-padded to ``pad_mod``; returns the fill at the window's size."""
        h, w = win.shape[:2]
        ph, pw, s = working_size(h, w, max_side, self.pad_mod)
        if s < 1:
            sh, sw = max(1, int(round(h * s))), max(1, int(round(w * s)))
            img = cv2.resize(win, (sw, sh), interpolation=cv2.INTER_AREA)
            m = resize_mask(wmask, sw, sh)
        else:
            sh, sw, img, m = h, w, win, wmask
        img = cv2.copyMakeBorder(img, 0, ph - sh, 0, pw - sw, cv2.BORDER_REFLECT_101)
        # the mask is mirrored with the image: mirrored hole pixels stay hole, never context
        m = np.pad(m, ((0, ph - sh), (0, pw - sw)), mode="reflect") if (ph > sh or pw > sw) \
            else m
        out = self.run(np.ascontiguousarray(img), m, **params)[:sh, :sw]
        if s < 1:
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
        return out
