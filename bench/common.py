"""Timing helpers for the benchmarks (never used by tests)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def timeit(fn, repeat: int = 20, warmup: int = 2) -> dict:
    """Median / p95 / mean in milliseconds of ``fn()``."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    return {"median_ms": statistics.median(ts), "p95_ms": ts[min(len(ts) - 1, int(0.95 * len(ts)))],
            "mean_ms": statistics.fmean(ts), "n": repeat}


def run_threads(target, n: int) -> float:
    """Run ``target(k)`` for k in 0..n-1 in ``n`` threads at once; the wall seconds."""
    threads = [threading.Thread(target=target, args=(k,)) for k in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    import numpy

    info = {"python": platform.python_version(), "cpus": os.cpu_count(), "numpy": numpy.__version__,
            "machine": platform.machine(), "cpu": _cpu_model(), "node": platform.node(),
            "loadavg_1min": round(os.getloadavg()[0], 2)}  # other users' load skews timings
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


RESULTS = ROOT / "bench" / "results"  # `python -m bench --quick` points this elsewhere


def commit() -> str:
    """The checked-out commit, with ``-dirty`` when tracked files differ from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout
    sha = git("rev-parse", "--short=10", "HEAD").strip() or "unknown"
    return sha + ("-dirty" if git("status", "--porcelain", "--untracked-files=no").strip() else "")


_STARTED_AT: str | None = None  # the commit when the first benchmark started


def save(name: str, result: dict) -> Path:
    """Write ``<RESULTS>/<name>.json`` stamped with the machine, the date and the commit the
    process started on (edits made while a long benchmark runs do not change it)."""
    import datetime as dt

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    now = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    stamp = {"machine": machine(), "date": now, "commit": _STARTED_AT or commit()}
    path.write_text(json.dumps({**stamp, **result}, indent=1))
    return path


def show(rows: list[tuple[str, float, str]]) -> None:
    for label, value, target in rows:
        print(f"{label:55s} {value:10.2f}   {target}")


_STARTED_AT = commit()
