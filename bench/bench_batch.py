"""Batch staging throughput and memory: ``python -m stager batch`` as a subprocess, so that each
run's wall time includes start-up (and Ray's) and its peak RSS is its own.

    python bench/bench_batch.py [--quick]

Products are the default catalog's 60 product photos, cycled under distinct file names up to
the count a run needs; scenes are the default catalog's. Local runs use one torch thread (on a
shared two-core machine two threads made EdgeConnect 30x slower: 1.46 s against 46 ms per
product, from OpenMP threads waiting on busy cores); Ray runs use a local Ray with the settings'
actor pool (2 actors x 0.5 CPU, one torch thread each). A Ray run's peak RSS is the driver's.

The machine is shared, so at 200 products the runs are interleaved in rounds (local, Ray, Ray
without the driver's overlap, back to back) and the medians are compared: Ray's overhead is
median Ray wall / median local wall - 1, with each round's own ratio kept beside it. Each Ray
run's summary splits its time: ``ray.init``, until the first actor batch is back, shutdown,
and how many products the driver staged while Ray started.
"""

from common import ROOT, save, show  # noqa: I001

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

from stager.pipeline import get_context


def product_folder(folder: Path, n: int) -> Path:
    """``n`` product photos: the catalog's products cycled, hard-linked under new names."""
    cat = get_context().catalog
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        p = cat.products[i % len(cat.products)]
        dest = folder / f"{i:05d}_{p.id}.png"
        try:
            os.link(cat.root / p.image, dest)
        except OSError:
            shutil.copy(cat.root / p.image, dest)
    return folder


MODES = ("local", "ray", "ray-no-overlap")


def run(products: Path, backend: str, mode: str, work: Path) -> dict:
    """One batch in a fresh output folder: wall s, products/hour, peak RSS (MB) of the process.
    ``mode``: local, ray (STAGER_RAY_OVERLAP=1: the driver stages while Ray starts) or
    ray-no-overlap (the default since these runs: actors only)."""
    ray = mode != "local"
    out = work / f"out_{backend}_{mode}_{len(list(products.iterdir()))}"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "STAGER_RAY_OVERLAP": "0" if mode == "ray-no-overlap" else "1"}
    args = ["batch", "--products", str(products), "--backend", backend, "--top-k", "8",
            "--out", str(out), "--quiet"]
    args += ["--ray"] if ray else [] if backend == "telea" else ["--threads", "1"]
    hwm = work / "hwm.txt"
    # The child reports its own VmHWM: ru_maxrss of a child counts the parent's pages it held
    # between fork and exec, so a large parent would inflate every figure.
    code = ("import atexit, runpy, sys\n"
            f"sys.argv = ['stager'] + {args!r}\n"
            "def hwm():\n"
            "    kb = [ln for ln in open('/proc/self/status')\n"
            "          if ln.startswith('VmHWM')][0].split()[1]\n"
            f"    open({str(hwm)!r}, 'w').write(kb)\n"
            "atexit.register(hwm)\n"
            "runpy.run_module('stager', run_name='__main__')\n")
    load = round(os.getloadavg()[0], 2)
    t0 = time.perf_counter()
    with open(work / "log.txt", "a") as log:
        status = subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=log,
                                stderr=log, env=env).returncode
    wall = time.perf_counter() - t0
    cmd = ["python", "-m", "stager", *args]
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: see {work / 'log.txt'}")
    summary = json.loads((out / "batch.json").read_text())["last_run"]
    n = summary["staged"] + summary["failed"]
    keys = ("ray_start_s", "ray_first_batch_s", "ray_shutdown_s", "driver_products",
            "ray_products", "ray_calls", "ray_workers", "ray_context_loads")
    return {"backend": backend, "mode": mode, "products": n,
            "failed": summary["failed"], "wall_s": round(wall, 2),
            "products_per_hour": round(n / wall * 3600, 1),
            "staging_s": summary["wall_s"], **{k: summary.get(k) for k in keys if ray},
            "peak_rss_mb": round(int(hwm.read_text()) / 1024, 1), "load_before": load}


def median(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def main(quick: bool = False, rounds: int | None = None) -> dict:
    get_context().retriever  # build the default catalog and its index outside the timings
    work = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    n, big = (24, None) if quick else (200, 2000)
    rounds = rounds or (1 if quick else 3)
    try:
        small = product_folder(work / f"products_{n}", n)
        runs = [run(small, "telea", m, work) for _ in range(rounds) for m in MODES]
        runs += [run(small, "edgeconnect", m, work) for m in MODES]  # one round: slower
        if big:
            runs.append(run(product_folder(work / f"products_{big}", big), "telea", "local",
                            work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    derived = {}
    for b in ("telea", "edgeconnect"):
        by = {m: [r for r in runs if (r["backend"], r["mode"], r["products"]) == (b, m, n)]
              for m in MODES}
        loc = median([r["wall_s"] for r in by["local"]])
        derived[f"{b}_local_products_per_hour"] = round(n / loc * 3600, 1)
        for m in ("ray", "ray-no-overlap"):
            key = "ray" if m == "ray" else "ray_no_overlap"
            wall = median([r["wall_s"] for r in by[m]])
            derived[f"{b}_{key}_products_per_hour"] = round(n / wall * 3600, 1)
            derived[f"{key}_overhead_{b}"] = round(wall / loc - 1, 3)
            derived[f"{key}_overhead_{b}_rounds"] = [
                round(r["wall_s"] / lr["wall_s"] - 1, 3) for r, lr in zip(by[m], by["local"])]
            for k in ("ray_start_s", "ray_first_batch_s", "ray_shutdown_s", "driver_products"):
                vals = [r[k] for r in by[m] if r.get(k) is not None]
                if vals:
                    derived[f"{key}_{b}_{k}"] = median(vals)
    if big:
        peak = {r["products"]: r["peak_rss_mb"] for r in runs
                if (r["backend"], r["mode"]) == ("telea", "local")}
        derived["rss_ratio_2000_vs_200"] = round(peak[big] / peak[n], 3)
    show([(f"{r['backend']} {r['mode']} x{r['products']} products/hour", r["products_per_hour"],
           f"wall {r['wall_s']} s, load {r['load_before']}") for r in runs]
         + [(k, v, "target <= 0.25" if "overhead" in k else "")
            for k, v in derived.items() if isinstance(v, float) and "per_hour" not in k])
    result = {"products": n, "big": big, "rounds": rounds, "runs": runs, **derived}
    save("batch", result)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None,
                    help="interleaved telea rounds at 200 products (default 3; quick 1)")
    a = ap.parse_args()
    main(a.quick, a.rounds)
