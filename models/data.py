"""Training pairs from the catalog's train split.

Inpainting pairs are real copy-paste gaps: another product (a train scene's hero, re-rendered)
is placed into a scene's old-product mask exactly as compositing does; the ground truth is the
scene background with that product and its shadow; the hole is the gap. Each pair is cropped to
the same context window the backends use and resized to ``res``. A share of samples gets a
free-form stroke mask instead. pix2pix pairs are whole scenes: the product on white -> scene.
"""

from __future__ import annotations

import numpy as np
import cv2

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
