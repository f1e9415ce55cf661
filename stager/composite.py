"""Copy-paste staging: place a new product where the old one stood, light it like the scene,
and lay the layers in the order the ground truth is made.

``place`` fits the product's silhouette into the old product's box keeping its aspect,
anchored on the old product's base line (products stand on the floor) whatever the scale, with
user offset and flip; a product shot's own shadow travels with it as a darkening layer.
The *fill region* is ``dilate(old mask, margin)``, less the margin's pixels that show only
floor (``margin_keep``), plus the old product's shadow: a backend rebuilds the background
there from the scene without the old product and without the new one;
the shadows and the product go on top once (``finish`` in the pipeline). The *gap* is what
stays visible of the fill: fill region minus the new product.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .images import ImageError, bbox, dilate, resize_rgba


@dataclass
class Placement:
    """A product sized and positioned for a scene of ``shape``."""

    sprite: np.ndarray  # hxwx4 uint8, the resized product (cropped to its alpha)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the sprite in the scene (may overhang)
    alpha: np.ndarray  # HxW float32 in [0, 1], the sprite's alpha in scene coordinates
    shape: tuple[int, int]
    shadow: np.ndarray | None = None  # HxW float32 in [0, 1]: the shot's shadow (darkening)

    @property
    def mask(self) -> np.ndarray:
        """New-product mask, HxW bool (alpha > 0.5)."""
        return self.alpha > 0.5


def crop_to_alpha(rgba: np.ndarray, threshold: int = 8) -> np.ndarray:
    """Crop an RGBA product to the box of its visible pixels; error when there are none."""
    x0, y0, x1, y1 = _alpha_box(rgba, threshold)
    return rgba[y0:y1, x0:x1]


def place(product: np.ndarray, old_mask: np.ndarray, scale: float = 1.0,
          offset: tuple[float, float] = (0.0, 0.0), flip: bool = False,
          shadow: np.ndarray | None = None) -> Placement:
    """Fit ``product`` (RGBA) into the box of ``old_mask`` (HxW bool).

    ``scale`` multiplies the fitted size; the base line stays on the old product's (its lowest
    row) at every scale. ``offset`` moves the product by a fraction of the old box's (width,
    height); ``flip`` mirrors it. ``shadow`` (the product photo's shadow, HxW float in [0, 1]
    of the product image's size) is carried into scene coordinates by the same transform.
    Raises ``ImageError`` when the old mask is empty or the product would not fit the scene.
    """
    H, W = old_mask.shape
    ob = bbox(old_mask)
    if ob is None:
        raise ImageError("the old-product mask is empty: mark the product to replace")
    if not (0.05 <= scale <= 5.0):
        raise ImageError(f"scale {scale} is out of range (0.05 to 5)")
    ab = _alpha_box(product)
    sprite = product[ab[1]:ab[3], ab[0]:ab[2]]
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
    # premultiplied: no colour from under alpha 0 (the backdrop) fringes the edge
    sprite = resize_rgba(np.ascontiguousarray(sprite), (nw, nh), interp)
    cx = (ob[0] + ob[2]) / 2 + offset[0] * bw
    bottom = ob[3] + offset[1] * bh
    x0, y0 = int(round(cx - nw / 2)), int(round(bottom - nh))
    alpha = np.zeros((H, W), np.float32)
    sx0, sy0, dx0, dy0 = max(0, -x0), max(0, -y0), max(0, x0), max(0, y0)
    dx1, dy1 = min(W, x0 + nw), min(H, y0 + nh)
    if dx1 > dx0 and dy1 > dy0:
        alpha[dy0:dy1, dx0:dx1] = sprite[sy0:sy0 + dy1 - dy0, sx0:sx0 + dx1 - dx0, 3] / 255.0
    placed_shadow = None
    if shadow is not None and shadow.shape == product.shape[:2] and shadow.max() > 0:
        sx, sy = nw / pw, nh / ph
        # pixel centres map as cv2.resize maps them: x' + 0.5 = (x - x_box + 0.5) s
        ty = y0 + (0.5 - ab[1]) * sy - 0.5
        if flip:
            M = np.float32([[-sx, 0, x0 + (ab[2] - 0.5) * sx - 0.5], [0, sy, ty]])
        else:
            M = np.float32([[sx, 0, x0 + (0.5 - ab[0]) * sx - 0.5], [0, sy, ty]])
        placed_shadow = cv2.warpAffine(shadow.astype(np.float32), M, (W, H),
                                       flags=cv2.INTER_LINEAR) * (1 - alpha)
    return Placement(sprite, (x0, y0, x0 + nw, y0 + nh), alpha, (H, W), placed_shadow)


def _alpha_box(rgba: np.ndarray, threshold: int = 8) -> tuple[int, int, int, int]:
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ImageError("the product has no alpha channel: cut it out first")
    b = bbox(rgba[..., 3] > threshold)
    if b is None:
        raise ImageError("the product is empty: its cutout has no visible pixels")
    return b


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


# margin pixels kept as they are when they match the floor beyond the margin (``margin_keep``)
KEEP_FLOOR = 2  # px next to the old mask always filled (its anti-aliased edge)
KEEP_TOL = 10.0  # mean absolute difference per channel, 0-255, to the nearest floor colour
KEEP_RATIO = 2.0  # ... and at most half the difference to the nearest colour of the old rim
KEEP_REACH = 8  # px searched for those colours (at least the margin + 2)
KEEP_MIX = 0.15  # ... and to any blend of the floor with this much of the old rim's colour, or more


def margin_keep(image: np.ndarray, old_mask: np.ndarray, margin: int,
                floor: int = KEEP_FLOOR, tol: float = KEEP_TOL, ratio: float = KEEP_RATIO,
                reach: int = KEEP_REACH, mix: float = KEEP_MIX) -> np.ndarray:
    """The pixels of the fill margin (``dilate(old_mask, margin)`` outside
    ``dilate(old_mask, floor)``) that look like the background beyond the margin and not like
    the old product: HxW bool. The margin is there for a mask that misses the product's edge;
    where it only covers floor, a fill there is smoother and less exact than the floor itself
    (on the catalog, 5x the error of the relit scene in the old shadow's part of it).

    A pixel is kept when some pixel within ``reach`` px just beyond the margin is within
    ``tol`` of its colour, that difference is at most 1/``ratio`` of its difference to the
    nearest colour of the old product's rim (3 px inside the mask) within reach and no more
    than its difference to every blend of a floor pixel within reach with at least ``mix`` of
    the colour of the rim pixel nearest to it (an anti-aliased or blurred edge the mask
    missed: on a grained floor it can match a dark grain pixel as well as a blend); and it
    joins the background through kept pixels. Where floor and product look alike nothing is
    kept: the whole margin is filled, as without this step. ``reach`` grows with the margin so the rim stays in reach.
    """
    found = bbox(old_mask)
    if found is None:
        return np.zeros(old_mask.shape, bool)
    reach = max(reach, margin + 2)
    h, w = old_mask.shape
    r = margin + 2 * reach + 1  # everything this reads lies within r px of the mask
    x0, y0, x1, y1 = found
    y0, y1, x0, x1 = max(y0 - r, 0), min(y1 + r, h), max(x0 - r, 0), min(x1 + r, w)
    out = np.zeros(old_mask.shape, bool)
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    out[y0:y1, x0:x1] = _margin_keep(img[y0:y1, x0:x1], old_mask[y0:y1, x0:x1], margin,
                                     floor, tol, ratio, reach, mix)
    return out


def _margin_keep(image, old_mask, margin, floor, tol, ratio, reach, mix):
    from scipy import ndimage as ndi

    grown = dilate(old_mask, margin)
    ring = grown & ~dilate(old_mask, floor)
    if margin <= floor or not ring.any():
        return np.zeros(old_mask.shape, bool)
    outer = dilate(old_mask, margin + reach) & ~grown
    rim = old_mask & ~ndi.binary_erosion(old_mask, iterations=3)
    h, w = old_mask.shape
    pad = ((reach, reach), (reach, reach))
    colour = np.asarray(image, np.float32)[..., :3]
    img = np.pad(colour, pad + ((0, 0),), mode="edge")
    big = np.float32(1e6)  # a candidate that is not floor (or not rim) is out of reach
    is_bg = np.pad(outer, pad)
    far_bg = np.where(is_bg[..., None], img, big)
    far_rim = np.where(np.pad(rim, pad)[..., None], img, big)
    ys, xs = np.nonzero(ring)
    _, (iy, ix) = ndi.distance_transform_edt(~rim, return_indices=True)
    edge = colour[iy[ys, xs], ix[ys, xs]]  # the rim's colour nearest each ring pixel
    ys, xs = ys + reach, xs + reach
    own = img[ys, xs]
    d_bg = np.full(len(ys), big, np.float32)
    d_rim = np.full(len(ys), big, np.float32)
    d_mix = np.full(len(ys), big, np.float32)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if dy * dy + dx * dx > reach * reach:
                continue
            f = far_bg[ys + dy, xs + dx]
            np.minimum(d_bg, np.abs(f - own).mean(-1), out=d_bg)
            np.minimum(d_rim, np.abs(far_rim[ys + dy, xs + dx] - own).mean(-1), out=d_rim)
            # the nearest blend of this floor pixel with the rim's colour, from ``mix`` up
            v = edge - f
            t = np.clip(((own - f) * v).sum(-1) / np.maximum((v * v).sum(-1), 1e-6), mix, 1.0)
            dm = np.abs(own - f - t[:, None] * v).mean(-1)
            np.minimum(d_mix, np.where(is_bg[ys + dy, xs + dx], dm, big), out=d_mix)
    keep = np.zeros((h, w), bool)
    ok = (d_bg <= tol) & (d_bg * ratio <= d_rim) & (d_bg <= d_mix)
    keep[ys[ok] - reach, xs[ok] - reach] = True
    known = ~grown
    lab, _ = ndi.label(keep | known)
    joined = np.unique(lab[known])
    return keep & np.isin(lab, joined[joined > 0])


def harmonise(placement: Placement, scene: np.ndarray, old_mask: np.ndarray,
              strength: float = 0.5) -> Placement:
    """Light the product like its surroundings: brightness, colour cast and a vertical light
    gradient measured on the scene around the old product, applied part-way (``strength`` in
    [0, 1]). Strength 0 returns the placement unchanged (bit-exact).

    Brightness: the ring's luminance relative to the scene's (a studio shot is lit evenly, so
    a product in a dim corner should be dimmer). Colour cast: the ring's mean colour against
    its grey (grey-world). Gradient: the ring's luminance at the product's top against its
    base, on both sides, as a linear ramp down the product.
    """
    if strength <= 0:
        return placement
    ring = dilate(old_mask, 25) & ~dilate(old_mask, 8)
    if ring.sum() < 50:
        return placement
    f = scene.astype(np.float32)
    luma = f @ np.array([0.299, 0.587, 0.114], np.float32)
    level = float(luma[ring].mean() / max(luma.mean(), 1.0))
    mean = f[ring].mean(axis=0)
    cast = mean / max(float(mean.mean()), 1.0)
    x0, y0, x1, y1 = placement.box
    ys = np.nonzero(ring)[0]
    top = ring & (np.arange(ring.shape[0])[:, None] < y0 + (y1 - y0) / 3)
    base = ring & (np.arange(ring.shape[0])[:, None] > y1 - (y1 - y0) / 3)
    grad = 0.0
    if top.sum() > 20 and base.sum() > 20 and len(ys):
        lt, lb = float(luma[top].mean()), float(luma[base].mean())
        grad = (lt - lb) / max((lt + lb) / 2, 1.0)
    h = placement.sprite.shape[0]
    ramp = np.linspace(0.5, -0.5, h, dtype=np.float32)[:, None, None]
    gain = (np.clip(level, 0.6, 1.4) * np.clip(cast, 0.8, 1.2))[None, None, :] \
        * (1 + np.clip(grad, -0.4, 0.4) * ramp)
    gain = 1 + strength * (gain - 1)
    sprite = placement.sprite.astype(np.float32)
    sprite[..., :3] *= gain
    out = np.clip(sprite + 0.5, 0, 255).astype(np.uint8)
    return Placement(out, placement.box, placement.alpha, placement.shape, placement.shadow)


def gap_ratio(old_mask: np.ndarray, new_mask: np.ndarray) -> float:
    """``|old minus new| / |old|`` in [0, 1]: how much of the old product must be inpainted."""
    n = int(old_mask.sum())
    if n == 0:
        return 1.0
    return float((old_mask & ~new_mask).sum() / n)
