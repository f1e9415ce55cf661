"""One staging job, from request to outputs; the same path for the CLI, the UI and tests.

1. resolve the product (catalog id, file, or array) and cut it out;
2. retrieve candidate scenes (unless a scene is given) and pick the best;
3. take the old-product mask (the scene's stored one, or an edited mask from the request);
4. place the product, composite it, derive the gap;
5. run each backend: copy-paste backends fill the gap (then a contact shadow and the product
   go on top); pix2pix generates the whole background around the product on white.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from . import composite as comp
from .backends import COPY_PASTE, REGISTRY, BackendUnavailable, get_backend
from .catalog import Catalog, CatalogError, open_catalog
from .config import get_settings
from .images import ImageError, check_mask, load_image, save_png
from .retrieve import Candidate, Retriever
from .segment import cutout


@dataclass
class StageRequest:
    """What to stage and how. ``product`` is a catalog id, an image path, or an array."""

    product: object
    scene_id: str | None = None
    top_k: int | None = None
    backends: list[str] | None = None  # None = every available backend
    category: str | None = None
    scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)
    flip: bool = False
    old_mask: np.ndarray | None = None  # edited mask of the old product (HxW bool)
    margin: int | None = None  # gap margin, px (default: setting)
    harmonise: float = 0.3
    shadow: bool = True
    seed: int = 0


@dataclass
class StageOutput:
    backend: str
    label: str
    tier: str
    ok: bool
    image: np.ndarray | None = None
    latency_ms: float = 0.0
    error: str = ""
    file: str = ""

    def to_dict(self) -> dict:
        return {"backend": self.backend, "label": self.label, "tier": self.tier, "ok": self.ok,
                "file": self.file, "latency_ms": round(self.latency_ms, 1), "error": self.error}


@dataclass
class Prepared:
    """Everything up to the backends: reused when only the backends change."""

    product_name: str
    product: np.ndarray  # HxWx4 cutout
    candidates: list[Candidate]
    scene_id: str
    scene: np.ndarray  # HxWx3
    category: str
    old_mask: np.ndarray
    placement: comp.Placement
    composite: np.ndarray  # product pasted, old product still visible in the gap
    gap: np.ndarray  # HxW bool

    @property
    def new_mask(self) -> np.ndarray:
        return self.placement.mask

    @property
    def fill_mask(self) -> np.ndarray:
        """What a copy-paste backend fills: the gap plus the new product's soft edge where it
        lies over the old product (the background under that edge is not known either)."""
        a = self.placement.alpha
        return self.gap | ((a > 0) & (a < 1) & self.old_mask)


@dataclass
class StageResult:
    prepared: Prepared
    outputs: list[StageOutput] = field(default_factory=list)

    @property
    def scene_id(self) -> str:
        return self.prepared.scene_id

    @property
    def product_name(self) -> str:
        return self.prepared.product_name


class Context:
    """The expensive shared state: catalog, retriever (embedder + index), segmenter."""

    def __init__(self, catalog: Catalog | None = None, progress=None):
        self.catalog = catalog or open_catalog(progress=progress)
        self._retriever: Retriever | None = None
        self._segmenter = None
        self._lock = threading.Lock()
        self._progress = progress

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever(self.catalog, progress=self._progress)
            return self._retriever

    @property
    def loaded_sam(self):
        """The segmenter if it is already loaded and backed by SAM, else None (never loads)."""
        seg = self._segmenter
        return seg if seg is not None and seg.sam is not None else None

    @property
    def segmenter(self):
        from .segment import Segmenter

        with self._lock:
            if self._segmenter is None:
                self._segmenter = Segmenter.from_settings()
            return self._segmenter


_CONTEXT: Context | None = None
_CONTEXT_LOCK = threading.Lock()


def get_context(progress=None) -> Context:
    """The process-wide context, created on first use."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            _CONTEXT = Context(progress=progress)
        return _CONTEXT


def reset_context() -> None:
    global _CONTEXT
    with _CONTEXT_LOCK:
        _CONTEXT = None


def resolve_product(product: object, catalog: Catalog, segmenter=None) -> tuple[str, np.ndarray]:
    """(display name, ``HxWx4`` cutout) from a catalog id, a path, bytes or an array; a SAM
    ``segmenter`` refines cutouts of photos without transparency."""
    if isinstance(product, str) and catalog.has_product(product):
        return product, cutout(catalog.product_image(product))
    if isinstance(product, (str, Path)):
        p = Path(product)
        if not p.exists():
            raise ImageError(f"{product} is neither a catalog product id nor an image file")
        return p.name, cutout(load_image(p, keep_alpha=True), segmenter=segmenter)
    if isinstance(product, np.ndarray):
        return "uploaded product", cutout(load_image(product, keep_alpha=True), segmenter=segmenter)
    raise ImageError("the product must be a catalog id, an image path or an image array")


def prepare(req: StageRequest, ctx: Context | None = None) -> Prepared:
    """Steps 1-4 of a staging job."""
    ctx = ctx or get_context()
    cat = ctx.catalog
    if not cat.scenes:
        raise CatalogError("the catalog is empty: build it or import scenes first")
    name, product = resolve_product(req.product, cat, ctx.loaded_sam)
    candidates: list[Candidate] = []
    if req.scene_id is None:
        candidates = ctx.retriever.search(product, req.top_k, req.category)
        if not candidates:
            raise CatalogError(f"no scene of category {req.category!r} in the catalog")
        scene_id = candidates[0].scene_id
    else:
        scene_id = req.scene_id
    scene_rec = cat.scene(scene_id)  # raises for an unknown id
    scene = cat.scene_image(scene_id)
    if req.old_mask is not None:
        old = check_mask(req.old_mask, scene.shape[:2], "the old-product mask")
    else:
        old = cat.scene_mask(scene_id)
        if old is None:
            raise ImageError(f"scene {scene_id} has no stored mask: draw the old product first")
    placement = comp.place(product, old, req.scale, req.offset, req.flip)
    placement = comp.harmonise(placement, scene, old, req.harmonise)
    margin = get_settings().gap_margin if req.margin is None else req.margin
    gap = comp.gap_mask(old, placement.mask, margin)
    return Prepared(name, product, candidates, scene_id, scene, scene_rec.category, old,
                    placement, comp.paste(scene, placement), gap)


def available_backends() -> list[str]:
    return [n for n in REGISTRY if get_backend(n).available()[0]]


def run_backend(prep: Prepared, name: str, seed: int = 0, shadow: bool = True) -> StageOutput:
    """Run one backend on a prepared job; failures come back as ``ok=False`` with a reason."""
    b = get_backend(name)
    ok, why = b.available()
    if not ok:
        return StageOutput(name, b.label, "missing", False, error=why)
    try:
        t0 = time.perf_counter()
        if name in COPY_PASTE:
            hole = prep.fill_mask
            background = prep.scene
            if hole.any():  # else the new product covers the old one entirely
                filled = b(prep.composite, hole, seed=seed, category=prep.category)
                background = np.where(hole[..., None], filled, prep.scene)
            # the same layering as the ground truth: background, shadow, product once on top
            out = (comp.add_shadow(background, prep.placement) if shadow
                   else comp.paste(background, prep.placement))
        else:  # vanilla staging: the product on white at its place -> whole scene
            on_white = comp.paste(np.full_like(prep.scene, 255), prep.placement)
            generated = b(on_white, ~prep.new_mask, seed=seed)
            out = comp.paste(generated, prep.placement)  # soft edge over the generated room
        ms = (time.perf_counter() - t0) * 1000
        return StageOutput(name, b.label, b.tier, True, out, ms)
    except (BackendUnavailable, ImageError, ValueError, RuntimeError) as exc:
        return StageOutput(name, b.label, b.tier, False, error=str(exc).splitlines()[0])


def iter_outputs(prep: Prepared, names: list[str] | None = None, seed: int = 0,
                 shadow: bool = True) -> Iterator[StageOutput]:
    """Yield each backend's output as it finishes (for streaming UIs)."""
    for name in names or list(REGISTRY):
        if name not in REGISTRY:
            raise ValueError(f"unknown backend {name!r}; choose from {', '.join(REGISTRY)}")
    for name in names or list(REGISTRY):
        yield run_backend(prep, name, seed, shadow)


def run_stage(req: StageRequest, out_dir: Path | None = None, ctx: Context | None = None
              ) -> StageResult:
    """A whole job; with ``out_dir``, writes ``report.json`` and PNGs (all or nothing)."""
    prep = prepare(req, ctx)
    result = StageResult(prep, list(iter_outputs(prep, req.backends, req.seed, req.shadow)))
    if out_dir is not None:
        write_outputs(result, Path(out_dir))
    return result


def report(result: StageResult) -> dict:
    p = result.prepared
    return {
        "product": p.product_name,
        "scene": p.scene_id,
        "category": p.category,
        "candidates": [c.to_dict() for c in p.candidates],
        "placement": {"box": list(p.placement.box)},
        "gap_pixels": int(p.gap.sum()),
        "gap_ratio": round(comp.gap_ratio(p.old_mask, p.new_mask), 4),
        "files": {"composite": "composite.png", "gap_mask": "gap_mask.png",
                  "product": "product.png", "product_mask": "product_mask.png"},
        "outputs": [o.to_dict() for o in result.outputs],
    }


def write_outputs(result: StageResult, out_dir: Path) -> Path:
    """Write PNGs and ``report.json`` into a temporary folder, then move them into place."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".stage-", dir=out_dir.parent))
    try:
        p = result.prepared
        save_png(tmp / "composite.png", p.composite)
        save_png(tmp / "gap_mask.png", p.gap)
        save_png(tmp / "product.png", p.product)
        save_png(tmp / "product_mask.png", p.placement.mask)  # for `parallax --mask`
        for o in result.outputs:
            if o.ok and o.image is not None:
                o.file = f"{o.backend}.png"
                save_png(tmp / o.file, o.image)
        (tmp / "report.json").write_text(json.dumps(report(result), indent=1))
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in tmp.iterdir():
            f.replace(out_dir / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / "report.json"
