import numpy as np
import pytest

from stager.catalog import Catalog, CatalogError, Scene
from stager.images import ImageError, dilate
from stager.pipeline import Context, StageRequest, prepare, run_backend
from stager.shadows import object_shadow


def test_empty_catalog_and_bad_requests(catalog):
    empty = Context(Catalog(catalog.root, [], catalog.products))
    with pytest.raises(CatalogError, match="empty"):
        prepare(StageRequest(catalog.products[0].id), empty)
    ctx = Context(catalog)
    sid = catalog.scenes[0].id
    with pytest.raises(ImageError, match="empty"):
        prepare(StageRequest(catalog.products[0].id, scene_id=sid,
                             old_mask=np.zeros((512, 512), bool)), ctx)
    with pytest.raises(ImageError, match="512x512"):
        prepare(StageRequest(catalog.products[0].id, scene_id=sid,
                             old_mask=np.ones((10, 10), bool)), ctx)
    bare = Scene("u_bare", catalog.scenes[0].image, "sofa")
    ctx2 = Context(Catalog(catalog.root, catalog.scenes + [bare], catalog.products))
    with pytest.raises(ImageError, match="no stored mask"):
        prepare(StageRequest(catalog.products[0].id, scene_id="u_bare"), ctx2)


@pytest.fixture
def prepared(catalog):
    ctx = Context(catalog)
    s = next(x for x in catalog.scenes if x.split == "eval" and x.category == "sofa")
    p = next(x for x in catalog.products if x.category == "sofa")
    return prepare(StageRequest(p.id, scene_id=s.id), ctx)


def test_vanilla_staging_keeps_the_product_exactly(prepared, tiny_weights, settings_env):
    settings_env(WEIGHTS_DIR=tiny_weights)
    out = run_backend(prepared, "pix2pix")
    assert out.ok, out.error
    core = prepared.placement.alpha == 1.0
    assert np.array_equal(out.image[core], prepared.composite[core])
    m = prepared.new_mask
    assert not np.array_equal(out.image[~m], prepared.composite[~m])  # background generated


@pytest.mark.parametrize("name", ["telea", "edgeconnect", "diffusion"])
def test_copy_paste_changes_only_the_gap_and_the_shadow(prepared, name, tiny_weights, settings_env):
    settings_env(WEIGHTS_DIR=tiny_weights)
    out = run_backend(prepared, name)
    assert out.ok, out.error
    shade = object_shadow(prepared.placement.alpha, prepared.light)
    assert (prepared.gap & ~prepared.fill_mask).sum() == 0
    untouched = ~prepared.fill_mask & (shade == 1.0) & (prepared.placement.alpha == 0)
    assert untouched.mean() > 0.6
    # outside the fill the output is the relit scene, and relighting (feathered 1.5 px)
    # changes only the old shadow
    assert np.array_equal(out.image[untouched], prepared.source[untouched])
    far = untouched & ~dilate(prepared.old_shadow, 5)
    assert np.array_equal(out.image[far], prepared.scene[far])
    # the product is on top, untouched by the fill and the shadow
    core = prepared.new_mask & (prepared.placement.alpha == 1.0)
    assert np.array_equal(out.image[core], prepared.composite[core])


def test_nothing_to_fill_gives_the_scene_back_as_the_plate(prepared):
    """When the fill region is empty (the legacy fill, an old product wholly under the new
    one's opaque core), every copy-paste backend lays the product on the scene itself: the
    output is exactly ``finish`` on the scene (not on the composite, which would paste the
    product's soft edge twice)."""
    from dataclasses import replace

    from stager.images import erode
    from stager.pipeline import finish

    core = erode(prepared.placement.alpha >= 1.0, 12)
    ys, xs = np.nonzero(core)
    old = np.zeros_like(core)
    old[ys[len(ys) // 2] - 2:ys[len(ys) // 2] + 3, xs[len(xs) // 2] - 2:xs[len(xs) // 2] + 3] = True
    prep = replace(prepared, old_mask=old & core,
                   request=replace(prepared.request, clean_fill=False))
    assert not prep.fill_mask.any()
    out = run_backend(prep, "telea")
    assert out.ok, out.error
    assert np.array_equal(out.plate, prep.scene)
    assert np.array_equal(out.image, finish(prep, prep.scene))
    assert not np.array_equal(out.image, finish(prep, prep.composite))


def test_the_app_context_follows_a_catalog_import(tmp_path, monkeypatch):
    """``catalog import`` while the app runs: the next request sees the new scene (no restart),
    keeps the loaded segmenter, and an unchanged manifest keeps the same context."""
    from stager import pipeline
    from stager.catalog import import_folders
    from stager.images import save_png

    base = Catalog(tmp_path / "catalog", [], [], 0)
    base.save()
    monkeypatch.setattr(pipeline, "_CONTEXT", Context(base))
    seg = object()
    pipeline._CONTEXT._segmenter = seg
    first = pipeline.get_context()
    assert pipeline.get_context() is first and first.catalog.scenes == []
    from components import scenes as scenes_tab

    assert "unknown" not in scenes_tab.categories()["choices"]
    room = np.full((64, 80, 3), 180, np.uint8)
    room[30:50, 20:40] = (200, 30, 30)
    (tmp_path / "rooms").mkdir()
    save_png(tmp_path / "rooms" / "room.png", room)
    save_png(tmp_path / "rooms" / "room_mask.png", room[..., 1] == 30)
    import os

    def touch(path):  # a rewrite another process made: a later modification time
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    base.save()  # the same contents written again: the same context, nothing reloaded
    touch(base.root / "manifest.json")
    assert pipeline.get_context() is first
    first._retriever = type("R", (), {"embedder": "loaded embedder"})()
    import_folders(base, tmp_path / "rooms")  # another process, in the app's case
    touch(base.root / "manifest.json")
    now = pipeline.get_context()
    assert now is not first and [s.source for s in now.catalog.scenes] == ["import"]
    assert now._segmenter is seg and now._embedder == "loaded embedder"
    # the Search tab's category list follows too (refreshed when the dropdown is opened)
    assert scenes_tab.categories()["choices"] == [scenes_tab.ANY, "unknown"]
    assert pipeline.get_context() is now
    (base.root / "manifest.json").write_text("{not json")  # half-written by hand: kept
    touch(base.root / "manifest.json")
    assert pipeline.get_context() is now and len(now.catalog.scenes) == 1
