import numpy as np

from stager import synth
from stager.catalog import default_specs, ground_truth
from stager.composite import gap_mask
from stager.furniture import FAMILIES
from stager.images import dilate


def test_generator_is_deterministic_for_a_seed():
    a_scenes, a_products = default_specs(6, 5, seed=3)
    b_scenes, b_products = default_specs(6, 5, seed=3)
    assert a_scenes == b_scenes and a_products == b_products
    la, lb = synth.render_scene(a_scenes[2]), synth.render_scene(b_scenes[2])
    assert np.array_equal(la.image, lb.image) and np.array_equal(la.mask, lb.mask)
    c_scenes, _ = default_specs(6, 5, seed=4)
    assert not np.array_equal(synth.render_scene(c_scenes[2]).image, la.image)


def test_default_catalog_contents(catalog):
    assert len(catalog.scenes) >= 200 and len(catalog.products) >= 60
    fams = {s.category for s in catalog.scenes}
    assert len(fams) >= 6 and fams <= set(FAMILIES)
    assert {p.category for p in catalog.products} == fams
    assert {s.split for s in catalog.scenes} == {"train", "eval"}
    heroes = [s.params["hero"] for s in catalog.scenes]
    # held-out products: none of the catalog products appears in any scene
    assert all(p.params not in heroes for p in catalog.products)
    s = catalog.scenes[0]
    img, mask = catalog.scene_image(s.id), catalog.scene_mask(s.id)
    assert img.shape == (512, 512, 3) and mask.shape == (512, 512) and mask.any()
    ys, xs = np.nonzero(mask)
    assert s.box == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    shot = catalog.product_image(catalog.products[0].id)
    assert shot.shape[2] == 4 and shot[0, 0].tolist() == [255, 255, 255, 0]


def test_scene_equals_background_outside_the_hero_and_its_shadow(catalog):
    s = catalog.scenes[3]
    img, bg, mask = catalog.scene_image(s.id), catalog.scene_background(s.id), catalog.scene_mask(s.id)
    x0, y0, x1, y1 = s.box
    far = ~dilate(mask, 4)
    far[y1 - 30:y1 + 30, x0 - 40:x1 + 40] = False  # contact shadow region
    assert np.abs(img.astype(int) - bg.astype(int))[far].max() <= 1
    assert np.abs(img.astype(int) - bg.astype(int))[mask].mean() > 5


def test_ground_truth_places_the_new_product_like_compositing(catalog):
    from stager.composite import place

    s = next(x for x in catalog.scenes if x.split == "eval")
    p = catalog.products[0]
    gt, new = ground_truth(catalog, p.id, s.id)
    old = catalog.scene_mask(s.id)
    placed = place(catalog.product_image(p.id), old)
    assert np.array_equal(new, placed.mask)
    gap = gap_mask(old, new, 6) & ~dilate(new, 1)  # minus the product's anti-aliased fringe
    bg = catalog.scene_background(s.id)
    # inside the gap the truth is the room (darkened at most by the contact shadow)
    diff = bg.astype(int)[gap] - gt.astype(int)[gap]
    assert diff.min() >= -1
    assert np.median(np.abs(diff)) <= 2
