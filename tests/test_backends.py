import numpy as np
import pytest

from stager.backends import REGISTRY, context_window, get_backend
from stager.backends.base import Backend
from tests.conftest import random_scene


def _mask(shape, box):
    m = np.zeros(shape, bool)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = True
    return m


@pytest.mark.parametrize("name", list(REGISTRY))
def test_pixels_outside_the_mask_are_bit_exact(name, tiny_weights, settings_env):
    settings_env(WEIGHTS_DIR=tiny_weights)
    b = get_backend(name)
    ok, why = b.available()
    assert ok, why
    img = random_scene(3, 300)[:, :280]
    mask = _mask(img.shape[:2], (100, 120, 170, 220))
    out = b(img, mask)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], img[~mask])
    assert not np.array_equal(out[mask], img[mask])


def test_missing_and_corrupt_weights_are_reported_by_name(tmp_path, settings_env):
    settings_env(WEIGHTS_DIR=tmp_path)
    ok, why = get_backend("edgeconnect").available()
    assert not ok and "edgeconnect_edge.safetensors" in why and "STAGER_WEIGHTS_DIR" in why
    (tmp_path / "pix2pix.safetensors").write_bytes(b"\x00garbage")
    ok, why = get_backend("pix2pix").available()
    assert not ok and "pix2pix.safetensors" in why and "STAGER_WEIGHTS_DIR" in why
    with pytest.raises(RuntimeError, match="pix2pix.safetensors"):
        get_backend("pix2pix")(random_scene(0, 64), _mask((64, 64), (10, 10, 20, 20)))
    assert get_backend("telea").available()[0]  # the classical fallback always runs


def test_context_window_is_square_and_inside():
    m = _mask((200, 300), (250, 150, 290, 190))
    x0, y0, x1, y1 = context_window(m, 1.6, 32)
    assert x1 - x0 == y1 - y0 == 64 and x1 <= 300 and y1 <= 200
    assert x0 <= 250 and y0 <= 150 and x1 >= 290 and y1 >= 190


class _Echo(Backend):
    name, resolution = "echo", 32

    def run(self, image, mask, **_):
        self.seen = (image.shape, mask.sum())
        return np.zeros_like(image)


def test_base_runs_the_model_at_its_resolution_and_uses_only_the_fill_inside():
    b = _Echo()
    img = np.full((400, 400, 3), 100, np.uint8)
    mask = _mask((400, 400), (100, 100, 300, 300))
    out = b(img, mask)
    assert b.seen[0] == (32, 32, 3)
    assert np.array_equal(out[~mask], img[~mask])
    assert out[200, 200].tolist() == [0, 0, 0]  # deep inside: model output
    assert out[100, 200].tolist() == [0, 0, 0]  # edge of the hole: the fill, never a blend


class _NativeEcho(_Echo):
    name, fully_conv, pad_mod = "native-echo", True, 8


def test_fully_convolutional_backends_run_at_native_resolution_up_to_the_cap(settings_env):
    settings_env(FILL_MAX_SIDE="512")
    b = _NativeEcho()
    img = np.full((1024, 1024, 3), 100, np.uint8)
    small = _mask((1024, 1024), (400, 400, 500, 500))  # window 160 px: native, padded to 8
    b(img, small)
    assert b.seen[0] == (160, 160, 3)
    big = _mask((1024, 1024), (100, 100, 700, 700))  # window 960 px: capped at 512
    out = b(img, big)
    assert b.seen[0] == (512, 512, 3)
    assert np.array_equal(out[~big], img[~big])


def test_weights_without_project_metadata_are_unavailable_with_a_reason(tmp_path, settings_env,
                                                                        tiny_weights):
    import shutil

    import torch
    from safetensors.torch import save_file

    for f in tiny_weights.iterdir():
        shutil.copy(f, tmp_path / f.name)
    # a valid safetensors file, but not one of ours: no "meta" header with the config
    save_file({"w": torch.zeros(2)}, str(tmp_path / "pix2pix.safetensors"))
    save_file({"w": torch.zeros(2)}, str(tmp_path / "edgeconnect_inpaint_baseline.safetensors"),
              metadata={"meta": '{"steps": 3}'})
    settings_env(WEIGHTS_DIR=tmp_path)
    for name in ("pix2pix", "edgeconnect_baseline"):
        ok, why = get_backend(name).available()
        assert not ok and "no Product Stager metadata" in why and "STAGER_WEIGHTS_DIR" in why
    assert get_backend("edgeconnect").available()[0]  # its own files are fine


def test_each_edgeconnect_backend_loads_its_own_weights(tiny_weights, settings_env):
    """The baseline must run the plain-L1 network, never the weighted one (and vice versa)."""
    from safetensors.torch import load_file

    from stager.backends import weights

    settings_env(WEIGHTS_DIR=tiny_weights)
    files = {k: load_file(str(weights.path(k))) for k in ("inpaint_weighted", "inpaint_baseline")}
    assert any(not (files["inpaint_weighted"][k] == v).all()
               for k, v in files["inpaint_baseline"].items())
    for name, key in (("edgeconnect", "inpaint_weighted"),
                      ("edgeconnect_baseline", "inpaint_baseline")):
        _, gi = get_backend(name).load()
        for k, v in gi.state_dict().items():
            assert (v.half() == files[key][k]).all(), (name, k)
        assert weights.meta(key)["boundary_lambda"] == (4.0 if key == "inpaint_weighted" else 0.0)
