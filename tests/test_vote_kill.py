"""Fault tolerance: a server process killed with SIGKILL in the middle of 16 auditors' votes
loses no vote it acknowledged, and leaves an intact SQLite database.

The server is ``tests/vote_server.py`` (the app's /next_pair and /vote endpoints and launch
settings, without the catalog); the auditors vote as the page does, one POST per vote."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
AUDITORS = 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(env: dict, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "vote_server.py")], cwd=ROOT,
                            env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['STAGER_APP_PORT']}/"
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 90:
        assert proc.poll() is None, f"the vote server exited: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"the vote server did not start: {log.read_text()[-2000:]}")


def _post(url: str, api: str, data: list, session: str) -> list:
    body = json.dumps({"data": data, "session_hash": session}).encode()
    req = urllib.request.Request(f"{url}gradio_api/run/{api}", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["data"]


def test_killed_server_keeps_every_acknowledged_vote(tmp_path, monkeypatch):
    from db.campaign import plan, store_image
    from db.store import Store

    t_start = time.perf_counter()
    db = tmp_path / "audit.sqlite"
    env = {**os.environ, "STAGER_DATA_DIR": str(tmp_path), "STAGER_DB_URL": f"sqlite:///{db}",
           "STAGER_APP_PORT": str(_free_port()), "GRADIO_ANALYTICS_ENABLED": "False"}
    for k in ("STAGER_APP_AUTH", "SPACE_ID", "STAGER_SPACE_ID"):
        env.pop(k, None)
    # a campaign of 40 comparisons in the server's database, its images in the server's
    # data dir (store_image reads the settings)
    from stager.config import reset_settings

    monkeypatch.setenv("STAGER_DATA_DIR", env["STAGER_DATA_DIR"])
    monkeypatch.setenv("STAGER_DB_URL", env["STAGER_DB_URL"])
    reset_settings()
    try:
        store = Store(env["STAGER_DB_URL"])
        rng = np.random.default_rng(0)
        ids = [store_image(store, rng.integers(0, 255, (48, 48, 3), dtype=np.uint8), "p",
                           f"k{k}", s) for k in range(40) for s in ("ka", "kb")]
        cid = store.create_campaign("kill", [{"name": "ka vs kb", "a": "ka", "b": "kb"}],
                                    plan([("ka vs kb", ids[2 * k], ids[2 * k + 1])
                                          for k in range(40)], [], 0, 0))
        store.engine.dispose()
    finally:
        monkeypatch.undo()
        reset_settings()

    log = tmp_path / "server.log"
    url = f"http://127.0.0.1:{env['STAGER_APP_PORT']}/"
    acked: list[tuple[str, str, str]] = []  # (auditor, comparison, outcome) the server saved
    in_flight_at_kill: list[int] = []
    lock = threading.Lock()

    def auditor(k: int, rounds: int | None) -> None:
        name, session = f"kill-{k}", f"kill-session-{k}"
        try:
            info = _post(url, "next_pair", [str(cid), name], session)[0]
        except (urllib.error.URLError, ConnectionError, OSError):
            return
        n = 0
        outcomes = ("left", "right", "tie", "both_bad")
        while info["comparison"] and (rounds is None or n < rounds):
            outcome = outcomes[(k + n) % 4]
            try:
                out = _post(url, "vote", [str(cid), name, info["comparison"], outcome, ""],
                            session)[0]
            except (urllib.error.URLError, ConnectionError, OSError):
                with lock:
                    in_flight_at_kill.append(k)  # no answer: it may or may not be stored
                return
            if out["saved"]:
                with lock:
                    acked.append((name, info["comparison"], outcome))
            info, n = out, n + 1

    server = _start(env, log)
    try:
        threads = [threading.Thread(target=auditor, args=(k, None)) for k in range(AUDITORS)]
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        while len(acked) < 150 and time.perf_counter() - t0 < 60:
            time.sleep(0.01)
        os.kill(server.pid, signal.SIGKILL)  # mid-way: 16 auditors are voting
        server.wait(30)
        for t in threads:
            t.join(60)
        n_before = len(acked)
        assert 150 <= n_before < AUDITORS * 40, n_before  # killed in the middle, not at the end
        # restart on the same data: voting goes on, retries of acknowledged votes change nothing
        server = _start(env, log)
        threads = [threading.Thread(target=auditor, args=(k, 3)) for k in range(AUDITORS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        name, comparison, _ = acked[0]
        retry = _post(url, "vote", [str(cid), name, comparison, "tie", ""], "retry")[0]
        assert retry["saved"] is False
    finally:
        server.kill()
        server.wait(30)

    import sqlite3

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    stored = set(con.execute("SELECT a.name, c.public_id, v.outcome FROM votes v "
                             "JOIN auditors a ON a.id = v.auditor_id "
                             "JOIN comparisons c ON c.id = v.comparison_id").fetchall())
    pairs = con.execute("SELECT count(*), count(DISTINCT comparison_id || '-' || auditor_id) "
                        "FROM votes").fetchone()
    con.close()
    missing = [a for a in acked if a not in stored]
    assert not missing, f"{len(missing)} acknowledged votes lost, e.g. {missing[:3]}"
    # nothing but acknowledged votes, plus at most the ones whose answer the kill cut off
    assert len(acked) <= len(stored) <= len(acked) + len(in_flight_at_kill)
    assert pairs[0] == pairs[1]  # one vote per auditor and comparison
    elapsed = time.perf_counter() - t_start
    print(f"\nkill -9: {n_before} votes acknowledged before the kill, {len(acked)} in all, "
          f"{len(stored)} stored, {len(in_flight_at_kill)} unanswered at the kill, "
          f"{elapsed:.1f} s")
