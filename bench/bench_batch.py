"""Batch staging throughput and memory: ``python -m stager batch`` as a subprocess, so that each
run's wall time includes start-up (and Ray's) and its peak RSS is its own.

    python bench/bench_batch.py [--quick]

Products are the default catalog's 60 product photos, cycled under distinct file names up to
the count a run needs; scenes are the default catalog's. Local runs use one torch thread (on a
shared two-core machine two threads made EdgeConnect 30x slower: 1.46 s against 46 ms per
product, from OpenMP threads waiting on busy cores); Ray runs use a local Ray with the settings'
actor pool (2 actors x 0.5 CPU, one torch thread each). A Ray run's peak RSS is the driver's.
"""

from common import ROOT, save, show  # noqa: I001

import argparse
import json
import os
import shutil
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


def run(products: Path, backend: str, ray: bool, work: Path) -> dict:
    """One batch in a fresh output folder: wall s, products/hour, peak RSS (MB) of the process."""
    out = work / f"out_{backend}_{'ray' if ray else 'local'}_{len(list(products.iterdir()))}"
    shutil.rmtree(out, ignore_errors=True)
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
    t0 = time.perf_counter()
    with open(work / "log.txt", "a") as log:
        status = subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=log,
                                stderr=log).returncode
    wall = time.perf_counter() - t0
    cmd = ["python", "-m", "stager", *args]
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: see {work / 'log.txt'}")
    summary = json.loads((out / "batch.json").read_text())["last_run"]
    n = summary["staged"] + summary["failed"]
    return {"backend": backend, "mode": "ray" if ray else "local", "products": n,
            "failed": summary["failed"], "wall_s": round(wall, 2),
            "products_per_hour": round(n / wall * 3600, 1),
            "staging_s": summary["wall_s"], "ray_start_s": summary.get("ray_start_s"),
            "peak_rss_mb": round(int(hwm.read_text()) / 1024, 1)}


def main(quick: bool = False) -> dict:
    get_context().retriever  # build the default catalog and its index outside the timings
    work = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    n, big = (24, None) if quick else (200, 2000)
    try:
        small = product_folder(work / f"products_{n}", n)
        runs = [run(small, b, ray, work) for b in ("telea", "edgeconnect") for ray in (False, True)]
        if big:
            runs.append(run(product_folder(work / f"products_{big}", big), "telea", False, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    by = {(r["backend"], r["mode"], r["products"]): r for r in runs}
    derived = {}
    for b in ("telea", "edgeconnect"):
        loc, ray = by[(b, "local", n)], by[(b, "ray", n)]
        derived[f"ray_overhead_{b}"] = round(ray["wall_s"] / loc["wall_s"] - 1, 3)
        derived[f"ray_overhead_{b}_after_start"] = round(
            (ray["staging_s"] - ray["ray_start_s"]) / loc["staging_s"] - 1, 3)
    if big:
        peak = {k[2]: r["peak_rss_mb"] for k, r in by.items() if k[:2] == ("telea", "local")}
        derived["rss_ratio_2000_vs_200"] = round(peak[big] / peak[n], 3)
    show([(f"{r['backend']} {r['mode']} x{r['products']} products/hour", r["products_per_hour"],
           f"wall {r['wall_s']} s, peak RSS {r['peak_rss_mb']} MB") for r in runs]
         + [(k, v, "target <= 0.25" if "overhead" in k else "target <= 1.10")
            for k, v in derived.items()])
    result = {"products": n, "big": big, "runs": runs, **derived}
    save("batch", result)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    main(ap.parse_args().quick)
