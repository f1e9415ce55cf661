import cv2
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from stager.evaluate import (boundary_band, sharpness_ratio, fid, frechet_distance, heldout_pairs, kid,
                             unpaired_distances,
                             masked_l1, masked_psnr, ssim_map)


def test_ssim_matches_skimage():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    _, ref = structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=True, data_range=255, full=True)
    ours = ssim_map(a, b)
    inner = (slice(5, -5), slice(5, -5))  # skimage's map is exact away from the border
    assert np.allclose(ours[inner], ref.mean(axis=2)[inner], atol=1e-6)


def test_frechet_distance_against_closed_forms():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    d1, d2 = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    # diagonal covariances: ||mu1-mu2||^2 + sum (sqrt(a) - sqrt(b))^2
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected, rel=1e-9)
    # general SPD: trace of sqrt(S1 S2) via eigenvalues of S1^(1/2) S2 S1^(1/2)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + np.eye(4), b @ b.T + np.eye(4)
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(w)) @ v.T
    tr = np.sqrt(np.linalg.eigvalsh(r1 @ s2 @ r1)).sum()
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_and_kid_separate_distributions():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(400, 3)), rng.normal(size=(400, 3))
    z = rng.normal(loc=1.0, size=(400, 3))
    assert fid(x, y) < 0.1 < 2.5 < fid(x, z) < 4.5  # shift 1 in 3 dims -> about 3 + noise
    assert abs(kid(x, y)) < 0.01 < kid(x, z)


def test_unpaired_distances_never_score_a_pair_with_itself(monkeypatch):
    """FID/KID over shared random halvings: no output meets its own ground truth (outputs
    that copy their truths still score well above zero), no row is used twice in a half, a
    shifted set scores far higher, and the value is the unbiased-by-repetition one (24 rows
    of 20-d normals: 9.6; a bootstrap with repeated rows gave 15.7)."""
    from stager import evaluate as ev

    truth = np.random.default_rng(0).normal(size=(48, 20))
    splits = ev.halvings(48, 100, seed=1)
    seen = []
    real_fid = ev.fid

    def spy(a, b):
        seen.append((a, b))
        return real_fid(a, b)

    monkeypatch.setattr(ev, "fid", spy)
    copied = unpaired_distances(truth, truth, splits)
    for a, b in seen:
        assert len({r.tobytes() for r in a}) == len(a) == len(b) == 24
        assert not {r.tobytes() for r in a} & {r.tobytes() for r in b}
    monkeypatch.setattr(ev, "fid", real_fid)
    shifted = unpaired_distances(truth + 1.0, truth, splits)
    assert 5.0 < copied["fid"]["mean"] < 12.0
    assert shifted["fid"]["mean"] > copied["fid"]["mean"] + 15  # + 20 from the mean shift
    assert shifted["kid"]["mean"] > copied["kid"]["mean"]
    assert np.isnan(unpaired_distances(truth[:6], truth[:6], splits[:3])["fid"]["mean"])
    # the same splits give the same value whatever ran before
    assert unpaired_distances(truth, truth, ev.halvings(48, 100, seed=1)) == copied


def test_masked_metrics_by_hand():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0] = 255
    m = np.zeros((4, 4), bool)
    m[0, :2] = True
    assert masked_l1(a, b, m) == pytest.approx(0.5)
    assert masked_psnr(a, b, m) == pytest.approx(10 * np.log10(2))
    gap = np.zeros((40, 40), bool)
    gap[5:35, 5:35] = True
    band = boundary_band(gap, width=8)
    assert band[5, 20] and band[12, 20] and not band[20, 20]
    # the band counts distance to known background only, not to the new product
    new = np.zeros((40, 40), bool)
    new[15:35, 5:35] = True  # the new product covers the gap's lower part and its sides
    ring = gap & ~new
    known = ~gap
    band = boundary_band(ring, known, width=8)
    assert band[5, 20] and band[12, 20] and not band[14, 20]  # row 14: 9 px from known
    assert not band[14, 20] and ring[14, 20]


def test_sharpness_ratio_sees_blur():
    rng = np.random.default_rng(0)
    truth = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    m = np.ones((64, 64), bool)
    assert sharpness_ratio(truth, truth, m) == pytest.approx(1.0)
    blurred = cv2.GaussianBlur(truth, (0, 0), 2)
    assert sharpness_ratio(blurred, truth, m) < 0.5


def test_heldout_pairs_use_eval_scenes_of_the_same_category(catalog):
    pairs = heldout_pairs(catalog, 30)
    assert len(pairs) == 30 and pairs == heldout_pairs(catalog, 30)
    for p in pairs:
        s = catalog.scene(p.scene_id)
        assert s.split == "eval" and s.category == catalog.product(p.product_id).category
