"""Scenes and products on disk: the embedded default catalog and a user's imported folders.

Layout under ``<data_dir>/catalog``::

    manifest.json            {"version", "seed", "scenes": [...], "products": [...]}
    scenes/<id>.png          staged scene (RGB)
    scenes/<id>_mask.png     hero mask (white = old product), when known
    scenes/<id>_bg.png       background without the hero (synthetic scenes only: ground truth)
    products/<id>.png        product on white with alpha (RGBA)

The default catalog is deterministic for its seed and is built on first use.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import synth
from .config import get_settings
from .furniture import FAMILIES, sample_product
from .images import ImageError, bbox, load_image, load_mask, save_png

MANIFEST_VERSION = 1
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


class CatalogError(ValueError):
    """Catalog problems (empty, unknown id, unreadable manifest); one-line messages."""


@dataclass
class Scene:
    id: str
    image: str  # path relative to the catalog dir
    category: str = "unknown"
    mask: str | None = None
    box: list[int] | None = None  # x0, y0, x1, y1
    background: str | None = None  # ground-truth background (synthetic scenes)
    split: str = "train"  # train | eval
    source: str = "synth"
    params: dict = field(default_factory=dict)


@dataclass
class Product:
    id: str
    image: str  # RGBA on white
    category: str = "unknown"
    source: str = "synth"
    params: dict = field(default_factory=dict)


class Catalog:
    """Scenes and products of one catalog directory, with loaders for their pixels."""

    def __init__(self, root: Path, scenes: list[Scene], products: list[Product], seed: int = 0):
        self.root = Path(root)
        self.scenes = scenes
        self.products = products
        self.seed = seed
        self._scene_by_id = {s.id: s for s in scenes}
        self._product_by_id = {p.id: p for p in products}

    # ---- lookup
    def scene(self, scene_id: str) -> Scene:
        try:
            return self._scene_by_id[scene_id]
        except KeyError:
            raise CatalogError(f"scene {scene_id!r} does not exist in the catalog "
                               f"({len(self.scenes)} scenes)") from None

    def product(self, product_id: str) -> Product:
        try:
            return self._product_by_id[product_id]
        except KeyError:
            raise CatalogError(f"product {product_id!r} does not exist in the catalog "
                               f"({len(self.products)} products)") from None

    def has_product(self, product_id: str) -> bool:
        return product_id in self._product_by_id

    def scene_image(self, scene_id: str) -> np.ndarray:
        """The staged scene, ``HxWx3 uint8``."""
        return load_image(self.root / self.scene(scene_id).image, keep_alpha=False, max_side=4096)

    def scene_mask(self, scene_id: str) -> np.ndarray | None:
        """The stored old-product mask (``HxW bool``) or None when the scene has none."""
        s = self.scene(scene_id)
        return load_mask(self.root / s.mask) if s.mask else None

    def scene_background(self, scene_id: str) -> np.ndarray | None:
        s = self.scene(scene_id)
        if not s.background:
            return None
        return load_image(self.root / s.background, keep_alpha=False, max_side=4096)

    def product_image(self, product_id: str) -> np.ndarray:
        """The product on white with alpha, ``HxWx4 uint8``."""
        return load_image(self.root / self.product(product_id).image, keep_alpha=True, max_side=4096)

    def categories(self) -> list[str]:
        return sorted({s.category for s in self.scenes} | {p.category for p in self.products})

    generator = 0  # synth.GENERATOR_VERSION the default scenes were rendered with

    def fingerprint(self) -> str:
        """Hash of the manifest contents: the retrieval index is rebuilt when it changes."""
        blob = json.dumps([[asdict(s) for s in self.scenes], [asdict(p) for p in self.products]],
                          sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:16]

    # ---- persistence
    def save(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        data = {"version": MANIFEST_VERSION, "seed": self.seed, "generator": self.generator,
                "scenes": [asdict(s) for s in self.scenes],
                "products": [asdict(p) for p in self.products]}
        tmp = self.root / "manifest.json.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(self.root / "manifest.json")  # atomic: never a half-written manifest
        return self.root / "manifest.json"

    @classmethod
    def load(cls, root: Path) -> "Catalog":
        path = Path(root) / "manifest.json"
        if not path.is_file():
            raise CatalogError(f"no catalog at {root}: run `python -m stager catalog build`")
        try:
            data = json.loads(path.read_text())
            scenes = [Scene(**s) for s in data["scenes"]]
            products = [Product(**p) for p in data["products"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CatalogError(f"{path} is not a valid catalog manifest ({exc})") from exc
        cat = cls(Path(root), scenes, products, data.get("seed", 0))
        cat.generator = int(data.get("generator", 1))
        return cat


# ------------------------------------------------------------------ default catalog

def default_specs(n_scenes: int, n_products: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Deterministic parameters of the default catalog: families balanced round-robin."""
    rng = np.random.default_rng(seed)
    scenes = [synth.sample_scene(rng, FAMILIES[i % len(FAMILIES)]) for i in range(n_scenes)]
    prng = np.random.default_rng(seed + 1_000_003)  # products independent of the scene count
    products = [sample_product(prng, FAMILIES[i % len(FAMILIES)]) for i in range(n_products)]
    return scenes, products


def build_default(root: Path | None = None, n_scenes: int | None = None,
                  n_products: int | None = None, seed: int | None = None,
                  progress: Callable[[float, str], None] | None = None) -> Catalog:
    """Render the default catalog into ``root`` (default ``<data_dir>/catalog``)."""
    st = get_settings()
    root = Path(root or st.catalog_dir)
    n_scenes = st.catalog_scenes if n_scenes is None else n_scenes
    n_products = st.catalog_products if n_products is None else n_products
    seed = st.catalog_seed if seed is None else seed
    if n_scenes < 1:
        raise CatalogError("the catalog needs at least one scene")
    scene_specs, product_specs = default_specs(n_scenes, n_products, seed)
    tmp = root.with_name(root.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    scenes, products = [], []
    total = n_scenes + n_products
    for i, spec in enumerate(scene_specs):
        sid = f"s{i:04d}"
        layers = synth.render_scene(spec)
        save_png(tmp / "scenes" / f"{sid}.png", layers.image)
        save_png(tmp / "scenes" / f"{sid}_mask.png", layers.mask)
        save_png(tmp / "scenes" / f"{sid}_bg.png", layers.background)
        scenes.append(Scene(sid, f"scenes/{sid}.png", layers.category, f"scenes/{sid}_mask.png",
                            list(layers.box), f"scenes/{sid}_bg.png",
                            "eval" if i % 5 == 4 else "train", "synth", spec))
        if progress:
            progress((i + 1) / total, f"scene {i + 1}/{n_scenes}")
    for j, spec in enumerate(product_specs):
        pid = f"p{j:03d}"
        save_png(tmp / "products" / f"{pid}.png", synth.catalog_shot(spec))
        products.append(Product(pid, f"products/{pid}.png", spec["family"], "synth", spec))
        if progress:
            progress((n_scenes + j + 1) / total, f"product {j + 1}/{n_products}")
    cat = Catalog(tmp, scenes, products, seed)
    cat.generator = synth.GENERATOR_VERSION
    cat.save()
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)  # nothing half-written is ever visible as the catalog
    cat.root = root
    return cat


def open_catalog(root: Path | None = None, build: bool = True, **kw) -> Catalog:
    """Load the catalog at ``root``; build the default one first if none is there."""
    root = Path(root or get_settings().catalog_dir)
    if not (root / "manifest.json").is_file():
        if not build:
            raise CatalogError(f"no catalog at {root}: run `python -m stager catalog build`")
        return build_default(root, **kw)
    cat = Catalog.load(root)
    stale = cat.generator != synth.GENERATOR_VERSION and cat.scenes and \
        all(s.source == "synth" for s in cat.scenes) and \
        all(p.source == "synth" for p in cat.products)
    if stale and build:  # rendered by an older generator (no imports to lose): render again
        print(f"catalog at {root} was rendered by generator v{cat.generator}; "
              f"rebuilding with v{synth.GENERATOR_VERSION}")
        return build_default(root, n_scenes=len(cat.scenes), n_products=len(cat.products),
                             seed=cat.seed, **{k: v for k, v in kw.items()
                                               if k not in ("n_scenes", "n_products", "seed")})
    return cat


def ground_truth(catalog: Catalog, product_id: str, scene_id: str) -> tuple[np.ndarray, np.ndarray]:
    """The true staged image of a catalog product in a synthetic scene, placed by the same
    rule as compositing. Returns (``HxWx3 uint8`` image, ``HxW bool`` product mask)."""
    from .composite import place  # composite imports images only

    scene = catalog.scene(scene_id)
    bg = catalog.scene_background(scene_id)
    if bg is None or scene.mask is None:
        raise CatalogError(f"scene {scene_id} has no ground truth (not a synthetic scene)")
    product = catalog.product_image(product_id) if catalog.has_product(product_id) else None
    if product is None:
        raise CatalogError(f"product {product_id!r} does not exist in the catalog")
    old_mask = catalog.scene_mask(scene_id)
    placed = place(product, old_mask)
    image, mask = synth.stage_on(bg.astype(np.float32), placed.sprite, placed.box,
                                 scene.params if scene.params.get("light") else None)
    return image, mask


# ------------------------------------------------------------------ import

def _read_annotations(path: Path | None) -> dict[str, dict]:
    if path is None:
        return {}
    rows: list[dict] = []
    if path.suffix.lower() == ".jsonl":
        for line in path.read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    else:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    out = {}
    for r in rows:
        name = r.get("file") or r.get("image")
        if not name:
            continue
        box = r.get("box")
        if isinstance(box, str) and box.strip():
            box = [int(float(v)) for v in box.replace(";", ",").split(",")]
        out[Path(name).name] = {"mask": r.get("mask") or None, "box": box or None,
                                "category": r.get("category") or "unknown"}
    return out


def _images_in(folder: Path) -> Iterable[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def import_folders(catalog: Catalog, scenes_dir: Path | None, products_dir: Path | None = None,
                   annotations: Path | None = None) -> tuple[Catalog, list[str]]:
    """Add a user's scenes (and products) to ``catalog``. Masks/boxes/categories come from a
    CSV or JSONL (columns ``file, mask, box, category``) or a ``<name>_mask.png`` beside the
    image. Returns the updated catalog and a list of ``"file: reason"`` for skipped files."""
    skipped: list[str] = []
    ann = _read_annotations(annotations)
    new_scenes, new_products = list(catalog.scenes), list(catalog.products)
    taken = {s.id for s in new_scenes} | {p.id for p in new_products}

    def uid(prefix: str, stem: str) -> str:
        base = f"{prefix}_{''.join(c if c.isalnum() else '_' for c in stem)[:40]}"
        k, out = 1, base
        while out in taken:
            k += 1
            out = f"{base}_{k}"
        taken.add(out)
        return out

    if scenes_dir is not None:
        scenes_dir = Path(scenes_dir)
        if not scenes_dir.is_dir():
            raise CatalogError(f"{scenes_dir} is not a folder")
        for path in _images_in(scenes_dir):
            if path.stem.endswith("_mask") or path.suffix.lower() in (".csv", ".jsonl"):
                continue
            try:
                img = load_image(path, keep_alpha=False)
                meta = ann.get(path.name, {})
                mask = None
                mpath = meta.get("mask") or (path.with_name(path.stem + "_mask.png")
                                             if path.with_name(path.stem + "_mask.png").exists() else None)
                if mpath:
                    mpath = Path(mpath) if Path(mpath).is_absolute() else scenes_dir / mpath
                    mask = load_mask(mpath)
                    if mask.shape != img.shape[:2]:
                        import cv2
                        mask = cv2.resize(mask.astype(np.uint8), (img.shape[1], img.shape[0]),
                                          interpolation=cv2.INTER_NEAREST).astype(bool)
                    if not mask.any():
                        raise ImageError(f"mask {Path(mpath).name} is empty")
            except (ImageError, OSError, ValueError) as exc:
                skipped.append(f"{path.name}: {exc}")
                continue
            sid = uid("u", path.stem)
            rel = f"imported/{sid}.png"
            save_png(catalog.root / rel, img)
            box = meta.get("box")
            mrel = None
            if mask is not None:
                mrel = f"imported/{sid}_mask.png"
                save_png(catalog.root / mrel, mask)
                box = list(bbox(mask))
            new_scenes.append(Scene(sid, rel, meta.get("category", "unknown"), mrel, box,
                                    None, "user", "import", {"file": path.name}))
    if products_dir is not None:
        products_dir = Path(products_dir)
        if not products_dir.is_dir():
            raise CatalogError(f"{products_dir} is not a folder")
        from .segment import cutout  # segment imports images/config only

        for path in _images_in(products_dir):
            try:
                rgba = cutout(load_image(path, keep_alpha=True))
            except (ImageError, OSError, ValueError) as exc:
                skipped.append(f"{path.name}: {exc}")
                continue
            pid = uid("up", path.stem)
            rel = f"imported/{pid}.png"
            save_png(catalog.root / rel, rgba)
            cat = ann.get(path.name, {}).get("category", "unknown")
            new_products.append(Product(pid, rel, cat, "import", {"file": path.name}))
    out = Catalog(catalog.root, new_scenes, new_products, catalog.seed)
    out.generator = catalog.generator
    out.save()
    return out, skipped
