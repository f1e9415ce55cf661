"""One benchmark suite: ``python -m bench [--quick] [--only a,b] [--skip a,b]``.

Runs the benchmarks, then gathers every figure from ``bench/results/*.json`` into
``bench/results.json`` and ``bench/results.md``: each figure with its unit, the baseline it is a
ratio against (where it is one), its target, and the machine, date and commit of the run that
measured it (a benchmark left out keeps its last run's figures and stamps).

``--quick`` (under two minutes on two cores) runs retrieval at 100k vectors and a 24-product
batch, writing to ``bench/results/quick/`` and ``bench/results-quick.{json,md}``; its figures
are smoke checks, not the targets.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import common  # noqa: E402

ORDER = ("pipeline", "models", "fill", "parallax", "app", "audit", "vote_http", "retrieval",
         "batch")
QUICK = ("retrieval", "batch")


def run(name: str, quick: bool) -> None:
    mod = importlib.import_module(f"bench_{name}")
    if name == "retrieval":
        mod.main(100_000, 100, quick=True) if quick else mod.main()
    elif name == "batch":
        mod.main(quick=quick)
    else:
        mod.main()


def fig(figure: str, value, unit: str, baseline: str = "", ratio=None, target: str = "") -> dict:
    return {"figure": figure, "value": None if value is None else round(float(value), 3),
            "unit": unit, "baseline": baseline,
            "ratio": None if ratio is None else float(f"{ratio:.4g}"), "target": target}


def figures(name: str, d: dict) -> list[dict]:
    """The headline figures of one benchmark's JSON."""
    if name == "pipeline":
        out = [fig("stage one product with telea, median", d["stage_telea"]["median_ms"], "ms",
                   target="< 300"),
               fig("faiss top-32 over the catalog, median", d["faiss_search"]["median_ms"], "ms",
                   target="< 2"),
               fig("query: embed + search + rerank, median", d["query"]["median_ms"], "ms"),
               fig("GrabCut proposal, cached state", d["grabcut_cached"]["median_ms"], "ms",
                   "GrabCut with a fresh state", 1 / d["grabcut_ratio"])]
        sam = d.get("sam_vit_b") or {}
        if "ratio" in sam:
            out.append(fig("SAM vit_b decoder on a cached embedding", sam["cached_decoder_ms"],
                           "ms", "encoder + decoder", 1 / sam["ratio"]))
        return out
    if name == "models":
        out = [fig("EdgeConnect (edge + inpaint) at 256", d["edgeconnect_256"]["median_ms"], "ms",
                   target="< 150"),
               fig("pix2pix generator at 256", d["pix2pix_256"]["median_ms"], "ms", target="< 100")]
        return out + [fig(f"compact diffusion {k.split('_')[1]} px, 20 steps", v["median_ms"], "ms",
                          target="< 2000") for k, v in d.items() if k.startswith("diffusion")]
    if name == "app":
        return [fig("mask click, cached embedding (server)", d["click"]["median_ms"], "ms",
                    target="< 150"),
                fig("run -> all backends shown", d["run_all"]["median_ms"], "ms", target="< 3000"),
                fig("first page, empty data dir", d["first_page_fresh_s"], "s", target="< 60"),
                fig("first page, catalog on disk", d["first_page_warm_s"], "s",
                    "empty data dir", d["first_page_warm_s"] / d["first_page_fresh_s"])]
    if name == "audit":
        return [fig("vote latency p95, 32 concurrent auditors (SQLite)", d["vote_p95_ms"], "ms",
                    target="< 50"),
                fig("votes per second, 32 threads", d["votes_per_s"], "votes/s"),
                fig(f"report over {d['report_votes']} votes, 1000 bootstrap rounds", d["report_s"],
                    "s", target="< 10")]
    if name == "vote_http":
        rounds = d.get("rounds", 1)
        return [fig(f"vote through the server p95, {d['auditors']} concurrent auditors "
                    f"(next pair's images downloaded), {rounds} rounds pooled", d["p95_ms"], "ms",
                    target="<= 300"),
                fig("vote through the server p95, median of the rounds",
                    d.get("p95_median_of_rounds_ms", d["p95_ms"]), "ms", target="<= 300"),
                fig("vote through the server p50", d["p50_ms"], "ms"),
                fig(f"votes per second through the server, {d['auditors']} auditors",
                    d["votes_per_s"], "votes/s"),
                fig("server CPU per vote", d["server_cpu_ms_per_vote"], "ms")]
    if name == "fill":
        return [fig("EdgeConnect fill, 1024-px photo, 300-px product (native)",
                    d["edgeconnect_cap768"]["median_ms"], "ms", "Telea, same fill",
                    d["edgeconnect_over_telea"], "< 1000"),
                fig("EdgeConnect fill through a 128-px window", d["edgeconnect_cap128"]["median_ms"],
                    "ms", "native", d["edgeconnect_cap128"]["median_ms"]
                    / d["edgeconnect_cap768"]["median_ms"])]
    if name == "parallax":
        out = []
        for k in ("sway", "push"):
            if k in d:
                v = d[k]["frames_plus_mp4"]
                out.append(fig(f"parallax {k}: 3 s 24 fps 512x512, frames + MP4",
                               v["median_ms"] if isinstance(v, dict) else v, "ms",
                               target="< 5000"))
        return out
    if name == "retrieval":
        flat = d["indexes"][0]
        n = f"{d['n']:,} x {d['dim']}-d"
        out = [fig(f"Flat (exact) at {n}: query p50", flat["sweep"][0]["p50_ms"], "ms"),
               fig(f"Flat at {n}: memory", flat["memory_mb"], "MB")]
        for r in d["indexes"][1:]:
            c = r["chosen"]
            knob = f" nprobe={c['nprobe']}" if c["nprobe"] else ""
            name_ = f"{r['factory']}{knob} at {n}"
            out += [fig(f"{name_}: query p50", c["p50_ms"], "ms", "Flat query p50",
                        1 / c["speedup_vs_flat"], ">= 20x faster"),
                    fig(f"{name_}: query p95", c["p95_ms"], "ms"),
                    fig(f"{name_}: recall@10 vs exact", c["recall@10"], "", target=">= 0.95"),
                    fig(f"{name_}: memory (RSS growth)", r["memory_mb"], "MB", "Flat memory",
                        r["memory_mb"] / flat["memory_mb"], "<= 1024 MB"),
                    fig(f"{name_}: build (train on {r.get('train_size', d['train_size']):,} + add)",
                        r["build_s"], "s",
                        "Flat build", r["build_s"] / flat["build_s"]),
                    fig(f"{name_}: memory-mapped load", r["mmap_load_s"], "s")]
        return out
    if name == "batch":
        out, n = [], d["products"]
        rounds = d.get("rounds", 1)
        for b in ("telea", "edgeconnect"):
            if f"{b}_local_products_per_hour" not in d:
                continue
            k = rounds if b == "telea" else 1
            med = f"median of {k} interleaved runs" if k > 1 else "one run"
            loc = d[f"{b}_local_products_per_hour"]
            out.append(fig(f"batch {b}, local, {n} products ({med})", loc, "products/h"))
            for key, label in (("ray", "Ray with driver overlap"),
                               ("ray_no_overlap", "Ray (actors only, the default)")):
                if f"{b}_{key}_products_per_hour" not in d:
                    continue
                out.append(fig(f"batch {b}, {label}, {n} products ({med})",
                               d[f"{b}_{key}_products_per_hour"], "products/h",
                               f"local {b}", d[f"{b}_{key}_products_per_hour"] / loc))
                out.append(fig(f"{label} overhead (wall incl. start-up), {b}, {n} products",
                               d[f"{key}_overhead_{b}"], "", target="<= 0.25"))
                for part, what in (("ray_start_s", "ray.init"),
                                   ("ray_first_batch_s", "start until the first actor batch"),
                                   ("ray_shutdown_s", "ray.shutdown")):
                    if f"{key}_{b}_{part}" in d:
                        out.append(fig(f"{label}, {b}: {what}", d[f"{key}_{b}_{part}"], "s"))
        for r in d["runs"]:
            if r["products"] != n:
                out.append(fig(f"batch {r['backend']}, {r['mode']}, {r['products']} products",
                               r["products_per_hour"], "products/h"))
        if "rss_ratio_2000_vs_200" in d:
            peak = {r["products"]: r["peak_rss_mb"] for r in d["runs"]
                    if r["backend"] == "telea" and r["mode"] == "local"}
            out.append(fig(f"peak RSS, {d['big']} products, telea local", peak[d["big"]], "MB",
                           f"peak RSS at {d['products']} products", d["rss_ratio_2000_vs_200"],
                           "<= 1.10x"))
        return out
    return []


NOTES = {
    "retrieval": "Synthetic vectors (`stager.index.clustered_vectors`: a 1000-centre mixture in a "
                 "48-d latent space mapped to 512-d, plus noise): they cluster as embeddings do, "
                 "which makes IVF easy (recall is flat in nprobe); real embeddings may need a "
                 "larger nprobe. Memory is the process's RSS growth while building; the "
                 "memory-mapped load keeps only touched pages resident. HNSW is measured only up "
                 "to 200k vectors (a 1M build takes too long on two cores, and HNSW32 with flat "
                 "codes exceeds 1 GB).",
    "batch": "Each run is `python -m stager batch` in a fresh process (wall time includes start-up"
             "); products are the default catalog's 60 photos cycled under new names; local "
             "EdgeConnect uses one torch thread; Ray runs a local Ray, 2 actors x 0.5 CPU, "
             "batches of 4 products; *with driver overlap* (STAGER_RAY_OVERLAP=1) the driver "
             "stages products while Ray starts, *actors only* (the default) leaves all the work "
             "to the actors. At 200 products telea "
             "runs in interleaved rounds (local, Ray, Ray without overlap) and the medians are "
             "compared; every run's figures are in `bench/results/batch.json`.",
    "vote_http": "A real `python app.py` on a free port and a campaign from `python -m stager "
                 "audit create`; 16 auditor threads vote with no pause between votes (a "
                 "saturation test: real auditors look at each pair first), each vote one POST "
                 "as the page sends it plus the next pair's two images downloaded. Clients "
                 "and server share the cores, and the server is one Python process (bound to "
                 "one core by the GIL: latency is 16 / throughput, and throughput is 1 / server "
                 "CPU per vote). Three runs of the same vote path on 2026-11-27: p95 345 ms at "
                 "15:44 with 16.8 ms of server CPU per vote, then 166 ms at 16:48 and 177 ms at "
                 "17:58 with 10.1 and 10.0 ms: the host ran the same code 1.7x slower at 15:44, "
                 "so compare server CPU per vote before reading p95 as a code change. A py-spy "
                 "profile puts the project's own handler (database and next pair) at about a "
                 "tenth of that CPU; the rest is Gradio's event processing, its file route and "
                 "uvicorn.",
    "models": "Torch timings suffer most from other users' load: two torch threads on two busy "
              "cores wait on each other. The 2026-11-27 suite run of pipeline, models, app and "
              "audit met a load average of 4 to 5.6 (read with uptime; the stamp did not record "
              "load yet): the earlier run on a quiet machine measured EdgeConnect at 66 ms, "
              "pix2pix at 5.4 ms (bench/results/models.json at commit 707266b).",
}


def gather(results: Path) -> list[dict]:
    rows = []
    for name in ORDER:
        path = results / f"{name}.json"
        if not path.is_file():
            continue
        d = json.loads(path.read_text())
        m = d.get("machine", {})
        stamp = {"bench": name,
                 "machine": f"{m.get('cpu', m.get('machine', '?'))}, {m.get('cpus', '?')} cores",
                 "load": m.get("loadavg_1min"),
                 "date": d.get("date", "before the suite (unstamped)"),
                 "commit": d.get("commit", "unknown")}
        rows += [{**stamp, **f} for f in figures(name, d)]
    return rows


def markdown(rows: list[dict], quick: bool) -> str:
    lines = ["# Benchmark results" + (" (quick: smoke sizes, not the targets)" if quick else ""),
             "", "Written by `python -m bench`. *vs baseline* compares a figure with the baseline "
             "named beside it (`ratio` = value / baseline value in `results.json`).", ""]
    machines = sorted({r["machine"] for r in rows})
    lines += [f"Machine{'s' if len(machines) > 1 else ''}: " + "; ".join(machines), ""]
    loads = {r["bench"]: r["load"] for r in rows if r.get("load") is not None}
    if loads:
        lines += ["Load average (1 min) when each benchmark finished, other users included: "
                  + ", ".join(f"{k} {v}" for k, v in loads.items())
                  + ". Above the core count, timings are inflated.", ""]
    lines += ["| bench | figure | value | unit | baseline | vs baseline | target | date | commit |",
              "|---|---|---:|---|---|---:|---|---|---|"]
    for r in rows:
        v = "" if r["value"] is None else f"{r['value']:,.3g}" if abs(r["value"]) < 1000 \
            else f"{r['value']:,.0f}"
        ratio = _versus(r["ratio"], r["unit"])
        lines.append(f"| {r['bench']} | {r['figure']} | {v} | {r['unit']} | {r['baseline']} | "
                     f"{ratio} | {r['target']} | {r['date'][:16]} | {r['commit']} |")
    present = [b for b in ORDER if b in NOTES and any(r["bench"] == b for r in rows)]
    if present:
        lines += ["", "Notes:", ""] + [f"- **{b}**: {NOTES[b]}" for b in present]
    return "\n".join(lines) + "\n"


def _versus(ratio: float | None, unit: str) -> str:
    if ratio is None:
        return ""
    if unit in ("ms", "s") and ratio > 0:
        x, word = (1 / ratio, "faster") if ratio < 1 else (ratio, "slower")
        return f"{x:,.0f}x {word}" if x >= 100 else f"{x:.3g}x {word}"
    return f"{ratio:.3g}x"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke sizes, under two minutes")
    ap.add_argument("--only", default="", help=f"comma list of {', '.join(ORDER)}")
    ap.add_argument("--skip", default="", help="comma list to leave out (keeps last figures)")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing; rewrite the tables from bench/results/*.json")
    a = ap.parse_args(argv)
    names = [n for n in (a.only.split(",") if a.only else (QUICK if a.quick else ORDER)) if n]
    bad = [n for n in names + a.skip.split(",") if n and n not in ORDER]
    if bad:
        print(f"error: unknown benchmark {bad[0]!r}; choose from {', '.join(ORDER)}",
              file=sys.stderr)
        return 2
    if a.quick:
        common.RESULTS = BENCH / "results" / "quick"
    for name in [] if a.report_only else names:
        if name in a.skip.split(","):
            continue
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        run(name, a.quick)
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = gather(common.RESULTS)
    stem = "results-quick" if a.quick else "results"
    (BENCH / f"{stem}.json").write_text(json.dumps({"figures": rows}, indent=1))
    (BENCH / f"{stem}.md").write_text(markdown(rows, a.quick))
    print(f"{len(rows)} figures -> bench/{stem}.json, bench/{stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
