"""Self-supervised copy-paste gaps on any image, and the real photographs used to score them.

A staging job fills the old product's footprint (dilated, plus its shadow) and then pastes the
new product over it; what stays visible of the fill is the *gap*: the footprint minus the new
product. ``product_gap`` draws exactly that geometry on an image whose true pixels are known:
an old silhouette of a real furniture outline (the catalog's families) at some size and place,
its margin and sometimes a shadow blob, and a new silhouette of another product fitted into the
old box, anchored on its base line. Training cuts these holes into catalog scenes, real photos,
imported scenes and textures; evaluation scores the fill on the visible gap only.

Real photographs come from packages that bundle them (scikit-image's ``data`` folder,
scikit-learn's sample images, matplotlib's sample data). ``REAL_HELDOUT`` names the photos that
are never used for training.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .images import bbox, dilate


@dataclass
class Gap:
    """One synthetic copy-paste geometry on an ``HxW`` image (all HxW bool)."""

    hole: np.ndarray  # what a backend fills: dilated old footprint (+ its shadow)
    new: np.ndarray  # the new product pasted on top afterwards
    old: np.ndarray  # the old product's silhouette

    @property
    def visible(self) -> np.ndarray:
        """The gap: filled pixels that stay visible after the paste."""
        return self.hole & ~self.new

    def hidden(self, inset: int = 4) -> np.ndarray:
        """Hole pixels deep under the new product (its silhouette eroded by ``inset`` px), as
        ``stager.pipeline.hidden_region`` marks them in a staging job: never visible."""
        from .images import erode

        return self.hole & erode(self.new, inset)

    def band(self, width: int = 8) -> np.ndarray:
        """Gap pixels within ``width`` px of *known background* (outside the hole)."""
        d = cv2.distanceTransform(self.hole.astype(np.uint8), cv2.DIST_L2, 3)
        return self.visible & (d <= width)


@functools.lru_cache(maxsize=4)
def silhouette_bank(n: int = 96, seed: int = 1234, height: int = 256) -> tuple[np.ndarray, ...]:
    """``n`` product silhouettes (bool, ``height`` px tall, cropped) from every furniture family."""
    from .furniture import FAMILIES, render_product, sample_product

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sprite = render_product(sample_product(rng, FAMILIES[i % len(FAMILIES)]), height)
        a = sprite[..., 3] > 127
        b = bbox(a)
        if b is not None:
            out.append(a[b[1]:b[3], b[0]:b[2]])
    return tuple(out)


def _fit(sil: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(sil.astype(np.uint8), (max(w, 1), max(h, 1)),
                      interpolation=cv2.INTER_NEAREST).astype(bool)


def _paste(canvas: np.ndarray, sil: np.ndarray, x0: int, y0: int) -> None:
    H, W = canvas.shape
    h, w = sil.shape
    dx0, dy0, dx1, dy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if dx1 > dx0 and dy1 > dy0:
        canvas[dy0:dy1, dx0:dx1] |= sil[dy0 - y0:dy1 - y0, dx0 - x0:dx1 - x0]


def product_gap(rng: np.random.Generator, shape: tuple[int, int],
                height: tuple[float, float] = (0.3, 0.75), margin: tuple[int, int] = (3, 10),
                shadow: float = 0.5, new_scale: tuple[float, float] = (0.7, 1.0), similar: float = 0.7,
                bank: tuple[np.ndarray, ...] | None = None) -> Gap:
    """A product-shaped copy-paste gap on an image of ``shape`` (H, W).

    ``height`` is the old product's height as a fraction of the short side; ``margin`` the
    dilation of its footprint (px); ``shadow`` the chance of a shadow blob joined to its base;
    ``new_scale`` the new product's size relative to the fit into the old box; ``similar`` the
    chance that the new outline is the old one resized (retrieval finds look-alikes). Visible
    gaps are then rings a few to ~30 px wide, like a real replacement.
    """
    bank = bank or silhouette_bank()
    H, W = shape
    short = min(H, W)
    old_sil = bank[int(rng.integers(len(bank)))]
    if rng.random() < 0.5:
        old_sil = old_sil[:, ::-1]
    h = int(short * rng.uniform(*height))
    w = int(h * old_sil.shape[1] / old_sil.shape[0])
    if w > 0.9 * W:
        h, w = int(h * 0.9 * W / w), int(0.9 * W)
    h, w = max(h, 8), max(w, 8)
    x0 = int(rng.integers(0, max(W - w, 1)))
    y0 = int(rng.integers(0, max(H - h, 1)))
    old = np.zeros(shape, bool)
    _paste(old, _fit(old_sil, w, h), x0, y0)
    hole = dilate(old, int(rng.integers(margin[0], margin[1] + 1)))
    if rng.random() < shadow:  # contact blob, sometimes stretched into a cast shadow
        sh = np.zeros(shape, np.uint8)
        cx, by = x0 + w // 2 + int(rng.normal(0, w * 0.1)), y0 + h
        ax, ay = int(w * rng.uniform(0.45, 0.7)), max(int(h * rng.uniform(0.04, 0.15)), 2)
        ang = float(rng.uniform(-25, 25))
        cv2.ellipse(sh, (cx, by), (ax, ay), ang, 0, 360, 1, -1)
        hole |= sh.astype(bool)
    # retrieval finds a similar product: usually the same outline, resized with another
    # aspect; sometimes a different one
    new_sil = old_sil if rng.random() < similar else bank[int(rng.integers(len(bank)))]
    s = min(w / new_sil.shape[1], h / new_sil.shape[0]) * rng.uniform(*new_scale)
    aspect = rng.uniform(0.85, 1.15)
    nw = max(int(min(new_sil.shape[1] * s * aspect, w)), 4)
    nh = max(int(new_sil.shape[0] * s / aspect), 4)
    new = np.zeros(shape, bool)
    nx0 = x0 + (w - nw) // 2 + int(rng.normal(0, w * 0.03))
    _paste(new, _fit(new_sil, nw, nh), nx0, y0 + h - nh)  # same base line
    return Gap(hole, new, old)


def free_form_hole(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Random brush strokes (bool), roughly 5-30% of the image."""
    H, W = shape
    short = min(H, W)
    m = np.zeros(shape, np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
        for _ in range(int(rng.integers(3, 8))):
            ang = rng.uniform(0, 2 * np.pi)
            ln = rng.uniform(short * 0.08, short * 0.3)
            nx = int(np.clip(x + ln * np.cos(ang), 0, W - 1))
            ny = int(np.clip(y + ln * np.sin(ang), 0, H - 1))
            cv2.line(m, (x, y), (nx, ny), 1, int(rng.integers(max(short // 24, 2),
                                                             max(short // 10, 3))))
            x, y = nx, ny
    return m.astype(bool)


# ------------------------------------------------------------------ real photographs

#: photos never used for training (the real-photo evaluation set)
REAL_HELDOUT = ("coffee", "chelsea", "china", "grace_hopper", "rocket")


def _photo_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    try:
        import skimage

        d = Path(skimage.__file__).parent / "data"
        for name in ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg",
                     "motorcycle_left.png", "motorcycle_right.png", "hubble_deep_field.jpg",
                     "retina.jpg", "ihc.png", "brick.png", "grass.png", "gravel.png",
                     "camera.png", "moon.png", "coins.png"):
            if (d / name).is_file():
                files[Path(name).stem] = d / name
    except ImportError:
        pass
    try:
        import sklearn.datasets

        d = Path(sklearn.datasets.__file__).parent / "images"
        for name in ("china.jpg", "flower.jpg"):
            if (d / name).is_file():
                files[Path(name).stem] = d / name
    except ImportError:
        pass
    try:
        import matplotlib

        p = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
        if p.is_file():
            files["grace_hopper"] = p
    except ImportError:
        pass
    return files


def real_photos(split: str = "train", max_side: int = 768) -> dict[str, np.ndarray]:
    """Bundled photographs as RGB uint8, long side at most ``max_side``; ``split`` is
    ``train`` (never the held-out ones), ``heldout`` or ``all``. Greyscale photos become RGB."""
    from .images import load_image

    out = {}
    for name, path in sorted(_photo_files().items()):
        held = name in REAL_HELDOUT
        if (split == "train" and held) or (split == "heldout" and not held):
            continue
        img = load_image(path, keep_alpha=False)
        s = max_side / max(img.shape[:2])
        if s < 1:
            img = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)),
                             interpolation=cv2.INTER_AREA)
        out[name] = img
    return out


def procedural_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random texture (stripes, checks, noise, gradients): ``size x size x 3`` uint8."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c1, c2 = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    kind = int(rng.integers(4))
    ang = rng.uniform(0, np.pi)
    u = xx * np.cos(ang) + yy * np.sin(ang)
    if kind == 0:
        t = (np.sin(u * rng.uniform(10, 60)) > 0).astype(np.float32)
    elif kind == 1:
        f = rng.uniform(4, 16)
        t = ((np.floor(xx * f) + np.floor(yy * f)) % 2).astype(np.float32)
    elif kind == 2:
        small = rng.normal(0, 1, (int(rng.integers(4, 32)),) * 2).astype(np.float32)
        t = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    else:
        t = u / max(float(u.max()), 1e-6)
    img = c1 * t[..., None] + c2 * (1 - t[..., None])
    img += rng.normal(0, rng.uniform(0, 8), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def plain_room_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A designer's plain room with nothing in it: a wall over a floor (flat colours, a light
    gradient, sensor noise), the boundary level or slightly slanted, sometimes a skirting strip
    on the wall's foot or a corner where two walls meet: ``size x size x 3`` uint8. Gaps cut
    across its boundary teach a fill to carry the room as it is, and to draw no skirting the
    room does not show (a model trained only on the catalog's rooms, which have one, drew a
    dark band above a plain room's floor line)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    wall, floor = rng.uniform(110, 240, 3), rng.uniform(35, 200, 3)
    if np.abs(wall - floor).mean() < 25:  # a floor line one can see
        floor = np.clip(wall - rng.uniform(40, 100), 0, 255)
    slope = float(rng.uniform(-0.15, 0.15)) if rng.random() < 0.5 else 0.0
    line = rng.uniform(0.25, 0.75) * size + slope * (xx - size / 2)
    img = np.where((yy < line)[..., None], wall, floor).astype(np.float32)
    if rng.random() < 0.4:  # a skirting strip on the wall's foot
        h = rng.uniform(2, 10)
        strip = (yy < line) & (yy >= line - h)
        img[strip] = rng.uniform(20, 250, 3)
    if rng.random() < 0.3:  # a corner: the side wall a shade darker
        x0 = rng.uniform(0.15, 0.85) * size
        side = (xx > x0) if rng.random() < 0.5 else (xx < x0)
        img[side & (yy < line)] *= rng.uniform(0.75, 0.95)
    img *= (1 + rng.uniform(-0.2, 0.2) * (yy / size - 0.5))[..., None]
    img += rng.normal(0, rng.uniform(0, 6), img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


__all__ = ["Gap", "product_gap", "free_form_hole", "silhouette_bank", "real_photos",
           "REAL_HELDOUT", "procedural_texture", "plain_room_background"]
