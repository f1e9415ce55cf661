import cv2
import numpy as np
import pytest

from stager.composite import gap_mask, gap_ratio, paste, place
from stager.shadows import Light, apply_shade, object_shadow
from stager.images import ImageError, dilate


def _product(w, h, color=(200, 0, 0)):
    p = np.zeros((h, w, 4), np.uint8)
    p[..., :3] = color
    p[..., 3] = 255
    return p


def test_place_keeps_aspect_and_anchors_bottom_centre():
    old = np.zeros((100, 100), bool)
    old[40:80, 20:80] = True  # box 60 wide, 40 tall
    pl = place(_product(30, 30), old)  # square -> 40x40
    assert pl.sprite.shape[:2] == (40, 40)
    assert pl.box == (30, 40, 70, 80)
    flipped = place(_product(30, 30), old, scale=0.5, offset=(0.25, 0.0), flip=True)
    assert flipped.box[3] == 80 and flipped.box[2] - flipped.box[0] == 20
    assert (flipped.box[0] + flipped.box[2]) / 2 == pytest.approx(50 + 15, abs=1)


def test_gap_is_disjoint_from_product_and_inside_dilated_old(catalog):
    s = catalog.scenes[5]
    old = catalog.scene_mask(s.id)
    for p in catalog.products[:10]:
        pl = place(catalog.product_image(p.id), old)
        gap = gap_mask(old, pl.mask, 6)
        assert not (gap & pl.mask).any()
        assert not (gap & ~dilate(old, 6)).any()
        assert 0.0 <= gap_ratio(old, pl.mask) <= 1.0


def test_gap_ratio_by_hand():
    old = np.zeros((10, 10), bool)
    old[:, :4] = True
    new = np.zeros_like(old)
    new[:, :1] = True
    assert gap_ratio(old, new) == 0.75


def test_bad_placements():
    old = np.zeros((50, 50), bool)
    with pytest.raises(ImageError, match="empty"):
        place(_product(5, 5), old)
    old[:, :] = True
    with pytest.raises(ImageError, match="larger than the scene"):
        place(_product(10, 10), old, scale=2.0)
    with pytest.raises(ImageError, match="no visible pixels"):
        place(np.zeros((5, 5, 4), np.uint8), old)


def test_paste_and_shadow():
    img = np.full((60, 60, 3), 200, np.uint8)
    old = np.zeros((60, 60), bool)
    old[20:50, 20:40] = True
    pl = place(_product(10, 15), old)
    out = paste(img, pl)
    assert out[pl.mask].tolist()[0] == [200, 0, 0]
    assert np.array_equal(out[~dilate(pl.mask, 1)], img[~dilate(pl.mask, 1)])
    shaded = paste(apply_shade(img, object_shadow(pl.alpha, Light())), pl)
    below = shaded[pl.box[3] - 1, pl.box[2] + 2]
    assert below.mean() < 200 and np.array_equal(shaded[pl.mask], out[pl.mask])


def test_downscaled_product_has_no_backdrop_fringe():
    """A hard-edged red product whose removed backdrop (alpha 0) is still white underneath,
    placed smaller than it was shot and pasted on a black floor: every edge pixel is a mix of
    red and black only. A plain (straight-alpha) resize mixed the hidden white into the edge:
    green up to ~100 on a product and floor with none."""
    from stager.images import limit_side

    p = np.full((90, 70, 4), 255, np.uint8)  # white backdrop, transparent
    p[..., 3] = 0
    disc = np.zeros((90, 70), np.uint8)
    cv2.circle(disc, (35, 45), 30, 1, -1)  # hard-edged: round, so its box has backdrop
    p[disc > 0, :3] = (200, 0, 0)
    p[disc > 0, 3] = 255
    old = np.zeros((120, 120), bool)
    old[30:100, 40:80] = True  # the product is fitted at ~0.37x, edges partly covered
    pl = place(p, old, scale=0.37 / 0.7)
    edge = (pl.alpha > 0) & (pl.alpha < 1)
    assert edge.sum() > 20
    out = paste(np.zeros((120, 120, 3), np.uint8), pl)
    assert out[..., 1].max() <= 1 and out[..., 2].max() <= 1
    assert out[..., 0].max() >= 190  # the product itself is there, still red
    seen = pl.sprite[..., 3] > 0  # edge colours un-premultiplied: red, not darkened
    assert pl.sprite[seen][:, 0].min() >= 190 and pl.sprite[seen][:, 1:3].max() <= 1
    # an RGBA upload downscaled on load: the same, before any placement
    small = limit_side(p, 31)
    vis = small[..., 3] > 0
    assert ((small[..., 3] > 0) & (small[..., 3] < 255)).any()
    assert small[vis][:, 1].max() <= 1 and small[vis][:, 0].min() >= 190
    # the colour under alpha 0 (where a photo's shadow is read) is resized as it is
    assert (small[~vis][:, :3] >= 250).all()
