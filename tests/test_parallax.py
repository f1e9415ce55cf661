import numpy as np
from PIL import Image

from stager.cli import main
from stager.parallax import frames


def test_product_layer_moves_more_than_the_far_wall():
    img = np.zeros((80, 100, 3), np.uint8)
    img[:30] = np.linspace(0, 255, 100, dtype=np.uint8)[None, :, None]  # far wall gradient
    img[30:] = 90
    mask = np.zeros((80, 100), bool)
    mask[50:75, 40:60] = True
    img[mask] = (220, 20, 20)
    fr = frames(img, mask, n=8, amplitude=0.05)
    assert len(fr) == 8 and fr[0].shape == img.shape
    quarter = fr[1]  # near the maximum sway
    red = (quarter[..., 0] > 180) & (quarter[..., 1] < 60)
    cx = np.nonzero(red)[1].mean()
    assert cx - 49.5 > 1.5  # the product shifted right
    # the wall moved less than the product (smaller inverse depth)
    row = quarter[10, 20:80, 0].astype(float)
    orig = img[10, 20:80, 0].astype(float)
    wall_shift = (orig.mean() - row.mean()) / (255 / 100)
    assert abs(wall_shift) < cx - 49.5


def test_cli_writes_a_gif(tmp_path, catalog):
    s = catalog.scenes[0]
    img, m = tmp_path / "i.png", tmp_path / "m.png"
    Image.fromarray(catalog.scene_image(s.id)).save(img)
    Image.fromarray(catalog.scene_mask(s.id).astype(np.uint8) * 255).save(m)
    assert main(["parallax", "--image", str(img), "--mask", str(m), "--out",
                 str(tmp_path / "a.gif"), "--frames", "6"]) == 0
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 6
