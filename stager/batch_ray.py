"""The batch job as a Ray Data pipeline (``python -m stager batch --ray [ADDRESS]``).

    products ──map_batches(_retrieve)──> (product, scene) rows      stateless tasks
             ──map_batches(StageActor, compute=ActorPoolStrategy)──> manifest rows
             ──iter_rows()──> the driver appends each finished product to the manifest

The same two functions as the local run (``batch.retrieve_rows``, ``batch.stage_row``) do the
work, so the manifest is the local run's. Rows travel as JSON strings: no type coercion between
Arrow, pandas and numpy can make them differ. Actors take fractional CPUs
(``STAGER_RAY_ACTOR_CPUS``, default 0.5) so that on two cores the retrieval tasks still get a
CPU; GPUs per actor are ``STAGER_RAY_ACTOR_GPUS``. The dataset is consumed once: in Ray Data
every consumption (a count, a write) re-runs the whole pipeline.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict
from typing import Callable

import numpy as np

from . import pipeline
from .backends import get_backend
from .batch import BatchJob, Item, retrieve_rows, stage_row, worker_env
from .config import get_settings

_CONTEXTS: dict[str, pipeline.Context] = {}


def _worker_context() -> pipeline.Context:
    """One catalog + retriever per worker process (tasks are stateless; the cache is not)."""
    key = str(get_settings().data_dir)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = pipeline.Context()
    return _CONTEXTS[key]


def _retrieve(batch: dict[str, np.ndarray], job: dict) -> dict[str, np.ndarray]:
    """Ray task: products ``{"key", "ref"}`` -> rows ``{"row": JSON}`` (one per scene)."""
    ctx, bj = _worker_context(), BatchJob(**job)
    rows = [r for key, ref in zip(batch["key"], batch["ref"])
            for r in retrieve_rows(Item(str(key), str(ref)), ctx, bj)]
    return {"row": np.array([json.dumps(r) for r in rows], dtype=object)}


class StageActor:
    """Ray actor: loads the backend once, then stages batches of rows."""

    def __init__(self, job: dict, threads: int):
        self.job = BatchJob(**job)
        b = get_backend(self.job.backend)
        if b.tier != "classical":  # torch models: one thread per fractional CPU share
            import torch

            torch.set_num_threads(threads)
        if hasattr(b, "load") and b.available()[0]:
            b.load()
        self.ctx = _worker_context()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [stage_row(json.loads(s), self.ctx, self.job) for s in batch["row"]]
        return {"row": np.array([json.dumps(r) for r in rows], dtype=object)}


def run_on_ray(job: BatchJob, items: list[Item], finish: Callable[[list[dict]], None],
               address: str | None = None) -> dict:
    """Stage ``items`` on Ray (local when ``address`` is None) and hand each product's rows,
    best scene first, to ``finish`` as soon as all of them are back. Returns timings: the
    seconds spent starting (or connecting to) Ray."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise RuntimeError("--ray needs Ray Data: pip install -r requirements-ray.txt") from None
    if not items:
        return {"ray_start_s": 0.0}
    st = get_settings()
    started = not ray.is_initialized()
    t0 = time.perf_counter()
    if started:
        ray.init(address=address, runtime_env={"env_vars": worker_env()},
                 include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    timings = {"ray_start_s": round(time.perf_counter() - t0, 2)}
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # the summary line says enough
    warnings.filterwarnings("ignore", message=".*concurrent actors.*", category=UserWarning)
    try:
        dctx = ray.data.DataContext.get_current()
        dctx.enable_progress_bars = False  # the batch's own bar reports progress
        dctx.print_on_execution_start = False
        spec = asdict(job)
        actors = max(1, st.ray_actors)
        ds = ray.data.from_items([{"key": it.key, "ref": it.ref} for it in items],
                                 override_num_blocks=min(len(items), 4 * actors))
        ds = ds.map_batches(_retrieve, fn_kwargs={"job": spec}, batch_size=st.ray_batch_size,
                            num_cpus=st.ray_task_cpus)
        ds = ds.map_batches(StageActor, fn_constructor_kwargs={
                                "job": spec, "threads": max(1, int(round(st.ray_actor_cpus)))},
                            compute=ray.data.ActorPoolStrategy(size=actors),
                            batch_size=st.ray_batch_size, num_cpus=st.ray_actor_cpus,
                            num_gpus=st.ray_actor_gpus or None)
        pending: dict[str, list[dict]] = {}
        for rec in ds.iter_rows():  # the one consumption of the dataset
            r = json.loads(rec["row"])
            rows = pending.setdefault(r["product"], [])
            rows.append(r)
            if len(rows) == r["of"]:
                finish(sorted(pending.pop(r["product"]), key=lambda x: x["rank"]))
        for rows in pending.values():  # cannot happen unless a row was lost: record it
            finish(sorted(rows, key=lambda x: x["rank"]))
        return timings
    finally:
        if started:
            ray.shutdown()
