"""One staging job, from request to outputs; the same path for the CLI, the UI and tests.

1. resolve the product (catalog id, file, or array) and cut it out, its photo shadow apart;
2. retrieve candidate scenes (unless a scene is given) and pick the best;
3. take the old-product mask (the scene's stored one, or an edited mask from the request) and
   its shadow (detected, or edited); estimate the scene's light from that shadow;
4. place the product (base line on the old one's), light-match it, derive the fill region;
5. run each backend: copy-paste backends rebuild the background in the fill region from the
   scene without the old product and without the new one (the *plate*); then the new
   product's shadows and the product itself go on top once (``finish``). pix2pix generates
   the whole background around the product on white (vanilla staging).
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
from . import shadows as sh
from .backends import COPY_PASTE, REGISTRY, BackendUnavailable, get_backend
from .catalog import Catalog, CatalogError, open_catalog
from .config import get_settings
from .images import ImageError, check_mask, dilate, load_image, save_png
from .retrieve import Candidate, Retriever
from .segment import Cutout, cutout_layers


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
    old_shadow: np.ndarray | None = None  # edited old-shadow mask (None: detect it)
    margin: int | None = None  # fill margin around the old product, px (default: setting)
    harmonise: float = 0.0  # light matching strength (0 = the product as shot; see MODEL_CARD)
    shadow: bool = True  # contact + cast shadow of the new product
    light: dict | None = None  # overrides of the estimated light (vx, vy, softness, strength)
    product_shadow: str = "drop"  # the product photo's own shadow: drop | keep (multiply)
    remove_old_shadow: bool = True  # relight the old product's shadow away (fill what is deep)
    clean_fill: bool = True  # False: the old way (fill only the gap, new product as context)
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
    plate: np.ndarray | None = None  # the rebuilt background before shadows and product

    def to_dict(self) -> dict:
        return {"backend": self.backend, "label": self.label, "tier": self.tier, "ok": self.ok,
                "file": self.file, "plate": f"{self.backend}_plate.png" if self.ok and
                self.plate is not None else "",
                "latency_ms": round(self.latency_ms, 1), "error": self.error}


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
    composite: np.ndarray  # product pasted, old product still visible (the "before" view)
    gap: np.ndarray  # HxW bool: the part of the fill that stays visible
    old_shadow: np.ndarray = None  # HxW bool: the old product's shadow (removed when asked)
    light: sh.Light = field(default_factory=sh.Light)
    request: StageRequest | None = None
    # the scene with the old shadow divided out (``shadows.relight``; None: not relit), and
    # the part of the old shadow left to fill (None: all of it)
    relit: np.ndarray | None = None
    shadow_fill: np.ndarray | None = None
    shadow_reader: str = ""  # what read the old shadow's shading (``shadows.shade_reader``)
    # margin pixels kept as they are (``composite.margin_keep``), per (source, margin)
    kept_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def kept(self, margin: int) -> np.ndarray:
        """The fill margin's pixels that match the floor beyond it (none when the setting is
        off): a clean fill leaves them as they are in ``source``."""
        if not get_settings().margin_keep:
            return np.zeros(self.old_mask.shape, bool)
        src = self.source
        key = (id(src), id(self.old_mask), margin)  # a copy may change either
        if key not in self.kept_cache:
            self.kept_cache[key] = comp.margin_keep(src, self.old_mask, margin)
        return self.kept_cache[key]

    @property
    def source(self) -> np.ndarray:
        """The image a clean fill starts from: the scene, its old shadow relit when removed."""
        req = self.request
        if self.relit is not None and (req is None or (req.remove_old_shadow and req.clean_fill)):
            return self.relit
        return self.scene

    @property
    def new_mask(self) -> np.ndarray:
        return self.placement.mask

    @property
    def fill_mask(self) -> np.ndarray:
        """What a copy-paste backend fills (HxW bool)."""
        return fill_region(self)


def fill_region(prep: "Prepared") -> np.ndarray:
    """Clean fill: the old footprint dilated by the margin (less the margin's pixels that match
    the floor beyond it: ``Prepared.kept``), plus, when the old shadow is
    removed, the part of it that relighting does not reach (``shadow_fill``; all of it for a
    ``Prepared`` made without relighting). Legacy (``clean_fill=False``): only the gap, plus
    the new product's soft edge."""
    req = prep.request or StageRequest(product=None)
    margin = get_settings().gap_margin if req.margin is None else req.margin
    if req.clean_fill:
        region = dilate(prep.old_mask, margin) & ~prep.kept(margin)
        if req.remove_old_shadow and prep.old_shadow is not None:
            region |= prep.old_shadow if prep.shadow_fill is None else prep.shadow_fill
        return region
    a = prep.placement.alpha
    return comp.gap_mask(prep.old_mask, prep.placement.mask, margin) | ((a > 0) & (a < 1)
                                                                        & prep.old_mask)


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

    def __init__(self, catalog: Catalog | None = None, progress=None, stamp=None):
        self.catalog = catalog or open_catalog(progress=progress)
        # the manifest this context was made from (``stamp``: taken before it was read)
        self.stamp = stamp if stamp is not None else _manifest_stamp(self.catalog)
        self._embedder = None  # a loaded embedder handed over by the context this replaces
        self._retriever: Retriever | None = None
        self._segmenter = None
        self._lock = threading.Lock()
        self._progress = progress

    @property
    def retriever(self) -> Retriever:
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever(self.catalog, self._embedder, progress=self._progress)
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


def _manifest_stamp(catalog: Catalog) -> tuple[int, int] | None:
    try:
        st = (Path(catalog.root) / "manifest.json").stat()
    except (OSError, TypeError):
        return None
    return st.st_mtime_ns, st.st_size


def get_context(progress=None) -> Context:
    """The process-wide context, created on first use, and made again when the catalog's
    manifest changed on disk (``catalog import`` while the app runs: the new scenes are
    retrieved without a restart; the loaded embedder and segmenter are handed over, so only
    the new scenes' vectors are embedded). A manifest rewritten with the same contents, or
    one that cannot be read, keeps the context as it is."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        now = None if _CONTEXT is None else _manifest_stamp(_CONTEXT.catalog)
        if now is not None and now != _CONTEXT.stamp:
            old = _CONTEXT
            old.stamp = now  # taken before the read: a later rewrite is seen next time
            try:
                cat = Catalog.load(Path(old.catalog.root))
            except Exception:  # noqa: BLE001 - an unreadable manifest: keep serving the old one
                cat = None
            if cat is not None and cat.fingerprint() != old.catalog.fingerprint():
                new = Context(cat, progress, stamp=now)
                with old._lock:
                    new._segmenter = old._segmenter
                    if old._retriever is not None:
                        new._embedder = old._retriever.embedder
                _CONTEXT = new
        if _CONTEXT is None:
            _CONTEXT = Context(progress=progress)
        return _CONTEXT


def reset_context() -> None:
    global _CONTEXT
    with _CONTEXT_LOCK:
        _CONTEXT = None


def resolve_product(product: object, catalog: Catalog, segmenter=None) -> tuple[str, Cutout]:
    """(display name, cutout with its photo shadow) from a catalog id, a path, bytes or an
    array; a SAM ``segmenter`` refines cutouts of photos without transparency."""
    if isinstance(product, str) and catalog.has_product(product):
        return product, cutout_layers(catalog.product_image(product))
    if isinstance(product, (str, Path)):
        p = Path(product)
        if not p.exists():
            raise ImageError(f"{product} is neither a catalog product id nor an image file")
        return p.name, cutout_layers(load_image(p, keep_alpha=True), segmenter=segmenter)
    if isinstance(product, np.ndarray):
        return "uploaded product", cutout_layers(load_image(product, keep_alpha=True),
                                                 segmenter=segmenter)
    raise ImageError("the product must be a catalog id, an image path or an image array")


def prepare(req: StageRequest, ctx: Context | None = None) -> Prepared:
    """Steps 1-4 of a staging job."""
    ctx = ctx or get_context()
    cat = ctx.catalog
    if not cat.scenes:
        raise CatalogError("the catalog is empty: build it or import scenes first")
    name, cut = resolve_product(req.product, cat, ctx.loaded_sam)
    product = cut.rgba
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
    if req.product_shadow not in ("drop", "keep"):
        raise ImageError(f"product_shadow must be 'drop' or 'keep', not {req.product_shadow!r}")
    margin = get_settings().gap_margin if req.margin is None else req.margin
    reader = sh.shade_reader()[1]  # read with the maps: the model they are made with
    maps = sh.shade_maps(scene, old)  # shared by shadow detection and the light estimate
    lift = None  # the contact band's divisor, when find_old_shadow has computed it
    if req.old_shadow is not None:
        if np.asarray(req.old_shadow).shape != scene.shape[:2]:
            raise ImageError(f"the old-shadow mask is {np.asarray(req.old_shadow).shape}, the "
                             f"scene {scene.shape[:2]}: redraw it on this scene")
        old_shadow = np.asarray(req.old_shadow).astype(bool) & ~old  # may be empty
        light = sh.estimate_light(scene, old, old_shadow, maps=maps)
        detected = sh.detect_old_shadow(scene, old, margin, maps=maps)
    else:
        found = sh.find_old_shadow(scene, old, margin, maps=maps)
        old_shadow, light, detected, lift = found.mask, found.light, found.detected, found.lift
    # the old shadow is divided out (by the fitted shadow, or the measured shading where that
    # leaves it dark), so the floor's texture stays; only a painted part no fitted shadow
    # covers joins the fill region
    relit, shadow_fill = sh.relight(scene, old, old_shadow, light, maps[0], detected,
                                    band_lift=lift)
    if req.light:
        light = sh.Light(**{**light.to_dict(), **req.light, "source": "set by the user"})
    placement = comp.place(product, old, req.scale, req.offset, req.flip,
                           cut.shadow if req.product_shadow == "keep" else None)
    placement = comp.harmonise(placement, scene, old, req.harmonise)
    prep = Prepared(name, product, candidates, scene_id, scene, scene_rec.category, old,
                    placement, comp.paste(scene, placement), np.zeros(old.shape, bool),
                    old_shadow, light, req, relit, shadow_fill, reader)
    prep.gap = prep.fill_mask & ~placement.mask
    return prep


def fill_plate(name: str, image: np.ndarray, hole: np.ndarray, hidden: np.ndarray | None = None,
               **params) -> np.ndarray:
    """Rebuild the background of ``image`` (HxWx3 uint8) in ``hole`` (HxW bool) with backend
    ``name``. Pixels in ``hidden`` (under the new product: never visible in the still output)
    get the classical fill first (``STAGER_FILL_PRIOR``: line-guided Telea by default, or
    Telea) and the backend fills the rest of the hole around them."""
    b = get_backend(name)
    if hidden is None or not (hidden & hole).any() or getattr(b, "whole_region", False):
        return b(image, hole, **params)
    hidden = hidden & hole
    prior = get_backend(get_settings().fill_prior)(image, hole)  # STAGER_FILL_PRIOR
    ring = hole & ~hidden
    if not ring.any():  # the new product hides the whole fill region
        return prior
    if getattr(b, "takes_prior", lambda: False)():
        # a model that refines a classical fill gets the prior's fill of the *whole* region in
        # the ring too: Telea run again on the ring alone, around its own fill, is worse
        return b(prior, ring, prefilled=True, **params)
    return b(np.where(hidden[..., None], prior, image), ring, **params)


def hidden_region(prep: Prepared, inset: int = 4) -> np.ndarray:
    """Fill-region pixels deep under the new product (its mask eroded by ``inset`` px, so its
    soft edge stays in the model's hole): the still output never shows them."""
    from .images import erode

    return prep.fill_mask & erode(prep.placement.alpha >= 1.0, inset)


def finish(prep: Prepared, plate: np.ndarray) -> np.ndarray:
    """Lay the new product on a rebuilt background: its contact and cast shadows (and the
    photo's own shadow when kept) darken the plate, then the product is pasted once."""
    req = prep.request or StageRequest(product=None)
    shade = np.ones(plate.shape[:2], np.float32)
    if req.shadow:
        shade = sh.object_shadow(prep.placement.alpha, prep.light)
    if prep.placement.shadow is not None:
        shade = shade * (1.0 - prep.placement.shadow)
    return comp.paste(sh.apply_shade(plate, shade), prep.placement)


def available_backends() -> list[str]:
    return [n for n in REGISTRY if get_backend(n).available()[0]]


def run_backend(prep: Prepared, name: str, seed: int = 0, shadow: bool | None = None
                ) -> StageOutput:
    """Run one backend on a prepared job; failures come back as ``ok=False`` with a reason.
    ``shadow`` (deprecated) overrides the request's new-product shadow switch."""
    b = get_backend(name)
    ok, why = b.available()
    if not ok:
        return StageOutput(name, b.label, "missing", False, error=why)
    if shadow is not None and prep.request is not None and shadow != prep.request.shadow:
        from dataclasses import replace

        prep = replace(prep, request=replace(prep.request, shadow=shadow))
    try:
        t0 = time.perf_counter()
        plate = None
        if name in COPY_PASTE:
            hole = prep.fill_mask
            clean = prep.request is None or prep.request.clean_fill
            plate = prep.source if clean else prep.scene
            if hole.any():  # the context excludes the old product and the new one
                src = prep.source if clean else prep.composite
                plate = fill_plate(name, src, hole, hidden_region(prep) if clean else None,
                                   seed=seed, category=prep.category)
                if not clean:  # the old way: gap filled with the product as context, and the
                    # product pasted on the scene (not on the composite: never twice)
                    plate = np.where(hole[..., None], plate, prep.scene)
            out = finish(prep, plate)
        else:  # vanilla staging: the product on white at its place -> whole scene
            on_white = comp.paste(np.full_like(prep.scene, 255), prep.placement)
            generated = b(on_white, ~prep.new_mask, seed=seed)
            out = comp.paste(generated, prep.placement)  # soft edge over the generated room
        ms = (time.perf_counter() - t0) * 1000
        return StageOutput(name, b.label, b.tier, True, out, ms, plate=plate)
    except (BackendUnavailable, ImageError, ValueError, RuntimeError) as exc:
        return StageOutput(name, b.label, b.tier, False, error=str(exc).splitlines()[0])


def iter_outputs(prep: Prepared, names: list[str] | None = None, seed: int = 0,
                 shadow: bool | None = None) -> Iterator[StageOutput]:
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
    result = StageResult(prep, list(iter_outputs(prep, req.backends, req.seed)))
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
        "light": p.light.to_dict(),
        "old_shadow_reader": p.shadow_reader,
        "old_shadow_pixels": int(p.old_shadow.sum()) if p.old_shadow is not None else 0,
        # of those, what is filled (the rest is relit): none when the shadow is kept
        "old_shadow_filled_pixels": int((p.fill_mask & p.old_shadow).sum())
        if p.old_shadow is not None else 0,
        "fill_pixels": int(p.fill_mask.sum()),
        "gap_pixels": int(p.gap.sum()),
        "gap_ratio": round(comp.gap_ratio(p.old_mask, p.new_mask), 4),
        "files": {"composite": "composite.png", "gap_mask": "gap_mask.png",
                  "old_shadow_mask": "old_shadow_mask.png",
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
        save_png(tmp / "old_shadow_mask.png", p.old_shadow if p.old_shadow is not None
                 else np.zeros(p.gap.shape, bool))
        save_png(tmp / "product.png", p.product)
        save_png(tmp / "product_mask.png", p.placement.mask)  # for `parallax --mask`
        for o in result.outputs:
            if o.ok and o.image is not None:
                o.file = f"{o.backend}.png"
                save_png(tmp / o.file, o.image)
                if o.plate is not None:  # the rebuilt background, for `parallax --plate`
                    save_png(tmp / f"{o.backend}_plate.png", o.plate)
        (tmp / "report.json").write_text(json.dumps(report(result), indent=1))
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in tmp.iterdir():
            f.replace(out_dir / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / "report.json"
