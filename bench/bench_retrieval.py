"""Retrieval at scale: exact (Flat) against approximate faiss indexes over synthetic 512-d unit
vectors (``stager.index.clustered_vectors``), in one run: build time, memory, single-query
latency p50/p95 and recall@10 against the exact top-10, then the memory-mapped load.

    python bench/bench_retrieval.py [--n 1000000]

Vectors are generated and added in chunks so that only the index itself stays in memory.
"""

from common import save, show  # noqa: I001

import argparse
import gc
import os
import resource
import tempfile
import time

import faiss
import numpy as np

from stager.index import VectorIndex, clustered_vectors, recall_at_k

DIM, K, CHUNK = 512, 10, 100_000
NPROBES = (4, 8, 16, 32, 64)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def chunks(n: int):
    for i, start in enumerate(range(0, n, CHUNK)):
        yield clustered_vectors(min(CHUNK, n - start), DIM, seed=1000 + i)


def fill(index: VectorIndex, n: int) -> None:
    for i, x in enumerate(chunks(n)):
        index.add(x, [str(i * CHUNK + j) for j in range(len(x))])


def latencies(index: VectorIndex, queries: np.ndarray, timed: int = 100) -> tuple[dict, np.ndarray]:
    """Single-query latency (ms) over the first ``timed`` queries, and every query's top-K row
    numbers (from one batched search: the same answers, without timing a slow scan 200 times)."""
    index.search_batch(queries[:3], K)  # warm-up
    ts = []
    for q in queries[:timed]:
        t0 = time.perf_counter()
        index.search_batch(q[None], K)
        ts.append((time.perf_counter() - t0) * 1000)
    return ({"p50_ms": float(np.percentile(ts, 50)), "p95_ms": float(np.percentile(ts, 95))},
            index.search_batch(queries, K)[1])


def measure(factory: str, n: int, queries: np.ndarray, truth: np.ndarray | None,
            train_size: int) -> dict:
    """Build ``factory`` over ``n`` vectors and measure it; ``truth=None`` marks the exact run,
    whose answers become the truth of the others."""
    gc.collect()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    index = VectorIndex.empty(DIM, factory)
    if not index.index.is_trained:
        index.train(clustered_vectors(train_size, DIM, seed=7), train_size)
    train_s = time.perf_counter() - t0
    fill(index, n)
    build_s = time.perf_counter() - t0
    gc.collect()
    out = {"factory": factory, "n": n, "train_size": min(n, train_size),
           "train_s": round(train_s, 2), "build_s": round(build_s, 2),
           "memory_mb": round(rss_mb() - rss0, 1)}
    with tempfile.TemporaryDirectory() as d:
        index.save(d)
        out["file_mb"] = round(os.path.getsize(os.path.join(d, "index.faiss")) / 2**20, 1)
        sweep, found = [], {}
        for nprobe in (NPROBES if "IVF" in factory else (None,)):
            index.set_search_params(nprobe=nprobe, ef_search=64)
            lat, rows = latencies(index, queries)
            rec = recall_at_k(rows, truth) if truth is not None else 1.0
            sweep.append({"nprobe": nprobe, **lat, f"recall@{K}": round(rec, 4)})
            found[nprobe] = rows
        out["sweep"] = sweep
        if truth is None:
            out["truth"] = rows
        del index
        gc.collect()
        rss1 = rss_mb()
        t0 = time.perf_counter()
        mapped = VectorIndex.load(d, mmap=True)
        out["mmap_load_s"] = round(time.perf_counter() - t0, 3)
        out["mmap_resident_mb"] = round(rss_mb() - rss1, 1)
        out["mmapped"] = mapped.mmapped
        best = next((s for s in sweep if s[f"recall@{K}"] >= 0.95), sweep[-1])
        mapped.set_search_params(nprobe=best["nprobe"], ef_search=64)
        lat, rows = latencies(mapped, queries)
        out["mmap_p50_ms"] = lat["p50_ms"]
        out["mmap_same_results"] = bool(np.array_equal(rows, found[best["nprobe"]]))
        del mapped
    gc.collect()
    return out


def main(n: int = 1_000_000, nq: int = 200, quick: bool = False) -> dict:
    """Flat, IVF-SQ8, IVF-PQ (not in quick runs: PQ training takes minutes on two cores) and,
    up to 200k vectors, HNSW32 (its build at 1M takes too long on two cores and its graph plus
    flat codes exceed 1 GB)."""
    queries = clustered_vectors(nq, DIM, seed=99)
    nlist = 1024 if n >= 500_000 else 256
    factories = (f"IVF{nlist},SQ8",) if quick else (f"IVF{nlist},SQ8", f"IVF{nlist},PQ64")
    train = min(n, 50_000)
    exact = measure("Flat", n, queries, None, train)
    truth = exact.pop("truth")
    results = {"n": n, "dim": DIM, "queries": nq, "k": K, "train_size": train,
               "data": "clustered_vectors: 1000-centre mixture in 48-d, mapped to 512-d + noise",
               "faiss_threads": faiss.omp_get_max_threads(),
               "indexes": [exact]}
    flat_p50 = exact["sweep"][0]["p50_ms"]
    for f in factories:
        results["indexes"].append(measure(f, n, queries, truth, train if "SQ" in f else 20_000))
    if n <= 200_000:
        results["indexes"].append(measure("HNSW32", n, queries, truth, train))
    rows = []
    for r in results["indexes"]:
        best = next((s for s in r["sweep"] if s[f"recall@{K}"] >= 0.95), r["sweep"][-1])
        r["chosen"] = {**best, "speedup_vs_flat": round(flat_p50 / best["p50_ms"], 1)}
        rows.append((f"{r['factory']} nprobe={best['nprobe']}: p50 ms / recall / x flat / MB",
                     best["p50_ms"], f"recall {best[f'recall@{K}']:.3f}, "
                     f"{r['chosen']['speedup_vs_flat']}x, {r['memory_mb']} MB, "
                     f"build {r['build_s']} s"))
    results["peak_rss_mb"] = round(peak_mb(), 1)
    show(rows)
    save("retrieval", results)
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    main(a.n, a.queries, a.quick)
