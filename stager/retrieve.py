"""Scene retrieval: nearest old products by embedding, reranked by how well the new product
fits where the old one stood.

``score = similarity - gap_weight * gap_ratio`` where the gap ratio is ``|old minus new| /
|old|`` after placing the new product over the old one: inpainting a small region is easier,
so a close fit matters as much as a close look.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .catalog import Catalog, CatalogError
from .composite import crop_to_alpha
from .config import get_settings
from .embed import get_embedder, scene_crop
from .index import VectorIndex

FIT_SIDE = 96  # gap ratios are computed on old masks cropped to their box, this many px


@dataclass
class Candidate:
    scene_id: str
    category: str
    similarity: float
    gap_ratio: float
    score: float

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _fit_mask(mask: np.ndarray) -> np.ndarray:
    """The old mask cropped to its box and shrunk so its long side is <= FIT_SIDE."""
    ys, xs = np.nonzero(mask)
    crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8)
    s = min(1.0, FIT_SIDE / max(crop.shape))
    if s < 1.0:
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))),
                          interpolation=cv2.INTER_NEAREST)
    return crop.astype(bool)


def fit_gap_ratio(product_alpha: np.ndarray, old_fit: np.ndarray) -> float:
    """Gap ratio of a product silhouette (``hxw`` alpha of the cropped product, uint8) placed
    bottom-centre, aspect kept, into an old mask already cropped to its box (``_fit_mask``)."""
    bh, bw = old_fit.shape
    ph, pw = product_alpha.shape
    s = min(bw / pw, bh / ph)
    nw, nh = max(1, round(pw * s)), max(1, round(ph * s))
    new = cv2.resize(product_alpha, (nw, nh), interpolation=cv2.INTER_AREA) > 127
    canvas = np.zeros((bh, bw), bool)
    x0 = (bw - nw) // 2
    canvas[bh - nh:bh, x0:x0 + nw] = new[:bh, :bw - x0]
    n = old_fit.sum()
    return float((old_fit & ~canvas).sum() / n) if n else 1.0


def scene_key(scene) -> str:
    """A short hash of a scene's record: a changed scene under the same id is re-embedded."""
    blob = json.dumps(asdict(scene), sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


class Retriever:
    """Holds the embedder, the faiss index and the old masks of one catalog.

    The saved index is reused while the embedder and the index type are unchanged. When scenes
    were added to the catalog (``catalog import``) only their vectors are embedded and added;
    when a scene was removed or changed the index is rebuilt from scratch.
    """

    def __init__(self, catalog: Catalog, embedder=None, index: VectorIndex | None = None,
                 progress=None):
        self.catalog = catalog
        self.embedder = embedder or get_embedder()
        st = get_settings()
        self.folder = st.cache_dir / "index" / self.embedder.name.replace(":", "_").replace("/", "_")
        self._fits: dict[str, np.ndarray] = {}
        self._products: tuple[np.ndarray, list[str]] | None = None  # catalog product vectors
        self.added = 0  # vectors added incrementally by this load (0 = loaded or rebuilt)
        self.index = index or self._load_or_update(progress)
        self.index.set_search_params(st.index_nprobe, st.index_ef_search)
        self.index_meta = self.index.meta

    def _scenes_with_masks(self):
        return [s for s in self.catalog.scenes if s.mask]

    def _load_or_update(self, progress=None) -> VectorIndex:
        st = get_settings()
        expect = {"embedder": self.embedder.name, "factory": st.index_factory}
        scenes = self._scenes_with_masks()
        keys = {s.id: scene_key(s) for s in scenes}
        index = VectorIndex.load(self.folder, expect, mmap=st.index_mmap)
        if index is None:
            return self.build(progress)
        stored = index.meta.get("scene_keys", {})
        if any(keys.get(sid) != stored.get(sid) for sid in index.ids):
            return self.build(progress)  # a scene was removed or changed
        new = [s for s in scenes if s.id not in stored]
        if not new:
            return index
        if index.mmapped:  # a mapped index is read-only: read it to append
            index = VectorIndex.load(self.folder, expect, mmap=False)
        vecs = self._embed(new, progress)
        index.add(vecs, [s.id for s in new])
        index.meta["scene_keys"] = {sid: keys[sid] for sid in index.ids}
        index.meta["fingerprint"] = self.catalog.fingerprint()
        self._save(index)
        self.added = len(new)
        return VectorIndex.load(self.folder, expect, mmap=st.index_mmap) or index

    def _embed(self, scenes, progress=None) -> np.ndarray:
        self._load_fits()  # the saved fits first, so new ones join them
        vecs = []
        for i, s in enumerate(scenes):
            img, mask = self.catalog.scene_image(s.id), self.catalog.scene_mask(s.id)
            vecs.append(self.embedder(scene_crop(img, mask)))
            self._fits[s.id] = _fit_mask(mask)
            if progress:
                progress((i + 1) / len(scenes), f"indexing scene {i + 1}/{len(scenes)}")
        return np.stack(vecs)

    def _save(self, index: VectorIndex) -> None:
        index.save(self.folder)
        tmp = self.folder / "fits.tmp.npz"
        np.savez_compressed(tmp, **{k: v for k, v in self._fits.items()})
        tmp.replace(self.folder / "fits.npz")

    def build(self, progress=None) -> VectorIndex:
        """Embed every scene's old product and write the index (first use, or a scene changed)."""
        st = get_settings()
        scenes = self._scenes_with_masks()
        if not scenes:
            raise CatalogError("the catalog has no scenes with an old-product mask to search")
        self._fits = {}
        (self.folder / "fits.npz").unlink(missing_ok=True)
        vecs = self._embed(scenes, progress)
        index = VectorIndex.build(vecs, [s.id for s in scenes], st.index_factory,
                                  {"fingerprint": self.catalog.fingerprint(),
                                   "embedder": self.embedder.name,
                                   "scene_keys": {s.id: scene_key(s) for s in scenes}})
        self._save(index)
        return index

    def product_vectors(self) -> tuple[np.ndarray, list[str]]:
        """(embeddings, categories) of the catalog's products, made on first use (the app
        warms them in the background at start: with CLIP, a large catalog takes a while)."""
        if self._products is None:
            prods = self.catalog.products
            vecs = [self.embedder(self.catalog.product_image(p.id)) for p in prods]
            self._products = (np.stack(vecs) if vecs else np.zeros((0, 1), np.float32),
                              [p.category for p in prods])
        return self._products

    def likely_category(self, query: np.ndarray, k: int = 5, agree: int = 3) -> str | None:
        """The category the ``k`` catalog products most like the query (an embedding) agree
        on, at least ``agree`` of them; None without such agreement. A query that is a catalog
        product's own image (similarity over 0.999) has that product's category."""
        vecs, cats = self.product_vectors()
        if not len(cats):
            return None
        sims = vecs @ query
        top = int(np.argmax(sims))
        if sims[top] >= 0.999:  # the catalog's own product: its category is known
            return cats[top] if cats[top] != "unknown" else None
        order = list(np.argsort(-sims)[:k])
        votes: dict[str, int] = {}
        for i in order:
            votes[cats[i]] = votes.get(cats[i], 0) + 1
        best = max(votes.items(), key=lambda kv: kv[1], default=(None, 0))
        return best[0] if best[1] >= agree and best[0] != "unknown" else None

    def _load_fits(self) -> None:
        path = self.folder / "fits.npz"
        if not self._fits and path.is_file():
            with np.load(path) as z:
                self._fits = {k: z[k] for k in z.files}

    def _fit(self, scene_id: str) -> np.ndarray:
        self._load_fits()
        if scene_id not in self._fits:
            self._fits[scene_id] = _fit_mask(self.catalog.scene_mask(scene_id))
        return self._fits[scene_id]

    def search(self, product: np.ndarray, k: int | None = None, category: str | None = None,
               rerank: bool = True) -> list[Candidate]:
        """Top-``k`` scenes for a product (``HxWx4 uint8`` cutout), best first.

        ``category`` keeps only scenes of that category; without it, the rerank also lowers
        scenes of another category than the one the product's nearest catalog products agree
        on (``likely_category``; ``STAGER_RERANK_CATEGORY_WEIGHT``): a boxy chair's old-product
        look-alike may be a cabinet, but a chair belongs in a chair's scene. Scenes of unknown
        category (imported without one) are not lowered.
        ``rerank=False`` orders by similarity alone (the gap ratio is still reported).
        """
        st = get_settings()
        k = k or st.top_k
        query = self.embedder(product)
        alpha = crop_to_alpha(product)[..., 3]
        pool = len(self.index.ids) if category else max(st.rerank_pool, k)
        hits = self.index.search(query, pool)
        likely = None
        if rerank and not category and st.rerank_category_weight > 0:
            likely = self.likely_category(query)
        out = []
        for sid, sim in hits:
            scene = self.catalog.scene(sid)
            if category and scene.category != category:
                continue
            g = fit_gap_ratio(alpha, self._fit(sid))
            # an imported scene of unknown category is not another category: never lowered
            off = (st.rerank_category_weight
                   if likely and scene.category not in (likely, "unknown") else 0.0)
            out.append(Candidate(sid, scene.category, sim, g,
                                 sim - st.rerank_gap_weight * g - off))
        if rerank:
            out.sort(key=lambda c: -c.score)
        return out[:k]
