"""Keeping the gap margin's floor (``composite.margin_keep``, ``STAGER_MARGIN_KEEP``), paired.

Every held-out catalog pair is staged twice with each backend, with the margin's floor kept
and with the whole margin filled, and both outputs are scored against the generator's ground
truth on the *same* region: the gap of the whole-margin fill (fill region minus the new
product), so the kept pixels count, and on the whole image. ``evaluate``'s gap shrinks with
the setting (kept pixels are no longer filled), so its numbers before and after do not compare;
these do. Bootstrap 95% intervals over pairs.

    python bench/margin_keep.py [--pairs 48] [--backends edgeconnect,telea]

Writes ``bench/results/margin_keep.json``. Quality, not speed: any load is fine.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from common import save, show


def _ci(v, rng, rounds: int = 1000) -> list[float]:
    v = np.asarray(v, float)
    means = [v[rng.integers(0, len(v), len(v))].mean() for _ in range(rounds)]
    return [round(float(v.mean()), 5), round(float(np.percentile(means, 2.5)), 5),
            round(float(np.percentile(means, 97.5)), 5)]


def main(pairs: int = 48, backends: tuple[str, ...] = ("edgeconnect", "telea")) -> dict:
    from stager.catalog import ground_truth
    from stager.config import reset_settings
    from stager.evaluate import heldout_pairs, masked_l1
    from stager.pipeline import StageRequest, get_context, prepare, run_backend

    ctx = get_context()
    cat = ctx.catalog
    per = {b: {m: [] for m in ("gap_off", "gap_on", "whole_off", "whole_on")} for b in backends}
    kept_share = []
    before = os.environ.get("STAGER_MARGIN_KEEP")
    try:
        for i, pr in enumerate(heldout_pairs(cat, pairs)):
            gt, new = ground_truth(cat, pr.product_id, pr.scene_id)
            everything = np.ones_like(new)
            region = None
            for mode in ("off", "on"):
                os.environ["STAGER_MARGIN_KEEP"] = "1" if mode == "on" else "0"
                reset_settings()
                prep = prepare(StageRequest(pr.product_id, scene_id=pr.scene_id), ctx)
                if region is None:
                    region = prep.gap  # the whole margin filled: the region both are scored on
                else:
                    kept_share.append(float((region & ~prep.gap).sum() / max(region.sum(), 1)))
                for b in backends:
                    out = run_backend(prep, b, seed=i)
                    if not out.ok:
                        raise SystemExit(f"{b}: {out.error}")
                    per[b][f"gap_{mode}"].append(masked_l1(out.image, gt, region))
                    per[b][f"whole_{mode}"].append(masked_l1(out.image, gt, everything))
            print(f"pair {i + 1}/{pairs}", flush=True)
    finally:
        if before is None:
            os.environ.pop("STAGER_MARGIN_KEEP", None)
        else:
            os.environ["STAGER_MARGIN_KEEP"] = before
        reset_settings()
    rng = np.random.default_rng(0)
    res = {"pairs": pairs, "kept_share_of_the_gap": _ci(kept_share, rng), "backends": {}}
    rows = []
    for b in backends:
        d = {m: _ci(v, rng) for m, v in per[b].items()}
        diff = np.array(per[b]["gap_on"]) - np.array(per[b]["gap_off"])
        d["gap_on_minus_off"] = _ci(diff, rng)
        d["whole_on_minus_off"] = _ci(np.array(per[b]["whole_on"]) - np.array(per[b]["whole_off"]),
                                      rng)
        d["pairs_better"], d["pairs_worse"] = int((diff < 0).sum()), int((diff > 0).sum())
        res["backends"][b] = d
        rows.append((f"{b}: gap L1 (whole-margin gap), filled -> kept",
                     round(100 * (d["gap_on"][0] / d["gap_off"][0] - 1), 1), "%"))
    save("margin_keep", res)
    show(rows)
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=48)
    ap.add_argument("--backends", default="edgeconnect,telea")
    a = ap.parse_args()
    main(a.pairs, tuple(a.backends.split(",")))
