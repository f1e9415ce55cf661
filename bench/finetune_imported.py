"""Issue 9: does a 20-minute CPU fine-tune on a designer's own imported rooms lower their
held-out gap L1 against the shipped weights?

Uses only the README's commands: 200 plain rooms (a wall over a floor, noise sigma 3, a vivid
old product with its cast shadow: ``stager.evaluate_sets.plain_room``) are written as photos
with their product masks and imported with ``catalog import``; ``train --data catalog --init
models/weights --max-minutes 20`` fine-tunes the weighted EdgeConnect model on the catalog (its
train split plus four fifths of the imports); ``evaluate --imported 3`` scores the shipped and
the fine-tuned weights on the held-out fifth with the same gap generator and seed.

    python bench/finetune_imported.py [--rooms 200 --minutes 20 --work /tmp/ft]

Writes ``bench/results/finetune_imported.json``. Long (about 30 minutes): not part of
``python -m bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rooms", type=int, default=200)
    p.add_argument("--minutes", type=float, default=20)
    p.add_argument("--gaps", type=int, default=3, help="gaps per held-out room")
    p.add_argument("--work", default="/tmp/stager_finetune")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--adv-weight", type=float, default=0.1,
                   help="adversarial weight of the fine-tune (0: the weighted L1 alone)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "finetune_imported.json"))
    a = p.parse_args()
    from stager.evaluate_sets import plain_room
    from stager.images import save_png

    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)  # a second import would give the rooms new ids
    rooms, data = work / "rooms", work / "data"
    rooms.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2026)
    for i in range(a.rooms):
        scene, _clean, alpha, _shadow = plain_room(rng)
        save_png(rooms / f"room{i:03d}.png", scene)
        save_png(rooms / f"room{i:03d}_mask.png", alpha > 0.5)
    env = dict(os.environ, STAGER_DATA_DIR=str(data), GRADIO_ANALYTICS_ENABLED="False")

    def run(*args, **kw):
        print("$", " ".join(args), flush=True)
        subprocess.run([sys.executable, "-m", "stager", *args], cwd=ROOT, env=kw.get("env", env),
                       check=True)

    run("catalog", "import", "--scenes-dir", str(rooms))
    mine = work / "weights"
    t0 = time.time()
    run("train", "edgeconnect", "--stage", "inpaint", "--data", "catalog", "--init",
        str(ROOT / "models" / "weights"), "--out", str(mine), "--device", "auto",
        "--max-minutes", str(a.minutes), "--res", "128", "--batch", "8", "--lr", "1e-4",
        "--variants", "weighted", "--threads", str(a.threads), "--crops", "1500",
        "--adv-weight", str(a.adv_weight),
        "--holes", "600", "--log-dir", str(work / "logs"))
    train_s = time.time() - t0
    for f in ("edgeconnect_edge", "pix2pix", "diffusion", "edgeconnect_inpaint_baseline"):
        src = ROOT / "models" / "weights" / f"{f}.safetensors"
        if not (mine / src.name).exists():
            shutil.copy(src, mine / src.name)
    reports = {}
    for name, wdir in (("shipped", ROOT / "models" / "weights"), ("fine-tuned", mine)):
        out = work / f"eval_{name}"
        run("evaluate", "--pairs", "0", "--imported", str(a.gaps), "--backends",
            "edgeconnect,telea", "--out", str(out), env=dict(env, STAGER_WEIGHTS_DIR=str(wdir)))
        reports[name] = json.loads((out / "eval_sets.json").read_text())["imported"]
    from models.weights_io import read_meta

    meta = read_meta(mine / "edgeconnect_inpaint_weighted.safetensors")
    res = {"rooms": a.rooms, "minutes": a.minutes, "adv_weight": a.adv_weight,
           "train_wall_s": round(train_s, 1),
           "steps": meta.get("steps"), "device": meta.get("device"), "data": meta.get("data"),
           "heldout_scenes": len(reports["shipped"]["photos"]),
           "gaps": reports["shipped"]["gaps"],
           "gap_l1": {n: {b: r["backends"][b]["gap_l1"] for b in r["backends"]}
                      for n, r in reports.items()}}
    out = Path(a.out)
    out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
