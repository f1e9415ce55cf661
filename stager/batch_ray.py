"""The batch job on Ray (``python -m stager batch --ray [ADDRESS]``): a pool of actors, each
loading the catalog, the retrieval index and the backend once, staging batches of products.

    driver ──product ids, in batches──> BatchWorker actors (retrieve + stage + write the PNG)
           <──manifest rows (small dicts)──        the driver appends each product's rows

The same two functions as the local run (``batch.retrieve_rows``, ``batch.stage_row``) do the
work, so the manifest is the local run's. Only ids travel to the workers and only rows come
back: images are read and written by the workers themselves. Each actor keeps at most two
batches queued, so the work stays balanced.

Measured on a two-core machine (``bench/bench_batch.py``), the fixed cost of Ray is
``ray.init`` (about 4 s: the GCS, the raylet and the API server start and register), the actors
(about 1 s: worker processes, imports, catalog and index) and ``ray.shutdown`` (about 1.5 s).
With ``STAGER_RAY_OVERLAP=1`` the driver stages products itself with the context it already holds
while Ray starts, and stops as soon as the first actor batch is back; the summary says how many
products each side staged. It is off by default: on two busy cores the driver's work slowed
``ray.init`` (median 8.2 s against 4.8 s) and the actors' first batch (14.9 s against 6.9 s)
as much as it saved, and at 200 products the medians were no better than without it.

Local Ray workers inherit this process's environment (every setting is a ``STAGER_*``
variable), so no ``runtime_env`` is set up; a cluster address gets the settings and the
project's path as a ``runtime_env``. Actors take fractional CPUs (``STAGER_RAY_ACTOR_CPUS``) and
GPUs (``STAGER_RAY_ACTOR_GPUS``).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from dataclasses import asdict
from typing import Callable

from . import pipeline
from .backends import get_backend
from .batch import BatchJob, Item, retrieve_rows, stage_row, worker_env
from .config import get_settings

_CONTEXTS: dict[str, pipeline.Context] = {}
LOADS = {"context": 0, "backend": 0}  # how often this process loaded each (tests assert 1)


def _worker_context() -> pipeline.Context:
    """One catalog + retriever per worker process, loaded on first use."""
    key = str(get_settings().data_dir)
    if key not in _CONTEXTS:
        ctx = pipeline.Context()
        _ = ctx.retriever  # the index is read here, not in the first batch
        _CONTEXTS[key] = ctx
        LOADS["context"] += 1
    return _CONTEXTS[key]


def stage_product(item: Item, ctx: pipeline.Context, job: BatchJob) -> list[dict]:
    """Every row of one product: retrieval, then each of its best scenes staged (best first)."""
    return [stage_row(t, ctx, job) for t in retrieve_rows(item, ctx, job)]


class BatchWorker:
    """A Ray actor's state: the job, the backend's model and the context, loaded once."""

    def __init__(self, job: dict, threads: int):
        self.job = BatchJob(**job)
        b = get_backend(self.job.backend)
        if b.tier != "classical":  # torch models: one thread per fractional CPU share
            import torch

            torch.set_num_threads(threads)
        if hasattr(b, "load") and b.available()[0]:
            b.load()
            LOADS["backend"] += 1
        self.ctx = _worker_context()

    def stage(self, items: list[tuple[str, str]]) -> dict:
        """Stage a batch of products ``(key, ref)``; returns each product's rows and this
        worker's load counts."""
        rows = [stage_product(Item(k, r), self.ctx, self.job) for k, r in items]
        return {"rows": rows, "pid": os.getpid(), "loads": dict(LOADS)}


def run_on_ray(job: BatchJob, items: list[Item], finish: Callable[[list[dict]], None],
               address: str | None = None, ctx: pipeline.Context | None = None,
               overlap: bool | None = None) -> dict:
    """Stage ``items`` on Ray (local when ``address`` is None) and hand each product's rows,
    best scene first, to ``finish`` (always in this thread). With ``overlap`` (default: the
    ``ray_overlap`` setting) the driver stages products with ``ctx`` while Ray starts, until
    the first actor batch is back. Returns timings and who staged what."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("--ray needs Ray: pip install -r requirements-ray.txt") from None
    if not items:
        return {"ray_start_s": 0.0, "driver_products": 0, "ray_products": 0}
    st = get_settings()
    overlap = st.ray_overlap if overlap is None else overlap
    ctx = ctx or pipeline.get_context()
    todo: deque[Item] = deque(items)
    take = threading.Lock()
    stop = threading.Event()
    local_done: queue.Queue = queue.Queue()
    counts = {"driver_products": 0, "ray_products": 0, "ray_calls": 0}

    def lane() -> None:  # the driver's own work while Ray starts
        while not stop.is_set():
            with take:
                if not todo:
                    return
                it = todo.popleft()
            try:
                local_done.put(stage_product(it, ctx, job))
            except BaseException as exc:  # noqa: BLE001  (handed to the main thread)
                local_done.put(exc)
                return

    def drain_local() -> None:
        while True:
            try:
                got = local_done.get_nowait()
            except queue.Empty:
                return
            if isinstance(got, BaseException):
                raise got
            counts["driver_products"] += 1
            finish(got)

    thread = threading.Thread(target=lane, name="batch-driver-lane", daemon=True)
    if overlap:
        thread.start()
    started = not ray.is_initialized()
    t0 = time.perf_counter()
    timings: dict = {}
    try:
        if started:
            kw = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
            if address:  # remote workers do not share this process's environment
                kw["runtime_env"] = {"env_vars": worker_env()}
            ray.init(address=address, **kw)
        timings["ray_start_s"] = round(time.perf_counter() - t0, 2)
        spec = asdict(job)
        spec["out"] = str(spec["out"])
        n_actors = max(1, st.ray_actors)
        size = max(1, st.ray_batch_size)
        Worker = ray.remote(num_cpus=st.ray_actor_cpus,
                            num_gpus=st.ray_actor_gpus or 0)(BatchWorker)
        actors = [Worker.remote(spec, max(1, int(round(st.ray_actor_cpus))))
                  for _ in range(n_actors)]
        in_flight: dict = {}

        def submit(actor) -> None:
            with take:
                batch = [todo.popleft() for _ in range(min(size, len(todo)))]
            if batch:
                in_flight[actor.stage.remote([(it.key, it.ref) for it in batch])] = actor

        for actor in actors:
            for _ in range(2):  # one batch running, one queued
                submit(actor)
        pids: dict[int, dict] = {}
        while in_flight or thread.is_alive() or not local_done.empty():
            drain_local()
            if not in_flight:
                thread.join(0.02)
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.02)
            for ref in ready:
                actor = in_flight.pop(ref)
                res = ray.get(ref)
                if not stop.is_set():  # the actors work: the driver goes back to dispatching
                    stop.set()
                    timings["ray_first_batch_s"] = round(time.perf_counter() - t0, 2)
                pids[res["pid"]] = res["loads"]
                counts["ray_calls"] += 1
                for rows in res["rows"]:
                    counts["ray_products"] += 1
                    finish(rows)
                submit(actor)
        drain_local()
        timings["ray_workers"] = len(pids)
        timings["ray_context_loads"] = sum(v["context"] for v in pids.values())
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
        if started:
            t1 = time.perf_counter()
            ray.shutdown()
            timings["ray_shutdown_s"] = round(time.perf_counter() - t1, 2)
    return {**timings, **counts}
