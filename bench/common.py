"""Timing helpers for the benchmarks (never used by tests)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
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


def machine() -> dict:
    import numpy

    info = {"python": platform.python_version(), "cpus": os.cpu_count(), "numpy": numpy.__version__,
            "machine": platform.machine()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def save(name: str, result: dict) -> Path:
    path = ROOT / "bench" / "results" / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=1))
    return path


def show(rows: list[tuple[str, float, str]]) -> None:
    for label, value, target in rows:
        print(f"{label:55s} {value:10.2f}   {target}")
