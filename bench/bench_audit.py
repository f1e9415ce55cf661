"""Issue 5 benchmarks: vote latency under 32 concurrent auditors on SQLite, and a report over
10,000 votes with 1,000 bootstrap rounds.

    python bench/bench_audit.py
"""

from common import run_threads, save, show  # noqa: I001

import datetime as dt
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from db.campaign import plan
from db.report import campaign_report
from db.simulate import SimAuditor, run as simulate
from db.store import Store


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    store = Store(f"sqlite:///{tmp / 'bench.sqlite'}")
    systems = ("gt", "ec", "p2p")
    ids = {(k, s): store.add_item(f"p{k}", f"s{k}", s, f"/x/{s}{k}.png", f"{s}-{k}")
           for k in range(120) for s in systems}
    tasks = [{"name": f"{a} vs {b}", "a": a, "b": b} for a, b in (("p2p", "gt"), ("ec", "gt"), ("ec", "p2p"))]
    items = [(t["name"], ids[(k, t["a"])], ids[(k, t["b"])]) for t in tasks for k in range(100)]
    cid = store.create_campaign("bench", tasks, plan(items, [], 0.1, 0))
    with store.session() as s:
        from sqlalchemy import select

        from db.schema import Comparison

        pids = [c.public_id for c in s.scalars(select(Comparison).where(Comparison.campaign_id == cid))]
    lat: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(32)

    def voter(k):
        barrier.wait()
        mine = []
        for pid in pids[:40]:
            t0 = time.perf_counter()
            store.record_vote(pid, f"a{k}", "left", dt.datetime(2026, 1, 1))
            mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            lat.extend(mine)

    wall = run_threads(voter, 32)
    lat.sort()
    p95 = lat[int(0.95 * len(lat))]
    # a campaign with ~10,000 votes for the report
    store2 = Store(f"sqlite:///{tmp / 'report.sqlite'}")
    ids2 = {(k, s): store2.add_item(f"p{k}", f"s{k}", s, f"/x/{s}{k}.png", f"{s}-{k}")
            for k in range(300) for s in systems}
    items2 = [(t["name"], ids2[(k, t["a"])], ids2[(k, t["b"])]) for t in tasks for k in range(300)]
    cid2 = store2.create_campaign("big", tasks, plan(items2, [], 0.1, 0))
    auds = [SimAuditor(f"s{i}", noise=0.05) for i in range(10)]
    n_votes = simulate(store2, cid2, auds, {"gt": 2.0, "ec": 0.3, "p2p": -1.2}, seed=0)
    t0 = time.perf_counter()
    rep = campaign_report(store2, cid2, rounds=1000)
    report_s = time.perf_counter() - t0
    show([("vote latency p95 under 32 concurrent auditors, SQLite (ms)", p95, "target < 50"),
          ("vote latency median (ms)", float(np.median(lat)), ""),
          ("votes per second (32 threads)", len(lat) / wall, ""),
          (f"report over {n_votes} votes, 1000 bootstrap rounds (s)", report_s, "target < 10")])
    save("audit", {"vote_p95_ms": p95, "vote_median_ms": float(np.median(lat)), "votes": len(lat),
                   "votes_per_s": len(lat) / wall, "report_votes": n_votes, "report_s": report_s,
                   "bt": rep["bradley_terry"]})


if __name__ == "__main__":
    main()
