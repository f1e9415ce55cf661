"""The prior EdgeConnect refines blends in OpenCV's frequency-selective reconstruction (FSR)."""

import cv2
import numpy as np
import pytest

from models import edgeconnect as ec
from stager import gaps
from stager.backends import get_backend, weights
from stager.catalog import ground_truth
from stager.config import load_settings
from stager.evaluate import heldout_pairs, masked_l1
from stager.pipeline import StageRequest, get_context, prepare, run_backend

needs_xphoto = pytest.mark.skipif(not hasattr(cv2, "xphoto"),
                                  reason="this OpenCV build has no xphoto (opencv-contrib)")


def _gradient_image(h=96, w=128):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([40 + 1.2 * x, 60 + 1.5 * y, 200 - 0.8 * x], -1)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _ring(h=96, w=128):
    m = np.zeros((h, w), bool)
    m[30:70, 40:90] = True
    m[38:62, 48:82] = False  # a ring 8 px wide
    return m


@needs_xphoto
def test_fsr_reconstructs_a_smooth_image_and_keeps_the_rest():
    """On a linear colour ramp FSR restores the ring within a few grey levels (a fill that
    returned zeros, the raw prior or swapped the known and unknown pixels is far off), and
    no pixel outside the hole changes, at full scale or scaled down for a large hole."""
    img, ring = _gradient_image(), _ring()
    broken = img.copy()
    broken[ring] = 0
    for max_px in (8000, 300):  # the ring has 1,808 pixels: the second runs at 0.4x
        out = ec.fsr_fill(broken, ring, max_px)
        assert np.array_equal(out[~ring], broken[~ring])
        err = np.abs(out[ring].astype(int) - img[ring].astype(int)).mean()
        assert err < 4.0, (max_px, err)
    assert np.abs(ec.fsr_fill(broken, ring, 300)[ring].astype(int)
                  - ec.fsr_fill(broken, ring, 8000)[ring].astype(int)).max() > 0


@needs_xphoto
def test_blend_mixes_the_hole_only_and_zero_is_the_prior_itself():
    img, ring = _gradient_image(), _ring()
    prior = img.copy()
    prior[ring] = 128  # a flat classical fill
    assert ec.blend_fsr(prior, ring, 0.0) is prior  # bit-exact: off costs nothing
    f = ec.fsr_fill(prior, ring)
    half = ec.blend_fsr(prior, ring, 0.5)
    assert np.array_equal(half[~ring], prior[~ring])
    # here FSR departs from the flat fill by far more than the clip: only as much as allowed
    free = ec.blend_fsr(prior, ring, 0.5, low_clip=1000.0)  # no bound: the plain blend
    want = np.clip(0.5 * prior.astype(np.float32) + 0.5 * f.astype(np.float32) + 0.5, 0, 255)
    assert np.abs(free[ring].astype(int) - want.astype(np.uint8)[ring].astype(int)).max() == 0
    assert np.array_equal(ec.blend_fsr(prior, ring, 1.0, low_clip=1000.0)[ring], f[ring])
    d_half = np.abs(half[ring].astype(int) - prior[ring].astype(int)).mean()
    d_free = np.abs(free[ring].astype(int) - prior[ring].astype(int)).mean()
    assert d_half < 0.75 * d_free, (d_half, d_free)  # a ramp FSR restores, the fill flattened


def test_fsr_mix_setting_is_checked():
    assert load_settings({}).fsr_mix == pytest.approx(0.65)
    with pytest.raises(ValueError, match="STAGER_FSR_MIX=1.5: use a share from 0 to 1"):
        load_settings({"STAGER_FSR_MIX": "1.5"})
    with pytest.raises(ValueError, match="STAGER_FSR_MAX_PX=10: use 64 or more"):
        load_settings({"STAGER_FSR_MAX_PX": "10"})


@needs_xphoto
def test_training_batches_carry_the_blend_on_the_ring_only():
    """``train --fsr-mix`` builds the model's input as the backend does: the ring (the hole
    minus what the new product hides) gets the blend, everything else is the prior's batch."""
    from models.data import InpaintPool
    from models.train import _RingBatch

    pool = InpaintPool(None, 64, crops=4, masks=8, data="real", seed=0)
    idx = pool.batch(np.random.default_rng(0), 4)
    plain = _RingBatch(pool, "telea", 4.0)(idx, [4.0])
    mixed = _RingBatch(pool, "telea", 4.0, fsr_mix=0.65)(idx, [4.0])
    ring = plain[4][:, 0] > 0.5
    assert np.array_equal(plain[0], mixed[0])  # the truth
    assert np.array_equal(plain[1][~ring], mixed[1][~ring])
    assert np.abs(plain[1][ring].astype(int) - mixed[1][ring].astype(int)).mean() > 0.5


SHIPPED = all(weights.check(k)[0] for k in ("edge", "inpaint_weighted"))


@needs_xphoto
@pytest.mark.skipif(not SHIPPED, reason="shipped weights are missing from models/weights")
def test_blended_prior_lowers_edgeconnects_error_on_held_out_pairs(catalog, settings_env):
    """The same shipped network on the same rings, with and without FSR in its prior: on 10
    held-out catalog pairs the blend lowers gap L1 (48 pairs: 0.0301 -> 0.0287 with fine-tune
    10 and the low-frequency bound) and on real-photo gaps too (30 gaps: 0.0833 -> 0.0823).
    A blend of the wrong pixels or a reconstruction that returned the prior fails."""
    ctx = get_context()
    pairs = heldout_pairs(catalog, 10)
    scores = {}
    for mix in ("0", "0.65"):
        settings_env(FSR_MIX=mix)
        cat = []
        for i, pr in enumerate(pairs):
            prep = prepare(StageRequest(pr.product_id, scene_id=pr.scene_id), ctx)
            gt, _ = ground_truth(catalog, pr.product_id, pr.scene_id)
            out = run_backend(prep, "edgeconnect", seed=i)
            assert out.ok, out.error
            cat.append(masked_l1(out.image, gt, prep.gap))
        real = []
        photos = gaps.real_photos("heldout", max_side=384)
        for j, (name, img) in enumerate(sorted(photos.items())):
            g = gaps.product_gap(np.random.default_rng(j), img.shape[:2], height=(0.3, 0.6),
                                 shadow=0.0)
            from stager.pipeline import fill_plate

            hidden = g.hole & g.hidden()
            plate = fill_plate("edgeconnect", img, g.hole, hidden)
            real.append(masked_l1(plate, img, g.visible))
        scores[mix] = (np.array(cat), np.array(real))
    (c0, r0), (c1, r1) = scores["0"], scores["0.65"]
    assert c1.mean() < 0.98 * c0.mean(), (c1.mean(), c0.mean())
    assert (c1 < c0).mean() >= 0.6
    assert r1.mean() < r0.mean(), (r1.mean(), r0.mean())
    desc = get_backend("edgeconnect").describe()
    assert "blended 65% with OpenCV's frequency-selective reconstruction" in desc
