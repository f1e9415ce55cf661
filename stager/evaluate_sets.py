"""Evaluation beyond the procedural catalog: real photographs, plain imported rooms, and the
realism ablation of the compositing steps.

- ``real``: product-shaped copy-paste gaps (``stager.gaps``) cut into the held-out bundled
  photographs (``gaps.REAL_HELDOUT``, never trained on), filled by each backend exactly as a
  staging job fills them, scored on the visible gap against the true pixels.
- ``imported``: the same gaps in the held-out fifth of the catalog's imported scenes, to
  measure a fine-tune on a designer's own rooms (``train --data catalog``).
- ``rooms``: plain rooms (a wall over a floor, noise sigma 3) with a vivid old product and its
  cast shadow, imported like a designer's room; scored against the known clean background:
  gap L1, the old shadow's darkening left, and whether the floor under the new product's base
  is lighter than the floor beside it.
- ``realism``: staging jobs on held-out catalog pairs with and without each step (old-shadow
  removal, the new product's shadow, light matching, the clean fill), scored against the
  generator's ground truth on the whole image, the old shadow's region, the product and the
  band under its base; paired bootstrap intervals of the differences.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from . import gaps, shadows
from .backends import get_backend
from .catalog import Catalog, ground_truth
from .evaluate import _bootstrap, boundary_band, heldout_pairs, masked_l1, sharpness_ratio
from .images import dilate
from .pipeline import Context, StageRequest, fill_plate, finish, hidden_region, prepare


def _ci(vals, rounds: int, rng) -> dict:
    m, lo, hi = _bootstrap(np.asarray(vals, np.float64), rounds, rng)
    return {"mean": m, "ci95": [lo, hi]}


def _gap_scores(names: list[str], photos: dict[str, np.ndarray], per_photo: int, seed: int,
                bootstrap: int, progress=None, what: str = "gap") -> dict:
    """Every backend on ``per_photo`` product-shaped gaps in each image of ``photos``, filled
    as a staging job fills them (the part under the new product first), scored on the gap."""
    rng = np.random.default_rng(seed)
    per = {n: {"gap_l1": [], "band_l1": [], "sharpness": []} for n in names}
    jobs = [(k, img, gaps.product_gap(rng, img.shape[:2], height=(0.3, 0.6), shadow=0.0))
            for k, img in photos.items() for _ in range(per_photo)]
    for i, (_, img, g) in enumerate(jobs):
        hidden = g.hidden()
        band = boundary_band(g.visible, ~g.hole)
        for n in names:
            out = fill_plate(n, img, g.hole, hidden, seed=i)
            per[n]["gap_l1"].append(masked_l1(out, img, g.visible))
            per[n]["band_l1"].append(masked_l1(out, img, band))
            per[n]["sharpness"].append(sharpness_ratio(out, img, g.visible))
        if progress:
            progress((i + 1) / len(jobs), f"{what} {i + 1}/{len(jobs)}")
    brng = np.random.default_rng(seed + 1)
    table = {n: {m: _ci(v, bootstrap, brng) for m, v in per[n].items()} for n in names}
    return {"photos": sorted(photos), "gaps": len(jobs), "backends": table, "per": per}


def evaluate_real(names: list[str], per_photo: int = 6, seed: int = 0, bootstrap: int = 500,
                  progress=None) -> dict:
    """Every backend on product-shaped gaps in the held-out real photographs."""
    photos = gaps.real_photos("heldout", max_side=768)
    if not photos:
        raise ValueError("no bundled real photographs found (scikit-image, scikit-learn and "
                         "matplotlib ship them)")
    return _gap_scores(names, photos, per_photo, seed, bootstrap, progress, "real gap")


def evaluate_imported(names: list[str], catalog: Catalog, per_scene: int = 2, seed: int = 0,
                      bootstrap: int = 500, progress=None) -> dict:
    """Every backend on product-shaped gaps in the catalog's held-out imported scenes (the
    fifth that ``train --data catalog`` never sees): the same geometry as ``real`` (the
    training gap generator with old products 30-60% of the short side, no shadow blob)."""
    from models.data import held_out_imports

    scenes = held_out_imports(catalog)
    if not scenes:
        raise ValueError("the catalog has no held-out imported scenes: import some rooms first "
                         "(python -m stager catalog import --scenes-dir DIR)")
    return _gap_scores(names, scenes, per_scene, seed, bootstrap, progress, "imported gap")


def plain_room(rng: np.random.Generator, size: int = 512):
    """(scene, clean background, old alpha, true old-shadow mask) of a random plain room."""
    from .furniture import render_product, sample_product

    wall = rng.uniform(150, 235, 3)
    floor = rng.uniform(50, 170, 3)
    horizon = int(rng.uniform(0.5, 0.65) * size)
    clean = np.zeros((size, size, 3), np.float32)
    clean[:horizon], clean[horizon:] = wall, floor
    clean = np.clip(clean + rng.normal(0, 3, clean.shape) + 0.5, 0, 255).astype(np.uint8)
    fam = ["sofa", "armchair", "cabinet", "chair", "bed"][int(rng.integers(5))]
    sprite = render_product(sample_product(rng, fam), int(rng.uniform(0.25, 0.4) * size))
    h, w = sprite.shape[:2]
    if w > 0.9 * size:  # a long sofa or bed: no wider than the room
        h, w = max(int(h * 0.9 * size / w), 2), int(0.9 * size)
        sprite = cv2.resize(sprite, (w, h), interpolation=cv2.INTER_AREA)
    base = int(horizon + rng.uniform(0.3, 0.7) * (size - horizon))
    x0 = int(rng.uniform(0.1, 0.9) * size - w / 2)
    x0 = int(np.clip(x0, 0, size - w))
    alpha = np.zeros((size, size), np.float32)
    alpha[base - h:base, x0:x0 + w] = sprite[..., 3] / 255.0
    vivid = np.array([[220, 20, 30], [20, 200, 40], [240, 200, 0]][int(rng.integers(3))], float)
    light = shadows.Light(float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-0.3, -0.05)), 0.04,
                          float(rng.uniform(0.3, 0.5)), 0.5)
    shade = shadows.object_shadow(alpha, light)
    img = clean.astype(np.float32) * shade[..., None]
    img = img * (1 - alpha[..., None]) + vivid * alpha[..., None]
    scene = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return scene, clean, alpha, (shade < 0.97) & (alpha < 0.5)


def evaluate_rooms(names: list[str], catalog_root, n: int = 8, seed: int = 0,
                   bootstrap: int = 500, progress=None) -> dict:
    """Stage a catalog-shot product into ``n`` imported plain rooms with every copy-paste
    backend; scored against each room's clean background."""
    import tempfile
    from pathlib import Path

    from .catalog import import_folders
    from .images import save_png
    from .synth import catalog_shot
    from .furniture import sample_product

    rng = np.random.default_rng(seed)
    per = {b: {"gap_l1": [], "shadow_left": [], "base_lighter": []} for b in names}
    with tempfile.TemporaryDirectory() as tmp:
        rooms = []
        for i in range(n):
            scene, clean, alpha, sh_true = plain_room(rng)
            save_png(Path(tmp) / f"room{i}.png", scene)
            save_png(Path(tmp) / f"room{i}_mask.png", alpha > 0.5)
            rooms.append((clean, sh_true))
        base = Catalog(Path(tmp) / "catalog", [], [], 0)
        base.save()
        cat, _ = import_folders(base, Path(tmp))
        ctx = Context(cat)
        shot = catalog_shot(sample_product(rng, "armchair"), 384)[..., :3]
        by_file = {s.params.get("file"): s for s in cat.scenes}
        for i, (clean, sh_true) in enumerate(rooms):
            s = by_file[f"room{i}.png"]
            prep = prepare(StageRequest(shot, scene_id=s.id, harmonise=0.0), ctx)
            for b in names:
                plate = fill_plate(b, prep.source, prep.fill_mask, hidden_region(prep))
                out = finish(prep, plate)
                per[b]["gap_l1"].append(masked_l1(plate, clean, prep.gap))
                left = sh_true & ~dilate(prep.new_mask, 2)
                per[b]["shadow_left"].append(float((clean.astype(float) - plate)[left].mean())
                                             if left.any() else float("nan"))
                x0, y0, x1, y1 = prep.placement.box
                under = np.zeros_like(prep.new_mask)
                under[y1:y1 + 5, max(x0, 0):x1] = True
                beside = np.zeros_like(prep.new_mask)
                beside[y1:y1 + 5, max(x1 + 15, 0):x1 + 60] = True  # right of the product
                beside[y1:y1 + 5, max(x0 - 60, 0):max(x0 - 15, 0)] = True  # and left of it
                beside &= ~prep.fill_mask
                if under.any() and beside.any():
                    per[b]["base_lighter"].append(float(out[under & ~prep.new_mask].mean()
                                                        - out[beside].mean()))
            if progress:
                progress((i + 1) / n, f"room {i + 1}/{n}")
    brng = np.random.default_rng(seed + 1)
    return {"rooms": n, "backends": {b: {m: _ci(v, bootstrap, brng) for m, v in per[b].items()}
                                     for b in names}}


ABLATIONS = {  # name -> request changes; "all" is the default request
    "all": {},
    "no old-shadow removal": {"remove_old_shadow": False},
    "no new shadow": {"shadow": False},
    "with light matching 0.5 (off by default)": {"harmonise": 0.5},
    "none of the steps": {"remove_old_shadow": False, "shadow": False, "harmonise": 0.0,
                              "clean_fill": False},
}


def evaluate_realism(catalog: Catalog, ctx: Context, backend: str = "telea", pairs: int = 24,
                     seed: int = 0, bootstrap: int = 1000, progress=None) -> dict:
    """Whole-image, old-shadow, product and under-base errors with and without each step."""
    per = {k: {"whole_l1": [], "old_shadow_l1": [], "product_l1": [], "under_base_l1": []}
           for k in ABLATIONS}
    prs = heldout_pairs(catalog, pairs)
    for i, pr in enumerate(prs):
        gt, new = ground_truth(catalog, pr.product_id, pr.scene_id)
        scene = catalog.scene_image(pr.scene_id)
        bg = catalog.scene_background(pr.scene_id)
        old = catalog.scene_mask(pr.scene_id)
        # the old product's true shadow: where the staged scene is darker than its background
        # ... where the truth shows the clean background (not the new product's own shadow)
        clean_truth = np.abs(gt.astype(int) - bg.astype(int)).mean(-1) <= 2
        old_sh = (((bg.astype(int) - scene.astype(int)).mean(-1) > 2) & ~dilate(old, 1) & ~new
                  & clean_truth)
        base = prepare(StageRequest(pr.product_id, scene_id=pr.scene_id), ctx)
        for k, change in ABLATIONS.items():
            prep = replace(base, request=replace(base.request, **change))
            if "harmonise" in change:  # light matching changes the placed product
                prep = prepare(replace(base.request, **change), ctx)
            clean = prep.request.clean_fill
            plate = fill_plate(backend, prep.source if clean else prep.composite, prep.fill_mask,
                               hidden_region(prep) if clean else None, seed=i)
            out = finish(prep, plate)
            x0, y0, x1, y1 = prep.placement.box
            under = np.zeros_like(new)
            under[y1 - 3:y1 + 6, max(x0, 0):x1] = True
            under &= ~new
            per[k]["whole_l1"].append(masked_l1(out, gt, np.ones_like(new)))
            per[k]["old_shadow_l1"].append(masked_l1(out, gt, old_sh) if old_sh.any()
                                           else float("nan"))
            per[k]["product_l1"].append(masked_l1(out, gt, new))
            per[k]["under_base_l1"].append(masked_l1(out, gt, under))
        if progress:
            progress((i + 1) / len(prs), f"pair {i + 1}/{len(prs)}")
    rng = np.random.default_rng(seed)
    table = {k: {m: _ci(v, bootstrap, rng) for m, v in d.items()} for k, d in per.items()}
    diffs = {}
    for k in ABLATIONS:
        if k == "all":
            continue
        d = {}
        for m in per["all"]:
            a, b = np.array(per["all"][m]), np.array(per[k][m])
            d[m] = _ci(a - b, bootstrap, rng)  # negative: the step helps
        diffs[k] = d
    return {"backend": backend, "pairs": len(prs), "table": table, "all_minus": diffs}


def markdown_sets(rep: dict) -> str:
    """Markdown tables for whichever of ``real``, ``imported``, ``rooms``, ``realism`` the
    report holds."""
    f = lambda c, d=4: f"{c['mean']:.{d}f} [{c['ci95'][0]:.{d}f}, {c['ci95'][1]:.{d}f}]"  # noqa
    lines = []

    def gap_table(title: str, r: dict) -> list[str]:
        return [title, "", "| backend | gap L1 | band L1 | sharpness |", "|---|---|---|---|"] + [
            f"| {get_backend(n).label} | {f(row['gap_l1'])} | {f(row['band_l1'])} | "
            f"{f(row['sharpness'], 2)} |" for n, row in r["backends"].items()] + [""]

    if "real" in rep:
        r = rep["real"]
        lines += gap_table(f"## Real photographs ({r['gaps']} product-shaped gaps in "
                           f"{len(r['photos'])} held-out photos: {', '.join(r['photos'])})", r)
    if "imported" in rep:
        r = rep["imported"]
        lines += gap_table(f"## Held-out imported scenes ({r['gaps']} product-shaped gaps in "
                           f"{len(r['photos'])} scenes)", r)
    if "rooms" in rep:
        r = rep["rooms"]
        lines += [f"## Imported plain rooms ({r['rooms']} rooms, noise sigma 3)", "",
                  "| backend | gap L1 vs clean background | old-shadow darkening left (grey "
                  "levels) | floor under the base minus beside it |", "|---|---|---|---|"]
        for n, row in r["backends"].items():
            lines.append(f"| {get_backend(n).label} | {f(row['gap_l1'])} | "
                         f"{f(row['shadow_left'], 1)} | {f(row['base_lighter'], 1)} |")
        lines.append("")
    if "realism" in rep:
        r = rep["realism"]
        cols = ("whole_l1", "old_shadow_l1", "product_l1", "under_base_l1")
        head = ["| {} | whole-image L1 | old-shadow region L1 | product L1 | under-base L1 |",
                "|---|---|---|---|---|"]

        def rows(title: str, table: dict) -> list[str]:
            return [head[0].format(title), head[1]] + [
                f"| {k} | " + " | ".join(f(row[c]) for c in cols) + " |"
                for k, row in table.items()]

        lines += [f"## Realism steps ({r['pairs']} held-out catalog pairs, {r['backend']})", ""]
        lines += rows("configuration", r["table"])
        lines += ["", "Paired differences, all steps minus each configuration (negative: the "
                  "steps help; brackets: bootstrap 95% intervals):", ""]
        lines += rows("without", r["all_minus"]) + [""]
    return "\n".join(lines) + "\n"


__all__ = ["evaluate_real", "evaluate_imported", "evaluate_rooms", "evaluate_realism", "markdown_sets", "ABLATIONS",
           "plain_room"]
