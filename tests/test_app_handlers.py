"""The app's handlers called directly, select and click events included."""

import re

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from components import (audit, mask, outputs, parallax, placement, product, results, scenes,
                        stale, status)
from components.common import Session
from stager.backends import REGISTRY, get_backend


def sel(index, value=None):
    return gr.SelectData(None, {"index": index, "value": value})


def _flow(catalog, product_idx=0):
    state, preview, msg = product.pick_product(Session(), sel(product_idx))
    state, items, _ = scenes.search(state, 6, scenes.ANY)
    out = mask.open_scene(state, sel(0))
    return out[0], items


def test_product_pick_and_cutout(catalog):
    state, preview, msg = product.pick_product(Session(), sel(3))
    pid = catalog.products[3].id
    assert state.product_name == pid and pid in msg
    assert preview.shape[:2] == state.product.shape[:2] and preview.shape[2] == 3
    # checkerboard shows where alpha is 0
    assert preview[0, 0].tolist() in ([235, 235, 235], [200, 200, 200])


@pytest.mark.parametrize("kind", ["16bit", "cmyk", "palette"])
def test_upload_unusual_modes(tmp_path, kind):
    im = Image.new("RGB", (120, 100), "white")
    im.paste((180, 30, 30), (30, 20, 90, 80))
    path = tmp_path / f"p_{kind}.{'tif' if kind == 'cmyk' else 'png'}"
    if kind == "16bit":
        a = (np.asarray(im.convert("L")).astype(np.uint16) * 257)
        Image.fromarray(a).save(path)
    elif kind == "cmyk":
        im.convert("CMYK").save(path)
    else:
        im.convert("P").save(path)
    state, preview, msg = product.upload_product(Session(), str(path))
    alpha = state.product[..., 3] > 127
    assert alpha[50, 60] and not alpha[5, 5] and abs(alpha.mean() - 0.3) < 0.05


def test_bad_uploads_give_one_line_errors(tmp_path, settings_env):
    bad = tmp_path / "doc.pdf"
    bad.write_bytes(b"%PDF-1.4")
    with pytest.raises(gr.Error) as e:
        product.upload_product(Session(), str(bad))
    assert "doc.pdf" in e.value.message and "\n" not in e.value.message
    white = tmp_path / "white.png"
    Image.new("RGB", (50, 50), "white").save(white)
    with pytest.raises(gr.Error, match="cannot be told"):
        product.upload_product(Session(), str(white))
    settings_env(MAX_PIXELS=10_000)
    big = tmp_path / "big.png"
    Image.new("RGB", (400, 400), "red").save(big)
    with pytest.raises(gr.Error, match="over the limit"):
        product.upload_product(Session(), str(big))


def test_order_errors():
    with pytest.raises(gr.Error, match="product first"):
        scenes.search(Session(), 5, scenes.ANY)
    with pytest.raises(gr.Error, match="retrieve scenes first"):
        mask.open_scene(Session(), sel(0))
    with pytest.raises(gr.Error, match="choose a scene first"):
        mask.click(Session(), "add (+)", sel([10, 10]))
    # the outputs row says it on its message line and changes nothing else (no error badge)
    (st, gallery, slider, msg), = list(outputs.run_all(Session(), 1, 0, 0, False, 0))
    assert "product first" in msg and gallery == gr.update() and slider == gr.update()
    with pytest.raises(gr.Error, match="run the backends first"):
        outputs.send_to_pool(Session())
    with pytest.raises(gr.Error, match="run the backends first") as e:
        parallax.make_clip(Session(), 1, 8, 0.03, "sway (sideways, looping)")
    assert "\n" not in e.value.message
    # as wired on the page: said on the message line, the other outputs unchanged (no badge)
    from components.common import said

    video, gif, msg = said(parallax.make_clip, 3, 2)(Session(), 1, 8, 0.03, "sway")
    assert "run the backends first" in msg and video == gr.update() and gif == gr.update()
    assert "run the backends first" in said(outputs.send_to_pool, 1, 0)(Session())


def test_scene_search_captions_and_filter(catalog):
    state, _, _ = product.pick_product(Session(), sel(0))
    state, items, msg = scenes.search(state, 5, "bed")
    assert len(items) == 5
    for (path, caption), cand in zip(items, state.candidates):
        sid = caption.split(" · ")[0]
        assert catalog.scene(sid).category == "bed"
        # the caption is short enough to show whole; every figure is in the message
        assert caption == f"{sid} · {cand.score:.2f}" and len(caption) <= 14
        assert (f"{sid} {cand.score:.2f} (sim {cand.similarity:.2f}, gap {cand.gap_ratio:.0%})"
                in msg)


def test_mask_panel_click_choose_brush_undo(catalog):
    state, _ = _flow(catalog)
    stored = catalog.scene_mask(state.scene_id)
    assert np.array_equal(state.mask, stored) and state.method == mask.STORED
    assert len(state.proposals) == 3
    x0, y0, x1, y1 = state.box
    # a positive click outside the stored annotation refines it: nothing of it is lost
    ys, xs = np.nonzero(~stored[y0:y1, x0:x1])
    px, py = int(xs[len(xs) // 2]) + x0, int(ys[len(ys) // 2]) + y0
    out = mask.click(state, "add (+)", sel([px, py]))
    state = out[0]
    assert "fallback" in state.method or "sam" in state.method
    assert state.method.startswith(mask.STORED)
    assert state.mask[stored].all() and state.mask[py, px]
    assert "updated in" in out[5]
    after_click = state.mask.copy()
    # brush: add a square far from the product, remove one pixel inside it
    layer_add = np.zeros((*state.mask.shape, 4), np.uint8)
    layer_add[5:25, 5:25, 3] = 255
    layer_rem = np.zeros_like(layer_add)
    layer_rem[10, 10, 3] = 255
    view, editor, badge, msg = mask.apply_brush(state, {"background": None,
                                                        "layers": [layer_add, layer_rem]})
    assert state.mask[6, 6] and not state.mask[10, 10] and "brush" in badge
    assert editor["layers"] == [] and editor["background"].shape == state.scene.shape
    view, editor, badge = mask.choose(state, "candidate 2 (score 0.50)")
    assert np.array_equal(state.mask, state.proposals[1])
    # undo steps back exactly one action each time: candidate, then brush, then the click
    mask.undo(state)
    assert state.mask[6, 6] and len(state.points) == 1
    mask.undo(state)
    assert np.array_equal(state.mask, after_click) and len(state.points) == 1
    mask.undo(state)
    assert np.array_equal(state.mask, stored) and state.points == []
    assert state.method == mask.STORED
    assert mask.undo(state)[3] == "Nothing to undo."


def test_placement_preview_and_empty_mask(catalog):
    state, _ = _flow(catalog)
    state, img, msg = placement.preview(state, 1.0, 0.0, 0.0, False, 0)
    assert img.shape == state.scene.shape and "Visible gap after the paste" in msg and "rebuilt background" in msg
    _, img2, _ = placement.preview(state, 0.6, 0.1, 0.0, True, 3)
    assert not np.array_equal(img, img2)
    assert "New shadow: contact shadow" in msg
    import re

    kept = re.search(r"([\d,]+) px of floor in the margin kept as they are", msg)
    assert kept and int(kept.group(1).replace(",", "")) > 100  # the catalog's margin is floor
    state.realism = {**state.realism, "shadow": False}  # "shadow under the new product" off
    assert "New shadow: none" in placement.preview(state, 1.0, 0.0, 0.0, False, 0)[2]
    state.realism = {k: v for k, v in state.realism.items() if k != "shadow"}
    state.mask = np.zeros_like(state.mask)
    with pytest.raises(gr.Error, match="mask is empty"):
        placement.preview(state, 1.0, 0, 0, False, 0)


def test_run_all_streams_every_backend(catalog, tiny_weights, settings_env):
    settings_env(WEIGHTS_DIR=tiny_weights)
    state, _ = _flow(catalog, 2)
    steps = list(outputs.run_all(state, 1.0, 0.0, 0.0, False, 0))
    assert len(steps) == len(REGISTRY) + 2  # "running", one per backend, final
    final_state, items, slider, msg = steps[-1]
    assert len(items) == len(REGISTRY) and "All backends done" in msg
    assert set(final_state.outputs) == set(REGISTRY)
    # the slider opens on the method's own output and says which output it shows
    before, after = slider["value"]
    assert before.shape == after.shape == state.scene.shape
    assert np.array_equal(after, final_state.outputs["edgeconnect"])
    assert slider["label"].endswith(get_backend("edgeconnect").label)
    # before any click the clip animates what the slider shows, not the first backend run
    assert list(REGISTRY)[0] != "edgeconnect" and parallax.chosen_output(final_state) == "edgeconnect"
    before_after, download = outputs.pick(final_state, sel(list(REGISTRY).index("telea")))
    assert np.array_equal(before_after["value"][1], final_state.outputs["telea"])
    assert before_after["label"].endswith(get_backend("telea").label)
    from stager.config import get_settings

    assert download["value"].endswith(".png")
    assert download["value"].startswith(str(get_settings().public_dir))
    msg = outputs.send_to_pool(final_state, 1.0, 0.0, 0.0, False, 0)
    assert f"Sent {len(REGISTRY)} outputs" in msg
    # the clip animates the selected output (telea, clicked above) with the placed product
    assert final_state.selected == "telea" and set(final_state.plates) == set(REGISTRY)
    assert final_state.product_alpha.shape == state.scene.shape[:2]
    video, gif, msg = parallax.make_clip(final_state, 1, 8, 0.03,
                                         "push-in (zoom toward the product)")
    assert video.endswith(".mp4") and gif["value"].endswith(".gif") and "**Telea (OpenCV, classical)**" in msg


def _frames(path):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(path)
    meta = next(reader)
    return meta, sum(1 for _ in reader)


def test_parallax_clip_uses_the_backend_plate_or_says_fallback(catalog, tmp_path, settings_env,
                                                               monkeypatch):
    from stager.pipeline import StageOutput

    settings_env(WEIGHTS_DIR=tmp_path)  # only telea is available

    def fake_backend(prep, name, seed):  # the lead's run_backend will attach the plate
        out = StageOutput(name, name, "test", True, prep.composite.copy())
        out.plate = prep.scene.copy()
        return out

    monkeypatch.setattr(outputs, "_run_one", fake_backend)
    state, _ = _flow(catalog, 1)
    *_, (state, *_rest) = list(outputs.run_all(state, 1.0, 0.0, 0.0, False, 0))
    # without weights only the classical fills run
    assert list(state.outputs) == ["telea", "lines"] and state.selected is None  # none clicked
    assert np.array_equal(state.plates["telea"], catalog.scene_image(state.scene_id))
    alpha = state.product_alpha
    assert alpha.dtype == np.float32 and alpha.max() == 1 and 0 < (alpha > 0.5).mean() < 0.8
    # none clicked: the clip animates the output the slider opens on (line-guided Telea)
    video, gif, msg = parallax.make_clip(state, 1.5, 8, 0.04, "sway (sideways, looping)")
    meta, n = _frames(video)
    assert n == 12 and meta["size"] == state.scene.shape[1::-1] and meta["codec"].startswith("h264")
    assert gif["visible"] and Image.open(gif["value"]).n_frames == 12
    from pathlib import Path

    from stager.config import get_settings

    public = get_settings().public_dir.resolve()  # the only folder the file route serves
    assert Path(video).resolve().is_relative_to(public)
    assert Path(gif["value"]).resolve().is_relative_to(public)
    assert f"**{get_backend('lines').label}**" in msg and "12 frames" in msg and "backend plate" in msg
    state.plates["lines"] = None  # a backend without a plate: the classical fallback, named
    _, _, msg = parallax.make_clip(state, 0.5, 8, 0.04, "sway (sideways, looping)")
    assert "classical fallback" in msg and "Telea" in msg
    with pytest.raises(gr.Error, match="amplitude"):
        parallax.make_clip(state, 1, 8, 0.5, "sway (sideways, looping)")


def test_parallax_controls_are_wired_to_the_outputs_button():
    from components import UI
    from components.layout import build

    demo = build()
    fns = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "make_clip"]
    assert len(fns) == 1 and (UI["out_parallax"]._id, "click") in fns[0].targets
    assert fns[0].fn.__wrapped__ is parallax.make_clip  # refusals said, not raised (``said``)
    ids = {b._id for b in fns[0].inputs} | {b._id for b in fns[0].outputs}
    assert {UI["px_seconds"]._id, UI["px_move"]._id, UI["px_video"]._id} <= ids
    # the outputs gallery serves (and its download button saves) lossless PNG files
    img = np.zeros((16, 16, 3), np.uint8)
    img[4:12, 4:12] = (200, 30, 40)
    item = UI["out_gallery"].postprocess([(img, "telea")]).root[0]
    assert item.image.path.endswith(".png")
    assert np.array_equal(np.asarray(Image.open(item.image.path).convert("RGB")), img)
    assert isinstance(UI["px_video"], gr.Video) and UI["out_parallax"].value == "Make parallax clip"


def test_pool_never_stores_outputs_under_another_scene(catalog, tiny_weights, settings_env):
    from db.store import get_store
    from stager.config import get_settings

    settings_env(WEIGHTS_DIR=tiny_weights)
    state, _ = _flow(catalog, 3)
    *_, (state, items, _, _) = list(outputs.run_all(state, 1.0, 0.0, 0.0, False, 0))
    made_for = state.scene_id
    # the placement changed after the run: the pool refuses, and the outputs are dropped
    with pytest.raises(gr.Error, match="run the backends again"):
        outputs.send_to_pool(state, 0.8, 0.0, 0.0, False, 0)
    assert state.outputs == {}
    *_, (state, _, _, _) = list(outputs.run_all(state, 1.0, 0.0, 0.0, False, 0))
    # switching scene clears the outputs at once (state and screen)
    other = next(c.scene_id for c in state.candidates if c.scene_id != made_for)
    state = mask.load_scene(state, other)[0]
    assert state.outputs == {}
    cleared = stale.clear_if_stale(state, 1.0, 0.0, 0.0, False, 0)
    assert cleared[1] == [] and cleared[2]["value"] is None and cleared[3]["visible"] is False
    with pytest.raises(gr.Error, match="run the backends first"):
        outputs.send_to_pool(state, 1.0, 0.0, 0.0, False, 0)
    # even if stale outputs were forced back into the session, their key does not match
    state.outputs = {"telea": np.zeros_like(state.scene)}
    with pytest.raises(gr.Error, match="another product, scene, mask or placement"):
        outputs.send_to_pool(state, 1.0, 0.0, 0.0, False, 0)
    # a fresh run on the new scene is stored with its provenance
    *_, (state, _, _, _) = list(outputs.run_all(state, 1.0, 0.0, 0.0, False, 0))
    outputs.send_to_pool(state, 1.0, 0.0, 0.0, False, 0)
    pool = get_store(get_settings().db_url).pool_items()
    mine = [i for i in pool if i.params.get("job") == state.outputs_key]
    assert {i.system for i in mine} == set(REGISTRY) and {i.scene for i in mine} == {other}
    assert all(i.params["placement"]["scale"] == 1.0 and i.params["mask_sha1"] for i in mine)
    # unchanged inputs keep the outputs on screen
    assert stale.clear_if_stale(state, 1.0, 0.0, 0.0, False, 0)[1] == gr.update()


def test_rejected_upload_clears_the_product(tmp_path):
    new_state, cutout, msg, scene_items, scene_msg = stale.reject_upload()
    assert new_state.product is None and new_state.scene is None and cutout is None
    assert scene_items == [] and "refused" in msg


def test_unavailable_backends_are_greyed_with_the_reason(catalog, tmp_path, settings_env):
    settings_env(WEIGHTS_DIR=tmp_path)
    state, _ = _flow(catalog, 4)
    *_, (final, items, _, msg) = list(outputs.run_all(state, 1.0, 0.0, 0.0, False, 0))
    captions = [c for _, c in items]
    assert sum("unavailable" in c for c in captions) == len(REGISTRY) - 2  # the classical two
    assert any(c.startswith("Telea") for c in captions)
    assert any(c.startswith("Line-guided Telea") for c in captions)
    assert all("STAGER_WEIGHTS_DIR" in c for c in captions if "unavailable" in c)
    rows = status.rows()
    assert any(r[1] == "missing" and "not found" in r[3] for r in rows)
    assert any(r[0] == "mask proposals" and "GrabCut" in r[1] for r in rows)
    assert any(r[0] == "old-shadow reader" and r[1].startswith("classical")
               and "shade.safetensors not found" in r[3] for r in rows)


def test_status_table_wraps_and_keeps_the_whole_how_to_text(settings_env, tmp_path):
    from components import get

    settings_env(WEIGHTS_DIR=tmp_path)  # every trained model missing: the long how-to texts
    with gr.Blocks():
        status.render()
    cfg = get("status_table").get_config()
    assert cfg["wrap"] is True and cfg["max_chars"] is None
    widths = [float(str(w).rstrip("%")) for w in cfg["column_widths"]]
    assert len(widths) == 4 and widths[3] == max(widths) and widths[3] >= 50
    assert sum(widths) <= 100
    shown = [r[3] for r in cfg["value"]["data"]]
    assert shown == [r[3] for r in status.rows()]  # nothing cut from the how-to text
    assert max(map(len, shown)) > 100 and any("STAGER_" in t for t in shown)


def _near(path_a, path_b) -> float:
    from stager.images import load_image

    return float(np.abs(load_image(path_a, keep_alpha=False).astype(int)
                        - load_image(path_b, keep_alpha=False).astype(int)).mean())


def test_voting_tab_blind_votes_once(catalog, tmp_path, settings_env, monkeypatch):
    from types import SimpleNamespace

    from db.campaign import plan
    from stager.config import get_settings
    from tests.conftest import image_campaign

    store, cid, ids = image_campaign("ui-test", ("sysA", "sysB"))
    label = f"{cid}: ui-test"
    assert label in audit.campaign_choices()
    with pytest.raises(gr.Error, match="name"):
        audit.next_item(label, "", {})
    with pytest.raises(gr.Error, match="choose a campaign"):  # never picked silently
        audit.next_item(None, "alice", {})
    # on the page (these events skip the queue, where a raised error shows as a bare "Error")
    # the text goes to the message line and nothing else changes
    out = audit.in_page(audit.next_item)(None, "alice", {})
    assert "choose a campaign" in out[5]
    # no open campaign at all: said first, before any name is asked for
    from db.store import AuditError

    class Closed:  # every campaign closed, then the database out of reach
        fail = False

        def campaigns(self):
            if self.fail:
                raise AuditError("database is locked")
            return [SimpleNamespace(status="closed")]

    store_ = Closed()
    with monkeypatch.context() as m:
        m.setattr(audit, "_store", lambda: store_)
        out = audit.in_page(audit.next_item)(None, "", {})
        assert "no campaign is open for voting yet" in out[5] and "audit create" in out[5]
        store_.fail = True
        out = audit.in_page(audit.next_item)(None, "", {})
        assert "cannot be reached" in out[5]
    assert all(o == gr.update() for i, o in enumerate(out) if i != 5)
    assert "no comparison on screen" in audit.in_page(audit.vote("left"))(label, "alice", {}, "")[5]
    name_box, cur, left, right, prog, msg, _ = audit.next_item(label, "alice", {})
    # the name is asked once: locked after the first use
    assert name_box["interactive"] is False and name_box["value"] == "alice"
    # blind: neutral, content-hashed file names with no system name, from the public folder
    assert "sysA" not in left and "sysB" not in right and left.endswith(".jpg")
    assert left.startswith(str(get_settings().public_dir))
    # A shows the comparison's left item and B its right item; a vote for A credits the left
    shown = store.comparison(cur["public_id"])
    assert _near(left, shown.left_item.path) < _near(left, shown.right_item.path)
    assert _near(right, shown.right_item.path) < _near(right, shown.left_item.path)
    voted = audit.vote("left")(label, "alice", cur, "nice")
    dup = audit.vote("right")(label, "alice", cur, "")  # a double click on the same screen
    assert "already judged" in dup[5]
    votes = store.votes(cid)
    assert len(votes) == 1 and votes[0]["outcome"] == "left" and votes[0]["comment"] == "nice"
    assert votes[0]["left_system"] == shown.left_item.system
    assert "1 of 3" in voted[4]
    # results are for admins only
    with pytest.raises(gr.Error, match="admins"):
        results.show(label, False, 50, SimpleNamespace(username="alice"))
    settings_env(APP_ADMINS="boss")
    table, chart, csv = results.show(label, False, 50, SimpleNamespace(username="boss"))
    assert "sysA vs sysB" in table and chart.endswith(".png") and csv.endswith(".csv")
    assert not chart.startswith(str(get_settings().data_dir))
    store.set_status(cid, "closed")
    with pytest.raises(gr.Error, match="closed"):
        audit.vote("left")(label, "alice", voted[1], "")
    with pytest.raises(gr.Error, match="closed"):
        audit.next_item(label, "alice", {})
    assert label not in audit.campaign_choices(open_only=True)
    assert f"{label} (closed)" in audit.campaign_choices()
    # identity from the app's login wins over the name field
    cid2 = store.create_campaign("ui-test-2", [{"name": "A vs B", "a": "sysA", "b": "sysB"}],
                                 plan([("A vs B", ids[0], ids[1])], [], 0, 0))
    label2 = f"{cid2}: ui-test-2"
    assert audit.refresh_lists()["choices"][-1] == label2  # new campaigns appear on load
    _, cur2, *_ = audit.next_item(label2, "", {}, SimpleNamespace(username="logged-in"))
    audit.vote("right")(label2, "", cur2, "", SimpleNamespace(username="logged-in"))
    assert store.votes(cid2)[0]["auditor"] == "logged-in"


def test_vote_api_identity_rules_and_acknowledgement(settings_env):
    import datetime as dt
    from types import SimpleNamespace

    from db.store import SIMULATED
    from tests.conftest import image_campaign

    store, cid, _ = image_campaign("api-votes", ("apiA", "apiB"), n=3, seed=21)
    _, other, _ = image_campaign("api-other", ("apiC", "apiD"), n=1, seed=22)
    label = str(cid)  # the id alone names the campaign too
    with pytest.raises(gr.Error, match="enter your name"):
        audit.api_next_pair(label, "")
    info, a, b = audit.api_next_pair(label, "scripted")
    assert info["done"] == 0 and info["total"] == 3 and a.endswith(".jpg") and "api" not in a
    first = info["comparison"]
    with pytest.raises(gr.Error, match="outcome"):
        audit.api_vote(label, "scripted", first, "better")
    foreign = store.next_comparison(other, "scripted")[0].public_id
    with pytest.raises(gr.Error, match="unknown comparison"):  # another campaign's pair
        audit.api_vote(label, "scripted", foreign, "left")
    out, a2, _ = audit.api_vote(label, "scripted", first, "right", "ok")
    assert out["saved"] is True and out["done"] == 1 and out["comparison"] != first
    again, *_ = audit.api_vote(label, "scripted", first, "left")  # a retry of the same vote
    assert again["saved"] is False
    votes = store.votes(cid)
    assert [(v["auditor"], v["outcome"], v["simulated"], v["comment"]) for v in votes] == \
        [("scripted", "right", False, "ok")]
    # a simulated auditor's name cannot vote through the API, nor a person as one
    store.record_vote(out["comparison"], "sim-api", "left", dt.datetime(2026, 1, 1),
                      source=SIMULATED)
    with pytest.raises(gr.Error, match="simulated auditor"):
        audit.api_vote(label, "sim-api", out["comparison"], "left")
    # the login wins over the name; on a Space a login is required
    out2, *_ = audit.api_vote(label, "ignored", out["comparison"], "tie", "",
                              SimpleNamespace(username="carol"))
    assert out2["saved"] and store.votes(cid)[-1]["auditor"] == "carol"
    with pytest.raises(gr.Error, match="does not exist"):
        audit.api_vote("not a campaign", "scripted", out["comparison"], "left")
    settings_env(SPACE_ID="someone/stager")
    with pytest.raises(gr.Error, match="log in"):
        audit.api_vote(label, "scripted", out["comparison"], "left")
    store.set_status(cid, "closed")
    with pytest.raises(gr.Error, match="closed"):
        audit.api_vote(label, "", out["comparison"], "left", "", SimpleNamespace(username="d"))
    with pytest.raises(gr.Error, match="closed"):
        audit.api_next_pair(label, "", SimpleNamespace(username="d"))
    assert len(store.votes(cid)) == 3


def test_display_copies_are_made_before_the_first_vote():
    from stager.config import get_settings
    from tests.conftest import image_campaign

    store, cid, _ = image_campaign("warm", ("warmA", "warmB"), n=3, seed=41)
    public = get_settings().public_dir / "audit"
    before = set(public.glob("*.jpg")) if public.is_dir() else set()
    audit.warm_display_copies()
    made = {str(p) for p in set(public.glob("*.jpg")) - before}
    mine = {audit.display_image(item) for item in store.campaign_items(cid)}
    assert len(mine) == 6 and mine <= made  # made by the warm-up, not by a vote
    _, _, left, right, *_ = audit.next_item(f"{cid}: warm", "early", {})
    assert {left, right} <= mine
    assert audit.warm_display_copies() == 0  # once per campaign


def test_skip_moves_on_and_the_skipped_pair_returns(catalog):
    from tests.conftest import image_campaign

    store, cid, _ = image_campaign("skips", ("s1", "s2"), n=3, seed=3)
    label = f"{cid}: skips"
    _, cur, *_ = audit.next_item(label, "sam", {})
    first = cur["public_id"]
    _, cur, *_, msg, _ = audit.skip(label, "sam", cur)
    assert cur["public_id"] != first and "comes back" in msg
    _, cur, *_ = audit.vote("left")(label, "sam", cur, "")
    assert cur["public_id"] != first
    _, cur, *_ = audit.vote("left")(label, "sam", cur, "")
    assert cur["public_id"] == first  # only the skipped one is left: it returns
    _, cur, _, _, prog, msg, _ = audit.vote("tie")(label, "sam", cur, "")
    assert "All comparisons judged" in msg and "3 of 3" in prog


def test_admins_create_a_campaign_from_the_pool(catalog, settings_env):
    from types import SimpleNamespace

    from db.campaign import store_image
    from db.store import get_store
    from stager.config import get_settings

    store = get_store(get_settings().db_url)
    rng = np.random.default_rng(9)
    for k in range(3):
        for system in ("telea", "diffusion"):
            store_image(store, rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), "pp",
                        f"pool-scene{k}", system, in_pool=True)
    with pytest.raises(gr.Error, match="admins"):
        results.create_from_pool("from-pool", "telea:diffusion", 10, SimpleNamespace(username="x"))
    settings_env(APP_ADMINS="boss")
    boss = SimpleNamespace(username="boss")
    assert results.on_load(boss)[0]["visible"] is True
    assert results.on_load(SimpleNamespace(username="x"))[0]["visible"] is False
    with pytest.raises(gr.Error, match="pairs"):
        results.create_from_pool("bad", "telea", 10, boss)
    msg, menu, audit_menu = results.create_from_pool("from-pool", "telea:diffusion", 10, boss)
    assert "from-pool" in msg and audit_menu["value"] == menu["value"]
    assert menu["value"] in audit.campaign_choices(open_only=True)
    c = store.campaign("from-pool")
    assert c.tasks[0]["name"] == "telea better than diffusion" and len(store.votes(c.id)) == 0


def test_api_accepts_catalog_ids_or_uploads_only(catalog, tmp_path):
    from components import api

    secret = tmp_path / "secret.png"
    Image.new("RGB", (64, 64), "red").save(secret)
    sid = catalog.scenes[0].id
    errors = []
    for bad in (str(secret), str(tmp_path / "missing.png"), "p-nope"):
        with pytest.raises(gr.Error) as e:
            api.api_stage(bad, sid, None, "telea")
        errors.append(re.sub(r"product '.*?' is", "product ID is", e.value.message))
    assert len(set(errors)) == 1 and "not a catalog product id" in errors[0]  # same for all
    with pytest.raises(gr.Error, match="not a catalog scene id"):
        api.api_stage(catalog.products[0].id, str(secret), None, "telea")
    with pytest.raises(gr.Error, match="not a catalog scene id"):
        api.api_propose("../../etc/passwd", None)
    with pytest.raises(gr.Error, match="label"):
        api.api_propose(sid, [[1, 2, "x"]])
    with pytest.raises(gr.Error, match="unknown backend"):
        api.api_stage(catalog.products[0].id, sid, None, "telea,rm -rf")
    # an uploaded image (the API's file input, already an array) is the other way in
    shot = np.full((80, 80, 3), 255, np.uint8)
    shot[20:60, 25:55] = (30, 90, 160)
    rep, composite, gallery = api.api_stage("", sid, None, "telea", shot)
    assert rep["product"] == "uploaded product" and composite.shape == catalog.scene_image(sid).shape
    assert [name for _, name in gallery] == ["telea"]


def test_shadow_and_light_settings_reach_the_request(catalog):
    from components import realism

    state, _ = _flow(catalog)
    assert state.old_shadow is not None  # detected and drawn with the mask
    view = mask._view(state)
    blue = state.old_shadow & ~state.mask
    if blue.any():  # drawn in its own colour, apart from the pink mask
        assert (view[blue][:, 2].astype(int) > view[blue][:, 0].astype(int)).mean() > 0.8
    state = realism.settings(state, "keep it (multiply layer)", False, False, 0.7, -0.2, 0.5,
                             False, 0.4)
    req = placement.request(state, 1.0, 0.0, 0.0, False, 0)
    assert req.product_shadow == "keep" and req.shadow is False
    assert req.remove_old_shadow is False and req.harmonise == 0.4
    assert req.light == {"vx": 0.7, "vy": -0.2, "strength": 0.5}
    # painting the old shadow: the request carries the painted region
    h, w = state.scene.shape[:2]
    layer = np.zeros((h, w, 4), np.uint8)
    layer[h - 30:h - 10, 10:60, 3] = 255
    mask.apply_brush(state, {"layers": [layer, None]}, "old shadow (blue)")
    req = placement.request(state, 1.0, 0.0, 0.0, False, 0)
    assert state.shadow_edited and req.old_shadow[h - 20, 30]
    before = state.mask.copy()
    assert np.array_equal(state.mask, before)  # the product mask is untouched


def test_unticking_auto_shadow_starts_the_sliders_from_the_estimate(catalog):
    from components import realism

    state, _ = _flow(catalog)
    placement.preview(state, 1.0, 0.0, 0.0, False, 0)
    vx, vy, strength = realism._auto(state, False)
    assert vx["interactive"] and vx["value"] == round(state.light["vx"], 2)
    assert strength["value"] == round(state.light["strength"], 2)
    assert not realism._auto(state, True)[0]["interactive"]


def test_old_shadow_is_detected_once_per_mask(catalog, monkeypatch):
    state, _ = _flow(catalog)
    calls = []
    real = mask.find_old_shadow
    monkeypatch.setattr(mask, "find_old_shadow", lambda s, m: calls.append(1) or real(s, m))
    mask._view(state)
    mask._view(state)  # the same mask again: no second detection
    assert len(calls) == 0  # _flow already detected it for this mask
    state.mask = state.mask.copy()
    state.mask[0, 0] = not state.mask[0, 0]  # a changed mask is detected anew
    mask._view(state)
    assert len(calls) == 1
