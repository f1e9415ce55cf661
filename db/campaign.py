"""Building audit campaigns: the method's three tasks from the catalog, or any system pairs
from the audit pool. Images are stored under neutral, content-hashed file names."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from stager.config import get_settings
from stager.images import save_png

from .store import AuditError, Store

PAPER_TASKS = [
    {"name": "vanilla staging (pix2pix) better than ground truth", "a": "pix2pix", "b": "ground_truth"},
    {"name": "copy-paste staging better than ground truth", "a": "edgeconnect", "b": "ground_truth"},
    {"name": "copy-paste staging better than vanilla staging", "a": "edgeconnect", "b": "pix2pix"},
]
#: issue 8's realism audit: all compositing steps vs none of them, same backend and pair
REALISM_TASK = {"name": "realism steps better than none (same backend)",
                "a": "edgeconnect", "b": "edgeconnect_plain"}
PAPER_SCORES = {PAPER_TASKS[0]["name"]: 0.0, PAPER_TASKS[1]["name"]: 3.0, PAPER_TASKS[2]["name"]: 76.0}


def items_dir() -> Path:
    return get_settings().data_dir / "audit" / "items"


def item_key(content_hash: str, system: str) -> str:
    """An item's key: its image's content hash and its system, so identical images of two
    systems stay two items with their own labels."""
    return hashlib.sha256(f"{content_hash}|{system}".encode()).hexdigest()[:32]


def store_image(store: Store, image: np.ndarray, product: str, scene: str, system: str,
                params: dict | None = None, seed: int = 0, in_pool: bool = False) -> int:
    """Save an image under its content hash (no system name in the file) and add an item."""
    h = hashlib.sha256(image.tobytes() + str(image.shape).encode()).hexdigest()[:32]
    path = items_dir() / f"{h}.png"
    if not path.exists():
        save_png(path, image)
    return store.add_item(product, scene, system, path, item_key(h, system), params, seed,
                          in_pool)


def broken_composite(gt: np.ndarray, gap: np.ndarray, seed: int) -> np.ndarray:
    """An obviously wrong staging for gold comparisons: the gap filled with loud noise."""
    rng = np.random.default_rng(seed)
    out = gt.copy()
    from stager.images import dilate

    hole = dilate(gap, 6)
    out[hole] = rng.integers(0, 256, (int(hole.sum()), 3), dtype=np.uint8)
    return out


def plan(task_items: list[tuple[str, int, int]], gold_items: list[tuple[int, int]],
         repeat_share: float, seed: int) -> list[dict]:
    """Comparisons with randomised sides and order, gold items, and ~``repeat_share`` repeats
    with sides swapped. ``task_items``: (task, item of A, item of B); ``gold_items``:
    (good item, broken item)."""
    rng = np.random.default_rng(seed)
    specs = []
    for task, ia, ib in task_items:
        if rng.random() < 0.5:
            specs.append({"task": task, "left": ia, "right": ib, "gold": None})
        else:
            specs.append({"task": task, "left": ib, "right": ia, "gold": None})
    for good, bad in gold_items:
        if rng.random() < 0.5:
            specs.append({"task": "gold", "left": good, "right": bad, "gold": "left"})
        else:
            specs.append({"task": "gold", "left": bad, "right": good, "gold": "right"})
    order = list(rng.permutation(len(specs)))
    specs = [specs[i] for i in order]
    n_rep = int(round(repeat_share * len(task_items)))
    out = [dict(s, repeat_of=None) for s in specs]
    originals = [s for s in out if s["gold"] is None]
    picks = rng.choice(len(originals), size=min(n_rep, len(originals)), replace=False) \
        if originals else []
    for k in sorted(int(p) for p in picks):
        orig = originals[k]
        cur = next(p for p, s in enumerate(out) if s is orig)
        # the repeat comes after its original, with sides swapped
        pos = int(rng.integers(cur + 1, len(out) + 1))
        out.insert(pos, {"task": orig["task"], "left": orig["right"], "right": orig["left"],
                         "gold": None, "repeat_of": orig})
    where = {id(s): p for p, s in enumerate(out)}
    for s in out:
        if s["repeat_of"] is not None:
            s["repeat_of"] = where[id(s["repeat_of"])]
    return out


def create_paper_campaign(store: Store, name: str, samples: int = 100, seed: int = 0,
                          gold_share: float = 0.05, repeat_share: float = 0.1,
                          progress=None, realism: bool = False) -> int:
    """The method's three-task audit on held-out pairs: pix2pix, EdgeConnect (+ weighted
    boundary loss) and the ground truth for each pair. With ``realism``, a fourth task: the
    same EdgeConnect output with all compositing steps against none of them."""
    from stager.backends import get_backend
    from stager.catalog import ground_truth
    from stager.evaluate import heldout_pairs
    from stager.pipeline import StageRequest, get_context, prepare, run_backend

    for system in ("pix2pix", "edgeconnect"):
        ok, why = get_backend(system).available()
        if not ok:
            raise AuditError(f"the method's audit needs {system}: {why}")
    ctx = get_context()
    pairs = heldout_pairs(ctx.catalog, samples)
    task_items, gold_items = [], []
    rng = np.random.default_rng(seed)
    for i, pr in enumerate(pairs):
        prep = prepare(StageRequest(pr.product_id, scene_id=pr.scene_id), ctx)
        gt, _ = ground_truth(ctx.catalog, pr.product_id, pr.scene_id)
        ids = {"ground_truth": store_image(store, gt, pr.product_id, pr.scene_id, "ground_truth")}
        for system in ("pix2pix", "edgeconnect"):
            out = run_backend(prep, system, seed=seed + i)
            if not out.ok:
                raise AuditError(f"{system} failed on {pr.product_id}/{pr.scene_id}: {out.error}")
            ids[system] = store_image(store, out.image, pr.product_id, pr.scene_id, system,
                                      {"backend": system}, seed + i)
        tasks = PAPER_TASKS + ([REALISM_TASK] if realism else [])
        if realism:
            from stager.evaluate_sets import ABLATIONS

            plain = prepare(StageRequest(pr.product_id, scene_id=pr.scene_id,
                                         **ABLATIONS["none of the steps"]), ctx)
            out = run_backend(plain, "edgeconnect", seed=seed + i)
            if not out.ok:
                raise AuditError(f"edgeconnect failed on {pr.product_id}/{pr.scene_id}: "
                                 f"{out.error}")
            ids["edgeconnect_plain"] = store_image(store, out.image, pr.product_id, pr.scene_id,
                                                   "edgeconnect_plain",
                                                   {"backend": "edgeconnect",
                                                    "realism": "none of the steps"}, seed + i)
        for t in tasks:
            task_items.append((t["name"], ids[t["a"]], ids[t["b"]]))
        if rng.random() < gold_share * 3:  # per pair ~3 task comparisons
            bad = store_image(store, broken_composite(gt, prep.gap, i), pr.product_id,
                              pr.scene_id, "broken")
            gold_items.append((ids["ground_truth"], bad))
        if progress:
            progress((i + 1) / len(pairs), f"rendering pair {i + 1}/{len(pairs)}")
    tasks = PAPER_TASKS + ([REALISM_TASK] if realism else [])
    return store.create_campaign(name, tasks, plan(task_items, gold_items, repeat_share, seed),
                                 seed)


def create_pool_campaign(store: Store, name: str, system_pairs: list[tuple[str, str]],
                         samples: int = 100, seed: int = 0, repeat_share: float = 0.1) -> int:
    """Compare systems from the audit pool on the (product, scene) pairs that have both."""
    items = store.pool_items()
    by_key: dict = {}
    for it in items:
        by_key.setdefault((it.product, it.scene), {})[it.system] = it.id
    tasks, task_items = [], []
    for a, b in system_pairs:
        tname = f"{a} better than {b}"
        tasks.append({"name": tname, "a": a, "b": b})
        matched = [(k, v) for k, v in sorted(by_key.items()) if a in v and b in v][:samples]
        task_items += [(tname, v[a], v[b]) for _, v in matched]
    if not task_items:
        raise AuditError("the audit pool has no (product, scene) with both systems of any pair: "
                         "send outputs to the pool from the app first")
    return store.create_campaign(name, tasks, plan(task_items, [], repeat_share, seed), seed)
