"""Whole-catalog staging, on one machine or on a pool of Ray actors; the same rows either way.

One product is one unit of work:

1. cut the product out (a catalog id or an image file) and retrieve its best-fit scenes
   (``retrieve_rows``);
2. for each of the best N scenes: the old product's mask (the stored annotation, else the
   segmenter prompted with the scene's box), ``pipeline.prepare`` and ``pipeline.run_backend``,
   the PNG written to a temporary name and renamed (``stage_row``). On Ray both steps run in
   an actor that loaded the catalog, the index and the backend's model once
   (``batch_ray.BatchWorker``);
3. the product's rows are appended to ``manifest.jsonl`` only after its images are in place.

A product is finished when it has rows in the manifest, none failed, and every output exists;
a rerun skips finished products and retries the others (their old rows are dropped first), so a
killed run resumes without duplicates and a half-written output is never counted. A bad file or
a failing product becomes a row with its error; the rest finish.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import pipeline
from .backends import REGISTRY, get_backend
from .catalog import IMAGE_EXTS, Catalog, CatalogError
from .config import REPO_ROOT, get_settings, settings_env
from .images import ImageError, save_png

MANIFEST = "manifest.jsonl"
JOB_FILE = "batch.json"
VOLATILE = ("latency_ms", "total_ms")  # differ between runs of the same job
JOB_KEYS = ("products", "backend", "top_k", "best", "seed")  # an out dir holds one job


@dataclass
class BatchJob:
    """What to stage: ``products`` is ``catalog`` (the configured catalog's products), a catalog
    folder (its products), or a folder of product photos."""

    products: str
    out: Path
    backend: str = "telea"
    top_k: int = 8
    best: int = 1  # stage each product in its best N scenes
    seed: int = 0
    audit_pool: bool = False  # also send every output to the audit pool
    limit: int | None = None  # stage only the first N products (benchmarks, trials)

    def check(self) -> None:
        if self.backend not in REGISTRY:
            raise ValueError(f"unknown backend {self.backend!r}; choose from {', '.join(REGISTRY)}")
        if self.top_k < 1 or self.best < 1:
            raise ValueError("--top-k and --best must be at least 1")
        if self.best > self.top_k:
            raise ValueError(f"--best {self.best} exceeds --top-k {self.top_k}")


@dataclass
class Item:
    key: str  # the product's name in the manifest (catalog id or file stem)
    ref: str  # what the pipeline resolves: a catalog id or an image path


def list_products(spec: str, catalog: Catalog) -> list[Item]:
    """The products named by ``spec`` (see ``BatchJob.products``), in a stable order."""
    if spec == "catalog":
        return [Item(p.id, p.id) for p in catalog.products]
    folder = Path(spec)
    if not folder.is_dir():
        raise ValueError(f"--products {spec} is neither 'catalog' nor a folder")
    if (folder / "manifest.json").is_file():
        other = Catalog.load(folder)
        return [Item(p.id, str(other.root / p.image)) for p in other.products]
    items, taken = [], set()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if path.suffix.lower() not in IMAGE_EXTS:
            continue
        key = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem)
        key = key if key not in taken else f"{key}_{path.suffix.lower()[1:]}"
        taken.add(key)
        items.append(Item(key, str(path)))
    if not items:
        raise ValueError(f"--products {spec} holds no images ({', '.join(sorted(IMAGE_EXTS))})")
    return items


def _error(exc: BaseException) -> str:
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {msg}" if msg else exc.__class__.__name__


# ------------------------------------------------------------------ the two steps


def retrieve_rows(item: Item, ctx: pipeline.Context, job: BatchJob) -> list[dict]:
    """Step 1: one row per scene to stage (best first), or one error row."""
    base = {"product": item.key, "ref": item.ref}
    try:
        _, cut = pipeline.resolve_product(item.ref, ctx.catalog)
        rgba = cut.rgba  # the product without its photo shadow
        cands = ctx.retriever.search(rgba, job.top_k)
        if not cands:
            raise CatalogError("retrieval returned no scene")
    except Exception as exc:  # a bad file or product is recorded, the batch goes on
        return [{**base, "rank": 0, "scene": "", "error": _error(exc), "of": 1}]
    n = min(job.best, len(cands))
    return [{**base, "rank": r, "scene": c.scene_id, "similarity": round(c.similarity, 4),
             "gap_ratio": round(c.gap_ratio, 4), "score": round(c.score, 4), "error": "",
             "of": n} for r, c in enumerate(cands[:n])]


def old_mask(ctx: pipeline.Context, scene_id: str) -> tuple[np.ndarray, str]:
    """The old product's mask and what made it: the stored annotation, else the segmenter
    (SAM or GrabCut) prompted with the scene's stored box."""
    try:
        mask = ctx.catalog.scene_mask(scene_id)
    except (ImageError, OSError):
        mask = None
    if mask is not None and mask.any():
        return mask, "annotation"
    box = ctx.catalog.scene(scene_id).box
    if not box:
        raise ImageError(f"scene {scene_id} has neither a stored mask nor a box to segment")
    seg = ctx.segmenter
    seg.set_image(ctx.catalog.scene_image(scene_id))
    proposal = seg.predict(box=tuple(box))
    return proposal.masks[0], proposal.method


def output_name(row: dict, backend: str) -> str:
    return f"images/{row['product']}/{row['rank']}_{row['scene']}_{backend}.png"


def stage_row(task: dict, ctx: pipeline.Context, job: BatchJob) -> dict:
    """Step 2: stage one (product, scene) row and write its PNG atomically."""
    row = {**task, "backend": job.backend, "tier": "", "mask_method": "", "output": "",
           "sha1": "", "latency_ms": None, "total_ms": None, "ok": False}
    if task["error"]:
        return row
    t0 = time.perf_counter()
    try:
        mask, row["mask_method"] = old_mask(ctx, task["scene"])
        req = pipeline.StageRequest(product=task["ref"], scene_id=task["scene"], old_mask=mask,
                                    top_k=job.top_k, seed=job.seed)
        prep = pipeline.prepare(req, ctx)
        out = pipeline.run_backend(prep, job.backend, seed=job.seed)
        row["tier"], row["latency_ms"] = out.tier, round(out.latency_ms, 1)
        if not out.ok or out.image is None:
            raise RuntimeError(out.error or f"{job.backend} returned no image")
        rel = output_name(row, job.backend)
        dest = Path(job.out) / rel
        tmp = dest.with_name(f".{dest.stem}.{os.getpid()}.tmp.png")
        save_png(tmp, out.image)
        tmp.replace(dest)  # a half-written PNG never carries the final name
        row.update(output=rel, ok=True,
                   sha1=hashlib.sha1(np.ascontiguousarray(out.image).tobytes()).hexdigest()[:16])
    except Exception as exc:
        row["error"] = _error(exc)
    row["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return row


# ------------------------------------------------------------------ the manifest


class Manifest:
    """``manifest.jsonl`` in the output folder: one JSON row per (product, scene)."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / MANIFEST

    def rows(self) -> list[dict]:
        """Every complete row; a torn last line (a killed writer) is ignored."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def finished(self, rows: list[dict]) -> dict[str, list[dict]]:
        """Rows of finished products: all rows ok, each output on disk, no row missing."""
        by: dict[str, list[dict]] = {}
        for r in rows:
            by.setdefault(r["product"], []).append(r)
        done = {}
        for key, rs in by.items():
            ranks = {r["rank"] for r in rs}
            if (all(r["ok"] and (self.out / r["output"]).is_file() for r in rs)
                    and len(ranks) == len(rs) == rs[0]["of"]):
                done[key] = sorted(rs, key=lambda r: r["rank"])
        return done

    def rewrite(self, rows: list[dict]) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        tmp.replace(self.path)

    def append(self, rows: list[dict]) -> None:
        with self.path.open("a") as f:
            f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
            f.flush()
            os.fsync(f.fileno())

    def to_parquet(self, rows: list[dict]) -> Path | None:
        """``manifest.parquet`` beside the JSONL when pyarrow is installed."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            return None
        path = self.out / "manifest.parquet"
        tmp = path.with_suffix(".tmp")
        pq.write_table(pa.Table.from_pylist(rows), tmp)
        tmp.replace(path)
        return path


def sorted_rows(rows: list[dict], drop: tuple[str, ...] = VOLATILE) -> list[dict]:
    """Rows ordered by (product, rank) without the timing columns: two runs of one job,
    local or on Ray, give equal lists."""
    return sorted(({k: v for k, v in r.items() if k not in drop} for r in rows),
                  key=lambda r: (r["product"], r["rank"]))


# ------------------------------------------------------------------ running a job


def _send_to_pool(rows: list[dict], out: Path, seed: int) -> None:
    from db.campaign import store_image
    from db.store import get_store

    from .images import load_image

    store = get_store(get_settings().db_url)
    for r in rows:
        if r["ok"]:
            store_image(store, load_image(out / r["output"], keep_alpha=False), r["product"],
                        r["scene"], r["backend"], {"backend": r["backend"], "batch": str(out)},
                        seed, in_pool=True)


def _check_out_dir(job: BatchJob) -> None:
    path = Path(job.out) / JOB_FILE
    want = {k: str(v) for k, v in asdict(job).items() if k in JOB_KEYS}
    if path.is_file():
        try:
            have = json.loads(path.read_text()).get("job", {})
        except ValueError:
            have = {}
        diff = [k for k in JOB_KEYS if k in have and have[k] != want[k]]
        if diff:
            raise ValueError(f"{job.out} holds a batch with other settings ({', '.join(diff)}); "
                             "use a new --out or the same settings to resume")
    Path(job.out).mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"job": want}, indent=1))


def run_batch(job: BatchJob, ray_address: str | None = None, progress: bool = True,
              ctx: pipeline.Context | None = None) -> dict:
    """Stage every product of ``job`` (skipping finished ones); ``ray_address`` = "local" or
    a cluster address runs it on Ray. Returns a summary; writes the manifest(s) and
    ``batch.json``."""
    job.check()
    get_backend(job.backend).available()  # an unknown setting fails here, before any work
    ctx = ctx or pipeline.get_context()
    items = list_products(job.products, ctx.catalog)
    if job.limit:
        items = items[:job.limit]
    _check_out_dir(job)
    manifest = Manifest(job.out)
    done = manifest.finished(manifest.rows())
    manifest.rewrite([r for key in sorted(done) for r in done[key]])  # drop retried rows
    todo = [it for it in items if it.key not in done]
    _ = ctx.retriever  # build or grow the index once, here, before any worker reads it
    t0 = time.perf_counter()
    bar = _bar(len(todo), job, progress)
    counts = {"staged": 0, "failed": 0}
    timings: dict = {}

    def finish(rows: list[dict]) -> None:  # called once per product, in the driver
        manifest.append(rows)
        if job.audit_pool:
            _send_to_pool(rows, Path(job.out), job.seed)
        counts["staged" if all(r["ok"] for r in rows) else "failed"] += 1
        bar.update(1)
        bar.set_postfix(failed=counts["failed"], refresh=False)

    if ray_address:
        from .batch_ray import run_on_ray

        timings = run_on_ray(job, todo, finish, None if ray_address == "local" else ray_address,
                             ctx=ctx)
    else:
        for it in todo:
            finish([stage_row(t, ctx, job) for t in retrieve_rows(it, ctx, job)])
    bar.close()
    wall = time.perf_counter() - t0
    rows = manifest.rows()
    parquet = manifest.to_parquet(sorted_rows(rows, drop=()))
    summary = {"mode": "ray" if ray_address else "local", "products": len(items),
               "skipped": len(items) - len(todo), **counts, "rows": len(rows),
               "wall_s": round(wall, 2), **timings,
               "products_per_hour": round(len(todo) / wall * 3600, 1) if todo and wall else None,
               "manifest": str(manifest.path), "parquet": str(parquet) if parquet else None}
    path = Path(job.out) / JOB_FILE
    path.write_text(json.dumps({"job": json.loads(path.read_text())["job"], "last_run": summary},
                               indent=1))
    return summary


def _bar(total: int, job: BatchJob, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="product", desc=f"batch {job.backend}", smoothing=0.05,
                disable=not progress, file=sys.stderr, dynamic_ncols=True)


def worker_env() -> dict[str, str]:
    """Environment for Ray workers: every setting of this process, and the project on the
    path (on a cluster the project must sit at the same path on every node)."""
    return {**settings_env(get_settings()), "PYTHONPATH": str(REPO_ROOT)}
