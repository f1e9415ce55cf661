"""Quality with the shipped compact weights (models/weights/) on held-out pairs."""

import numpy as np
import pytest

from stager.backends import get_backend, weights
from stager.catalog import ground_truth
from stager.evaluate import heldout_pairs, masked_l1, sharpness_ratio
from stager.pipeline import StageRequest, get_context, prepare, run_backend

SHIPPED = all(weights.check(k)[0] for k in weights.FILES if k != "shade")  # the backends'


@pytest.mark.skipif(not SHIPPED, reason="shipped weights are missing from models/weights")
def test_shipped_weights_load_and_report_their_tier():
    for name in ("pix2pix", "edgeconnect", "edgeconnect_baseline", "diffusion"):
        b = get_backend(name)
        ok, why = b.available()
        assert ok, why
        assert b.tier == "trained compact" and "steps" in b.describe()
        # the Status tab is public: it names weights files, never the server's folders
        assert str(weights.path("edge").parent) not in b.describe()


@pytest.mark.skipif(not SHIPPED, reason="shipped weights are missing from models/weights")
def test_status_says_which_fill_edgeconnect_refines_and_was_trained_on(settings_env):
    """The shipped residual model was trained on line-guided fills: the Status row says so,
    and says the mismatch when STAGER_FILL_PRIOR asks for Telea's fill instead."""
    trained = weights.meta("inpaint_weighted").get("fsr_mix") or 0
    on = "line-guided Telea fills" + (f" blended {trained:.0%} with FSR" if trained else "")
    assert ("refines a line-guided Telea fill blended 65% with OpenCV's frequency-selective "
            f"reconstruction (STAGER_FSR_MIX) (trained on {on})"
            in get_backend("edgeconnect").describe())
    settings_env(FILL_PRIOR="telea", FSR_MIX=0)
    assert (f"refines a Telea fill (STAGER_FILL_PRIOR; trained on {on})"
            in get_backend("edgeconnect").describe())


@pytest.mark.skipif(not SHIPPED, reason="shipped weights are missing from models/weights")
def test_shipped_edgeconnect_refines_telea_without_losing_to_it(catalog):
    """The shipped inpainting models refine a classical fill (``prior: lines``, the line-guided
    Telea fill they were last trained on and refine in the pipeline): on held-out pairs they
    stay at Telea's gap L1 or below (5% tolerance; on the 48 pairs of ``evaluate``, session 13:
    0.0291 vs 0.0357) and are sharper than it (Telea smears the gap). A broken or untrained model fails the
    sharpness check (an untrained residual returns Telea exactly); the wrong weights or a
    white-hole model fail the L1 check (0.19 vs 0.10 for the white-hole GPU models)."""
    ctx = get_context()
    names = ("edgeconnect", "edgeconnect_baseline", "telea")
    l1 = {n: [] for n in names}
    sharp = {n: [] for n in names}
    for i, pr in enumerate(heldout_pairs(catalog, 12)):
        prep = prepare(StageRequest(pr.product_id, scene_id=pr.scene_id), ctx)
        gt, _ = ground_truth(catalog, pr.product_id, pr.scene_id)
        for name in names:
            out = run_backend(prep, name, seed=i)
            assert out.ok, out.error
            l1[name].append(masked_l1(out.image, gt, prep.gap))
            sharp[name].append(sharpness_ratio(out.image, gt, prep.gap))
    m = {k: float(np.mean(v)) for k, v in l1.items()}
    sh = {k: float(np.nanmean(v)) for k, v in sharp.items()}
    assert weights.meta("inpaint_weighted")["config"]["prior"] == "lines"
    assert m["edgeconnect"] <= 1.05 * m["telea"], m
    assert m["edgeconnect_baseline"] <= 1.10 * m["telea"], m
    assert sh["edgeconnect"] > 0.9 * sh["telea"], sh


@pytest.mark.skipif(not SHIPPED, reason="shipped weights are missing from models/weights")
def test_shipped_residual_improves_on_its_own_prior(catalog, settings_env):
    """Same ring, same input: the trained network against the line-guided fill it starts from
    (``STAGER_FILL_PRIOR``'s default; measured: 11% lower gap L1, better on 11 of 12 pairs). A zeroed or ignored correction
    gives the prior back and fails. (Without the FSR blend, which lowers the error by itself:
    ``tests/test_fsr_prior.py``.)"""
    from stager.backends import get_backend
    from stager.pipeline import hidden_region

    settings_env(FSR_MIX=0)
    ctx = get_context()
    model, prior = [], []
    for pr in heldout_pairs(catalog, 12):
        prep = prepare(StageRequest(pr.product_id, scene_id=pr.scene_id), ctx)
        gt, _ = ground_truth(catalog, pr.product_id, pr.scene_id)
        hidden, hole = hidden_region(prep), prep.fill_mask
        src = np.where(hidden[..., None], get_backend("telea")(prep.scene, hole), prep.scene)
        ring = hole & ~hidden
        model.append(masked_l1(get_backend("edgeconnect")(src, ring), gt, prep.gap))
        prior.append(masked_l1(get_backend("lines")(src, ring), gt, prep.gap))
    model, prior = np.array(model), np.array(prior)
    assert model.mean() < 0.96 * prior.mean(), (model.mean(), prior.mean())
    assert (model < prior).mean() >= 0.75
