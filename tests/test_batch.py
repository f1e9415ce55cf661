"""Batch staging over a tiny catalog (12 scenes, 4 products) with the classical telea backend:
outputs and manifest, resume, recorded failures, a killed run, Ray against local."""

import dataclasses
import hashlib
import json
import shutil

import pytest

from stager import backends, pipeline
from stager.batch import BatchJob, Manifest, old_mask, run_batch, sorted_rows
from stager.catalog import Catalog, build_default
from stager.cli import main
from stager.config import reset_settings
from stager.images import load_image
from stager.segment import cutout, mask_iou


def _reset():
    reset_settings()
    pipeline.reset_context()
    backends._INSTANCES.clear()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_data")
    mp = pytest.MonkeyPatch()
    mp.setenv("STAGER_DATA_DIR", str(d))
    mp.setenv("STAGER_DB_URL", f"sqlite:///{d / 'audit.sqlite'}")
    _reset()
    cat = build_default(n_scenes=12, n_products=4, seed=7)
    yield cat
    mp.undo()
    _reset()


def job(out, **kw) -> BatchJob:
    return BatchJob(products="catalog", out=out, backend="telea", top_k=4, **kw)


def pngs(out):
    return sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.png")
                  if not p.name.startswith("."))


def test_one_output_per_product_and_a_matching_manifest(tiny, tmp_path):
    out = tmp_path / "b"
    s = run_batch(job(out), progress=False)
    assert (s["staged"], s["failed"], s["skipped"], s["rows"]) == (4, 0, 0, 4)
    rows = Manifest(out).rows()
    assert [r["product"] for r in rows] == [p.id for p in tiny.products]
    assert pngs(out) == sorted(r["output"] for r in rows)  # one file per product, no strays
    retriever = pipeline.get_context().retriever
    for r in rows:
        best = retriever.search(cutout(tiny.product_image(r["product"])), 4)[0]
        assert r["scene"] == best.scene_id
        assert r["gap_ratio"] == pytest.approx(best.gap_ratio, abs=1e-4)
        assert (r["ok"], r["error"], r["backend"], r["tier"]) == (True, "", "telea", "classical")
        assert r["mask_method"] == "annotation" and r["latency_ms"] > 0
        img = load_image(out / r["output"], keep_alpha=False)
        assert hashlib.sha1(img.tobytes()).hexdigest()[:16] == r["sha1"]
        old = tiny.scene_mask(r["scene"])
        assert (img[old] != tiny.scene_image(r["scene"])[old]).any()  # the old product is gone
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(out / "manifest.parquet").to_pylist()
    assert table == sorted_rows(rows, drop=())


def test_best_n_scenes_per_product(tiny, tmp_path):
    out = tmp_path / "b2"
    run_batch(job(out, best=2), progress=False)
    rows = Manifest(out).rows()
    assert len(rows) == 8 and len(pngs(out)) == 8
    for p in tiny.products:
        mine = [r for r in rows if r["product"] == p.id]
        assert [r["rank"] for r in mine] == [0, 1] and mine[0]["scene"] != mine[1]["scene"]
        assert mine[0]["score"] >= mine[1]["score"]


def test_rerun_skips_finished_products_and_redoes_a_missing_output(tiny, tmp_path):
    out = tmp_path / "b"
    run_batch(job(out), progress=False)
    before = (out / "manifest.jsonl").read_text()
    mtimes = {f: (out / f).stat().st_mtime_ns for f in pngs(out)}
    s = run_batch(job(out), progress=False)
    assert (s["staged"], s["skipped"]) == (0, 4)
    assert (out / "manifest.jsonl").read_text() == before
    assert {f: (out / f).stat().st_mtime_ns for f in pngs(out)} == mtimes
    gone = Manifest(out).rows()[2]
    (out / gone["output"]).unlink()
    s = run_batch(job(out), progress=False)
    assert (s["staged"], s["skipped"]) == (1, 3)
    rows = Manifest(out).rows()
    assert sorted(r["product"] for r in rows) == [p.id for p in tiny.products]
    assert (out / gone["output"]).is_file()
    assert main(["batch", "--products", "catalog", "--backend", "edgeconnect", "--top-k", "4",
                 "--out", str(out), "--quiet"]) == 2  # another job's folder is refused


def test_a_failing_product_and_a_bad_file_are_recorded_and_the_rest_finish(tiny, tmp_path,
                                                                           monkeypatch):
    real = pipeline.run_backend

    def flaky(prep, name, **kw):
        if prep.product_name == "p001":
            raise RuntimeError("injected fault\nsecond line")
        return real(prep, name, **kw)

    monkeypatch.setattr(pipeline, "run_backend", flaky)
    out = tmp_path / "b"
    s = run_batch(job(out), progress=False)
    assert (s["staged"], s["failed"]) == (3, 1)
    bad = [r for r in Manifest(out).rows() if not r["ok"]]
    assert [(r["product"], r["error"], r["output"]) for r in bad] == [
        ("p001", "RuntimeError: injected fault", "")]
    assert len(pngs(out)) == 3
    monkeypatch.setattr(pipeline, "run_backend", real)
    s = run_batch(job(out), progress=False)  # failures are retried, their old rows dropped
    assert (s["staged"], s["skipped"], s["rows"]) == (1, 3, 4)
    assert all(r["ok"] for r in Manifest(out).rows())

    photos = tmp_path / "photos"
    photos.mkdir()
    for p in tiny.products[:2]:
        shutil.copy(tiny.root / p.image, photos / f"{p.id} shot.png")
    (photos / "broken.png").write_bytes(b"\x89PNG not really")
    (photos / "notes.txt").write_text("not an image")
    out2 = tmp_path / "photos_out"
    s = run_batch(BatchJob(products=str(photos), out=out2, top_k=4), progress=False)
    rows = {r["product"]: r for r in Manifest(out2).rows()}
    assert sorted(rows) == ["broken", "p000_shot", "p001_shot"]
    assert rows["broken"]["error"].startswith("ImageError: ") and not rows["broken"]["ok"]
    assert rows["p000_shot"]["ok"] and rows["p001_shot"]["ok"]
    assert (s["staged"], s["failed"]) == (2, 1)


def test_a_killed_run_resumes_without_duplicates(tiny, tmp_path, monkeypatch):
    out = tmp_path / "b"
    calls = []
    real_append = Manifest.append

    def dies_on_third(self, rows):
        calls.append(rows[0]["product"])
        if len(calls) == 3:  # the third product's PNG is on disk, its rows are not
            raise KeyboardInterrupt
        real_append(self, rows)

    monkeypatch.setattr(Manifest, "append", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_batch(job(out), progress=False)
    monkeypatch.setattr(Manifest, "append", real_append)
    assert len(pngs(out)) == 3 and len(Manifest(out).rows()) == 2
    with (out / "manifest.jsonl").open("a") as f:
        f.write('{"product": "p002", "ok": tr')  # a torn last line
    (out / "images" / "p003").mkdir(parents=True)
    (out / "images" / "p003" / ".0_s0003_telea.123.tmp.png").write_bytes(b"half")
    s = run_batch(job(out), progress=False)
    assert (s["staged"], s["skipped"]) == (2, 2)
    rows = Manifest(out).rows()
    keys = [(r["product"], r["rank"]) for r in rows]
    assert sorted(keys) == [(p.id, 0) for p in tiny.products]  # each product exactly once
    assert pngs(out) == sorted(r["output"] for r in rows)


def test_ray_and_local_runs_agree_and_each_worker_loads_once(tiny, tmp_path, settings_env):
    """Ray alone (no driver overlap), one product per call: four calls on two actors, and
    each actor loaded its catalog and index once, not once per call."""
    pytest.importorskip("ray")
    settings_env(RAY_OVERLAP=0, RAY_BATCH_SIZE=1, RAY_ACTORS=2)
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    run_batch(job(local, best=2), progress=False)
    s = run_batch(job(ray_out, best=2), ray_address="local", progress=False)
    assert s["mode"] == "ray" and (s["staged"], s["failed"]) == (4, 0)
    assert (s["ray_products"], s["driver_products"], s["ray_calls"]) == (4, 0, 4)
    assert s["ray_workers"] == 2 and s["ray_context_loads"] == 2
    a, b = sorted_rows(Manifest(local).rows()), sorted_rows(Manifest(ray_out).rows())
    assert len(a) == 8 and a == b  # same scenes, scores, masks, pixels (sha1), paths
    assert pngs(local) == pngs(ray_out)


def test_the_driver_stages_while_ray_starts_and_the_rows_still_agree(tiny, tmp_path,
                                                                   settings_env):
    """With the overlap the driver starts staging before ``ray.init`` returns; every product
    is staged exactly once by one side or the other."""
    pytest.importorskip("ray")
    settings_env(RAY_OVERLAP=1)
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    run_batch(job(local), progress=False)
    s = run_batch(job(ray_out), ray_address="local", progress=False)
    assert s["driver_products"] >= 1 and s["driver_products"] + s["ray_products"] == 4
    assert sorted_rows(Manifest(local).rows()) == sorted_rows(Manifest(ray_out).rows())
    assert pngs(local) == pngs(ray_out)


def test_old_mask_falls_back_to_the_segmenter(tiny):
    s = tiny.scenes[0]
    no_mask = Catalog(tiny.root, [dataclasses.replace(s, mask=None)] + tiny.scenes[1:],
                      tiny.products, tiny.seed)
    mask, method = old_mask(pipeline.Context(no_mask), s.id)
    assert method.startswith("grabcut") and mask_iou(mask, tiny.scene_mask(s.id)) > 0.5
    assert old_mask(pipeline.Context(tiny), s.id)[1] == "annotation"


def test_outputs_go_to_the_audit_pool(tiny, tmp_path):
    from db.store import get_store
    from stager.config import get_settings

    store = get_store(get_settings().db_url)
    before = len(store.pool_items())
    run_batch(job(tmp_path / "b", audit_pool=True), progress=False)
    items = store.pool_items()[before:]
    assert len(items) == 4 and {i.system for i in items} == {"telea"}
    assert sorted(i.product for i in items) == [p.id for p in tiny.products]
    assert "telea" not in items[0].path  # neutral file names


def test_cli_batch_summary_and_one_line_errors(tiny, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["batch", "--products", "catalog", "--top-k", "3", "--out", str(out),
                 "--quiet"]) == 0
    assert "4 staged, 0 failed" in capsys.readouterr().out
    assert json.loads((out / "batch.json").read_text())["last_run"]["staged"] == 4
    for args in (["--products", str(tmp_path / "nowhere")], ["--backend", "magic"],
                 ["--best", "5", "--top-k", "2"]):
        assert main(["batch", *args, "--out", str(tmp_path / "x"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_process_killed_with_sigkill_resumes(tiny, tmp_path):
    """A real kill: a child process stages slowly, is SIGKILLed after its first product, and
    the rerun finishes the others without duplicating the first."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    out = tmp_path / "killed"
    child = f"""
import time
from pathlib import Path
from stager import pipeline
from stager.batch import BatchJob, run_batch
real = pipeline.run_backend
def slow(*a, **k):
    time.sleep(0.6)
    return real(*a, **k)
pipeline.run_backend = slow
run_batch(BatchJob(products="catalog", out=Path({str(out)!r}), top_k=4), progress=False)
"""
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, env=os.environ.copy())
    manifest = out / "manifest.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if manifest.is_file() and manifest.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(Manifest(out).rows())
    assert 1 <= n_before < 4  # killed mid-run
    s = run_batch(job(out), progress=False)
    assert s["skipped"] == n_before and s["staged"] == 4 - n_before
    rows = Manifest(out).rows()
    assert sorted(r["product"] for r in rows) == [p.id for p in tiny.products]
    assert pngs(out) == sorted(r["output"] for r in rows)
