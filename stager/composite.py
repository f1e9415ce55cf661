"""Copy-paste staging: place a new product where the old one stood, composite it, and derive
the gap the inpainting backends must fill.

``place`` fits the product's silhouette into the old product's box keeping its aspect,
anchored bottom-centre (products stand on the floor), with user scale, offset and flip.
The gap is ``dilate(old mask, margin) minus new product``: the old product's pixels the new
one does not cover, plus a margin that removes the old product's halo and edge shading.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .images import ImageError, bbox, dilate


@dataclass
class Placement:
    """A product sized and positioned for a scene of ``shape``."""

    sprite: np.ndarray  # hxwx4 uint8, the resized product (cropped to its alpha)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the sprite in the scene (may overhang)
    alpha: np.ndarray  # HxW float32 in [0, 1], the sprite's alpha in scene coordinates
    shape: tuple[int, int]

    @property
    def mask(self) -> np.ndarray:
        """New-product mask, HxW bool (alpha > 0.5)."""
        return self.alpha > 0.5


def crop_to_alpha(rgba: np.ndarray, threshold: int = 8) -> np.ndarray:
    """Crop an RGBA product to the box of its visible pixels; error when there are none."""
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ImageError("the product has no alpha channel: cut it out first")
    b = bbox(rgba[..., 3] > threshold)
    if b is None:
        raise ImageError("the product is empty: its cutout has no visible pixels")
    x0, y0, x1, y1 = b
    return rgba[y0:y1, x0:x1]


def place(product: np.ndarray, old_mask: np.ndarray, scale: float = 1.0,
          offset: tuple[float, float] = (0.0, 0.0), flip: bool = False) -> Placement:
    """Fit ``product`` (RGBA) into the box of ``old_mask`` (HxW bool).

    ``scale`` multiplies the fitted size; ``offset`` moves the product by a fraction of the old
    box's (width, height); ``flip`` mirrors it. Raises ``ImageError`` when the old mask is
    empty or the placed product would be larger than the scene.
    """
    H, W = old_mask.shape
    ob = bbox(old_mask)
    if ob is None:
        raise ImageError("the old-product mask is empty: mark the product to replace")
    if not (0.05 <= scale <= 5.0):
        raise ImageError(f"scale {scale} is out of range (0.05 to 5)")
    sprite = crop_to_alpha(product)
    if flip:
        sprite = sprite[:, ::-1]
    ph, pw = sprite.shape[:2]
    bw, bh = ob[2] - ob[0], ob[3] - ob[1]
    s = min(bw / pw, bh / ph) * scale
    nw, nh = max(1, int(round(pw * s))), max(1, int(round(ph * s)))
    if nw > W or nh > H:
        raise ImageError(f"the placed product ({nw}x{nh}) is larger than the scene ({W}x{H}): "
                         "lower the scale")
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    sprite = cv2.resize(np.ascontiguousarray(sprite), (nw, nh), interpolation=interp)
    cx = (ob[0] + ob[2]) / 2 + offset[0] * bw
    bottom = ob[3] + offset[1] * bh
    x0, y0 = int(round(cx - nw / 2)), int(round(bottom - nh))
    alpha = np.zeros((H, W), np.float32)
    sx0, sy0, dx0, dy0 = max(0, -x0), max(0, -y0), max(0, x0), max(0, y0)
    dx1, dy1 = min(W, x0 + nw), min(H, y0 + nh)
    if dx1 > dx0 and dy1 > dy0:
        alpha[dy0:dy1, dx0:dx1] = sprite[sy0:sy0 + dy1 - dy0, sx0:sx0 + dx1 - dx0, 3] / 255.0
    return Placement(sprite, (x0, y0, x0 + nw, y0 + nh), alpha, (H, W))


def paste(image: np.ndarray, placement: Placement) -> np.ndarray:
    """Alpha-composite the placed product over an RGB image (``HxWx3 uint8``)."""
    if image.shape[:2] != placement.shape:
        raise ImageError("the placement was made for a scene of another size")
    out = image.astype(np.float32)
    x0, y0, x1, y1 = placement.box
    H, W = placement.shape
    dx0, dy0, dx1, dy1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    if dx1 <= dx0 or dy1 <= dy0:
        return image.copy()
    sub = placement.sprite[dy0 - y0:dy1 - y0, dx0 - x0:dx1 - x0].astype(np.float32)
    a = sub[..., 3:4] / 255.0
    out[dy0:dy1, dx0:dx1] = out[dy0:dy1, dx0:dx1] * (1 - a) + sub[..., :3] * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def gap_mask(old_mask: np.ndarray, new_mask: np.ndarray, margin: int) -> np.ndarray:
    """``dilate(old_mask, margin) & ~new_mask``: HxW bool, disjoint from the new product."""
    return dilate(old_mask, margin) & ~new_mask


def add_shadow(image: np.ndarray, placement: Placement, strength: float = 0.55) -> np.ndarray:
    """Darken a contact shadow under the placed product, then re-paste the product on top."""
    from .synth import contact_shadow  # the same shadow model the catalog is rendered with

    shade = contact_shadow(image.shape[:2], placement.box, strength)
    shaded = np.clip(image.astype(np.float32) * shade[..., None] + 0.5, 0, 255).astype(np.uint8)
    return paste(shaded, placement)


def harmonise(placement: Placement, scene: np.ndarray, old_mask: np.ndarray,
              amount: float = 0.3) -> Placement:
    """Shift the product's brightness part-way toward the scene's light around the old product
    (a cheap lighting match). ``amount`` 0 leaves the product unchanged."""
    if amount <= 0:
        return placement
    ring = dilate(old_mask, 25) & ~dilate(old_mask, 5)
    if not ring.any():
        return placement
    scene_l = scene[ring].astype(np.float32).mean()
    sprite = placement.sprite.astype(np.float32)
    vis = sprite[..., 3] > 128
    if not vis.any():
        return placement
    prod_l = sprite[vis][:, :3].mean()
    gain = 1.0 + amount * (scene_l / max(prod_l, 1.0) - 1.0)
    gain = float(np.clip(gain, 0.7, 1.3))
    sprite[..., :3] *= gain
    out = np.clip(sprite + 0.5, 0, 255).astype(np.uint8)
    return Placement(out, placement.box, placement.alpha, placement.shape)


def gap_ratio(old_mask: np.ndarray, new_mask: np.ndarray) -> float:
    """``|old minus new| / |old|`` in [0, 1]: how much of the old product must be inpainted."""
    n = int(old_mask.sum())
    if n == 0:
        return 1.0
    return float((old_mask & ~new_mask).sum() / n)
