"""Issue 4 benchmarks: server time of a mask click with a cached embedding, "run" to all CPU
backends on a default scene, and the time from process start to the first page load.

    python bench/bench_app.py
"""

from common import ROOT, save, show, timeit  # noqa: I001

import os
import socket
import subprocess
import tempfile
import sys
import time
import urllib.request

import gradio as gr

from components import mask, outputs, product, scenes
from components.common import Session


def sel(i):
    return gr.SelectData(None, {"index": i, "value": None})


def main() -> None:
    state, _, _ = product.pick_product(Session(), sel(0))
    state, _, _ = scenes.search(state, 8, scenes.ANY)
    state = mask.open_scene(state, sel(0))[0]
    x0, y0, x1, y1 = state.box

    def click():
        state.points, state.labels = [], []
        mask.click(state, "add (+)", sel([(x0 + x1) // 2, (y0 + y1) // 2]))

    click_t = timeit(click, repeat=20)

    def run():
        for _ in outputs.run_all(state, 1.0, 0.0, 0.0, False, 0):
            pass

    run_t = timeit(run, repeat=3, warmup=1)
    warm = first_page(None)
    with tempfile.TemporaryDirectory() as fresh:  # a fresh machine: catalog and index built
        cold = first_page(fresh)
    show([("mask click, cached embedding (server ms)", click_t["median_ms"], "target < 150"),
          ("run -> all backends shown (ms)", run_t["median_ms"], "target < 3000"),
          ("first page load, empty data dir: builds catalog + index (s)", cold or -1, "target < 60"),
          ("first page load, catalog already on disk (s)", warm or -1, "")])
    save("app", {"click": click_t, "run_all": run_t, "first_page_fresh_s": cold,
                 "first_page_warm_s": warm})


def first_page(data_dir: str | None) -> float | None:
    """Seconds from starting ``python app.py`` to the first served page."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port)}
    if data_dir:
        env["STAGER_DATA_DIR"] = data_dir
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(1800):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                return time.perf_counter() - t0
            except OSError:
                time.sleep(0.1)
        return None
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
