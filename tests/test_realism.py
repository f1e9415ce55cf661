"""Ad-grade compositing: clean fills, base lines, shadows, light matching (issue 8).

The imported-room tests build a plain room (wall over floor, noise sigma 3) whose clean
background is known, put a vivid red old product with its cast shadow in it, import it with
``catalog import`` and stage a blue product with every copy-paste backend.
"""

from __future__ import annotations

import numpy as np
import pytest

from stager import composite as comp
from stager import shadows as sh
from stager import synth
from stager.backends import COPY_PASTE
from stager.catalog import Catalog, import_folders
from stager.images import dilate, save_png
from stager.pipeline import Context, StageRequest, finish, prepare, run_backend
from stager.segment import cutout_layers, mask_iou

WALL, FLOOR, HORIZON = (200, 190, 170), (120, 90, 60), 300


def plain_room(seed: int = 0, size: int = 512) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.float32)
    img[:HORIZON] = WALL
    img[HORIZON:] = FLOOR
    img += rng.normal(0, 3, img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def red_product(size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(alpha HxW float, box) of a sofa-shaped old product standing at y = 400."""
    sprite = synth.render_product(synth.sample_product(np.random.default_rng(3), "sofa"), 150)
    a = np.zeros((size, size), np.float32)
    h, w = sprite.shape[:2]
    x0, y0 = 256 - w // 2, 400 - h
    a[y0:y0 + h, x0:x0 + w] = sprite[..., 3] / 255.0
    return a, (x0, y0, x0 + w, y0 + h)


def blue_shot() -> np.ndarray:
    """A catalog shot (RGB on white with a drop shadow) of a blue armchair, and its alpha."""
    p = synth.sample_product(np.random.default_rng(5), "armchair")
    p = {**p, "color": [40, 60, 200]} if "color" in p else p
    shot = synth.catalog_shot(p, 384)
    rgb = shot[..., :3].copy()
    prod = shot[..., 3] > 0
    rgb[prod] = (rgb[prod] * np.array([0.2, 0.35, 1.0])).astype(np.uint8)  # make it vivid blue
    rgb[prod, 2] = np.maximum(rgb[prod, 2], 150)
    return np.dstack([rgb, shot[..., 3]])


@pytest.fixture(scope="module")
def room_job(tmp_path_factory):
    """An imported plain room with a red old product and its cast shadow."""
    root = tmp_path_factory.mktemp("room")
    clean = plain_room()
    alpha, box = red_product()
    light = sh.Light(vx=0.6, vy=-0.12, softness=0.04, strength=0.45, contact=0.5)
    shade = sh.object_shadow(alpha, light)
    img = clean.astype(np.float32) * shade[..., None]
    img = img * (1 - alpha[..., None]) + np.array([220, 20, 30], np.float32) * alpha[..., None]
    scene = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    (root / "rooms").mkdir()
    save_png(root / "rooms" / "room.png", scene)
    save_png(root / "rooms" / "room_mask.png", alpha > 0.5)
    base = Catalog(root / "catalog", [], [], 0)
    base.save()
    cat, skipped = import_folders(base, root / "rooms")
    assert not skipped
    shot = blue_shot()
    true_shadow = (shade < 0.97) & ~(alpha > 0.5)
    return {"ctx": Context(cat), "scene_id": cat.scenes[0].id, "clean": clean, "scene": scene,
            "alpha": alpha, "shot": shot, "shadow_true": true_shadow}


def _prep(job, **kw):
    req = StageRequest(job["shot"][..., :3], scene_id=job["scene_id"], **kw)
    return prepare(req, job["ctx"])


def test_old_shadow_detected(room_job):
    prep = _prep(room_job)
    truth = room_job["shadow_true"]
    found = prep.old_shadow
    assert (found & truth).sum() / truth.sum() > 0.8  # most of the true shadow is found
    assert (found & ~dilate(truth, 4)).sum() < 0.3 * found.sum()  # and little else (penumbra)
    assert prep.light.source.startswith("estimated")
    assert prep.light.vx > 0.2  # the shadow falls to the right, as rendered
    assert prep.light.vy < 0  # ... and back toward the wall
    assert abs(prep.light.strength - 0.45) <= 0.15  # about as dark as rendered


def test_old_shadow_found_next_to_vivid_products():
    """Eight plain rooms with vivid old products (the rooms `evaluate --rooms` uses): a
    product's own colour must not bleed into the floor's shading ratio, where it made one
    channel look shaded and the others not, so the grey test cut the shadow off the product."""
    from stager.evaluate_sets import plain_room as vivid_room

    rng = np.random.default_rng(0)
    recall = []
    for _ in range(8):
        scene, _clean, alpha, truth = vivid_room(rng)
        found = sh.detect_old_shadow(scene, alpha > 0.5)
        recall.append((found & truth).sum() / truth.sum())
    assert min(recall) >= 0.5 and np.mean(recall) >= 0.8, np.round(recall, 2)


def wood_room(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(scene, clean background, old mask, true old-shadow mask): a plain room given planks of
    varied tone and a horizontal grain, then a vivid old product's contact and cast shadow."""
    import cv2

    from stager.evaluate_sets import plain_room as vivid_room

    rng = np.random.default_rng(seed)
    _, clean, alpha, _ = vivid_room(rng)
    size = clean.shape[0]
    tone = np.repeat(rng.uniform(0.85, 1.15, size // 16 + 1), 16)[:size, None]
    grain = cv2.GaussianBlur(rng.normal(0, 0.06, (size, size)).astype(np.float32), (0, 0), 6,
                             sigmaY=0.7)
    wood = clean.astype(np.float32) * (tone + grain)[..., None]
    shade = sh.object_shadow(alpha, sh.Light(float(rng.uniform(-0.7, 0.7)), -0.25, 0.04, 0.45,
                                             0.5))
    img = wood * shade[..., None]
    img = img * (1 - alpha[..., None]) + np.float32([220, 20, 30]) * alpha[..., None]
    return (np.clip(img + 0.5, 0, 255).astype(np.uint8),
            np.clip(wood + 0.5, 0, 255).astype(np.uint8), alpha > 0.5,
            (shade < 0.9) & (alpha < 0.5))


def test_old_shadow_relit_keeps_the_floor_texture():
    """On a wood floor the old shadow is divided out by the fitted shadow, not painted over:
    the darkening goes (error against the clean floor under half the shadow's own) and the
    grain stays (high-pass energy within 15% of the clean floor's), where a fill of the same
    region smooths the grain away and, on average, errs more."""
    import cv2

    from stager.backends import get_backend

    def hp(img, region):
        f = img.astype(np.float32)
        return float(np.abs(f - cv2.GaussianBlur(f, (0, 0), 2))[region].mean())

    ratios, relit_err, fill_err = [], [], []
    for seed in range(6):
        scene, clean, old, truth = wood_room(seed)
        maps = sh.shade_maps(scene, old)
        found = sh.find_old_shadow(scene, old, 6, maps=maps)
        mask = found.mask
        relit, _fill = sh.relight(scene, old, mask, found.light, maps[0], found.detected)
        region = truth & ~dilate(old, 8)  # outside the footprint's own fill

        def err(img, region=region, clean=clean):
            return float(np.abs(img.astype(float) - clean)[region].mean())

        filled = get_backend("telea")(scene, mask | dilate(old, 6))
        assert err(relit) < 0.5 * err(scene), seed
        ratios.append(hp(relit, region) / hp(clean, region))
        assert hp(filled, region) < 0.5 * hp(clean, region)  # what a fill does to the grain
        relit_err.append(err(relit))
        fill_err.append(err(filled))
    assert min(ratios) > 0.85 and max(ratios) < 1.15, np.round(ratios, 2)
    assert np.mean(relit_err) < np.mean(fill_err), (relit_err, fill_err)


def plank_room(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(scene, the same room without the shadow, old mask, true shadow multiplier): a plain
    room whose floor has parallel 20-px planks of tone 0.8-1.15 tilted up to 25 degrees off
    vertical (the catalog's wood floors run toward a vanishing point at such angles), a vivid
    old product and its contact and cast shadow."""
    from stager.evaluate_sets import plain_room as vivid_room

    rng = np.random.default_rng(seed)
    _, clean, alpha, _ = vivid_room(rng)
    n = clean.shape[0]
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    u = xx + (yy - n) * np.tan(np.radians(rng.uniform(-25, 25)))
    tone = rng.uniform(0.8, 1.15, 200)[((u + 2000) // 20).astype(int) % 200]
    wood = clean.astype(np.float32) * tone[..., None]
    shade = sh.object_shadow(alpha, sh.Light(float(rng.uniform(-0.7, 0.7)), -0.25, 0.04, 0.45,
                                             0.5))

    def put(img):
        img = img * (1 - alpha[..., None]) + np.float32([220, 20, 30]) * alpha[..., None]
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)

    return put(wood * shade[..., None]), put(wood), alpha > 0.5, shade


def test_planks_are_not_read_as_shade_and_the_shadow_on_them_goes():
    """A dark plank is texture, not shade: on a floor of tilted planks with no shadow, under 1% of the shadow zone reads darker than the detector's seed (0.88) (a
    horizontal closing alone reads 27-68% so). With the old product's shadow on the planks,
    relighting and filling leave under 40% of the untouched scene's error in the whole zone
    (planks lifted or painted over count against it)."""
    from stager.backends import get_backend

    telea = get_backend("telea")
    for seed in range(8):
        scene, plain, old, shade = plank_room(seed)
        zone = sh._shadow_zone(old, sh.bbox(old), 1.2) & ~dilate(old, 3)
        ratio, _ = sh.shade_maps(plain, old)
        assert (ratio[zone] < 0.88).mean() < 0.01, seed
        maps = sh.shade_maps(scene, old)
        found = sh.find_old_shadow(scene, old, 6, maps=maps)
        relit, fill = sh.relight(scene, old, found.mask, found.light, maps[0], found.detected)
        out = telea(relit, dilate(old, 6) | fill)
        far = zone & ~dilate(old, 8)

        def err(img, far=far, plain=plain):
            return float(np.abs(img.astype(float) - plain)[far].mean())

        assert err(out) < 0.4 * err(scene), (seed, err(out), err(scene))


def test_line_closings_on_the_window_equal_the_whole_image():
    """The shading maps run the line closings on the window they are read in (plus a line's
    reach), not the whole image: inside that window the ratio is the whole image's."""
    scene, _plain, old, _ = plank_room(2)
    b = sh.bbox(old)
    excl, n = dilate(old, 2), max(int(0.6 * (b[3] - b[1])), 21)
    y0, y1, x0, x1 = sh._ratio_window(b, old.shape)
    whole = sh.shading_ratio(scene, excl, sh._kernel(b), lines=n)
    part = sh.shading_ratio(scene, excl, sh._kernel(b), lines=n, window=(y0, y1, x0, x1))
    assert (y1 - y0) * (x1 - x0) < 0.6 * old.size  # it is a window
    assert np.abs(part - whole)[y0:y1, x0:x1].max() < 1e-5
    assert sh._shadow_zone(old, b, 1.2)[:y0].sum() == 0  # the zone lies in the window
    assert sh._shadow_zone(old, b, 1.2)[y1:].sum() == 0


@pytest.mark.parametrize("gap", [12, 60])
def test_shadow_at_the_bottom_edge_is_read_as_shade(gap):
    """A product standing ``gap`` px above the bottom edge: its contact and cast shadow are
    read as shade (under 0.88 of their surroundings) on 97% or more of the pixels darkened by
    over 15%. A line closing that let a line run off the image would follow a shadow that
    needs only half a line to reach the edge (91% read at 12 px)."""
    rng = np.random.default_rng(0)
    n = 512
    img = np.full((n, n, 3), 150, np.float32)
    img[:250], img[250:] = (210, 200, 185), (140, 110, 80)
    img += rng.normal(0, 3, img.shape)
    alpha = np.zeros((n, n), np.float32)
    alpha[n - gap - 160:n - gap, 180:330] = 1
    shade = sh.object_shadow(alpha, sh.Light(0.6, -0.2, 0.04, 0.45, 0.55))
    scene = img * shade[..., None] * (1 - alpha[..., None]) + np.float32([30, 60, 200]) * alpha[
        ..., None]
    scene = np.clip(scene + 0.5, 0, 255).astype(np.uint8)
    ratio, _ = sh.shade_maps(scene, alpha > 0.5)
    truth = (shade < 0.85) & ~dilate(alpha > 0.5, 3)
    assert truth.sum() > 2000
    assert (ratio[truth] < 0.88).mean() >= 0.97


def test_shadow_the_fit_missed_is_relit_by_its_measured_shade_not_filled():
    """When the light fit keeps a contact shadow only (two catalog scenes in three), the
    detected cast shadow is still lifted by its measured shading: on wood and plank floors
    nothing is filled, the error against the clean floor falls below 35% of the shadow's
    own, and the grain's high-pass energy stays within 15% of the clean floor's."""
    import cv2

    def hp(img, region):
        f = img.astype(np.float32)
        return float(np.abs(f - cv2.GaussianBlur(f, (0, 0), 2))[region].mean())

    for room in (wood_room, plank_room):
        for seed in range(4):
            scene, clean, old, truth = room(seed)
            if room is plank_room:
                truth = (truth < 0.9) & ~old
            maps = sh.shade_maps(scene, old)
            found = sh.find_old_shadow(scene, old, 6, maps=maps)
            contact_only = sh.Light(contact=found.light.contact)
            relit, fill = sh.relight(scene, old, found.detected, contact_only, maps[0],
                                     found.detected)
            region = truth & found.detected & ~dilate(old, 8)
            assert region.sum() > 1000

            def err(img, region=region, clean=clean):
                return float(np.abs(img.astype(float) - clean)[region].mean())

            assert not fill.any()
            assert err(relit) < 0.35 * err(scene), (room.__name__, seed)
            assert 0.85 < hp(relit, region) / hp(clean, region) < 1.15
    # a dark object inside the detected shadow (0.3 of the floor) is not lifted, it is filled
    scene, clean, old, truth = wood_room(0)
    maps = sh.shade_maps(scene, old)
    found = sh.find_old_shadow(scene, old, 6, maps=maps)
    ys, xs = np.nonzero(found.detected & ~dilate(old, 12) & ~dilate(~found.detected, 10))
    box = np.zeros(old.shape, bool)
    box[ys[0]:ys[0] + 14, xs[0]:xs[0] + 14] = True
    box &= found.detected
    dark = scene.copy()
    dark[box] = (clean[box] * 0.3).astype(np.uint8)
    maps = sh.shade_maps(dark, old)
    relit, fill = sh.relight(dark, old, found.detected, sh.Light(contact=found.light.contact),
                             maps[0], found.detected)
    inner = box & ~dilate(~box, 4)
    assert inner.sum() > 20 and fill[inner].all()


def test_shadow_on_a_coloured_rug_is_found():
    """Two default-catalog scenes (rendered by the generator, so the shadow is known) whose
    coffee table stands on a coloured rug inside a differently coloured floor: a flat closing
    per channel took the rug as reference in one channel and the floor in another, so the
    shadow's channels disagreed and it was not grey. With the line closings in every channel
    the detector finds over half of each shadow (it found 2% and 0%) at 90% precision."""
    from stager.catalog import default_specs

    specs, _ = default_specs(240, 0, 7)
    for i in (139, 219):
        layers = synth.render_scene(specs[i])
        old = layers.mask.astype(bool)
        ratio = sh._luma(layers.image) / np.maximum(sh._luma(layers.background), 1)
        truth = (ratio < 0.9) & ~dilate(old, 2) & sh._shadow_zone(old, sh.bbox(old))
        found = sh.detect_old_shadow(layers.image, old)
        assert specs[i]["room"]["rug"] and truth.sum() > 3000
        assert (found & truth).sum() > 0.5 * truth.sum(), i
        assert (found & (ratio < 0.97)).sum() > 0.9 * found.sum(), i


def test_relight_spares_other_objects_and_never_lights_far_above_the_floor():
    """A dark box standing where the fitted shadow falls, but darker than that shadow makes
    the floor, is another object: it is neither lifted nor painted over (a lamp's fitted
    shadow used to blow out a chair). A light fitted twice too dark lifts the floor at most
    ~20% above the true clean floor inside the detected shadow and ~5% outside it."""
    import cv2

    scene, clean, old, truth = wood_room(3)
    maps = sh.shade_maps(scene, old)
    found = sh.find_old_shadow(scene, old, 6, maps=maps)
    # a light fitted wrongly (the shadow thrown the other way, long), as the mask
    # view would show it: the detected shadow joined by the wrong model's support
    lt = found.light
    wrong = sh.Light(-lt.vx if abs(lt.vx) > 0.2 else 0.6, -0.45, 0.04, 0.3, lt.contact)
    model = sh.object_shadow(old.astype(np.float32), wrong)
    ys, xs = np.nonzero(~found.detected & ~dilate(old, 20) & (model < 0.8))
    i = len(ys) // 2
    box = np.zeros(old.shape, bool)
    box[max(ys[i] - 12, 0):ys[i] + 12, max(xs[i] - 10, 0):xs[i] + 10] = True
    box &= ~dilate(old, 4)
    scene = scene.copy()
    scene[box] = (45, 32, 24)  # a dark object, not shade
    maps = sh.shade_maps(scene, old)
    mask = (found.detected | (model < 0.97)) & ~old
    relit, fill = sh.relight(scene, old, mask, wrong, maps[0], found.detected)
    inner = box & ~dilate(~box, 5)  # the box away from its edge (the relit mask is feathered)
    assert inner.sum() > 100
    assert np.abs(relit[inner].astype(int) - scene[inner]).max() <= 3  # not lifted
    assert not (fill & inner).any()  # ... nor painted over

    scene, clean, old, _truth = wood_room(1)
    maps = sh.shade_maps(scene, old)
    found = sh.find_old_shadow(scene, old, 6, maps=maps)
    lt = found.light
    wrong = sh.Light(lt.vx, lt.vy, lt.softness, min(2 * lt.strength + 0.3, 0.95), 0.95)
    relit, _ = sh.relight(scene, old, found.mask, wrong, maps[0], found.detected)

    def lum(img):
        return cv2.GaussianBlur(sh._luma(img), (0, 0), 3)

    over = lum(relit) / np.maximum(lum(clean), 1)
    core, rest = found.mask & found.detected, found.mask & ~found.detected
    assert (lum(relit) / np.maximum(lum(scene), 1))[found.mask].max() > 1.3  # it did push
    assert np.percentile(over[core], 99) <= 1.25
    if rest.sum() > 50:
        assert np.percentile(over[rest], 99) <= 1.1
    untouched = ~dilate(found.mask, 6) & ~old
    assert np.array_equal(relit[untouched], scene[untouched])


def test_staging_relights_the_old_shadow_and_keeps_it_out_of_the_fill(room_job):
    """Through the pipeline: the shadow pixels that relighting restores stay out of the fill
    region, every backend starts from the relit scene (the plate equals it outside the fill),
    and the relit floor is close to the clean one. With the old shadow kept, or the legacy
    fill, nothing is relit and the fill is the footprint (or the gap) alone."""
    from stager.config import get_settings

    prep = _prep(room_job)
    clean, scene = room_job["clean"].astype(int), prep.scene.astype(int)
    relit_only = prep.old_shadow & ~prep.fill_mask
    assert relit_only.sum() > 200
    dark = np.abs(scene - clean)[relit_only].mean()
    out = run_backend(prep, "telea")
    keep = ~prep.fill_mask
    assert np.array_equal(out.plate[keep], prep.relit[keep])
    assert np.abs(out.plate.astype(int) - clean)[relit_only].mean() < 0.4 * dark

    kept = _prep(room_job, remove_old_shadow=False)
    margin = get_settings().gap_margin
    assert np.array_equal(kept.fill_mask, dilate(kept.old_mask, margin) & ~kept.kept(margin))
    out = run_backend(kept, "telea")
    assert np.array_equal(out.plate[~kept.fill_mask], kept.scene[~kept.fill_mask])
    legacy = _prep(room_job, clean_fill=False)
    assert legacy.source is legacy.scene


def test_relit_shadow_tip_is_not_lit_above_the_clean_floor(room_job):
    """The fitted cast shadow overshoots the true one at its tip (vx 0.56, vy -0.15 fitted
    against 0.6, -0.12), and the reader, biased by the floor's noise, agrees with it: relit
    by both, the tip came out up to 10 grey levels above the clean floor (an oval a designer
    sees). The floor the shadow does not reach bounds every relit pixel now (6 at most)."""
    import cv2

    prep = _prep(room_job)
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    over = ((prep.source.astype(np.float32) - room_job["clean"]) @ luma)
    over = cv2.GaussianBlur(over, (0, 0), 2.0)
    region = prep.old_shadow & ~prep.fill_mask
    assert region.sum() > 1000
    assert over[region].max() < 8.0, over[region].max()


def test_perfect_fill_leaves_no_old_product_pixels(room_job):
    prep = _prep(room_job)
    out = finish(prep, np.where(prep.fill_mask[..., None], room_job["clean"], prep.scene))
    red = (out[..., 0] > 150) & (out[..., 1] < 80) & (out[..., 2] < 90)
    assert red.sum() == 0


@pytest.mark.parametrize("backend", COPY_PASTE)
def test_room_restored_by_each_backend(room_job, backend):
    prep = _prep(room_job)
    out = run_backend(prep, backend)
    if not out.ok:
        pytest.skip(f"{backend} unavailable here: {out.error}")
    plate, clean = out.plate.astype(np.float32), room_job["clean"].astype(np.float32)
    fill = prep.fill_mask
    # no colour of the old (red) or the new (blue) product in the rebuilt background (a
    # learned fill may tint a handful of pixels: under 0.1% of the region)
    assert ((plate[..., 0] > 150) & (plate[..., 1] < 80))[fill].mean() < 1e-3
    assert ((plate[..., 2] > plate[..., 0] + 60))[fill].mean() < 1e-3
    # the visible gap is close to the clean room (measured 0.053 Telea, 0.060 EdgeConnect,
    # 0.074 compact diffusion; the old product's red would give about 0.4)
    from stager.evaluate import masked_l1

    assert masked_l1(out.plate, room_job["clean"], prep.gap) < 0.09, backend
    # the old shadow is gone: what is left of its darkening is small
    shadow = room_job["shadow_true"] & ~dilate(prep.new_mask, 2)
    left = (clean - plate).mean(axis=2)[shadow]
    assert left.mean() <= 8.0, f"{backend}: {left.mean():.1f} grey levels of old shadow left"



def test_product_never_lighter_than_floor_under_its_base(room_job):
    prep = _prep(room_job, product_shadow="keep")
    out = run_backend(prep, "telea")
    x0, y0, x1, y1 = prep.placement.box
    band = np.zeros(prep.new_mask.shape, bool)
    band[y1:y1 + 6, x0:x1] = True
    band &= ~prep.new_mask
    floor_beside = out.image[y1 + 2:y1 + 6, max(x1 + 20, 0):x1 + 60].astype(float).mean()
    assert out.image[band].astype(float).max(axis=-1).mean() <= floor_beside + 3
    assert (out.image[band] > 235).all(axis=-1).sum() == 0  # no white disc


def test_base_line_kept_at_every_scale(room_job):
    old = room_job["alpha"] > 0.5
    base = np.nonzero(old.any(axis=1))[0].max()
    cut = cutout_layers(room_job["shot"][..., :3])
    for scale in (0.5, 0.8, 1.0, 1.3):
        pl = comp.place(cut.rgba, old, scale=scale)
        assert np.nonzero(pl.mask.any(axis=1))[0].max() == base


def test_shadow_only_darkens_and_harmonise_zero_is_exact(room_job):
    prep = _prep(room_job, harmonise=0.0)
    plate = room_job["clean"]
    out = finish(prep, plate)
    outside = ~prep.new_mask & (prep.placement.alpha == 0)
    assert (out[outside].astype(int) <= plate[outside].astype(int)).all()
    assert (out[outside] < plate[outside]).any()  # and it does darken somewhere
    cut = cutout_layers(room_job["shot"][..., :3])
    pl = comp.place(cut.rgba, room_job["alpha"] > 0.5)
    same = comp.harmonise(pl, room_job["scene"], room_job["alpha"] > 0.5, 0.0)
    assert np.array_equal(same.sprite, pl.sprite)
    lit = comp.harmonise(pl, room_job["scene"], room_job["alpha"] > 0.5, 1.0)
    assert not np.array_equal(lit.sprite, pl.sprite)


def test_cutout_separates_drop_shadow():
    rng = np.random.default_rng(11)
    ious, recall = [], []
    for _ in range(12):
        shot = synth.catalog_shot(synth.sample_product(rng), 384)
        c = cutout_layers(shot[..., :3])
        ious.append(mask_iou(c.rgba[..., 3] > 127, shot[..., 3] > 127))
        truth = (shot[..., 3] == 0) & (shot[..., :3].astype(int).mean(-1) < 245)
        recall.append(((c.shadow > 0) & truth).sum() / max(truth.sum(), 1))
        # backdrop-coloured pixels are never product
        white = (shot[..., :3] > 250).all(-1) & (shot[..., 3] == 0)
        assert (c.rgba[..., 3][white] == 0).all()
    assert np.mean(ious) >= 0.95
    assert np.mean(recall) >= 0.8


def test_edge_cases_from_review(room_job):
    # an empty old-shadow mask (nothing detected, or erased by the user) is a valid request
    prep = _prep(room_job, old_shadow=np.zeros(room_job["alpha"].shape, bool))
    assert not prep.old_shadow.any() and prep.fill_mask.sum() > 0
    # a cast shadow of no depth is a sliver, never a darkened image
    a = room_job["alpha"]
    shade = sh.cast_shadow(a, sh.Light(vx=0.3, vy=0.0, strength=0.5))
    assert (shade < 0.99).mean() < 0.05 and shade.min() < 0.97


def test_padding_keeps_mirrored_hole_pixels_in_the_hole():
    from stager.backends.base import Backend

    class Spy(Backend):
        name, fully_conv, pad_mod = "spy", True, 8

        def run(self, image, mask, **_):
            self.mask = mask.copy()
            return np.zeros_like(image)

    img = np.full((101, 101, 3), 120, np.uint8)
    hole = np.zeros((101, 101), bool)
    hole[60:, 30:70] = True  # touches the bottom edge; 101 is padded to 104
    b = Spy()
    out = b(img, hole)
    assert b.mask.shape[0] % 8 == 0 and b.mask[-1, 40]  # the mirrored rows are hole too
    assert np.array_equal(out[~hole], img[~hole])


def table_room(seed: int, contact: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scene, clean room, old mask): a low, wide vivid table (a top on two legs, the floor
    visible between them; its contact band is taller than the line closings' 0.6 heights) on
    a grained wood floor, with only a contact shadow of strength ``contact``
    (0 = none) along its base."""
    import cv2

    rng = np.random.default_rng(seed)
    n = 512
    tone = np.repeat(rng.uniform(0.85, 1.15, n // 16 + 1), 16)[:n, None]
    grain = cv2.GaussianBlur(rng.normal(0, 0.06, (n, n)).astype(np.float32), (0, 0), 6,
                             sigmaY=0.7)
    img = np.zeros((n, n, 3), np.float32)
    img[:250], img[250:] = (205, 195, 180), (150, 112, 72)
    img[250:] *= (tone + grain)[250:, :, None]
    clean = np.clip(img + rng.normal(0, 2, img.shape) + 0.5, 0, 255).astype(np.uint8)
    alpha = np.zeros((n, n), np.float32)
    x0 = int(rng.integers(90, 130))
    alpha[345:362, x0:x0 + 290] = 1  # the top
    alpha[362:410, x0 + 4:x0 + 14] = 1  # two legs
    alpha[362:410, x0 + 276:x0 + 286] = 1
    shade = sh.contact_shadow(alpha.shape, sh.bbox(alpha > 0.5), contact)
    scene = clean.astype(np.float32) * shade[..., None]
    scene = scene * (1 - alpha[..., None]) + np.float32([40, 160, 60]) * alpha[..., None]
    return np.clip(scene + 0.5, 0, 255).astype(np.uint8), clean, alpha > 0.5


def test_contact_shadow_under_a_table_is_lifted():
    """Under a low, wide table its contact band is taller than the line closings and as wide
    as the table, so the closing that gives the shading ratio its reference sits inside it
    and reads ~1: a lift bounded by that ratio left 16-100% of the shadow's error (mean 41%,
    four seeds; all of it where nothing was detected). Lifted by the contact shadow itself and
    bounded by the floor beside the table, each seed keeps under 20% (5-14%, mean 9%), and the
    grain stays (high-pass energy within 15% of the clean floor's)."""
    import cv2

    def hp(img, region):
        f = img.astype(np.float32)
        return float(np.abs(f - cv2.GaussianBlur(f, (0, 0), 2))[region].mean())

    left = []
    for seed in range(4):
        scene, clean, old = table_room(seed, 0.5)
        maps = sh.shade_maps(scene, old)
        found = sh.find_old_shadow(scene, old, 6, maps=maps)
        relit, fill = sh.relight(scene, old, found.mask, found.light, maps[0], found.detected)
        # the band's divisor found with the shadow (what the pipeline hands on) is the same
        again, _ = sh.relight(scene, old, found.mask, found.light, maps[0], found.detected,
                              band_lift=found.lift)
        assert np.array_equal(again, relit)
        shade = sh.contact_shadow(old.shape, sh.bbox(old), 0.5)
        region = (shade < 0.85) & ~dilate(old, 3)
        assert region.sum() > 800, seed

        def err(img, region=region, clean=clean):
            return float(np.abs(img.astype(float) - clean)[region].mean())

        assert found.mask[region].mean() > 0.95, seed  # shown in the mask view, editable
        assert not fill[region].any()
        left.append(err(relit) / err(scene))
        assert left[-1] < 0.2, (seed, left[-1])
        assert 0.85 < hp(relit, region) / hp(clean, region) < 1.15
    assert np.mean(left) < 0.12, np.round(left, 3)


def test_contact_lift_does_not_light_a_floor_without_shadow():
    """The same table with no contact shadow at all: the band the lift may touch is never lit
    above the floor beside the table, so it stays within 3% of the clean floor on average and
    under 2% of its pixels come out over 8% brighter than the clean floor."""
    for seed in range(4):
        scene, clean, old = table_room(seed, 0.0)
        maps = sh.shade_maps(scene, old)
        found = sh.find_old_shadow(scene, old, 6, maps=maps)
        relit, _ = sh.relight(scene, old, found.mask, found.light, maps[0], found.detected)
        band = (sh.contact_shadow(old.shape, sh.bbox(old), 0.5) < 0.97) & ~dilate(old, 3)
        lr, lc = sh._luma(relit)[band], sh._luma(clean)[band]
        assert abs(lr.mean() / lc.mean() - 1) < 0.03, seed
        assert (lr > 1.08 * lc + 2).mean() < 0.02, seed


def test_contact_lift_is_not_raised_by_a_bright_object_beside_the_product():
    """A white cabinet beside the shadow-free table fills much of one side's floor sample:
    the cap is the lower of the two sides, so the band is not lit (it came out 25% brighter
    with one cap over both sides), and no contact band is shown as old shadow."""
    for seed in range(3):
        scene, clean, old = table_room(seed, 0.0)
        x0, _, x1, _ = sh.bbox(old)
        w = x1 - x0
        box = np.zeros(old.shape, bool)
        box[300:440, x1 + int(0.12 * w):x1 + int(0.3 * w)] = True  # inside the right strip
        scene, clean = scene.copy(), clean.copy()
        scene[box] = clean[box] = 245
        maps = sh.shade_maps(scene, old)
        found = sh.find_old_shadow(scene, old, 6, maps=maps)
        band = (sh.contact_shadow(old.shape, sh.bbox(old), 0.5) < 0.97) & ~dilate(old, 3)
        assert not (found.mask & band).sum() > 0.05 * band.sum(), seed
        relit, _ = sh.relight(scene, old, found.mask | band, found.light, maps[0],
                              found.detected)  # even painted over the band by the user
        lr, lc = sh._luma(relit)[band], sh._luma(clean)[band]
        assert lr.mean() / lc.mean() < 1.03, seed


def test_contact_lift_under_a_product_as_wide_as_the_frame():
    """A bench 85% of the frame wide has no floor beside it on either side: the floor just
    below its contact band bounds the lift instead, so the band is lifted (under 30% of the
    shadow's error left) with no step between rows (the lift used to stop where the side
    strips left the frame)."""
    import cv2

    rng = np.random.default_rng(0)
    n = 512
    img = np.zeros((n, n, 3), np.float32)
    img[:250], img[250:] = (205, 195, 180), (150, 112, 72)
    clean = np.clip(img + rng.normal(0, 2, img.shape) + 0.5, 0, 255).astype(np.uint8)
    alpha = np.zeros((n, n), np.float32)
    alpha[330:360, 38:474] = 1
    alpha[360:390, 42:52] = alpha[360:390, 460:470] = 1
    shade = sh.contact_shadow(alpha.shape, sh.bbox(alpha > 0.5), 0.5)
    scene = clean.astype(np.float32) * shade[..., None]
    scene = scene * (1 - alpha[..., None]) + np.float32([40, 160, 60]) * alpha[..., None]
    scene, old = np.clip(scene + 0.5, 0, 255).astype(np.uint8), alpha > 0.5
    maps = sh.shade_maps(scene, old)
    found = sh.find_old_shadow(scene, old, 6, maps=maps)
    relit, _ = sh.relight(scene, old, found.mask, found.light, maps[0], found.detected)
    region = (shade < 0.85) & ~dilate(old, 3)
    assert region.sum() > 2000

    def err(img):
        return float(np.abs(img.astype(float) - clean)[region].mean())

    assert err(relit) < 0.3 * err(scene), (err(relit), err(scene))
    rows = cv2.GaussianBlur(sh._luma(relit), (0, 0), 2)[:, 150:360].mean(1)
    assert np.abs(np.diff(rows[395:440])).max() < 4  # no step below the legs


def test_shade_model_relight_leaves_no_bright_patch_where_it_used_to(catalog):
    """With the shade model reading (the default), a detected shadow pixel is lit at most 5%
    above its reference and only what stays under 0.8 of it is divided by its measured shade.
    At 10% and 0.9, these three default-catalog scenes came out with a faint bright patch
    (283-1,255 px lit 8% above the empty room in the old-shadow region); now none has one, and
    the old shadow is still removed (the region closer to the empty room than the scene)."""
    from stager.backends import get_backend

    assert sh.shade_model() is not None  # the shipped reader, on by default
    telea = get_backend("telea")
    for sid in ("s0147", "s0080", "s0216"):
        bg, old = catalog.scene_background(sid), catalog.scene_mask(sid)
        scene = catalog.scene_image(sid)
        maps = sh.shade_maps(scene, old)
        found = sh.find_old_shadow(scene, old, 6, maps=maps)
        relit, fill = sh.relight(scene, old, found.mask, found.light, maps[0], found.detected,
                                 band_lift=found.lift)
        out = telea(relit, dilate(old, 6) | fill).astype(np.float32)
        truth = bg.astype(np.float32)
        region = dilate(found.mask | found.detected, 3) & ~dilate(old, 6)
        bright = ((out.mean(-1) > 1.08 * truth.mean(-1) + 2) & region).sum()
        assert bright <= 200, (sid, bright)
        def err(img, truth=truth, region=region):
            return float(np.abs(img - truth).mean(-1)[region].mean())

        assert err(out) < 0.6 * err(scene.astype(np.float32)), sid


def _room_with(colour, mask_inset: int, seed: int = 1, noise: float = 3.0):
    """A plain room with an old product of ``colour`` whose mask misses ``mask_inset`` px of
    its edge (a proposed mask can): (scene, mask, product alpha)."""
    rng = np.random.default_rng(seed)
    clean = plain_room(seed).astype(np.float32) + rng.normal(0, noise, (512, 512, 3))
    alpha, _ = red_product()
    img = clean * (1 - alpha[..., None]) + np.array(colour, np.float32) * alpha[..., None]
    scene = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    mask = alpha > 0.5
    for _ in range(mask_inset):
        mask = mask & ~dilate(~mask, 1)
    return scene, mask, alpha


@pytest.mark.parametrize("colour", [(220, 20, 30), (112, 84, 56)])  # vivid; floor-like
def test_margin_keeps_the_floor_and_fills_the_edge_a_mask_missed(colour):
    """The fill margin's floor pixels stay as they are; product pixels the mask missed (3 px
    of its edge) match the old product's rim and are filled, even when the product is only 8
    grey levels off the floor (the second case: there only the rim test tells them apart;
    noise sigma 6 hides a blend of the two, so much of that margin is filled as before)."""
    scene, mask, alpha = _room_with(colour, 3, noise=6.0)
    kept = comp.margin_keep(scene, mask, 6)
    missed = (alpha > (0.1 if colour[0] > 200 else 0.6)) & ~mask  # a faint blend is floor
    assert missed.sum() > 500
    assert not (kept & missed).any(), int((kept & missed).sum())
    assert not (kept & dilate(mask, 2)).any()  # the mask's edge itself is always filled
    if colour[0] > 200:  # most of the floor is kept (where the product is vivid)
        floor = dilate(mask, 6) & ~dilate(mask, 2) & ~dilate(alpha > 0.02, 1)
        assert kept[floor].mean() > 0.8, kept[floor].mean()  # measured 0.86 (noise sigma 6)


def test_margin_keep_spares_a_vivid_product_with_an_exact_mask(room_job):
    """In the imported room (exact mask, relit shadow), the kept margin is floor: the perfect
    fill test above holds with it, and the kept pixels are the relit floor, close to the clean
    room (a Telea fill there is smoother than the noise it replaces)."""
    from stager.config import get_settings

    prep = _prep(room_job)
    margin = get_settings().gap_margin
    kept = prep.kept(margin)
    ring = dilate(prep.old_mask, margin) & ~dilate(prep.old_mask, 2)
    assert kept.sum() > 0.8 * ring.sum()
    assert not (kept & dilate(prep.old_mask, 2)).any()  # the mask's own edge is filled
    assert not (prep.fill_mask & kept).any()
    err = np.abs(prep.source.astype(float) - room_job["clean"]).mean(-1)[kept].mean()
    assert err < 4.0, err


def test_margin_keep_lowers_the_catalog_error_where_the_old_shadow_was(catalog, settings_env):
    """Held-out catalog pairs staged with Telea: with the margin's floor kept, the whole image
    and the old shadow's region (where the staged scene is darker than its empty room and the
    truth shows the room) are closer to the ground truth than with the margin filled (measured
    on 24 pairs: old-shadow region 0.0177 -> 0.0150). Keeping nothing gives the same error."""
    from stager.catalog import ground_truth
    from stager.evaluate import heldout_pairs, masked_l1
    from stager.pipeline import get_context

    whole, region = {}, {}
    for on in ("true", "false"):
        settings_env(MARGIN_KEEP=on)
        ctx = get_context()
        whole[on], region[on] = [], []
        for i, pr in enumerate(heldout_pairs(catalog, 6)):
            gt, new = ground_truth(catalog, pr.product_id, pr.scene_id)
            scene, bg = catalog.scene_image(pr.scene_id), catalog.scene_background(pr.scene_id)
            old = catalog.scene_mask(pr.scene_id)
            clean = np.abs(gt.astype(int) - bg.astype(int)).mean(-1) <= 2
            old_sh = ((bg.astype(int) - scene.astype(int)).mean(-1) > 2) & ~dilate(old, 1) \
                & ~new & clean
            out = run_backend(prepare(StageRequest(pr.product_id, scene_id=pr.scene_id), ctx),
                              "telea", seed=i)
            whole[on].append(masked_l1(out.image, gt, np.ones_like(new)))
            region[on].append(masked_l1(out.image, gt, old_sh))
    w_on, w_off = np.array(whole["true"]), np.array(whole["false"])
    r_on, r_off = np.array(region["true"]), np.array(region["false"])
    assert (w_on <= w_off + 1e-5).all() and w_on.mean() < 0.97 * w_off.mean(), (w_on, w_off)
    assert r_on.mean() < 0.9 * r_off.mean(), (r_on, r_off)


@pytest.mark.parametrize("blur", [0.0, 1.5])
def test_margin_keep_leaves_no_outline_of_a_dark_product_on_a_grained_floor(blur):
    """A cold review's case: light planks with 2-px dark grain every 9 px, a dark sofa whose
    mask misses 3 px of its edge. A half-blend of sofa and plank is as close to a grain pixel
    as to anything, so it passed the first version's floor test and drew a dark line round the
    old product (150 kept product pixels, 46-49 levels off the floor). It is a blend of the
    floor and the rim beside it, so it is filled now; the planks themselves are still kept."""
    import cv2

    rng = np.random.default_rng(0)
    floor = np.full((512, 512, 3), 150, np.float32) * np.array([1, 0.8, 0.6], np.float32)
    grain = np.zeros((512, 512), bool)
    for x in range(0, 512, 9):
        grain[:, x:x + 2] = True
    floor[grain] = np.array([95, 76, 57], np.float32)
    floor += rng.normal(0, 2, floor.shape)
    alpha, _ = red_product()
    if blur:
        alpha = cv2.GaussianBlur(alpha, (0, 0), blur)
    img = floor * (1 - alpha[..., None]) + np.array([30, 25, 20], np.float32) * alpha[..., None]
    scene = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    mask = alpha > 0.5
    for _ in range(3):
        mask = mask & ~dilate(~mask, 1)
    kept = comp.margin_keep(scene, mask, 6)
    off = np.abs(scene.astype(np.float32) - floor).mean(-1)
    assert kept.sum() > 300
    assert off[kept].max() < 12, off[kept].max()  # no product blend kept
    assert not (kept & (alpha > 0.15)).any()
    if not blur:  # (blurred, the product's faint edge reaches over most of the margin)
        plank = dilate(mask, 6) & ~dilate(mask, 2) & ~grain & ~dilate(alpha > 0.01, 2)
        assert kept[plank].mean() > 0.7, kept[plank].mean()


def test_kept_margin_follows_a_copy_with_another_mask_and_the_setting(room_job, settings_env):
    """``Prepared.kept`` is cached per source and mask: a copy with a grown mask keeps nothing
    inside it (the first version's cache, shared by ``dataclasses.replace``, left 540 px of
    the new mask unfilled), and with ``STAGER_MARGIN_KEEP=0`` the fill is the whole margin."""
    from dataclasses import replace

    from stager.config import get_settings

    prep = _prep(room_job)
    margin = get_settings().gap_margin
    assert prep.kept(margin).sum() > 1000
    grown = replace(prep, old_mask=dilate(prep.old_mask, 5))
    assert grown.fill_mask[grown.old_mask].all()
    assert not (grown.kept(margin) & dilate(grown.old_mask, 2)).any()
    edited = replace(prep)
    edited.kept(margin)
    edited.old_mask = dilate(prep.old_mask, 5)  # the mask changed on the object itself
    assert edited.fill_mask[edited.old_mask].all()
    settings_env(MARGIN_KEEP="0")
    off = _prep(room_job)
    assert np.array_equal(off.fill_mask & dilate(off.old_mask, margin),
                          dilate(off.old_mask, margin))
    assert not off.kept(margin).any()


def test_floor_under_a_base_without_contact_shadow_is_not_lit_above_the_floor(tmp_path):
    """A new user's room: a red box standing on a plain floor with no contact shadow, only a
    soft shadow blob beside it. The shade model (trained on rooms whose products all have one)
    read a contact shadow under the base that is not there (ratio 0.68), and the relight lit
    the floor 43 grey levels above the clean floor in the rows just under the box. Under the
    base the lift is now bounded by the floor the shadow does not reach, beside on the same
    rows or just below in the same columns (``shadows.floor_cap``); the blob is still removed."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(1)
    clean = np.zeros((512, 512, 3), np.float32)
    clean[:300], clean[300:] = (200, 190, 170), (120, 90, 60)
    clean += rng.normal(0, 3, (512, 512, 1))
    blob = np.zeros((512, 512), np.float32)
    blob[305:345, 320:410] = 1
    blob = np.asarray(Image.fromarray((blob * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(6)), np.float32) / 255
    img = clean * (1 - 0.45 * blob)[..., None]
    img[190:340, 180:330] = (220, 30, 30)
    scene = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    old = np.zeros((512, 512), bool)
    old[190:340, 180:330] = True
    root = tmp_path / "rooms"
    root.mkdir()
    save_png(root / "box.png", scene)
    save_png(root / "box_mask.png", old)
    base = Catalog(tmp_path / "catalog", [], [], 0)
    base.save()
    cat, _ = import_folders(base, root)
    prep = prepare(StageRequest(blue_shot()[..., :3], scene_id=cat.scenes[0].id, scale=0.6),
                   Context(cat))
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    lifted = (prep.source.astype(np.float32) - clean) @ luma
    under = np.zeros_like(old)
    under[342:352, 185:320] = True
    under &= ~prep.fill_mask
    assert under.sum() > 800
    assert lifted[under].mean() < 7.0, lifted[under].mean()  # measured 5.2; 28.6 unbounded
    left = ((clean - prep.source.astype(np.float32)) @ luma)[(blob > 0.5) & ~prep.fill_mask]
    assert left.mean() < 8.0, left.mean()  # the blob itself is still relit


def test_edgeconnect_draws_no_skirting_a_plain_room_does_not_have(room_job):
    """A new user's case: a product much narrower than the old sofa (scale 0.6) in a plain
    imported room. The floor line runs 300 px through the gap; the line fill carries it, and
    EdgeConnect's correction must not paint a dark band on the wall above it (the weights of
    session 15 did: 25 grey levels darker over the 14 rows above the line, 43 at worst, a
    skirting board the room does not have; the line fill alone is 3 levels off there). The
    shipped weights were fine-tuned with plain rooms in the mix (fine-tune 9: 2 and 4 at worst,
    see the model card); the catalog-only prior comes back if they are not."""
    from stager.backends import weights

    if not weights.check("inpaint_weighted")[0]:
        pytest.skip("shipped weights are missing")
    prep = _prep(room_job, scale=0.6)
    out = run_backend(prep, "edgeconnect")
    assert out.ok, out.error
    d = out.plate.astype(np.float32).mean(-1) - room_job["clean"].astype(np.float32).mean(-1)
    above = np.zeros_like(prep.gap)
    above[HORIZON - 14:HORIZON] = True
    above &= prep.gap
    assert above.sum() > 2000
    assert d[above].mean() > -5.0, d[above].mean()
    rows = [d[y][above[y]].mean() for y in range(HORIZON - 14, HORIZON) if above[y].any()]
    assert min(rows) > -8.0, rows
