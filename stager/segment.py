"""Masks: the product cutout and proposals for the old product in a scene.

``cutout`` turns a product shot on a plain background into RGBA. ``Segmenter`` answers point
and box prompts with up to three candidate masks: with SAM (segment-anything) when a checkpoint
is configured, else with GrabCut, labelled as the classical fallback. Either way the expensive
per-image state (SAM's image embedding; GrabCut's colour models) is computed once per image,
kept in memory, and for SAM also on disk, so a click never recomputes it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .config import get_settings
from .images import ImageError, bbox, disk

log = logging.getLogger(__name__)

# ------------------------------------------------------------------ cutout


def border_color(rgb: np.ndarray, width: int = 4) -> tuple[np.ndarray, float]:
    """Median colour of the image border and its spread (mean abs deviation)."""
    b = np.concatenate([rgb[:width].reshape(-1, 3), rgb[-width:].reshape(-1, 3),
                        rgb[:, :width].reshape(-1, 3), rgb[:, -width:].reshape(-1, 3)])
    med = np.median(b.astype(np.float32), axis=0)
    spread = float(np.abs(b.astype(np.float32) - med).mean())
    return med, spread


@dataclass
class Cutout:
    """A product separated from its studio backdrop."""

    rgba: np.ndarray  # HxWx4 uint8: the product only; edge colours freed of the backdrop
    shadow: np.ndarray  # HxW float32 in [0, 1]: the photo's shadow as darkening (0 = none)
    backdrop: tuple[int, int, int]  # the backdrop colour that was removed

    @property
    def has_shadow(self) -> bool:
        return bool((self.shadow > 0.05).sum() > 50)


def cutout_layers(image: np.ndarray, tolerance: float = 10.0, min_component: float = 0.02,
                  segmenter: "Segmenter | None" = None) -> Cutout:
    """Separate a product photographed on a plain backdrop from the backdrop *and* from its
    photographic shadow.

    The backdrop colour is the median of the border. Pixels farther than ``tolerance`` (plus
    the border's own noise) from it stand out. Of those, *shadow* is what darkens the backdrop
    while keeping its colour (channel ratios to the backdrop nearly equal) and stays smooth; it
    becomes a darkening map, never product pixels. Product regions enclosed by the product are
    kept even when they look like shadow (a smooth grey cushion). Edge colours are un-mixed
    from the backdrop so no backdrop-coloured fringe is pasted. An RGBA input with real
    transparency keeps its alpha (and has no shadow). Raises ``ImageError`` when nothing stands
    out (an empty or all-one-colour photo).
    """
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ImageError("the product image must be RGB or RGBA")
    if image.shape[2] == 4 and image[..., 3].min() < 250:
        if (image[..., 3] > 8).sum() < 16:
            raise ImageError("the product image is fully transparent")
        # true alpha: a shadow can still sit in the colour of the transparent pixels
        bg, spread = border_color(image[..., :3])
        lum = (image[..., :3].astype(np.float32) / np.maximum(bg, 1.0)).mean(axis=2)
        noise = max(2.0 * spread, 2.0) / max(float(np.mean(bg)), 1.0)
        shade = np.clip(1.0 - lum, 0.0, 1.0)
        shade = np.where((shade > noise) & (image[..., 3] == 0), shade, 0.0).astype(np.float32)
        return Cutout(image.copy(), shade, tuple(int(v) for v in bg))
    rgb = image[..., :3]
    bg, spread = border_color(rgb)
    f = rgb.astype(np.float32)
    d_raw = np.abs(f - bg).max(axis=2)
    d = cv2.GaussianBlur(d_raw, (3, 3), 0)
    t = tolerance + 2.0 * spread
    fg = cv2.morphologyEx((d > t).astype(np.uint8), cv2.MORPH_OPEN, disk(1)).astype(bool)
    if fg.sum() < 64:
        raise ImageError("the product cannot be told from its background (empty or all one "
                         "colour): use a photo of the product on a plain background")
    # shadow: a colour-preserving, smooth darkening of the backdrop
    ratio = f / np.maximum(bg, 1.0)
    lum = ratio.mean(axis=2)
    chroma = np.abs(ratio - lum[..., None]).max(axis=2)
    hf = cv2.blur(np.abs(lum - cv2.GaussianBlur(lum, (0, 0), 1.5)), (5, 5))  # texture energy
    neutral = fg & (chroma < 0.03) & (lum > 0.3) & (lum < 1.0)
    # a studio shadow lies on the floor plane: the lower part of what stands out
    fb = bbox(fg)
    floor = np.zeros_like(fg)
    floor[fb[1] + int(0.6 * (fb[3] - fb[1])):] = True
    neutral &= floor
    shadowish = neutral & (hf < 0.004)
    shadowish = cv2.morphologyEx(shadowish.astype(np.uint8), cv2.MORPH_OPEN, disk(1)).astype(bool)
    for _ in range(8):  # grow into neutral pixels next to the shadow (its edge is less smooth)
        shadowish = cv2.dilate(shadowish.astype(np.uint8), disk(1)).astype(bool) & neutral
    prod = fg & ~shadowish
    prod = cv2.morphologyEx(prod.astype(np.uint8), cv2.MORPH_OPEN, disk(1))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(prod, 8)
    if n <= 1:
        raise ImageError("only a shadow stands out from the backdrop: no product found")
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.nonzero(areas >= max(areas.max() * min_component, 16))[0]
    prod = np.isin(labels, keep)
    from scipy import ndimage

    # enclosed smooth-grey parts are product (a shadow is never enclosed by the product);
    # enclosed backdrop (between a chair's slats) stays backdrop
    prod = prod | (ndimage.binary_fill_holes(prod) & fg & (d_raw > t))
    prod = cv2.morphologyEx(prod.astype(np.uint8), cv2.MORPH_CLOSE, disk(1)).astype(bool)
    prod &= d_raw > t  # the blur above widened the boundary by a pixel
    if prod.sum() < 64:
        raise ImageError("the product is too small to cut out (under 64 pixels)")
    if prod.mean() > 0.98:
        raise ImageError("the product fills the whole photo: no background to remove")
    # soft edge: a one-pixel ramp across the product boundary
    alpha = cv2.GaussianBlur(prod.astype(np.float32), (0, 0), 0.6)
    alpha = np.where(cv2.erode(prod.astype(np.uint8), disk(1)).astype(bool), 1.0, alpha)
    alpha = np.where(prod, np.maximum(alpha, 0.5), 0.0)  # nothing outside: no backdrop fringe
    # un-mix edge colours from the backdrop: c = (observed - (1 - a) bg) / a
    a3 = np.clip(alpha, 1e-3, 1.0)[..., None]
    clean = np.where((alpha > 0)[..., None] & (alpha < 1)[..., None],
                     (f - (1 - a3) * bg) / a3, f)
    a8 = np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)
    out = np.dstack([np.clip(clean + 0.5, 0, 255).astype(np.uint8), a8])
    if segmenter is not None and segmenter.sam is not None:
        out = refine_cutout(out, segmenter)
    noise = max(2.0 * spread, 2.0) / max(float(np.mean(bg)), 1.0)
    shade = np.clip(1.0 - lum, 0.0, 1.0)
    cand = ((shade > noise) & (out[..., 3] == 0)).astype(np.uint8)
    # only the shadow joined to the product: never a vignette or a backdrop gradient
    n, lab = cv2.connectedComponents(cand, connectivity=8)
    near = cv2.dilate((out[..., 3] > 0).astype(np.uint8), disk(3)).astype(bool)
    ids = np.unique(lab[near & (lab > 0)])
    shade = np.where(np.isin(lab, ids) & (lab > 0), shade, 0.0).astype(np.float32)
    return Cutout(out, shade, tuple(int(v) for v in bg))


def cutout(image: np.ndarray, tolerance: float = 10.0, min_component: float = 0.02,
           segmenter: "Segmenter | None" = None) -> np.ndarray:
    """The product alone as ``HxWx4 uint8`` (its photographic shadow dropped); see
    ``cutout_layers`` for the shadow as a separate layer."""
    return cutout_layers(image, tolerance, min_component, segmenter).rgba


def refine_cutout(rgba: np.ndarray, segmenter: "Segmenter", min_iou: float = 0.6) -> np.ndarray:
    """Refine a colour-based cutout with a segmenter prompted by its box. SAM's mask decides
    inside/outside; the colour estimate keeps the soft edge. When the two disagree (IoU below
    ``min_iou``) the colour cutout is kept: a plain background is the stronger cue."""
    a = rgba[..., 3]
    hard = a > 127
    box = bbox(hard)
    if box is None:
        return rgba
    m = segmenter.propose(np.ascontiguousarray(rgba[..., :3]), box=box).masks[0]
    if mask_iou(m, hard) < min_iou:
        return rgba
    core = cv2.erode(m.astype(np.uint8), disk(2)).astype(bool)
    ring = cv2.dilate(m.astype(np.uint8), disk(2)).astype(bool)
    new = np.where(core, 255, np.where(ring, a, 0)).astype(np.uint8)
    return np.dstack([rgba[..., :3], new])


# ------------------------------------------------------------------ proposals


@dataclass
class Proposal:
    """Candidate masks for one prompt, best first."""

    masks: list[np.ndarray]  # each HxW bool
    scores: list[float]
    method: str  # "sam" or "grabcut (classical fallback)"


SAM_URLS = {  # the official segment-anything checkpoints
    "vit_b": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
    "vit_l": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
    "vit_h": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
}


def sam_checkpoint() -> Path | None:
    """The configured checkpoint, else one downloaded earlier into the cache, else None."""
    st = get_settings()
    if st.sam_checkpoint:
        return Path(st.sam_checkpoint)
    cached = st.cache_dir / "weights" / f"sam_{st.sam_model_type}.pth"
    return cached if cached.is_file() else None


def download_sam() -> tuple[Path | None, str]:
    """Fetch the official checkpoint into the cache (only with STAGER_ALLOW_DOWNLOAD=1)."""
    import urllib.request

    st = get_settings()
    url = SAM_URLS.get(st.sam_model_type)
    if url is None:
        return None, f"no download known for STAGER_SAM_MODEL_TYPE={st.sam_model_type}"
    dest = st.cache_dir / "weights" / f"sam_{st.sam_model_type}.pth"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as r, tmp.open("wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        tmp.replace(dest)
        return dest, f"downloaded {url}"
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return None, f"SAM download failed ({exc.__class__.__name__}); GrabCut is used"


def sam_status() -> tuple[bool, str]:
    """Whether SAM weights are available, and if not, why and how to enable them."""
    st = get_settings()
    path = sam_checkpoint()
    if path is None:
        hint = (" (downloaded on first use: STAGER_ALLOW_DOWNLOAD=1)" if st.allow_download else
                " or set STAGER_ALLOW_DOWNLOAD=1 when online")
        return False, ("no SAM checkpoint: set STAGER_SAM_CHECKPOINT to a segment-anything "
                       f".pth{hint}; GrabCut is used meanwhile")
    if not path.is_file():
        return False, f"STAGER_SAM_CHECKPOINT={path} does not exist"
    return True, f"SAM {st.sam_model_type} from {path}"


def load_sam(checkpoint: str, model_type: str = "vit_b"):
    """Build a segment-anything model from a checkpoint; clear error for a bad file."""
    import torch
    from segment_anything import sam_model_registry

    if model_type not in sam_model_registry:
        raise ValueError(f"STAGER_SAM_MODEL_TYPE={model_type!r} is not one of "
                         f"{sorted(sam_model_registry)}")
    try:
        sam = sam_model_registry[model_type]()
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        sam.load_state_dict(state)
    except Exception as exc:  # corrupt file, wrong architecture
        raise ValueError(f"SAM checkpoint {checkpoint} could not be loaded ({exc.__class__.__name__}); "
                         "check STAGER_SAM_CHECKPOINT and STAGER_SAM_MODEL_TYPE") from exc
    return sam.eval()


def image_key(image: np.ndarray) -> str:
    """Content hash of an image, the cache key of its embedding."""
    h = hashlib.sha1(image.tobytes())
    h.update(str(image.shape).encode())
    return h.hexdigest()[:20]


def model_identity(sam) -> str:
    """A short hash of a torch model's weights ("grabcut" for no model): part of every cache
    key of model outputs (SAM embeddings, the CLIP index), so results of one checkpoint are
    never served for another."""
    if sam is None:
        return "grabcut"
    h = hashlib.sha1()
    for name, t in sam.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class Segmenter:
    """Stateful mask proposer: ``set_image`` once per image, then ``predict`` per click.

    One segmenter serves every user of the app, so servers call ``propose`` (set_image and
    predict under one lock): between a separate ``set_image`` and ``predict`` another user's
    ``set_image`` could swap the image. Cache keys are content hashes of the image; the disk
    cache lives under the model's identity (a hash of its weights).

    ``sam`` is a segment-anything ``Sam`` (None = GrabCut fallback). Embeddings are cached in
    memory (LRU of ``cache_size`` images) and, when ``disk_cache`` is given, on disk.
    """

    def __init__(self, sam=None, disk_cache: Path | None = None, cache_size: int = 16,
                 work_side: int = 256):
        self.sam = sam
        self.model_id = model_identity(sam)
        # cached embeddings are only valid for the model that made them
        self.disk_cache = Path(disk_cache) / self.model_id if disk_cache else None
        self.cache_size = cache_size
        self.work_side = work_side
        self._cache: OrderedDict[str, dict] = OrderedDict()
        # re-entrant: ``propose`` holds it across set_image + predict, which take it too
        self._lock = threading.RLock()
        self.image: np.ndarray | None = None
        self.key: str | None = None
        self.stats = {"embeddings_computed": 0, "cache_hits": 0}
        if sam is not None:
            from segment_anything import SamPredictor

            self.predictor = SamPredictor(sam)

    @property
    def method(self) -> str:
        return "sam" if self.sam is not None else "grabcut (classical fallback)"

    @classmethod
    def from_settings(cls) -> "Segmenter":
        ok, _ = sam_status()
        st = get_settings()
        if not ok and st.allow_download and not st.sam_checkpoint:
            path, _ = download_sam()
            ok = path is not None
        sam = load_sam(str(sam_checkpoint()), st.sam_model_type) if ok else None
        return cls(sam, st.cache_dir / ("sam" if sam is not None else "grabcut"))

    # ---- embedding
    def set_image(self, image: np.ndarray) -> None:
        """Compute (or fetch from cache) the per-image state for ``image`` (HxWx3 uint8); the
        cache key is the image's content hash."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ImageError("the scene must be an HxWx3 uint8 RGB image")
        key = image_key(image)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.stats["cache_hits"] += 1
            else:
                state = self._load_disk(key)
                if state is None:
                    state = self._embed(image)
                    self.stats["embeddings_computed"] += 1
                    self._save_disk(key, state)
                else:
                    self.stats["cache_hits"] += 1
                self._cache[key] = state
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            self.image, self.key = image, key

    def _embed(self, image: np.ndarray, predictor=None) -> dict:
        """Per-image state. ``predictor``: another ``SamPredictor`` of the same model, so a
        background job embeds without holding the lock the users' clicks need."""
        if self.sam is not None:
            import torch

            p = predictor or self.predictor
            with torch.no_grad():
                p.set_image(image)
            return {"features": p.features.detach().clone(),
                    "original_size": p.original_size, "input_size": p.input_size}
        # GrabCut: work on a downscaled copy; the "embedding" is that copy.
        s = self.work_side / max(image.shape[:2])
        small = cv2.resize(image, (max(1, round(image.shape[1] * s)),
                                   max(1, round(image.shape[0] * s))), interpolation=cv2.INTER_AREA)
        return {"small": small, "scale": s}

    def _path(self, key: str) -> Path | None:
        return self.disk_cache / f"{key}.pt" if self.disk_cache and self.sam is not None else None

    def _load_disk(self, key: str) -> dict | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        import torch

        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a corrupt cache file is recomputed, not fatal
            path.unlink(missing_ok=True)
            return None

    def _save_disk(self, key: str, state: dict) -> None:
        path = self._path(key)
        if path is None:
            return
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")  # two writers of one key
        torch.save(state, tmp)
        tmp.replace(path)

    # ---- prompts
    def predict(self, points: list[tuple[float, float]] | None = None,
                labels: list[int] | None = None,
                box: tuple[int, int, int, int] | None = None) -> Proposal:
        """Up to three masks for positive (label 1) / negative (0) points and/or a box.

        Points are ``(x, y)`` pixels of the image given to ``set_image``.
        """
        points = list(points or [])
        labels = list(labels if labels is not None else [1] * len(points))
        if len(labels) != len(points):
            raise ValueError("points and labels differ in length")
        if not points and box is None:
            raise ImageError("give at least one point or a box")
        with self._lock:
            if self.image is None or self.key not in self._cache:
                raise RuntimeError("Segmenter.predict called before set_image: choose a scene "
                                   "first")
            state = self._cache[self.key]
            if self.sam is not None:
                return self._predict_sam(state, points, labels, box)
            return self._predict_grabcut(state, self.image, points, labels, box)

    def propose(self, image: np.ndarray, points: list[tuple[float, float]] | None = None,
                labels: list[int] | None = None,
                box: tuple[int, int, int, int] | None = None) -> Proposal:
        """``set_image(image)`` then ``predict(...)`` as one step under the lock: safe when
        many users share this segmenter."""
        with self._lock:
            self.set_image(image)
            return self.predict(points, labels, box)

    def _predict_sam(self, state, points, labels, box) -> Proposal:
        import torch

        p = self.predictor
        p.features = state["features"]
        p.original_size = state["original_size"]
        p.input_size = state["input_size"]
        p.is_image_set = True
        with torch.no_grad():
            masks, scores, _ = p.predict(
                point_coords=np.array(points, np.float32) if points else None,
                point_labels=np.array(labels, np.int32) if points else None,
                box=np.array(box, np.float32) if box is not None else None,
                multimask_output=True)
        order = np.argsort(-scores)
        return Proposal([masks[i].astype(bool) for i in order],
                        [float(scores[i]) for i in order], self.method)

    def _predict_grabcut(self, state, image, points, labels, box) -> Proposal:
        small, s = state["small"], state["scale"]
        H, W = image.shape[:2]
        h, w = small.shape[:2]
        pts = [(int(x * s), int(y * s)) for x, y in points]
        if box is not None:
            rect = [int(v * s) for v in box]
        else:
            pos = [q for q, lab in zip(pts, labels) if lab == 1] or pts
            xs, ys = [q[0] for q in pos], [q[1] for q in pos]
            r = max(12, int(0.18 * max(h, w)))
            rect = [min(xs) - r, min(ys) - r, max(xs) + r, max(ys) + r]
        x0, y0 = max(0, rect[0]), max(0, rect[1])
        x1, y1 = min(w - 1, rect[2]), min(h - 1, rect[3])
        if x1 - x0 < 4 or y1 - y0 < 4:
            raise ImageError("the box is too small to segment")
        candidates = []
        for shrink in (0.0, 0.04, -0.04):  # three readings of the same prompt
            dx, dy = int(shrink * (x1 - x0)), int(shrink * (y1 - y0))
            r = (max(0, x0 + dx), max(0, y0 + dy), min(w - 1, x1 - dx) - max(0, x0 + dx),
                 min(h - 1, y1 - dy) - max(0, y0 + dy))
            m = np.zeros((h, w), np.uint8)
            m[r[1]:r[1] + r[3], r[0]:r[0] + r[2]] = cv2.GC_PR_FGD
            for (px, py), lab in zip(pts, labels):
                if 0 <= px < w and 0 <= py < h:
                    cv2.circle(m, (px, py), 3, cv2.GC_FGD if lab == 1 else cv2.GC_BGD, -1)
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            cv2.setRNGSeed(0)  # GrabCut's k-means draws from it: same prompt, same mask
            try:
                cv2.grabCut(small, m, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
            except cv2.error:
                continue
            fg = np.isin(m, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
            fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, disk(1))
            n, lab_img, stats, _ = cv2.connectedComponentsWithStats(fg, 8)
            if n > 1:
                big = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
                fg = (lab_img == big).astype(np.uint8)
            full = cv2.resize(fg, (W, H), interpolation=cv2.INTER_LINEAR) > 0
            if full.any():
                # score: how much of the prompt rectangle's content the mask explains
                candidates.append((full, float(fg.sum() / max(1, r[2] * r[3]))))
        if not candidates:
            raise ImageError("no mask could be proposed for this prompt")
        candidates.sort(key=lambda c: -c[1])
        return Proposal([c[0] for c in candidates], [c[1] for c in candidates], self.method)


def precompute_embeddings(catalog, segmenter: "Segmenter | None" = None, progress=None
                          ) -> dict:
    """SAM's image embedding of every catalog scene, into the segmenter's disk cache (keyed by
    content hash and model identity), so a designer's first click on any scene is answered at
    once. Scenes already cached cost a file check. Without SAM (GrabCut) there is nothing to
    precompute. It embeds with its own predictor of the same model, outside the segmenter's
    lock, so it runs beside the app's users. Returns {"method", "scenes", "computed", "cached",
    "failed"}."""
    seg = segmenter if segmenter is not None else Segmenter.from_settings()
    out = {"method": seg.method, "scenes": len(catalog.scenes), "computed": 0, "cached": 0,
           "failed": 0}
    if seg.sam is None or seg.disk_cache is None:
        return out
    from segment_anything import SamPredictor

    own = SamPredictor(seg.sam)  # the same model; users' clicks never wait on this loop
    n = len(catalog.scenes)
    for i, rec in enumerate(catalog.scenes):
        try:
            image = catalog.scene_image(rec.id)
            key = image_key(image)
            if key in seg._cache or seg._path(key).is_file():
                out["cached"] += 1
            else:  # written to disk only: the memory cache keeps the users' scenes
                seg._save_disk(key, seg._embed(image, own))
                out["computed"] += 1
        except Exception as exc:  # noqa: BLE001 - one unreadable scene does not stop the rest
            log.warning("no SAM embedding for scene %s: %s", rec.id, exc)
            out["failed"] += 1
        if progress:
            progress((i + 1) / n, f"SAM embeddings {i + 1}/{n}")
    return out


def refine(mask: np.ndarray, add: np.ndarray | None = None, remove: np.ndarray | None = None,
           dilation: int = 0) -> np.ndarray:
    """Apply brush strokes and dilation (positive) or erosion (negative) to a mask."""
    out = mask.copy()
    if add is not None:
        out |= add
    if remove is not None:
        out &= ~remove
    if dilation > 0:
        out = cv2.dilate(out.astype(np.uint8), disk(dilation)).astype(bool)
    elif dilation < 0:
        out = cv2.erode(out.astype(np.uint8), disk(-dilation)).astype(bool)
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0



def apply_click(mask: np.ndarray, proposal: np.ndarray, point: tuple[float, float],
                positive: bool, radius: int = 6) -> np.ndarray:
    """Refine ``mask`` (HxW bool) by one click instead of replacing it by ``proposal``.

    A positive click outside the mask adds the part of the proposal connected to the click
    (a disk of ``radius`` px when the proposal misses the click); a negative click inside the
    mask removes the part of the mask the proposal leaves out that contains the click (a disk
    when the proposal still covers it). A click that is already satisfied changes nothing, and
    pixels away from the clicked region never change.
    """
    h, w = mask.shape
    x = int(np.clip(round(point[0]), 0, w - 1))
    y = int(np.clip(round(point[1]), 0, h - 1))
    if positive == bool(mask[y, x]):
        return mask.copy()
    region = (proposal & ~mask) if positive else (mask & ~proposal)
    if region[y, x]:
        _, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
        part = labels == labels[y, x]
    else:
        part = np.zeros_like(mask)
        cv2.circle(part.view(np.uint8), (x, y), radius, 1, -1)
    return (mask | part) if positive else (mask & ~part)
