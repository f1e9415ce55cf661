"""Training data: copy-paste pairs from the catalog, and self-supervised gaps on any image.

``InpaintPool`` (EdgeConnect) cuts product-shaped gaps (``stager.gaps``) into crops of the
current catalog's scenes (imported scenes included), bundled real photographs and procedural
textures, at native scale: the networks are fully convolutional and run at the gap's own
resolution, so they must learn its detail. ``PairPool`` (pix2pix, compact diffusion) keeps the
whole-window pairs below.


Inpainting pairs are real copy-paste gaps: another product (a train scene's hero, re-rendered)
is placed into a scene's old-product mask exactly as compositing does; the ground truth is the
scene background with that product and its shadow; the hole is the gap. Each pair is cropped to
the same context window the backends use and resized to ``res``. A share of samples gets a
free-form stroke mask instead. pix2pix pairs are whole scenes: the product on white -> scene.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from stager import synth
from stager.backends.base import context_window, to_model
from stager.catalog import Catalog
from stager.composite import gap_mask, place
from stager.config import get_settings


def free_form_mask(rng: np.random.Generator, res: int) -> np.ndarray:
    """Random brush strokes (bool ``res x res``), covering roughly 5-30% of the image."""
    m = np.zeros((res, res), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        x, y = rng.integers(0, res, 2)
        for _ in range(int(rng.integers(3, 8))):
            ang = rng.uniform(0, 2 * np.pi)
            ln = rng.uniform(res * 0.08, res * 0.3)
            nx = int(np.clip(x + ln * np.cos(ang), 0, res - 1))
            ny = int(np.clip(y + ln * np.sin(ang), 0, res - 1))
            cv2.line(m, (int(x), int(y)), (nx, ny), 1, int(rng.integers(res // 20, res // 8)))
            x, y = nx, ny
    return m.astype(bool)


class PairPool:
    """Precomputed training pairs held in memory (uint8)."""

    def __init__(self, catalog: Catalog, n: int, res: int, seed: int = 0, progress=None):
        st = get_settings()
        rng = np.random.default_rng(seed)
        train = [s for s in catalog.scenes if s.split == "train" and s.background and s.mask]
        if len(train) < 2:
            raise ValueError("the catalog has fewer than two train scenes with ground truth")
        bgs = {s.id: catalog.scene_background(s.id) for s in train}
        masks = {s.id: catalog.scene_mask(s.id) for s in train}
        images, holes, wholes, whole_masks = [], [], [], []
        for i in range(n):
            s = train[int(rng.integers(len(train)))]
            donor = train[int(rng.integers(len(train)))]
            old = masks[s.id]
            # donor's hero, rendered at catalog-shot scale, as the "new product"
            sprite = synth.render_product(donor.params["hero"], 256)
            pl = place(sprite, old, scale=float(rng.uniform(0.85, 1.05)))
            gt, new = synth.stage_on(bgs[s.id].astype(np.float32), pl.sprite, pl.box)
            gap = gap_mask(old, new, st.gap_margin)
            if gap.sum() < 20:
                gap = gap_mask(old, np.zeros_like(old), st.gap_margin)
            x0, y0, x1, y1 = context_window(gap, st.context_scale, min_side=res // 2)
            img, hole = to_model(gt[y0:y1, x0:x1], gap[y0:y1, x0:x1], res)
            if rng.random() < 0.5:
                img, hole = img[:, ::-1].copy(), hole[:, ::-1].copy()
            images.append(img)
            holes.append(hole)
            wholes.append(cv2.resize(gt, (res, res), interpolation=cv2.INTER_AREA))
            whole_masks.append(cv2.resize(new.astype(np.uint8), (res, res),
                                          interpolation=cv2.INTER_NEAREST).astype(bool))
            if progress and (i + 1) % 50 == 0:
                progress(i + 1, n)
        self.images = np.stack(images)  # (n, res, res, 3) uint8: ground truth windows
        self.holes = np.stack(holes)  # (n, res, res) bool: gap in the window
        self.scenes = np.stack(wholes)  # (n, res, res, 3): whole staged scenes (pix2pix target)
        self.products = np.stack(whole_masks)  # (n, res, res) bool: product in the whole scene
        self.rng = np.random.default_rng(seed + 1)
        self.res = res

    def inpaint_batch(self, batch: int, free_form: float = 0.25):
        """(images uint8 (B,res,res,3), holes bool (B,res,res))."""
        idx = self.rng.integers(0, len(self.images), batch)
        holes = self.holes[idx].copy()
        for j in range(batch):
            if self.rng.random() < free_form:
                holes[j] = free_form_mask(self.rng, self.res)
        return self.images[idx], holes

    def pix2pix_batch(self, batch: int):
        """(inputs: product on white, targets: staged scene), uint8 (B,res,res,3) each."""
        idx = self.rng.integers(0, len(self.scenes), batch)
        tgt = self.scenes[idx]
        inp = np.where(self.products[idx][..., None], tgt, 255).astype(np.uint8)
        return inp, tgt


# ------------------------------------------------------------------ self-supervised gaps


def _held_out(scene_id: str) -> bool:
    """Imported scenes: a stable fifth (by id hash) is held out for evaluation."""
    import zlib

    return zlib.crc32(scene_id.encode()) % 5 == 0


def catalog_images(catalog: Catalog, split: str = "train") -> list[np.ndarray]:
    """Whole images with known pixels: synthetic scenes of ``split`` (staged image and empty
    background) and imported scenes (a stable fifth held out as ``eval``)."""
    out = []
    for s in catalog.scenes:
        if s.source == "import":
            if (split == "eval") == _held_out(s.id):
                out.append(catalog.scene_image(s.id))
        elif s.split == split:
            out.append(catalog.scene_image(s.id))
            if s.background and split == "train":
                out.append(catalog.scene_background(s.id))
    return out


def held_out_imports(catalog: Catalog) -> dict[str, np.ndarray]:
    """The imported scenes held out from training, by scene id."""
    return {s.id: catalog.scene_image(s.id) for s in catalog.scenes
            if s.source == "import" and _held_out(s.id)}


def _crop(rng: np.random.Generator, img: np.ndarray, res: int) -> np.ndarray:
    """A ``res`` crop at native scale or mildly downscaled (0.5-1x), flipped at random."""
    h, w = img.shape[:2]
    s = rng.uniform(0.5, 1.0) if min(h, w) * 0.5 >= res else 1.0
    s = max(s, res / min(h, w))
    if abs(s - 1.0) > 1e-3:
        img = cv2.resize(img, (max(res, int(round(w * s))), max(res, int(round(h * s)))),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        h, w = img.shape[:2]
    y, x = int(rng.integers(0, h - res + 1)), int(rng.integers(0, w - res + 1))
    out = img[y:y + res, x:x + res]
    return np.ascontiguousarray(out[:, ::-1] if rng.random() < 0.5 else out)


def _chunks(crops: int, masks: int, k: int) -> list[tuple[int, int]]:
    return [(crops // k + (i < crops % k), masks // k + (i < masks % k)) for i in range(k)]


MIX_SHARES = {"mix": {"catalog": 0.45, "real": 0.4, "texture": 0.15},
              "catalog": {"catalog": 1.0}, "real": {"real": 1.0}}


def parse_shares(text: str | None, data: str = "mix") -> dict[str, float] | None:
    """``catalog=0.3,real=0.55,texture=0.15`` -> the mix's shares (normalised to sum 1); a
    source the data choice does not read, an unknown or repeated name, or a share that is
    negative or not finite is an error."""
    if not text:
        return None
    allowed = set(MIX_SHARES[data]) | ({"texture", "room"} if data == "mix" else set())
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, val = part.partition("=")
        name = name.strip()
        try:
            v = float(val)
        except ValueError:
            v = -1.0
        if not sep or name not in allowed or not math.isfinite(v) or v < 0 or name in out:
            raise ValueError(f"--shares {text!r}: expected name=share with names from "
                             f"{sorted(allowed)}, each once, and finite shares >= 0")
        out[name] = v
    total = sum(out.values())
    if total <= 0:
        raise ValueError(f"--shares {text!r}: the shares sum to zero")
    return {k: v / total for k, v in out.items()}


def _build_chunk(job, catalog: Catalog | None = None, progress=None):
    """Crops, edges and holes for one chunk (a separate process when building in parallel)."""
    from stager import gaps
    from stager.catalog import open_catalog
    from .edgeconnect import canny, to_gray

    root, data, res, crops, masks, seed, shares = job
    rng = np.random.default_rng(seed)
    share = dict(shares) if shares else MIX_SHARES[data]
    sources: dict[str, list[np.ndarray]] = {"catalog": [], "real": [], "texture": []}
    if share.get("catalog", 0) > 0:
        if catalog is None and root is not None:
            catalog = open_catalog(Path(root), build=False)
        if catalog is None:
            raise ValueError("training on the catalog needs a catalog")
        sources["catalog"] = catalog_images(catalog, "train")
        if not sources["catalog"]:
            raise ValueError("the catalog has no training images: build or import scenes")
    if share.get("real", 0) > 0:
        sources["real"] = list(gaps.real_photos("train").values())
        if not sources["real"] and shares:
            raise ValueError("--shares gives real photos a share, but no bundled photos were "
                             "found (scikit-image, scikit-learn and matplotlib ship them)")
    names = [k for k in share if share[k] > 0 and (k in ("texture", "room") or sources[k])]
    p = np.array([share[k] for k in names])
    p /= p.sum()
    counts = dict.fromkeys(names, 0)
    imgs, edges, holes = [], [], []
    for i in range(crops):
        kind = names[int(rng.choice(len(names), p=p))]
        counts[kind] += 1
        if kind == "texture":
            c = gaps.procedural_texture(rng, res)
        elif kind == "room":
            c = gaps.plain_room_background(rng, res)
        else:
            src = sources[kind]
            c = _crop(rng, src[int(rng.integers(len(src)))], res)
        imgs.append(c)
        edges.append(canny(to_gray(c)))
        if progress and (i + 1) % 100 == 0:
            progress(i + 1, crops + masks)
    bank = gaps.silhouette_bank()
    hidden = []
    for j in range(masks):
        if rng.random() < 0.8:
            g = gaps.product_gap(rng, (res, res), bank=bank)
            holes.append(g.hole)
            hidden.append(g.hidden())
        else:
            holes.append(gaps.free_form_hole(rng, (res, res)))
            hidden.append(np.zeros((res, res), bool))
        if progress and (j + 1) % 100 == 0:
            progress(crops + j + 1, crops + masks)
    return imgs, edges, holes, counts, hidden


class InpaintPool:
    """Crops (with their Canny edges) and a bank of holes, sampled independently per batch.

    ``data`` is ``mix`` (catalog + real photos + textures), ``catalog`` (the current catalog,
    imported scenes included) or ``real``. Shares of the mix: catalog 45%, real 40%, texture 15%.
    """

    def __init__(self, catalog: Catalog | None, res: int, crops: int = 3000, masks: int = 1000,
                 data: str = "mix", seed: int = 0, progress=None, workers: int = 1,
                 shares: dict[str, float] | None = None):
        self.counts: dict[str, int] = {}
        jobs = [(data, res, n, m, seed * 1009 + k, shares)
                for k, (n, m) in enumerate(_chunks(crops, masks, max(1, workers)))]
        catalog_root = str(catalog.root) if catalog is not None else None
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: forking a process that may hold a CUDA context is unsafe
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
                parts = list(ex.map(_build_chunk, [(catalog_root, *j) for j in jobs]))
        else:
            parts = []
            for j in jobs:
                parts.append(_build_chunk((catalog_root, *j), catalog, progress))
        imgs = [i for p in parts for i in p[0]]
        edges = [e for p in parts for e in p[1]]
        holes = [h for p in parts for h in p[2]]
        hidden = [h for p in parts for h in p[4]]
        for p in parts:
            for k, v in p[3].items():
                self.counts[k] = self.counts.get(k, 0) + v
        self.images = np.stack(imgs)  # (N, res, res, 3) uint8
        self.edges = np.stack(edges)  # (N, res, res) bool, Canny of the whole crop
        self.holes = np.stack(holes)  # (M, res, res) bool
        # the part of each hole the new product covers deep inside (empty for free-form
        # strokes): a staging job fills it with Telea first and the model fills the ring
        self.hidden = np.stack(hidden)
        self.res = res
        self.data = data
        self._weights: dict[tuple[float, float], np.ndarray] = {}

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        return f"{len(self.images)} crops at {self.res} px ({parts}), {len(self.holes)} holes"

    def weights(self, lam: float, sigma: float) -> np.ndarray:
        """Boundary weight maps of the hole bank (M, res, res) float32 (cached)."""
        from .edgeconnect import boundary_weight

        key = (float(lam), float(sigma))
        if key not in self._weights:
            self._weights[key] = np.stack([boundary_weight(h, lam, sigma) for h in self.holes])
        return self._weights[key]

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
        """(crop indices, hole indices, hole flips) for one batch: the same draw gives the
        same batch to every model that shares ``rng``'s stream."""
        return (rng.integers(0, len(self.images), size), rng.integers(0, len(self.holes), size),
                rng.random(size) < 0.5)

    def take(self, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images uint8 (B,res,res,3), edges float32 (B,res,res), holes bool (B,res,res))."""
        ci, hi, flip = idx
        holes = self.holes[hi].copy()
        holes[flip] = holes[flip][:, :, ::-1]
        return self.images[ci], self.edges[ci].astype(np.float32), holes

    def take_hidden(self, idx) -> np.ndarray:
        """The hidden part (bool (B,res,res)) of each hole of ``take(idx)``."""
        _, hi, flip = idx
        hidden = self.hidden[hi].copy()
        hidden[flip] = hidden[flip][:, :, ::-1]
        return hidden

    def take_weights(self, idx, lam: float, sigma: float) -> np.ndarray:
        _, hi, flip = idx
        w = self.weights(lam, sigma)[hi].copy()
        w[flip] = w[flip][:, :, ::-1]
        return w
