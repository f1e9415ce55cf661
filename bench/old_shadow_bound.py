"""Issue 8: how far a perfect old-shadow reader would take the old-shadow region's error.

``evaluate --realism`` scores the old shadow's region (where the staged scene is darker than its
empty room and the truth shows that room) with every realism step and with none (the old
pipeline). Its target is 50% lower. This runs the same ablation (``evaluate_realism``: the same
held-out pairs, region and fills) twice per fill backend: with the shading ratio the stager
reads (the shade model, or the classical ratio when it is off), and with the *true* ratio in its
place: the scene's luma over its empty room's, which only the generator knows. The second is a
measurement, never a stager setting: it says how much of the gap to the target lies in reading
the old shadow, and how much in the rest (the fill inside the footprint's margin, the new
product's shadow).

    python bench/old_shadow_bound.py [--pairs 24] [--backends telea,edgeconnect]

Writes ``bench/results/old_shadow_bound.json``. Quality, not speed: any load is fine.
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np
from common import save, show


def _key(img: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest()


def main(pairs: int = 24, backends: tuple[str, ...] = ("telea", "edgeconnect")) -> dict:
    from stager import shadows as sh
    from stager.evaluate import heldout_pairs
    from stager.evaluate_sets import evaluate_realism
    from stager.pipeline import get_context

    ctx = get_context()
    cat = ctx.catalog
    # the empty room of every scene the ablation stages, found by the scene's pixels
    rooms = {}
    for pr in heldout_pairs(cat, pairs):
        rooms[_key(cat.scene_image(pr.scene_id))] = cat.scene_background(pr.scene_id)
    read = sh.shade_maps
    hits = {"true": 0, "missed": 0}  # scenes read with the true ratio / by the stager

    def true_maps(scene, old_mask, learned=None):
        ratio, spread = read(scene, old_mask, learned)
        bg = rooms.get(_key(scene))
        if bg is None:  # not one of the pairs' scenes: the stager's own reading (counted)
            hits["missed"] += 1
            return ratio, spread
        hits["true"] += 1
        truth = (sh._luma(scene) + 0.5) / np.maximum(sh._luma(bg), 1.0)
        truth = np.clip(truth, 0.2, 1.3).astype(np.float32)
        truth[old_mask] = 1.0
        # the truth judges colour too (a rug is not shade): no channel spread anywhere
        return truth, np.zeros_like(spread)

    res = {"pairs": pairs, "reader": sh.shade_reader()[1], "backends": {}}
    rows = []
    try:
        for b in backends:
            out = {}
            for name, maps in (("stager's reader", read), ("true ratio (oracle)", true_maps)):
                sh.shade_maps = maps
                rep = evaluate_realism(cat, ctx, b, pairs)
                allv = rep["table"]["all"]["old_shadow_l1"]["mean"]
                none = rep["table"]["none of the steps"]["old_shadow_l1"]["mean"]
                out[name] = {"all_steps": round(allv, 5), "none_of_the_steps": round(none, 5),
                             "lower_by": round(1 - allv / none, 3),
                             "all_minus_none": rep["all_minus"]["none of the steps"]
                             ["old_shadow_l1"]}
                rows.append((f"{b}, {name}: old-shadow region lower by",
                             round(100 * (1 - allv / none), 1), "%"))
            res["backends"][b] = out
    finally:
        sh.shade_maps = read
    if not hits["true"] or hits["missed"]:
        raise SystemExit(f"the true ratio replaced {hits['true']} readings and missed "
                         f"{hits['missed']}: the oracle rows would not be the oracle's")
    res["oracle_readings"] = hits["true"]
    save("old_shadow_bound", res)
    show(rows)
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--backends", default="telea,edgeconnect")
    a = ap.parse_args()
    main(a.pairs, tuple(a.backends.split(",")))
