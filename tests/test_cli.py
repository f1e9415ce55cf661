import json
import subprocess
import sys

import numpy as np
from PIL import Image

from stager.cli import main
from tests.conftest import ROOT


def test_stage_writes_report_and_pngs(catalog, tmp_path, capsys):
    out = tmp_path / "job"
    assert main(["stage", "--product", catalog.products[2].id, "--backends", "telea",
                 "--top-k", "4", "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["product"] == catalog.products[2].id
    assert len(rep["candidates"]) == 4
    assert rep["scene"] == rep["candidates"][0]["scene_id"]
    assert {"similarity", "gap_ratio", "score"} <= set(rep["candidates"][0])
    o = rep["outputs"][0]
    assert o["backend"] == "telea" and o["ok"] and o["latency_ms"] > 0
    for f in ("composite.png", "gap_mask.png", "telea.png"):
        assert (out / f).is_file()
    gap = np.asarray(Image.open(out / "gap_mask.png")) > 0
    assert gap.sum() == rep["gap_pixels"] > 0
    assert "staged" in capsys.readouterr().out
    # the placed product's mask is written and listed, so `parallax` can chain on it
    assert rep["files"]["product_mask"] == "product_mask.png"
    product_mask = np.asarray(Image.open(out / "product_mask.png")) > 0
    x0, y0, x1, y1 = (max(0, v) for v in rep["placement"]["box"])
    assert not (product_mask & gap).any() and product_mask[y0:y1, x0:x1].sum() == product_mask.sum()
    assert product_mask.sum() > 0.3 * (x1 - x0) * (y1 - y0)
    assert main(["parallax", "--image", str(out / "telea.png"), "--mask",
                 str(out / "product_mask.png"), "--out", str(out / "clip.mp4"), "--seconds", "0.5",
                 "--fps", "8"]) == 0
    assert "4 frames" in capsys.readouterr().out and (out / "clip.mp4").stat().st_size > 0


def test_bad_inputs_fail_with_one_line_and_write_nothing(catalog, tmp_path, capsys):
    bad = tmp_path / "upload.pdf"
    bad.write_bytes(b"%PDF")
    white = tmp_path / "white.png"
    Image.new("RGB", (64, 64), "white").save(white)
    cases = [["--product", str(bad)], ["--product", str(white)], ["--product", "p000",
             "--scene", "nope"], ["--product", "p000", "--backends", "magic"],
             ["--product", "p000", "--scale", "9"]]
    for i, args in enumerate(cases):
        out = tmp_path / f"o{i}"
        assert main(["stage", *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
        assert not out.exists()


def test_module_entry_point_reports_errors_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "stager", "stage", "--product", "nope", "--out",
                        str(tmp_path / "x")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "nope" in r.stderr


def test_catalog_import_lists_and_skips_bad_files(catalog, tmp_path, capsys):
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    img = catalog.scene_image(catalog.scenes[0].id)
    Image.fromarray(img).save(scenes / "room1.jpg")
    Image.fromarray(catalog.scene_mask(catalog.scenes[0].id).astype(np.uint8) * 255).save(
        scenes / "room1_mask.png")
    Image.fromarray(img).save(scenes / "room2.png")
    Image.fromarray(img).save(scenes / "room3.png")  # no mask, no box: said, still imported
    (scenes / "notes.txt").write_text("hello")
    (scenes / "broken.png").write_bytes(b"\x89PNG broken")
    (tmp_path / "ann.csv").write_text("file,box,category\nroom2.png,\"10,10,60,60\",sofa\n")
    products = tmp_path / "products"
    products.mkdir()
    Image.fromarray(catalog.product_image(catalog.products[0].id)[..., :3]).save(products / "new.png")
    Image.new("RGB", (40, 40), "white").save(products / "blank.png")
    from stager.catalog import Catalog

    before = Catalog.load(catalog.root)
    try:
        rc = main(["catalog", "import", "--scenes-dir", str(scenes), "--products-dir",
                   str(products), "--annotations", str(tmp_path / "ann.csv")])
        assert rc == 0
        out = capsys.readouterr().out
        assert "skipped notes.txt" in out and "skipped broken.png" in out and "skipped blank.png" in out
        # a box alone is not a mask: room2 (box) and room3 (nothing) are named, by id
        assert "2 imported scene(s) have no mask" in out and "(room3.png)" in out
        assert "(room2.png)" in out and "(room1.jpg)" not in out
        after = Catalog.load(catalog.root)
        new = [s for s in after.scenes if s.source == "import"]
        assert {s.params["file"] for s in new} == {"room1.jpg", "room2.png", "room3.png"}
        r1 = next(s for s in new if s.params["file"] == "room1.jpg")
        assert r1.mask and r1.box == catalog.scenes[0].box
        r2 = next(s for s in new if s.params["file"] == "room2.png")
        assert r2.box == [10, 10, 60, 60] and r2.category == "sofa" and r2.mask is None
        assert f"{r2.id} (room2.png)" in out
        assert len(after.products) == len(before.products) + 1
    finally:
        before.save()  # leave the shared catalog as it was
