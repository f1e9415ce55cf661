"""Two EdgeConnect weights folders on the same held-out gaps, paired: is a fine-tune better?

Each folder's ``edgeconnect`` (weighted) and ``edgeconnect_baseline`` backends, and Telea,
fill the default catalog's held-out pairs (``stager.evaluate.evaluate_pairs``) and the
product-shaped gaps in the held-out real photographs (``stager.evaluate_sets.evaluate_real``),
exactly as ``python -m stager evaluate`` runs them. Reported per data set and backend: gap L1,
sharpness, the gain over Telea, and the candidate minus the reference with a bootstrap
interval over the pairs (the same gaps for both, so the interval is the paired one).

    python bench/compare_weights.py CANDIDATE_DIR [--reference models/weights]
        [--pairs 48 --per-photo 6]

Writes ``bench/results/eval/compare_weights.json``. Quality, not speed: any load is fine.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from common import ROOT

BACKENDS = ["telea", "edgeconnect", "edgeconnect_baseline"]


def scores(weights: Path, pairs: int, per_photo: int) -> dict:
    """{data: {backend: {metric: [per gap]}}} with ``weights`` as the weights folder."""
    from stager import backends
    from stager.config import reset_settings
    from stager.evaluate import evaluate_pairs, heldout_pairs
    from stager.evaluate_sets import evaluate_real
    from stager.pipeline import get_context

    os.environ["STAGER_WEIGHTS_DIR"] = str(weights)
    reset_settings()
    backends._INSTANCES.clear()
    ctx = get_context()
    cat = evaluate_pairs(heldout_pairs(ctx.catalog, pairs), BACKENDS, ctx)["per"]
    real = evaluate_real(BACKENDS, per_photo=per_photo)["per"]
    keep = ("gap_l1", "band_l1", "sharpness")
    return {"catalog": {b: {m: cat[b][m] for m in keep} for b in BACKENDS},
            "real": {b: {m: real[b][m] for m in keep} for b in BACKENDS}}


def _ci(d: np.ndarray, rounds: int, rng) -> list[float]:
    boots = d[rng.integers(0, len(d), (rounds, len(d)))].mean(1)
    return [round(float(x), 5) for x in np.percentile(boots, [2.5, 97.5])]


def compare(cand: dict, ref: dict, rounds: int = 2000) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for data in cand:
        telea = np.array(ref[data]["telea"]["gap_l1"])
        rows = {}
        for b in BACKENDS[1:]:
            row = {}
            for tag, src in (("candidate", cand), ("reference", ref)):
                g = np.array(src[data][b]["gap_l1"])
                row[tag] = {"gap_l1": round(float(g.mean()), 5),
                            "band_l1": round(float(np.mean(src[data][b]["band_l1"])), 5),
                            "sharpness": round(float(np.mean(src[data][b]["sharpness"])), 3),
                            "below_telea": round(float(1 - g.mean() / telea.mean()), 4),
                            "wins_over_telea": int((g < telea).sum())}
            d = np.array(cand[data][b]["gap_l1"]) - np.array(ref[data][b]["gap_l1"])
            row["candidate_minus_reference"] = {"mean": round(float(d.mean()), 5),
                                                "ci95": _ci(d, rounds, rng)}
            rows[b] = row
        out[data] = {"gaps": len(telea), "telea_gap_l1": round(float(telea.mean()), 5),
                     "telea_sharpness": round(float(np.mean(ref[data]["telea"]["sharpness"])), 3),
                     "backends": rows}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("candidate", type=Path)
    ap.add_argument("--reference", type=Path, default=ROOT / "models" / "weights")
    ap.add_argument("--pairs", type=int, default=48)
    ap.add_argument("--per-photo", type=int, default=6)
    a = ap.parse_args()
    cand = scores(a.candidate.resolve(), a.pairs, a.per_photo)
    ref = scores(a.reference.resolve(), a.pairs, a.per_photo)
    res = {"candidate": str(a.candidate), "reference": str(a.reference),
           **compare(cand, ref)}
    path = ROOT / "bench" / "results" / "eval" / "compare_weights.json"
    path.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
