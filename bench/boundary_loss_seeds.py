"""The fair weighted-boundary-loss comparison: for each seed, the weighted and the baseline
inpainting models (trained together on the same batches, same steps, same initial weights;
see ``models/train_gpu.sh``) fill the same held-out gaps. Band L1 (the gap within 8 px of known
background) and gap L1 on held-out catalog pairs and held-out real photographs; the paired
difference weighted - baseline with a bootstrap interval over seeds and pairs.

    python bench/boundary_loss_seeds.py WEIGHTS_DIR [--pairs 12 --per-photo 4]

``WEIGHTS_DIR`` holds ``edgeconnect_edge``, ``edgeconnect_inpaint_{weighted,baseline}`` (seed 0)
and ``seeds/edgeconnect_inpaint_{variant}_seed{1,2}``. Writes
``bench/results/eval/boundary_loss_3_seeds.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from common import ROOT


def evaluate(src: Path, n_pairs: int, per_photo: int) -> dict:
    from stager import backends, gaps
    from stager.catalog import ground_truth, open_catalog
    from stager.config import reset_settings
    from stager.evaluate import boundary_band, heldout_pairs, masked_l1
    from stager.images import erode
    from stager.pipeline import (Context, StageRequest, fill_plate, finish, hidden_region,
                                 prepare)

    cat = open_catalog()
    ctx = Context(cat)
    preps = [(prepare(StageRequest(p.product_id, scene_id=p.scene_id), ctx),
              ground_truth(cat, p.product_id, p.scene_id)[0]) for p in heldout_pairs(cat, n_pairs)]
    rng = np.random.default_rng(0)
    jobs = [(img, gaps.product_gap(rng, img.shape[:2], height=(0.3, 0.6), shadow=0.0))
            for img in gaps.real_photos("heldout", 768).values() for _ in range(per_photo)]
    res = {}
    for seed in (0, 1, 2):
        for v in ("weighted", "baseline"):
            with tempfile.TemporaryDirectory() as d:
                shutil.copy(src / "edgeconnect_edge.safetensors", d)
                f = (src / f"edgeconnect_inpaint_{v}.safetensors" if seed == 0 else
                     src / "seeds" / f"edgeconnect_inpaint_{v}_seed{seed}.safetensors")
                shutil.copy(f, Path(d) / "edgeconnect_inpaint_weighted.safetensors")
                os.environ["STAGER_WEIGHTS_DIR"] = d
                reset_settings()
                backends._INSTANCES.clear()
                row = {"catalog_band": [], "catalog_gap": [], "real_band": [], "real_gap": []}
                for pr, gt in preps:
                    out = finish(pr, fill_plate("edgeconnect", pr.scene, pr.fill_mask,
                                                hidden_region(pr)))
                    band = boundary_band(pr.gap, ~pr.fill_mask & ~pr.new_mask)
                    row["catalog_band"].append(masked_l1(out, gt, band))
                    row["catalog_gap"].append(masked_l1(out, gt, pr.gap))
                for img, g in jobs:
                    out = fill_plate("edgeconnect", img, g.hole, g.hole & erode(g.new, 4))
                    row["real_band"].append(masked_l1(out, img, g.band()))
                    row["real_gap"].append(masked_l1(out, img, g.visible))
                res[f"{v}_{seed}"] = row
    return res


def summarise(res: dict, rounds: int = 2000) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for metric in ("catalog_band", "catalog_gap", "real_band", "real_gap"):
        w = np.array([res[f"weighted_{s}"][metric] for s in range(3)])  # (seeds, pairs)
        b = np.array([res[f"baseline_{s}"][metric] for s in range(3)])
        d = w - b
        boots = [d[rng.integers(0, 3, 3)][:, rng.integers(0, d.shape[1], d.shape[1])].mean()
                 for _ in range(rounds)]
        lo, hi = np.percentile(boots, [2.5, 97.5])
        out[metric] = {"weighted": w.mean(1).round(4).tolist(),
                       "baseline": b.mean(1).round(4).tolist(),
                       "weighted_mean": round(float(w.mean()), 4),
                       "baseline_mean": round(float(b.mean()), 4),
                       "diff": round(float(d.mean()), 4),
                       "ci95": [round(float(lo), 4), round(float(hi), 4)],
                       "rel": round(float(d.mean() / b.mean()), 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights", type=Path)
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--per-photo", type=int, default=4)
    a = ap.parse_args()
    summary = summarise(evaluate(a.weights, a.pairs, a.per_photo))
    path = ROOT / "bench" / "results" / "eval" / "boundary_loss_3_seeds.json"
    path.write_text(json.dumps(summary, indent=1))
    for k, v in summary.items():
        print(k, v)


if __name__ == "__main__":
    main()
