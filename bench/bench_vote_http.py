"""Issue 10 benchmark: votes end to end through the server. A real ``python app.py`` process
(temp data dir, free port) serves a campaign made by ``python -m stager audit create``; 16
auditor threads, each a ``gradio_client.Client``, vote through ``/vote`` and receive the next
pair, downloading its two images as a browser would. A vote's latency runs from the request
to the second image on the client's disk. Clients and server share the machine's cores.

    python bench/bench_vote_http.py [--auditors 16] [--samples 8] [--data DIR]

``--data`` reuses a data dir (its catalog and the campaign ``bench-http-<samples>``) between
runs.
"""

from common import save, show  # noqa: I001

import argparse
import os
import random
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = "bench-http-16"  # the campaign's name says its samples (reused with --data)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 600) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def quiet(pid: int, limit: float = 180) -> None:
    """Wait until the server has used under 5% of a core for two seconds (it warms its models
    in the background after the first page is served)."""
    t0, last = time.perf_counter(), cpu_s(pid)
    while time.perf_counter() - t0 < limit:
        time.sleep(2)
        now = cpu_s(pid)
        if now - last < 0.1:
            return
        last = now


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main(auditors: int = 16, samples: int = 16, data: str | None = None,
         client: str = "http", profile: str | None = None, rounds: int = 3) -> dict:
    from gradio_client import Client

    global CAMPAIGN
    CAMPAIGN = f"bench-http-{samples}"
    tmp = Path(data) if data else Path(tempfile.mkdtemp(prefix="vote-http-"))
    env = {**os.environ, "STAGER_DATA_DIR": str(tmp), "GRADIO_ANALYTICS_ENABLED": "False",
           "STAGER_DB_URL": f"sqlite:///{tmp / 'audit.sqlite'}"}
    env.pop("STAGER_APP_AUTH", None)
    # the campaign, made with the project's own command line (builds the catalog if needed)
    t0 = time.perf_counter()
    made = subprocess.run([sys.executable, "-m", "stager", "audit", "create", "--name", CAMPAIGN,
                           "--samples", str(samples)], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)
    if made.returncode and "already exists" not in made.stderr:
        raise RuntimeError(f"audit create failed: {made.stderr.strip()[-500:]}")
    setup_s = time.perf_counter() - t0
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(tmp / "server.log", "w")
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT,
                              env={**env, "STAGER_APP_PORT": str(port)}, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        start_s = wait_ready(url, server)
        quiet(server.pid)  # the background model warm-up is done
        spy = None
        if profile:  # py-spy's collapsed stacks of the server while the auditors vote
            spy = subprocess.Popen(["py-spy", "record", "--format", "raw", "--rate", "200",
                                    "-o", profile, "-p", str(server.pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(2)
        runs = [_drive(Client, url, auditors, tmp, server.pid, client, f"{int(time.time())}r{r}")
                for r in range(rounds)]
        if spy:
            spy.send_signal(2)
            spy.wait(60)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    from sqlalchemy import create_engine, text

    eng = create_engine(env["STAGER_DB_URL"])
    with eng.connect() as c:
        stored = sum(c.execute(text("SELECT count(*) FROM votes v JOIN auditors a ON "
                                    "v.auditor_id = a.id WHERE a.name LIKE :p"),
                               {"p": f"bench-{r['run_tag']}-%"}).scalar() for r in runs)
    eng.dispose()
    lat = [x for r in runs for x in r.pop("lat")]
    wall = sum(r["wall_s"] for r in runs)
    res = {"client": client, "auditors": auditors, "rounds": rounds, "votes": len(lat),
           "acknowledged": sum(r["acknowledged"] for r in runs),
           "votes_per_s": round(len(lat) / wall, 1),
           "p50_ms": round(pct(lat, 0.5), 1), "p95_ms": round(pct(lat, 0.95), 1),
           "max_ms": round(max(lat), 1),
           "p95_median_of_rounds_ms": sorted(r["p95_ms"] for r in runs)[len(runs) // 2],
           "server_cpu_ms_per_vote": round(sum(r["server_cpu_ms_per_vote"] * r["votes"]
                                               for r in runs) / len(lat), 1),
           "clients_cpu_ms_per_vote": round(sum(r["clients_cpu_ms_per_vote"] * r["votes"]
                                                for r in runs) / len(lat), 1),
           "bytes_per_vote": runs[0]["bytes_per_vote"],
           "errors": [e for r in runs for e in r["errors"]][:5],
           "per_round": [{k: r[k] for k in ("p50_ms", "p95_ms", "votes_per_s",
                                            "server_cpu_ms_per_vote", "loadavg_1min_after")}
                         for r in runs]}
    res.update(setup_s=round(setup_s, 1), server_start_s=round(start_s, 1),
               votes_stored=int(stored), samples=samples,
               note="end to end: one /vote request as the page sends it (or gradio_client's "
                    "queue protocol with --client gradio_client) and both images of the next "
                    "pair downloaded; clients and server on the same cores")
    if not data:
        shutil.rmtree(tmp, ignore_errors=True)
    save("vote_http" if client == "http" else f"vote_http_{client}", res)
    show([("HTTP vote p50, next pair's images downloaded", res["p50_ms"], "ms"),
          (f"HTTP vote p95, {auditors} concurrent auditors, {rounds} rounds pooled",
           res["p95_ms"], "ms, target <= 300"),
          ("HTTP vote p95, median of the rounds", res["p95_median_of_rounds_ms"], "ms"),
          ("throughput", res["votes_per_s"], "votes/s"),
          ("image bytes per vote (two display copies)", res["bytes_per_vote"], "B")])
    return res


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) of a process, or of this one."""
    if pid is None:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class HttpAuditor:
    """A light client, as a browser tab votes: one ``POST /gradio_api/run/<name>`` (the voting
    events skip the queue) with the page's session, then the two images fetched from their
    URLs, over one kept-alive connection. (``gradio_client`` costs ~4x the server's CPU per
    call; on a shared two-core machine it would measure itself.)"""

    def __init__(self, url: str):
        import httpx

        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=120)
        self.session = secrets.token_hex(8)  # one page session, as a browser tab keeps

    def predict(self, *data, api_name: str):
        r = self.http.post(f"{self.url}/gradio_api/run{api_name}",
                           json={"data": list(data), "session_hash": self.session})
        if r.status_code != 200:
            raise RuntimeError(f"{api_name} failed ({r.status_code}): {r.text[:200]}")
        out = r.json()["data"]
        files = []
        for f in out[1:]:
            if f is None:
                files.append(None)
                continue
            body = self.http.get(f["url"] if f["url"].startswith("http")
                                 else f"{self.url}{f['url']}").raise_for_status().content
            files.append(len(body))
        return (out[0], *files)


def _drive(Client, url: str, auditors: int, tmp: Path, server_pid: int, client: str,
           run_tag: str) -> dict:
    """One round: ``auditors`` new auditors each judge the whole campaign."""
    lat: list[float] = []
    sizes: list[int] = []
    errors: list[str] = []
    acked = 0
    lock = threading.Lock()
    clients = []
    for k in range(auditors):
        dl = tmp / "downloads" / f"a{k}"
        dl.mkdir(parents=True, exist_ok=True)
        clients.append(Client(url, verbose=False, download_files=str(dl))
                       if client == "gradio_client" else HttpAuditor(url))
    from sqlalchemy import create_engine, text

    eng = create_engine(f"sqlite:///{tmp / 'audit.sqlite'}")
    with eng.connect() as c:
        cid = c.execute(text("SELECT id FROM campaigns WHERE name = :n"), {"n": CAMPAIGN}).scalar()
    eng.dispose()
    label = f"{cid}: {CAMPAIGN}"
    barrier = threading.Barrier(auditors)

    def auditor(k: int) -> None:
        nonlocal acked
        client, rng = clients[k], random.Random(k)
        name = f"bench-{run_tag}-{k}"
        mine, my_sizes, my_acks = [], [], 0
        try:
            info, a, b = client.predict(label, name, api_name="/next_pair")
            barrier.wait()
            while info["comparison"]:
                t0 = time.perf_counter()
                out, a, b = client.predict(label, name, info["comparison"],
                                           rng.choice(("left", "right", "tie", "both_bad")),
                                           "bench", api_name="/vote")
                mine.append((time.perf_counter() - t0) * 1000)
                my_acks += bool(out["saved"])
                if a and b:
                    my_sizes.append(a + b if isinstance(a, int)
                                    else os.path.getsize(a) + os.path.getsize(b))
                info = out
        except Exception as exc:  # noqa: BLE001 - reported, not raised from a thread
            with lock:
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        with lock:
            lat.extend(mine)
            sizes.extend(my_sizes)
            acked += my_acks

    threads = [threading.Thread(target=auditor, args=(k,)) for k in range(auditors)]
    t0 = time.perf_counter()
    cpu0 = cpu_s(server_pid), cpu_s()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu1 = cpu_s(server_pid), cpu_s()
    if not lat:
        raise RuntimeError(f"no vote went through: {errors[:3]}")
    return {"client": client, "auditors": auditors, "votes": len(lat), "acknowledged": acked,
            "wall_s": round(wall, 2), "votes_per_s": round(len(lat) / wall, 1),
            "p50_ms": round(pct(lat, 0.5), 1), "p95_ms": round(pct(lat, 0.95), 1),
            "max_ms": round(max(lat), 1),
            # CPU per vote, each auditor's first /next_pair included (1 call in ~57)
            "server_cpu_ms_per_vote": round(1000 * (cpu1[0] - cpu0[0]) / len(lat), 1),
            "clients_cpu_ms_per_vote": round(1000 * (cpu1[1] - cpu0[1]) / len(lat), 1),
            "bytes_per_vote": int(sum(sizes) / len(sizes)) if sizes else 0,
            "lat": lat, "run_tag": run_tag, "errors": errors[:5],
            "loadavg_1min_after": round(os.getloadavg()[0], 2)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--auditors", type=int, default=16)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--data", default=None)
    ap.add_argument("--client", choices=("http", "gradio_client"), default="http")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of new auditors on the same server (p95 pooled and per round)")
    ap.add_argument("--profile", default=None,
                    help="write py-spy's collapsed stacks of the server to this file")
    a = ap.parse_args()
    main(a.auditors, a.samples, a.data, a.client, a.profile, a.rounds)
