"""The shade model: the trained reader of the floor's shading around an old product."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import shade as sd
from stager import shadows as sh
from stager.images import bbox, dilate


def _held_out_scenes(indices):
    """Default-catalog scenes rendered from their parameters (the catalog's seed, which the
    shade model never trained on), with their empty rooms."""
    from stager import synth
    from stager.catalog import default_specs
    from stager.config import get_settings

    specs, _ = default_specs(240, 0, get_settings().catalog_seed)
    return [synth.render_scene(specs[i]) for i in indices]


def test_untrained_shade_net_returns_the_classical_ratio():
    torch.manual_seed(0)
    net = sd.ShadeNet(8, 32).eval()
    x = torch.rand(2, 5, 32, 32)
    x[:, 4] = x[:, 4] * 1.4  # some out of the clamp range too
    out = torch.exp(net(x))
    want = x[:, 4:5].clamp(sd.RATIO_MIN, sd.RATIO_MAX)
    assert torch.allclose(out, want, atol=1e-5)


def _write_untrained(folder):
    from models.weights_io import save

    torch.manual_seed(0)
    net = sd.ShadeNet(4, 32)
    folder.mkdir(parents=True, exist_ok=True)
    save(net, folder / "shade.safetensors", {"model": "shade", "config": net.config, "steps": 0})


def test_missing_or_corrupt_shade_weights_fall_back_to_the_classical_ratio_and_say_so(
        tmp_path, settings_env):
    from models.weights_io import WeightsError

    (layers,) = _held_out_scenes([9])
    scene, old = layers.image, layers.mask.astype(bool)
    settings_env(WEIGHTS_DIR=tmp_path, SHADE_MODEL="auto")
    ok, why = sh.shade_reader()
    assert not ok and "shade.safetensors not found" in why and why.startswith("classical")
    classical = sh.shade_maps(scene, old, learned=False)
    auto = sh.shade_maps(scene, old)
    assert all(np.array_equal(a, b) for a, b in zip(auto, classical))
    with pytest.raises(WeightsError, match="not found"):
        sh.shade_maps(scene, old, learned=True)
    (tmp_path / "shade.safetensors").write_bytes(b"not a weights file")  # replaced: read again
    ok, why = sh.shade_reader()
    assert not ok and "unreadable" in why and "\n" not in why and str(tmp_path) not in why
    assert all(np.array_equal(a, b) for a, b in zip(sh.shade_maps(scene, old), classical))
    settings_env(WEIGHTS_DIR=tmp_path, SHADE_MODEL="OFF")
    ok, why = sh.shade_reader()
    assert not ok and "is off" in why and "STAGER_SHADE_MODEL=auto" in why
    from stager.config import get_settings

    settings_env(SHADE_MODEL="maybe")
    with pytest.raises(ValueError, match="STAGER_SHADE_MODEL='maybe': use auto or off"):
        get_settings()


def test_the_learned_path_end_to_end_with_an_untrained_network(tmp_path, settings_env,
                                                                catalog):
    """With a valid weights file the model reads (and says so); a zero correction leaves the
    classical ratio exactly, the spread is zero on the window only; the network is loaded once
    and again when the file is replaced; the Status tab and report.json name it."""
    import json

    from components import status
    from stager.pipeline import StageRequest, run_stage

    w = tmp_path / "w"
    _write_untrained(w)
    settings_env(WEIGHTS_DIR=w)  # auto, the default
    assert sh.shade_reader()[0]
    settings_env(WEIGHTS_DIR=w, SHADE_MODEL="off")
    assert not sh.shade_reader()[0]
    settings_env(WEIGHTS_DIR=w, SHADE_MODEL="auto")
    ok, why = sh.shade_reader()
    assert ok and why == "trained shade model (shade.safetensors)"
    (layers,) = _held_out_scenes([19])
    scene, old = layers.image, layers.mask.astype(bool)
    (rc, sc), (rl, sl) = sh.shade_maps(scene, old, learned=False), sh.shade_maps(scene, old)
    y0, y1, x0, x1 = sh._ratio_window(bbox(old), old.shape)
    inside = np.zeros(old.shape, bool)
    inside[y0:y1, x0:x1] = True
    assert np.array_equal(rc, rl)  # zero correction: the classical ratio, full resolution
    assert np.array_equal(sc[~inside], sl[~inside]) and (sl[inside] == 0).all()
    assert sc[inside].max() > 0
    net = sh.shade_model()
    assert sh.shade_model() is net  # cached
    _write_untrained(w)  # replaced on disk: loaded again
    assert sh.shade_model() is not net
    row = next(r for r in status.rows() if r[0] == "old-shadow reader")
    assert row[1] == "trained compact (shade model)" and "shade.safetensors" in row[3]
    res = run_stage(StageRequest(product="p003", scene_id=catalog.scenes[4].id,
                                 backends=["telea"]), out_dir=tmp_path / "job")
    report = json.loads((tmp_path / "job" / "report.json").read_text())
    assert report["old_shadow_reader"] == why and res.prepared.shadow_reader == why


def test_train_shade_writes_weights_that_name_their_data_and_refuses_the_catalogs_seed(
        tmp_path, capsys):
    from models.weights_io import read_meta
    from stager.cli import main

    out = tmp_path / "w"
    rc = main(["train", "shade", "--scenes", "10", "--negatives", "0.2", "--rooms", "0.3",
               "--res", "32",
               "--width", "4", "--steps",
               "3", "--batch", "2", "--device", "cpu", "--out", str(out), "--log-dir",
               str(tmp_path / "log"), "--sample-every", "3"])
    assert rc == 0
    m = read_meta(out / "shade.safetensors")
    assert m["model"] == "shade" and m["steps"] == 3 and m["device"] == "cpu"
    assert m["config"] == {"width": 4, "res": 32} and "seed 202" in m["data"]
    assert "10 generator scenes" in m["data"] and "2 negatives" in m["data"]
    assert "3 synthetic rooms" in m["data"]
    assert {"val_log_l1", "val_log_l1_classical", "lr"} <= set(m) and m["lr"] == 1e-3
    capsys.readouterr()
    assert main(["train", "shade", "--scenes", "2", "--shade-seed", "7", "--steps", "1",
                 "--out", str(tmp_path / "refused")]) != 0
    err = capsys.readouterr().err
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert "Traceback" not in err and len(lines) == 1 and "default catalog's seed" in lines[0]
    assert not (tmp_path / "refused").exists()


def test_each_model_gets_its_own_training_defaults():
    import types

    from models.train import model_defaults

    for model, want in (("shade", (24, 16, 1e-3)), ("edgeconnect", (16, 8, 1e-4)),
                        ("pix2pix", (16, 8, 1e-4)), ("diffusion", (16, 8, 1e-4))):
        a = types.SimpleNamespace(model=model, width=None, batch=None, lr=None)
        model_defaults(a)
        assert (a.width, a.batch, a.lr) == want
    a = types.SimpleNamespace(model="shade", width=8, batch=4, lr=0.5)
    model_defaults(a)
    assert (a.width, a.batch, a.lr) == (8, 4, 0.5)  # what the user set stays


def test_shipped_shade_model_reads_the_old_shadow_better_than_the_classical_ratio():
    """On default-catalog scenes (never trained on): the learned ratio is closer to the truth
    (the scene over its empty room) in the zone an old shadow may lie, finds more of the true
    shadow and reads far less lit floor as shade."""
    rows = {"classical": [], "learned": []}
    for layers in _held_out_scenes(range(4, 240, 30)):  # eval-split indices (i % 5 == 4)
        scene, bg, old = layers.image, layers.background, layers.mask.astype(bool)
        zone = sh._shadow_zone(old, bbox(old), 1.2) & ~dilate(old, 3)
        truth = (sh._luma(scene) + 0.5) / np.maximum(sh._luma(bg), 1.0)
        shade, lit = zone & (truth < 0.9), zone & (truth > 0.98)
        for name, learned in (("classical", False), ("learned", True)):
            r, _ = sh.shade_maps(scene, old, learned=learned)
            rows[name].append((np.abs(r - truth)[zone].mean(),
                               (r[shade] < 0.92).mean() if shade.any() else np.nan,
                               (r[lit] < 0.92).mean()))
    c, learned = (np.nanmean(np.array(rows[k]), axis=0) for k in ("classical", "learned"))
    # measured: error 0.010 vs 0.026, true shadow read 72% vs 70%, lit floor 0.03% vs 5%
    assert learned[0] < 0.6 * c[0]  # mean error in the zone
    assert learned[1] >= c[1]  # true shadow read as shade
    assert learned[2] < 0.5 * c[2]  # lit floor read as shade


def test_learned_maps_change_only_the_window():
    (layers,) = _held_out_scenes([14])
    scene, old = layers.image, layers.mask.astype(bool)
    y0, y1, x0, x1 = sh._ratio_window(bbox(old), old.shape)
    (rc, sc), (rl, sl) = (sh.shade_maps(scene, old, learned=False),
                          sh.shade_maps(scene, old, learned=True))
    outside = np.ones(old.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(rc[outside], rl[outside]) and np.array_equal(sc[outside], sl[outside])
    assert not np.allclose(rc[y0:y1, x0:x1], rl[y0:y1, x0:x1])
    assert (sl[y0:y1, x0:x1] == 0).all()  # the model judges colour on its window


def test_synthetic_rooms_cover_what_the_catalog_lacks_and_their_truth_only_darkens():
    """The shade model's extra training rooms: the scene is its empty room darkened (a shadow
    or a dark object) except on the product, so the true ratio never exceeds 1 off it; the
    floor far from the product is the empty room's; a share of products stand within 80 px
    of the bottom edge, some rooms have no cast shadow at all, some have dark objects."""
    from models.shade import synthetic_room

    rng = np.random.default_rng(0)
    bottom, textured, shaded = 0, 0, 0
    for _ in range(24):
        scene, room, old = synthetic_room(rng)
        assert scene.shape == room.shape == (512, 512, 3) and old.shape == (512, 512)
        assert old.any() and not old[:100].all()
        off = ~dilate(old, 2)
        lum_s, lum_r = sh._luma(scene), sh._luma(room)
        assert np.percentile((lum_s - lum_r)[off], 99.9) <= 1.0  # only darkens
        b = bbox(old)
        far = np.ones(old.shape, bool)
        far[max(b[1] - 40, 0):, max(b[0] - 2 * (b[3] - b[1]), 0):b[2] + 2 * (b[3] - b[1])] = False
        if far.sum() > 5000:
            assert np.abs(lum_s - lum_r)[far].mean() < 0.5
        bottom += b[3] >= 512 - 80
        textured += sh._luma(room)[400:].std() > 8
        shaded += ((lum_s < 0.9 * lum_r) & off).sum() > 200  # a shadow the room lacks
    assert 3 <= bottom < 24 and textured >= 6 and shaded >= 18


def test_shadowless_rooms_have_no_shade_and_the_default_rooms_are_unchanged():
    """``train shade --shadowless``: that share of the synthetic rooms has no shadow at all,
    not even the contact shadow along the base (the scene is its empty room there), so the
    model learns not to imagine one under a product; with the default (0) the rooms are the
    ones drawn before the option existed."""
    from models.shade import synthetic_room

    for i in range(12):
        a = synthetic_room(np.random.default_rng(i))
        b = synthetic_room(np.random.default_rng(i), shadowless=0.0)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        scene, room, old = synthetic_room(np.random.default_rng(i), shadowless=1.0)
        assert np.array_equal(old, a[2]) and np.array_equal(room, a[1])  # the same draws
        x0, _, x1, y1 = bbox(old)
        band = np.zeros(old.shape, bool)  # just below the base, where the contact shadow lies
        band[y1:y1 + 6, x0 + (x1 - x0) // 4:x1 - (x1 - x0) // 4] = True
        if band.sum() < 50:  # standing at the bottom edge
            continue
        darker = lambda img: float(np.median((sh._luma(room) - sh._luma(img))[band]))  # noqa
        assert darker(a[0]) > 3, i  # by default every room has a contact shadow
        assert darker(scene) < 0.5, i  # shadowless: none


def test_shadowless_rooms_keep_the_rooms_with_a_contact_shadow_only():
    """The shadowless share is drawn apart from the rooms whose product casts no shadow but
    stands in its contact shadow (one in eight): with ``--shadowless 0.5`` the rest of the
    rooms are the default ones, and those contact-only rooms are still among them."""
    from models.shade import synthetic_room

    same, contact_only, none = 0, 0, 0
    for i in range(64):
        a = synthetic_room(np.random.default_rng(i))
        scene, room, old = synthetic_room(np.random.default_rng(i), shadowless=0.5)
        off = ~dilate(old, 2)
        dark = (sh._luma(room) - sh._luma(scene) > 3) & off
        if not np.array_equal(scene, a[0]):
            none += not dark.any()
            continue
        same += 1
        x0, _, x1, y1 = bbox(old)
        w = x1 - x0
        near = np.zeros(old.shape, bool)  # the contact ellipse's reach
        near[max(y1 - int(0.16 * w) - 4, 0):y1 + int(0.16 * w) + 4,
             max(x0 - int(0.1 * w) - 4, 0):x1 + int(0.1 * w) + 4] = True
        contact_only += bool(dark.any() and not (dark & ~near).any())
    assert 20 <= same <= 44 and none >= 20
    assert contact_only >= 2
