import io

import numpy as np
import pytest
from PIL import Image

from stager.config import reset_settings
from stager.images import (ImageError, bbox, check_mask, dilate, erode, load_image, load_mask,
                           to_rgb)


def _png(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def test_rgba_keeps_alpha_and_values():
    arr = np.zeros((4, 5, 4), np.uint8)
    arr[..., 0], arr[..., 3] = 200, 100
    out = load_image(_png(Image.fromarray(arr, "RGBA")))
    assert out.shape == (4, 5, 4) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [200, 0, 0, 100]


def test_la_becomes_rgba_grey():
    im = Image.fromarray(np.dstack([np.full((3, 3), 90, np.uint8), np.full((3, 3), 30, np.uint8)]),
                         "LA")
    out = load_image(_png(im))
    assert out.shape == (3, 3, 4) and out[1, 1].tolist() == [90, 90, 90, 30]


def test_palette_with_transparency_keeps_alpha():
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    im.info["transparency"] = 0
    im.putpixel((0, 0), 0)
    out = load_image(_png(im))
    assert out.shape[2] == 4
    assert out[0, 0, 3] == 0 and out[1, 1].tolist() == [10, 20, 30, 255]


def test_cmyk_converts_to_rgb():
    im = Image.new("CMYK", (3, 3), (0, 255, 255, 0))  # pure red in CMYK
    out = load_image(_tiff(im))  # PNG cannot hold CMYK; TIFF can
    assert out.shape == (3, 3, 3)
    assert out[0, 0, 0] > 240 and out[0, 0, 1] < 15 and out[0, 0, 2] < 15


def _tiff(im):
    buf = io.BytesIO()
    im.save(buf, format="TIFF")
    return buf.getvalue()


def test_16bit_grey_scales_to_8bit():
    arr = np.array([[0, 65535], [32896, 257 * 10]], np.uint16)
    out = load_image(_png(Image.fromarray(arr)))
    assert out.shape == (2, 2, 3)
    assert out[0, 0, 0] == 0 and out[0, 1, 0] == 255 and out[1, 0, 0] == 128 and out[1, 1, 0] == 10


def test_l_and_1_modes():
    out = load_image(_png(Image.fromarray(np.full((2, 2), 77, np.uint8), "L")))
    assert out[0, 0].tolist() == [77, 77, 77]
    b = Image.new("1", (3, 3), 1)
    out = load_image(_png(b))
    assert out.shape == (3, 3, 3) and out.min() == 255


def test_exif_orientation_is_applied():
    arr = np.zeros((2, 4, 3), np.uint8)
    arr[0, 0] = 255  # marker top-left of the stored pixels
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif, quality=100)
    out = load_image(buf.getvalue())
    assert out.shape[:2] == (4, 2)  # displayed portrait
    assert out[0, 1].mean() > 150  # the marker moved to the top-right


def test_not_an_image_is_a_one_line_error(tmp_path):
    bad = tmp_path / "upload.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(ImageError) as e:
        load_image(bad)
    assert "upload.pdf" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ImageError):
        load_image(b"")


def test_pixel_limit(monkeypatch):
    monkeypatch.setenv("STAGER_MAX_PIXELS", "1000")
    reset_settings()
    try:
        with pytest.raises(ImageError, match="over the limit"):
            load_image(_png(Image.new("RGB", (50, 50))))
    finally:
        monkeypatch.undo()
        reset_settings()


def test_large_image_downscaled_to_max_side():
    out = load_image(_png(Image.new("RGB", (3000, 1500))), max_side=1000)
    assert out.shape == (500, 1000, 3)


def test_mask_helpers():
    m = np.zeros((20, 20), bool)
    m[5:10, 6:12] = True
    assert bbox(m) == (6, 5, 12, 10)
    assert bbox(np.zeros((3, 3), bool)) is None
    d = dilate(m, 2)
    assert d.sum() > m.sum() and (d & m).sum() == m.sum()
    e = erode(m, 1)
    assert e.sum() < m.sum() and not (e & ~m).any()
    with pytest.raises(ImageError, match="empty"):
        check_mask(np.zeros((4, 4), bool), (4, 4))
    with pytest.raises(ImageError, match="whole image"):
        check_mask(np.ones((4, 4), bool), (4, 4))
    rgba = np.zeros((1, 1, 4), np.uint8)
    assert to_rgb(rgba).tolist() == [[[255, 255, 255]]]


def test_load_mask_from_png(tmp_path):
    m = np.zeros((6, 6), np.uint8)
    m[2:4, 2:4] = 255
    p = tmp_path / "m.png"
    Image.fromarray(m).save(p)
    out = load_mask(p)
    assert out.dtype == bool and out.sum() == 4
