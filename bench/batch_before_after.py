"""Ray's fixed cost before and after the actor pool, back to back on the same machine.

    git archive 4e50fa1 | tar -x -C /tmp/stager_before     # the Ray Data pipeline
    python bench/batch_before_after.py --before /tmp/stager_before [--products 8,200] [--rounds 3]

Each round runs ``python -m stager batch --backend telea`` four times on the same product
folder: local, the *before* tree's ``--ray``, this tree's ``--ray`` and this tree's ``--ray``
with ``STAGER_RAY_OVERLAP=0``. With 8 products the wall time is almost all fixed cost
(start-up, Ray, shutdown); with 200 it is the issue's comparison. Writes
``bench/results/batch_before_after.json`` (every run, with the load average before it).
"""

from common import ROOT, save  # noqa: I001

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_batch import product_folder

RUNS = (("after", "local"), ("before", "ray"), ("after", "ray"), ("after", "ray-no-overlap"))


def one(tree: Path, label: str, mode: str, products: Path, work: Path) -> dict:
    out = work / f"out_{label}_{mode}"
    shutil.rmtree(out, ignore_errors=True)
    args = ["-m", "stager", "batch", "--products", str(products), "--backend", "telea",
            "--top-k", "8", "--out", str(out), "--quiet"] + (["--ray"] if mode != "local" else [])
    env = {**os.environ, "STAGER_RAY_OVERLAP": "0" if mode == "ray-no-overlap" else "1"}
    load = round(os.getloadavg()[0], 2)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=tree, env=env, check=True, capture_output=True)
    wall = round(time.perf_counter() - t0, 2)
    s = json.loads((out / "batch.json").read_text())["last_run"]
    keys = ("ray_start_s", "ray_first_batch_s", "ray_shutdown_s", "driver_products")
    return {"tree": label, "mode": mode, "wall_s": wall, "load_before": load,
            **{k: s[k] for k in keys if k in s}}


def main() -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="a checkout of the commit before")
    ap.add_argument("--products", default="8,200")
    ap.add_argument("--rounds", default="3,1", help="rounds per product count")
    a = ap.parse_args()
    counts = [int(x) for x in a.products.split(",")]
    rounds = [int(x) for x in a.rounds.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench_before_after_"))
    result = {"before_tree": str(a.before), "sizes": []}
    try:
        for n, r in zip(counts, rounds):
            folder = product_folder(work / f"products_{n}", n)
            runs = [{"products": n, **one(Path(a.before) if label == "before" else ROOT, label,
                                          mode, folder, work)}
                    for _ in range(r) for label, mode in RUNS]
            for x in runs:
                print(json.dumps(x), flush=True)
            med = {f"{label} {mode}": statistics.median(x["wall_s"] for x in runs
                                                         if (x["tree"], x["mode"]) == (label, mode))
                   for label, mode in RUNS}
            local = med["after local"]
            result["sizes"].append({
                "products": n, "rounds": r, "median_wall_s": med,
                "overhead_vs_local": {k: round(v / local - 1, 3) for k, v in med.items()
                                      if k != "after local"},
                "fixed_cost_s": {k: round(v - local, 2) for k, v in med.items()
                                 if k != "after local"},
                "runs": runs})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    save("batch_before_after", result)
    print(json.dumps([{k: v for k, v in s.items() if k != "runs"} for s in result["sizes"]],
                     indent=1))
    return result


if __name__ == "__main__":
    main()
