"""Quality with the shipped compact weights (models/weights/) on held-out pairs."""

import numpy as np
import pytest

from stager.backends import get_backend, weights
from stager.catalog import ground_truth
from stager.evaluate import heldout_pairs, masked_l1
from stager.pipeline import StageRequest, get_context, prepare, run_backend

SHIPPED = all(weights.check(k)[0] for k in weights.FILES)


@pytest.mark.skipif(not SHIPPED, reason="shipped weights are missing from models/weights")
def test_shipped_weights_load_and_report_their_tier():
    for name in ("pix2pix", "edgeconnect", "edgeconnect_baseline", "diffusion"):
        b = get_backend(name)
        ok, why = b.available()
        assert ok, why
        assert b.tier == "trained compact" and "steps" in b.describe()


@pytest.mark.skipif(not SHIPPED, reason="shipped weights are missing from models/weights")
def test_edgeconnect_beats_telea_inside_the_gap(catalog):
    ctx = get_context()
    gaps = {"edgeconnect": [], "edgeconnect_baseline": [], "telea": []}
    for i, pr in enumerate(heldout_pairs(catalog, 16)):
        prep = prepare(StageRequest(pr.product_id, scene_id=pr.scene_id, harmonise=0.0), ctx)
        gt, _ = ground_truth(catalog, pr.product_id, pr.scene_id)
        for name in gaps:
            out = run_backend(prep, name, seed=i)
            assert out.ok, out.error
            gaps[name].append(masked_l1(out.image, gt, prep.gap))
    l1 = {k: float(np.mean(v)) for k, v in gaps.items()}
    assert l1["edgeconnect"] < l1["telea"], l1
    assert l1["edgeconnect_baseline"] < l1["telea"], l1
