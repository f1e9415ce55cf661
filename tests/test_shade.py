"""The shade model: the trained reader of the floor's shading around an old product."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import shade as sd
from stager import shadows as sh
from stager.images import bbox, dilate


def _held_out_scenes(indices):
    """Default-catalog scenes rendered from their parameters (the catalog's seed, which the
    shade model never trained on), with their empty rooms."""
    from stager import synth
    from stager.catalog import default_specs

    specs, _ = default_specs(240, 0, 7)
    return [synth.render_scene(specs[i]) for i in indices]


def test_untrained_shade_net_returns_the_classical_ratio():
    torch.manual_seed(0)
    net = sd.ShadeNet(8, 32).eval()
    x = torch.rand(2, 5, 32, 32)
    x[:, 4] = x[:, 4] * 1.4  # some out of the clamp range too
    out = torch.exp(net(x))
    want = x[:, 4:5].clamp(sd.RATIO_MIN, sd.RATIO_MAX)
    assert torch.allclose(out, want, atol=1e-5)


def test_missing_or_corrupt_shade_weights_fall_back_to_the_classical_ratio_and_say_so(
        tmp_path, settings_env):
    (layers,) = _held_out_scenes([9])
    scene, old = layers.image, layers.mask.astype(bool)
    settings_env(WEIGHTS_DIR=tmp_path)
    ok, why = sh.shade_reader()
    assert not ok and "shade.safetensors not found" in why and "classical" in why
    classical = sh.shade_maps(scene, old, learned=False)
    auto = sh.shade_maps(scene, old)
    assert all(np.array_equal(a, b) for a, b in zip(auto, classical))
    with pytest.raises(Exception, match="not found"):
        sh.shade_maps(scene, old, learned=True)
    (tmp_path / "shade.safetensors").write_bytes(b"not a weights file")
    settings_env(WEIGHTS_DIR=tmp_path)  # a new setting: read again
    ok, why = sh.shade_reader()
    assert not ok and "unreadable" in why and "\n" not in why
    settings_env(WEIGHTS_DIR=tmp_path, SHADE_MODEL="off")
    assert "off" in sh.shade_reader()[1]


def test_train_shade_writes_weights_that_name_their_data_and_refuses_the_catalogs_seed(
        tmp_path, capsys):
    from models.weights_io import read_meta
    from stager.cli import main

    out = tmp_path / "w"
    rc = main(["train", "shade", "--scenes", "10", "--res", "32", "--width", "4", "--steps",
               "3", "--batch", "2", "--device", "auto", "--out", str(out), "--log-dir",
               str(tmp_path / "log"), "--sample-every", "3"])
    assert rc == 0
    m = read_meta(out / "shade.safetensors")
    assert m["model"] == "shade" and m["steps"] == 3 and m["device"] == "cpu"
    assert m["config"] == {"width": 4, "res": 32} and "seed 101" in m["data"]
    assert m["val_log_l1"] > 0 and m["val_log_l1_classical"] > 0
    capsys.readouterr()
    assert main(["train", "shade", "--scenes", "2", "--shade-seed", "7", "--steps", "1",
                 "--out", str(tmp_path / "refused")]) != 0
    err = capsys.readouterr().err
    assert "the default catalog's" in err and len(err.strip().splitlines()[-1]) < 200
    assert not (tmp_path / "refused").exists()
