"""Training on a designer's own catalog, the device choice, the weighted loss's scale, the
residual (classical prior) generator, and native-resolution fills (issue 9)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from models import edgeconnect as ec
from models.train import WEIGHT_FILES, resolve_device
from models.weights_io import read_meta
from stager import gaps
from stager.catalog import Catalog, import_folders
from stager.images import save_png


def test_device_auto_picks_cuda_only_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    with pytest.raises(ValueError, match="choose auto"):
        resolve_device("tpu")


def test_weighted_l1_has_the_plain_scale():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    hole = np.zeros((32, 32), bool)
    hole[8:24, 8:24] = True
    m = torch.from_numpy(hole.astype(np.float32))[None, None].repeat(2, 1, 1, 1)
    plain = (pred - target).abs().mean() / m.mean()
    ones = torch.ones(2, 1, 32, 32)
    assert ec.weighted_l1(pred, target, ones, m).item() == pytest.approx(plain.item(), rel=1e-6)
    w = torch.from_numpy(ec.boundary_weight(hole, 4.0, 4.0))[None, None].repeat(2, 1, 1, 1)
    # normalised by its mean: scaling the weights changes nothing, and the mean weight is 1
    a = ec.weighted_l1(pred, target, w, m).item()
    assert ec.weighted_l1(pred, target, 3 * w, m).item() == pytest.approx(a, rel=1e-5)
    assert (w / w.mean(dim=(-2, -1), keepdim=True)).mean().item() == pytest.approx(1.0)
    # the weights matter: an error on the boundary costs more than the same error far away
    err_b, err_f = target.clone(), target.clone()
    err_b[..., 8, 8:24] += 0.5  # on the hole's boundary
    err_f[..., 16, 8:24] += 0.5  # in its middle
    assert ec.weighted_l1(err_b, target, w, m) > 1.3 * ec.weighted_l1(err_f, target, w, m)
    assert ec.weighted_l1(err_b, target, ones, m) == pytest.approx(
        ec.weighted_l1(err_f, target, ones, m).item())


def test_residual_generator_starts_at_its_prior():
    torch.manual_seed(0)
    g = ec.InpaintGenerator(8, 1, prior="telea")
    rgb = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[20:40, 20:44] = True
    edge = ec.EdgeGenerator(4, 1)
    out = ec.inpaint(edge, g, rgb, hole)
    prior = ec.classical_prior(rgb, hole)
    assert np.abs(out.astype(int) - prior.astype(int)).max() <= 1  # untrained: the prior
    assert np.array_equal(out[~hole], rgb[~hole])
    assert ec.build_inpaint(g.config).prior == "telea"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """A catalog of five imported real photographs (no synthetic scenes)."""
    root = tmp_path_factory.mktemp("own")
    (root / "rooms").mkdir()
    for name, img in list(gaps.real_photos("train", max_side=256).items())[:5]:
        save_png(root / "rooms" / f"{name}.png", img)
    base = Catalog(root / "catalog", [], [], 0)
    base.save()
    cat, skipped = import_folders(base, root / "rooms")
    assert len(cat.scenes) == 5 and not skipped
    return root


def test_train_on_an_imported_catalog_and_evaluate(imported, tmp_path, settings_env,
                                                    tiny_weights):
    from stager.cli import main

    settings_env(DATA_DIR=imported)
    out = tmp_path / "mine"
    assert main(["train", "edgeconnect", "--stage", "inpaint", "--data", "catalog", "--init",
                 str(tiny_weights), "--out", str(out), "--log-dir", str(tmp_path / "log"),
                 "--steps", "2", "--res", "64", "--batch", "2", "--crops", "6", "--holes", "4",
                 "--device", "auto", "--sample-every", "1"]) == 0
    meta = read_meta(out / WEIGHT_FILES["inpaint_weighted"])
    assert meta["steps"] == 2 and meta["device"] == "cpu"
    assert "current catalog" in meta["data"] and "6 crops" in meta["data"]
    assert meta["init"].endswith(WEIGHT_FILES["inpaint_weighted"])
    for k in ("pix2pix", "diffusion", "inpaint_baseline"):
        if not (out / WEIGHT_FILES[k]).exists():
            shutil.copy(tiny_weights / WEIGHT_FILES[k], out / WEIGHT_FILES[k])
    settings_env(DATA_DIR=imported, WEIGHTS_DIR=out)
    assert main(["evaluate", "--pairs", "0", "--real", "1", "--backends", "edgeconnect,telea",
                 "--bootstrap", "20", "--out", str(tmp_path / "ev")]) == 0
    assert "EdgeConnect" in (tmp_path / "ev" / "eval_sets.md").read_text()
    # the held-out fifth of the imported scenes, scored with the training gap generator
    from models.data import _held_out, catalog_images, held_out_imports
    from stager.catalog import open_catalog

    cat = open_catalog(imported / "catalog", build=False)
    held = held_out_imports(cat)
    assert set(held) == {s.id for s in cat.scenes if _held_out(s.id)}
    train = {img.tobytes() for img in catalog_images(cat, "train")}
    assert len(train) == 5 - len(held)
    assert not train & {img.tobytes() for img in held.values()}  # nothing held out is trained on
    from stager.pipeline import reset_context

    reset_context()  # another test's process-wide context may hold another catalog
    rc = main(["evaluate", "--pairs", "0", "--imported", "1", "--backends", "edgeconnect,telea",
               "--bootstrap", "20", "--out", str(tmp_path / "ev2")])
    if held:
        assert rc == 0
        rep = json.loads((tmp_path / "ev2" / "eval_sets.json").read_text())["imported"]
        assert rep["photos"] == sorted(held) and rep["gaps"] == len(held)
        assert rep["backends"]["telea"]["gap_l1"]["mean"] > 0
    else:  # nothing held out among five: a one-line error, not a traceback
        assert rc == 2


def test_native_resolution_keeps_detail(settings_env):
    """The same backend fills a 10-px ring in a 1024-px photo with more high-frequency energy
    at native resolution than through a 128-px window (the issue's test; the margin is small
    since the L1 fine-tune's corrections are smooth, but a path that ran at 128 px gives a
    ratio of exactly 1), and much closer to the true pixels (at 128 px the ring is a pixel
    wide and comes back blurred: 10.3 against 17.8 grey levels)."""
    from stager.backends import get_backend
    from stager.pipeline import fill_plate

    img = cv2.resize(gaps.real_photos("all", 1024)["brick"], (1024, 1024))
    yy, xx = np.mgrid[0:1024, 0:1024]
    d = np.hypot(yy - 512, xx - 512)
    ring = (d > 150) & (d < 160)

    def hf(out):
        g = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.abs(cv2.Laplacian(g, cv2.CV_32F))[ring].mean())

    def l1(out):
        return float(np.abs(out.astype(np.float32) - img)[ring].mean())

    settings_env(FILL_MAX_SIDE="2048")
    native = fill_plate("edgeconnect", img, ring)
    settings_env(FILL_MAX_SIDE="128")
    small = fill_plate("edgeconnect", img, ring)
    assert get_backend("edgeconnect").available()[0]
    assert hf(native) > 1.05 * hf(small)
    assert l1(native) < 0.7 * l1(small)


def test_residual_model_refines_telea_of_the_whole_region(tmp_path, settings_env, tiny_weights):
    """In a staging job a residual model starts from Telea's fill of the *whole* region (the
    part under the new product included), as it was trained; an untrained one (zero last
    layer) returns exactly that fill in the visible ring. Telea run again on the ring alone,
    around its own fill, is a different (and measurably worse) prior. (Without the FSR
    blend, which changes that fill by design: ``tests/test_fsr_prior.py``.)"""
    from models.weights_io import save
    from stager.backends import get_backend
    from stager.pipeline import fill_plate

    w = tmp_path / "w"
    shutil.copytree(tiny_weights, w)
    torch.manual_seed(0)
    g = ec.InpaintGenerator(4, 1, prior="telea")
    save(g, w / WEIGHT_FILES["inpaint_weighted"], {"config": g.config, "steps": 0})
    settings_env(WEIGHTS_DIR=w, FSR_MIX=0)
    img = cv2.resize(gaps.real_photos("all", 256)["brick"], (160, 160))
    g0 = gaps.product_gap(np.random.default_rng(3), (160, 160), height=(0.5, 0.6), shadow=0.0)
    hidden = g0.hole & (cv2.erode(g0.new.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)
    ring = g0.hole & ~hidden
    assert ring.any() and hidden.any()
    out = fill_plate("edgeconnect", img, g0.hole, hidden)
    telea = get_backend("telea")(img, g0.hole)
    assert np.abs(out.astype(int) - telea.astype(int))[ring].max() <= 1
    two_pass = get_backend("telea")(np.where(hidden[..., None], telea, img), ring)
    assert np.abs(two_pass.astype(int) - telea.astype(int))[ring].max() > 8


def test_time_budget_replans_when_the_machine_slows(tmp_path, monkeypatch):
    """--max-minutes plans the steps from the pace of the first 20 and re-plans every 25: a
    run whose steps get 4x slower mid-way still ends near its budget (a fixed plan would run
    to the first estimate, here far past it). A fake clock makes this exact."""
    import types

    from models import train as tr

    clock = {"t": 0.0}
    monkeypatch.setattr(tr.time, "time", lambda: clock["t"])

    def step_fn(step):
        clock["t"] += 1.0 if step < 100 else 4.0  # seconds per step
        return {"loss": 0.0}

    args = types.SimpleNamespace(steps=10_000, max_minutes=10, resume=False, sample_every=50)
    sample = lambda: np.zeros((4, 4, 3), np.uint8)  # noqa: E731
    wall = tr._loop(args, "t", tmp_path, {"m": torch.nn.Linear(1, 1)}, step_fn, sample)
    assert 520 <= wall <= 640  # a 600-s budget
    assert 200 < args.steps < 240  # 100 fast steps, then about 500 s / 4 s
    planned = args.steps
    # a resume keeps the planned length (the cosine schedule with it) and the spent budget
    again = types.SimpleNamespace(steps=10_000, max_minutes=10, resume=True, sample_every=50)
    wall2 = tr._loop(again, "t", tmp_path, {"m": torch.nn.Linear(1, 1)}, step_fn, sample)
    assert again.steps == planned and wall2 == wall


def test_residual_training_runs_on_the_pipelines_rings(tmp_path, settings_env, tiny_weights):
    """A residual (prior="telea") model fine-tunes through the real training loop on the
    pipeline's input: rings around a hidden part that lies inside the hole, and it moves."""
    from models.data import InpaintPool
    from models.weights_io import load_into, save
    from stager.cli import main

    init = tmp_path / "init"
    shutil.copytree(tiny_weights, init)
    torch.manual_seed(0)
    g = ec.InpaintGenerator(4, 1, prior="telea")
    save(g, init / WEIGHT_FILES["inpaint_weighted"], {"config": g.config, "steps": 0})
    pool = InpaintPool(None, 64, crops=4, masks=12, data="real", seed=0)
    idx = pool.batch(np.random.default_rng(0), 12)
    _, _, holes = pool.take(idx)
    hidden = pool.take_hidden(idx)
    assert not (hidden & ~holes).any() and hidden.any()  # flipped alike, inside the holes
    out = tmp_path / "out"
    assert main(["train", "edgeconnect", "--stage", "inpaint", "--data", "real", "--init",
                 str(init), "--out", str(out), "--log-dir", str(tmp_path / "log"),
                 "--steps", "3", "--res", "64", "--batch", "2", "--crops", "6", "--holes", "6",
                 "--variants", "weighted", "--lr", "1e-2", "--adv-weight", "0",
                 "--grad-weight", "0.5"]) == 0
    meta = read_meta(out / WEIGHT_FILES["inpaint_weighted"])
    assert meta["config"]["prior"] == "telea" and meta["steps"] == 3
    assert meta["adversarial_weight"] == 0.0 and meta["gradient_weight"] == 0.5
    import csv

    with (tmp_path / "log" / "inpaint_weighted_loss.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(float(r["weighted_adv"]) == 0.0 for r in rows)
    assert all(float(r["weighted_grad"]) > 0.0 for r in rows)  # the gradient term is logged
    trained = ec.build_inpaint(meta["config"])
    load_into(trained, out / WEIGHT_FILES["inpaint_weighted"])
    last = trained.decoder[-1].weight.detach()
    assert last.abs().max() > 0  # the zero-initialised correction has started to learn


def test_residual_model_retrained_on_the_line_guided_prior(tmp_path, settings_env, tiny_weights,
                                                          monkeypatch):
    """``--prior lines`` with ``--init``: a Telea-trained residual model is retrained on the
    line-guided fill it refines in the pipeline. Every training batch is built on that fill
    (not Telea's), and the weights say so (``config.prior``), so the Status row can say which
    fill the model was trained on."""
    from models.weights_io import save
    from stager.cli import main

    init = tmp_path / "init"
    shutil.copytree(tiny_weights, init)
    torch.manual_seed(0)
    g = ec.InpaintGenerator(4, 1, prior="telea")
    save(g, init / WEIGHT_FILES["inpaint_weighted"], {"config": g.config, "steps": 0})
    kinds = []
    real = ec.classical_prior
    monkeypatch.setattr(ec, "classical_prior",
                        lambda rgb, mask, kind="telea": kinds.append(kind) or real(rgb, mask, kind))
    out = tmp_path / "out"
    assert main(["train", "edgeconnect", "--stage", "inpaint", "--data", "real", "--init",
                 str(init), "--out", str(out), "--log-dir", str(tmp_path / "log"),
                 "--steps", "2", "--res", "64", "--batch", "2", "--crops", "6", "--holes", "6",
                 "--variants", "weighted", "--adv-weight", "0", "--prior", "lines"]) == 0
    assert kinds and set(kinds) == {"lines"}
    assert read_meta(out / WEIGHT_FILES["inpaint_weighted"])["config"]["prior"] == "lines"


def test_batches_built_in_worker_processes_match_the_inline_ones():
    """``--workers`` > 1 builds the inpainting batches ahead in worker processes (the classical
    prior is CPU work that would leave a GPU idle). They arrive in the plan's order and equal,
    bit for bit, the batches built inline, boundary weights included."""
    from models.data import InpaintPool
    from models.train import _prefetch, _RingBatch, _to_dev

    pool = InpaintPool(None, 64, crops=8, masks=8, data="real", seed=0)
    make = _RingBatch(pool, "lines", 4.0)

    def plan(seed):
        rng = np.random.default_rng(seed)
        return ({0: pool.batch(rng, 3)} for _ in range(5))

    cpu = torch.device("cpu")
    inline = [_to_dev(b[0], cpu) for b in _prefetch(make, plan(1), [0.0, 4.0], 1, cpu)]
    ahead = [_to_dev(b[0], cpu) for b in _prefetch(make, plan(1), [0.0, 4.0], 2, cpu)]
    assert len(inline) == len(ahead) == 5
    for a, b in zip(inline, ahead):
        for x, y in zip(a[:5], b[:5]):
            assert x.dtype == y.dtype == torch.float32 and torch.equal(x, y)
        assert a[0].shape == (3, 3, 64, 64) and 0 <= float(a[0].min()) and float(a[0].max()) <= 1
        for lam in (0.0, 4.0):
            assert torch.equal(a[5][lam], b[5][lam])
    # consecutive batches differ (the stream advances: a worker did not repeat one)
    assert not torch.equal(inline[0][1], inline[1][1])


def test_training_with_worker_processes_saves_and_stops_them(tmp_path, settings_env,
                                                             tiny_weights):
    """A short run with ``--workers 2`` writes its weights and leaves no worker running."""
    import multiprocessing

    from models.weights_io import save
    from stager.cli import main

    init = tmp_path / "init"
    shutil.copytree(tiny_weights, init)
    torch.manual_seed(0)
    g = ec.InpaintGenerator(4, 1, prior="telea")
    save(g, init / WEIGHT_FILES["inpaint_weighted"], {"config": g.config, "steps": 0})
    out = tmp_path / "out"
    assert main(["train", "edgeconnect", "--stage", "inpaint", "--data", "real", "--init",
                 str(init), "--out", str(out), "--log-dir", str(tmp_path / "log"),
                 "--steps", "3", "--res", "64", "--batch", "2", "--crops", "6", "--holes", "6",
                 "--variants", "weighted", "--adv-weight", "0", "--workers", "2"]) == 0
    assert read_meta(out / WEIGHT_FILES["inpaint_weighted"])["steps"] == 3
    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


def test_pool_shares_set_the_sources_of_the_crops():
    """--shares decides which sources the crops come from and in what proportion; a name the
    data choice does not read is refused."""
    from models.data import InpaintPool, parse_shares

    assert parse_shares("real=1,texture=3") == {"real": 0.25, "texture": 0.75}
    assert parse_shares(None) is None
    for bad in ("real=1,wood=1", "real=-1", "real", "catalog=0,real=0", "real=nan",
                "real=inf", "real=1,real=2"):
        with pytest.raises(ValueError):
            parse_shares(bad)
    with pytest.raises(ValueError):
        parse_shares("texture=1", data="real")
    pool = InpaintPool(None, 32, crops=400, masks=2, data="mix", seed=0,
                       shares=parse_shares("real=1,texture=3"))
    assert set(pool.counts) == {"real", "texture"} and sum(pool.counts.values()) == 400
    assert 270 <= pool.counts["texture"] <= 330  # 300 expected; 50/50 or 40/60 falls outside
    # the default shares and the same shares given explicitly draw the same pool
    same = [InpaintPool(None, 32, crops=30, masks=4, data="real", seed=3, shares=sh)
            for sh in (None, parse_shares("real=1", data="real"))]
    assert np.array_equal(same[0].images, same[1].images)
    assert np.array_equal(same[0].holes, same[1].holes)
    only = InpaintPool(None, 32, crops=20, masks=2, data="mix", seed=0,
                       shares=parse_shares("texture=1"))
    assert only.counts == {"texture": 20}


def test_shares_without_the_catalog_never_open_or_build_one(tmp_path, settings_env,
                                                            tiny_weights):
    """``--shares real=1,texture=1`` trains without a catalog: none is built in an empty data
    folder, and the weights' metadata names the shares."""
    from stager.cli import main

    settings_env(DATA_DIR=tmp_path / "nodata")
    out = tmp_path / "w"
    assert main(["train", "edgeconnect", "--stage", "inpaint", "--data", "mix", "--shares",
                 "real=1,texture=1", "--init", str(tiny_weights), "--out", str(out),
                 "--log-dir", str(tmp_path / "log"), "--steps", "2", "--res", "32",
                 "--batch", "2", "--crops", "8", "--holes", "4", "--variants", "weighted",
                 "--adv-weight", "0"]) == 0
    assert not (tmp_path / "nodata" / "catalog").exists()
    meta = read_meta(out / WEIGHT_FILES["inpaint_weighted"])
    assert "--shares real=1,texture=1" in meta["data"] and "catalog" not in meta["data"].split(
        ";")[1]


def test_room_share_draws_plain_rooms_with_a_floor_line():
    """``--shares ...,room=x`` adds plain rooms (a wall over a floor; gaps cut across the
    floor line teach a fill not to draw a skirting the room lacks): each crop of that source
    is two flat colours split by one boundary, with noise and no texture beyond it; the name
    is refused where the data choice is not the mix."""
    from models.data import InpaintPool, parse_shares
    from stager.gaps import plain_room_background

    assert parse_shares("catalog=2,room=2") == {"catalog": 0.5, "room": 0.5}
    with pytest.raises(ValueError):
        parse_shares("room=1", data="real")
    pool = InpaintPool(None, 64, crops=40, masks=2, data="mix", seed=0,
                       shares=parse_shares("room=1"))
    assert pool.counts == {"room": 40}
    rng = np.random.default_rng(0)
    for _ in range(20):
        img = plain_room_background(rng, 128).astype(np.float32)
        top, bottom = img[:8].reshape(-1, 3), img[-8:].reshape(-1, 3)
        # wall and floor: each nearly one colour (noise <= 6, a gradient <= 20%), and apart
        assert np.abs(top.mean(0) - bottom.mean(0)).mean() > 15
        assert bottom.std(axis=0).max() < 8  # the floor: one colour and noise, no texture
