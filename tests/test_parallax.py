"""The layered parallax clip: layer motion by depth, plate fills, camera moves, writers, CLI."""

from itertools import pairwise

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from stager import parallax as px
from stager.cli import main
from stager.images import ImageError
from stager.synth import contact_shadow

H, W = 120, 160
RED, BLUE, GREEN = (220, 30, 30), (30, 40, 230), (30, 200, 60)


def scene():
    """A synthetic room: textured wall with a green marker (rows 10-20), a grey floor from row
    50, a red product standing on the floor at rows 60-100 (base row 99) and a plate that holds
    blue behind the product (what a backend filled in). No channel is ever 0."""
    x = np.mgrid[0:H, 0:W][1]
    plate = np.zeros((H, W, 3), np.uint8)
    plate[:50] = (180 + 40 * np.sin(x[:50] / 3.0))[..., None].astype(np.uint8)
    plate[50:] = 110
    plate[10:20, 20:30] = GREEN
    mask = np.zeros((H, W), bool)
    mask[60:100, 60:100] = True
    plate[mask] = BLUE
    image = plate.copy()
    image[mask] = RED
    return image, mask, plate


def centroid_x(frame, colour):
    hit = (np.abs(frame.astype(int) - colour).max(axis=2) < 40)
    return np.nonzero(hit)[1].mean(), hit.sum()


def test_sway_moves_the_product_further_than_the_wall_by_the_ground_plane_depths():
    image, mask, plate = scene()
    clip = px.make_clip(image, mask, plate, seconds=1, fps=8, amplitude=0.05, move="sway")
    assert len(clip.frames) == 8 and clip.plate_source == px.GIVEN
    t = px.camera("sway", 8)
    prod = np.array([centroid_x(f, RED)[0] for f in clip.frames]) - 79.5
    wall = np.array([centroid_x(f, GREEN)[0] for f in clip.frames]) - 24.5
    # independent depths: floor inverse depth rises linearly from the horizon (0.4 H) to 1 at
    # the bottom; the wall stands at WALL_INV; the product at its base row (99)
    inv_product = ((99 + 0.5) / H - 0.4) / 0.6
    np.testing.assert_allclose(prod, 0.05 * W * t * inv_product, atol=0.35)
    np.testing.assert_allclose(wall, 0.05 * W * t * px.WALL_INV, atol=0.35)
    assert np.ptp(prod) > 5 * np.ptp(wall) and np.ptp(prod) > 6


def test_frames_differ_and_every_pixel_is_painted():
    image, mask, plate = scene()
    for move in ("sway", "push"):
        for given in (plate, None):
            clip = px.make_clip(image, mask, given, seconds=1, fps=10, amplitude=0.1, move=move)
            for a, b in pairwise(clip.frames):
                assert np.abs(a.astype(int) - b).max() > 5  # consecutive frames differ
            stack = np.stack(clip.frames)
            # every input pixel has all channels >= 30: a black or dark pixel is unpainted
            assert stack.min() >= 25, (move, given is None)


def redness(frame):
    """Soft area of the red product: 1 for pure red, 0 for the wall, floor and blue plate."""
    f = frame.astype(float)
    return np.clip((f[..., 0] - f[..., 1]) / (RED[0] - RED[1]), 0, 1)


def test_disocclusions_show_the_plate_not_telea():
    image, mask, plate = scene()
    t = px.camera("sway", 8)
    peak = int(np.argmax(t))
    clip = px.make_clip(image, mask, plate, seconds=1, fps=8, amplitude=0.1, move="sway")
    blue = (np.abs(clip.frames[peak].astype(int) - BLUE).max(axis=2) < 40)
    # the product (base depth) moves further than the plate rows behind it: the strip it
    # uncovers is the plate's fill, as wide as the difference of the two shifts
    inv = px.inverse_depth(H)
    uncovered = (0.1 * W * t[peak] * (inv[99] - inv[60:100])).sum()
    assert blue[60:100].sum() == pytest.approx(uncovered, rel=0.25) and uncovered > 60
    fallback = px.make_clip(image, mask, None, seconds=1, fps=8, amplitude=0.1, move="sway")
    assert fallback.plate_source == px.FALLBACK
    blue = (np.abs(fallback.frames[peak].astype(int) - BLUE).max(axis=2) < 40)
    assert not blue.any()  # Telea of the surroundings has no blue


def test_push_in_enlarges_the_product_about_its_centre():
    image, mask, plate = scene()
    clip = px.make_clip(image, mask, plate, seconds=1, fps=12, amplitude=0.05, move="push")
    # push starts at the original view (a hard mask is softened inward: its rim may differ)
    rim = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert np.array_equal(clip.frames[0][~rim], image[~rim])
    inv_product = (99.5 / H - 0.4) / 0.6
    scale = 1 + px.PUSH_GAIN * 0.05 * inv_product
    areas = [redness(f).sum() for f in clip.frames]
    assert areas[-1] / areas[0] == pytest.approx(scale**2, rel=0.03)
    assert all(b > a for a, b in pairwise(areas))  # grows monotonically
    xs = [centroid_x(f, RED)[0] for f in clip.frames]
    assert np.ptp(xs) < 0.5  # about its centre


def test_shadow_layer_moves_with_the_product_and_frame_zero_rebuilds_the_image():
    _, mask, plate = scene()
    plate[50:, :] = 120  # plain floor, so only the shadow darkens it
    plate[mask] = BLUE  # what the backend filled behind the product
    shadow = contact_shadow((H, W), (58, 60, 102, 103), 0.55)  # the pipeline's shadow model
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (5, 5), 0)  # a soft product edge
    # the pipeline's layering: plate, shadow multiplied, product pasted with its alpha
    staged = plate * (shadow * (1 - alpha))[..., None] + np.float32(RED) * alpha[..., None]
    staged = np.clip(staged + 0.5, 0, 255).astype(np.uint8)
    layers = px.make_layers(staged, alpha, plate)  # shadow estimated from image / plate
    outside = alpha == 0
    assert (shadow[outside] < 0.8).sum() > 50  # a visible shadow beside the product...
    assert np.abs(layers.shadow - shadow)[outside].max() < 0.02  # ...recovered where seen
    # the product layer holds no plate colour at its rim: un-premultiplied, it is pure red
    # (above the contact shadow, whose darkness under the rim cannot be seen)
    rim = (alpha > 0.3) & (alpha < 0.7)
    rim[88:] = False
    colour = layers.color[rim] / alpha[rim][:, None]
    assert np.abs(colour - RED).max() < 3
    push = px.make_clip(staged, alpha, plate, seconds=1, fps=4, move="push")
    assert np.abs(push.frames[0].astype(int) - staged).max() <= 1
    sway = px.make_clip(staged, alpha, plate, seconds=1, fps=8, amplitude=0.1, move="sway")
    k = int(np.argmax(px.camera("sway", 8)))
    dark = sway.frames[k][102:106].mean(axis=(0, 2)) < 100
    prod_x, _ = centroid_x(sway.frames[k], RED)
    assert abs(np.nonzero(dark)[0].mean() - prod_x) < 1.0  # the shadow stays under the product


def test_mp4_is_h264_with_the_requested_frames_and_size(tmp_path):
    image, mask, plate = scene()
    clip = px.animate(image, mask, tmp_path / "c.mp4", plate, seconds=1.5, fps=12)
    reader = imageio_ffmpeg.read_frames(str(clip.path))
    meta = next(reader)
    decoded = [np.frombuffer(f, np.uint8).reshape(H, W, 3) for f in reader]
    assert len(decoded) == 18 and meta["size"] == (W, H) and meta["fps"] == 12
    assert meta["codec"].startswith("h264") and meta["pix_fmt"].startswith("yuv420p")
    assert np.abs(decoded[5].astype(float) - clip.frames[5]).mean() < 6
    # odd sides: one edge-replicated column and row for yuv420p
    odd = px.write_clip([f[:-1, :-1] for f in clip.frames[:4]], tmp_path / "odd.mp4", 12)
    reader = imageio_ffmpeg.read_frames(str(odd))
    assert next(reader)["size"] == (W, H)
    decoded = [np.frombuffer(f, np.uint8).reshape(H, W, 3) for f in reader]
    assert len(decoded) == 4
    assert np.abs(decoded[2][:-1, :-1].astype(float) - clip.frames[2][:-1, :-1]).mean() < 6


def test_gif_has_the_requested_frames_and_length(tmp_path):
    image, mask, plate = scene()
    steps = []
    clip = px.animate(image, mask, tmp_path / "c.gif", plate, seconds=2, fps=24,
                      progress=lambda f, m: steps.append(f))
    gif = Image.open(clip.path)
    assert gif.n_frames == 48
    total = 0
    for i in range(gif.n_frames):
        gif.seek(i)
        total += gif.info["duration"]
    assert total == pytest.approx(2000, abs=10)
    assert steps == sorted(steps) and steps[-1] == pytest.approx(1.0)


def test_settings_give_the_defaults_and_parameters_override(settings_env):
    image, mask, plate = scene()
    settings_env(PARALLAX_SECONDS=0.5, PARALLAX_FPS=10, PARALLAX_MOVE="push")
    clip = px.make_clip(image, mask, plate)
    assert len(clip.frames) == 5 and clip.move == "push" and clip.amplitude == 0.03
    clip = px.make_clip(image, mask, plate, fps=8, move="sway")
    assert len(clip.frames) == 4 and clip.move == "sway"


@pytest.mark.parametrize("case, match", [
    ("suffix", "unsupported clip format"), ("mask_shape", "but the image is"),
    ("empty", "empty"), ("plate_shape", "plate is"), ("grey", "HxWx3 uint8"),
    ("move", "unknown"), ("short", "at least 4"),
])
def test_bad_inputs_raise_one_line_errors(tmp_path, case, match):
    image, mask, plate = scene()
    kw = {"image": image, "alpha": mask, "out": tmp_path / "c.mp4", "plate": plate,
          "seconds": 1, "fps": 8}
    if case == "suffix":
        kw["out"] = tmp_path / "c.avi"
    elif case == "mask_shape":
        kw["alpha"] = mask[:-2]
    elif case == "empty":
        kw["alpha"] = np.zeros_like(mask)
    elif case == "plate_shape":
        kw["plate"] = plate[:, :-4]
    elif case == "grey":
        kw["image"] = image[..., 0]
    elif case == "move":
        kw["move"] = "orbit"
    elif case == "short":
        kw["seconds"] = 0.25
    with pytest.raises(ImageError, match=match) as e:
        px.animate(**kw)
    assert "\n" not in str(e.value)
    assert not list(tmp_path.iterdir())


def test_cli_writes_mp4_and_gif_and_rejects_other_suffixes(tmp_path, capsys):
    image, mask, plate = scene()
    paths = {}
    for name, arr in (("img", image), ("mask", mask.astype(np.uint8) * 255), ("plate", plate)):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(arr).save(paths[name])
    base = ["parallax", "--image", str(paths["img"]), "--mask", str(paths["mask"])]
    assert main(base + ["--plate", str(paths["plate"]), "--out", str(tmp_path / "a.mp4"),
                        "--seconds", "1", "--fps", "10", "--move", "push"]) == 0
    out = capsys.readouterr().out
    assert "10 frames" in out and "backend plate" in out
    assert sum(1 for _ in imageio_ffmpeg.read_frames(str(tmp_path / "a.mp4"))) - 1 == 10
    assert main(base + ["--out", str(tmp_path / "a.gif"), "--seconds", "0.5", "--fps", "12",
                        "--amplitude", "0.05"]) == 0
    assert Image.open(tmp_path / "a.gif").n_frames == 6
    assert "classical fallback" in capsys.readouterr().out
    assert main(base + ["--out", str(tmp_path / "a.webm")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "unsupported clip format" in err and "\n" not in err
