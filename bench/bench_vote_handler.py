"""Issue 10 benchmark (partial): one vote as the app's handler does it (record the vote, pick
the next pair, hand out the two display copies from the public folder) under 16 concurrent
auditors on SQLite. It measures the handler only; ``bench_vote_http.py`` measures votes end
to end through a real server, which the issue's 300 ms p95 target is about.

    python bench/bench_vote_handler.py
"""

from common import run_threads, save, show  # noqa: I001

import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

AUDITORS, VOTES = 16, 20


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    os.environ["STAGER_DATA_DIR"] = str(tmp)
    os.environ["STAGER_DB_URL"] = f"sqlite:///{tmp / 'audit.sqlite'}"
    from components import audit
    from db.campaign import plan, store_image
    from db.store import get_store
    from stager.config import get_settings

    store = get_store(get_settings().db_url)
    rng = np.random.default_rng(0)
    ids = [store_image(store, rng.integers(0, 255, (512, 512, 3), dtype=np.uint8), "p", f"s{k}",
                       sys_) for k in range(VOTES + 5) for sys_ in ("a", "b")]
    task = "a vs b"
    cid = store.create_campaign("bench", [{"name": task, "a": "a", "b": "b"}],
                                plan([(task, ids[2 * k], ids[2 * k + 1]) for k in range(VOTES + 5)],
                                     [], 0, 0))
    label = f"{cid}: bench"
    lat, first, lock = [], [], threading.Lock()
    barrier = threading.Barrier(AUDITORS)

    def auditor(k):
        name = f"aud{k}"
        cur = audit.next_item(label, name, {})[1]
        barrier.wait()
        mine = []
        for _ in range(VOTES):
            t0 = time.perf_counter()
            out = audit.vote("left")(label, name, cur, "")
            mine.append((time.perf_counter() - t0) * 1000)
            cur = out[1]
        with lock:
            lat.extend(mine[1:])
            first.append(mine[0])

    wall = run_threads(auditor, AUDITORS)
    lat.sort()
    res = {"auditors": AUDITORS, "votes": AUDITORS * VOTES, "wall_s": round(wall, 2),
           "votes_per_s": round(AUDITORS * VOTES / wall, 1),
           "p50_ms": round(lat[len(lat) // 2], 1), "p95_ms": round(lat[int(0.95 * len(lat))], 1),
           "votes_stored": len(store.votes(cid)),
           "note": "handler only (vote + next pair + display copies), no HTTP"}
    save("vote_handler", res)
    show([("vote handler p50", res["p50_ms"], "ms"), ("vote handler p95", res["p95_ms"], "ms"),
          ("throughput", res["votes_per_s"], "votes/s")])


if __name__ == "__main__":
    main()
