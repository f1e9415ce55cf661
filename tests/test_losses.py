"""The training losses by their behaviour (not by exact numbers, so a change of normalisation
keeps them valid): the weighted boundary L1 counts errors at the hole's boundary more than
the same errors inside, and lambda 0 is plain L1; pix2pix's GAN + L1 losses credit the right
side; the EdgeConnect training path runs, and its weighted and baseline models differ only
because of the weights."""

import shutil

import numpy as np
import pytest
import torch
from torch import nn

from models import edgeconnect as ec
from models import pix2pix as p2p


def _hole(size=48):
    m = np.zeros((size, size), bool)
    m[12:36, 12:36] = True
    return m


def _t(a):
    return torch.from_numpy(np.asarray(a, np.float32))[None, None]


def test_weighted_l1_counts_boundary_errors_more_than_interior_ones():
    hole = _hole()
    w = ec.boundary_weight(hole, lam=4.0, sigma=1.5)
    band = w > 3.0  # pixels at the boundary
    inner = hole & (w < 1.01)  # deep inside the hole
    n = min(band.sum(), inner.sum())
    assert n >= 50
    target = torch.zeros(1, 1, *hole.shape)
    err_band, err_inner = np.zeros(hole.shape), np.zeros(hole.shape)
    err_band[tuple(a[:n] for a in np.nonzero(band))] = 1.0
    err_inner[tuple(a[:n] for a in np.nonzero(inner))] = 1.0
    m = _t(hole)
    # the same plain L1 error, placed at the boundary or deep inside
    assert (_t(err_band) - target).abs().sum() == (_t(err_inner) - target).abs().sum()
    at_band = ec.weighted_l1(_t(err_band), target, _t(w), m)
    inside = ec.weighted_l1(_t(err_inner), target, _t(w), m)
    assert at_band > 2.0 * inside
    # lambda 0: the weights are all one and the loss is plain L1 (up to a constant factor)
    ones = _t(ec.boundary_weight(hole, lam=0.0, sigma=1.5))
    assert torch.all(ones == 1)
    a = ec.weighted_l1(_t(err_band), target, ones, m)
    b = ec.weighted_l1(_t(err_inner), target, ones, m)
    assert a == pytest.approx(b.item(), rel=1e-6)
    rng = np.random.default_rng(0)
    p1, p2 = _t(rng.random(hole.shape)), _t(rng.random(hole.shape) * 0.3)
    ratio = ec.weighted_l1(p1, target, ones, m) / ec.weighted_l1(p2, target, ones, m)
    plain = (p1 - target).abs().mean() / (p2 - target).abs().mean()
    assert ratio.item() == pytest.approx(plain.item(), rel=1e-5)


class _Judge(nn.Module):
    """A fixed discriminator: logit +10 for an all-ones output image, -10 for all zeros."""

    def forward(self, x):
        return x[:, 3:].mean((1, 2, 3), keepdim=True) * 20 - 10, None


def test_pix2pix_losses_credit_the_right_side():
    inp = torch.zeros(1, 3, 8, 8)
    real, fake = torch.ones(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    judge = _Judge()
    d_good, _ = p2p.discriminator_loss(judge, inp, fake, real)
    d_bad, _ = p2p.discriminator_loss(judge, inp, real, fake)  # sides swapped
    assert d_good.item() < 1e-3 < 5.0 < d_bad.item()
    # the generator is rewarded for fooling the judge and for matching the target
    g_fooled, parts = p2p.generator_loss(judge, inp, real.clone(), real)
    assert parts["g_l1"] == 0.0 and parts["g_gan"] < 1e-3 and g_fooled.item() < 1e-3
    g_caught, parts = p2p.generator_loss(judge, inp, fake.clone(), real, l1_weight=100.0)
    assert parts["g_gan"] > 5.0 and parts["g_l1"] == pytest.approx(1.0)
    assert g_caught.item() == pytest.approx(parts["g_gan"] + 100.0 * parts["g_l1"], rel=1e-5)
    # the generator's loss reaches the generator's output; the discriminator's does not
    f = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    assert not p2p.discriminator_loss(judge, inp, f, real)[0].requires_grad  # fake detached
    p2p.generator_loss(judge, inp, f, real)[0].backward()
    assert f.grad is not None and (f.grad < 0).all()  # raising the output towards 1 helps


def test_edgeconnect_training_weighted_and_baseline_differ_only_by_the_weights(tmp_path, catalog):
    from safetensors.torch import load_file

    from models.weights_io import read_meta
    from stager.cli import main

    out = tmp_path / "w"
    common = ["train", "edgeconnect", "--res", "32", "--width", "4", "--blocks", "1",
              "--batch", "2", "--pairs", "6", "--steps", "2", "--sample-every", "2",
              "--out", str(out)]
    assert main(common + ["--stage", "all", "--boundary-lambda", "4",
                          "--log-dir", str(tmp_path / "a")]) == 0
    assert main(common + ["--stage", "inpaint", "--boundary-lambda", "0",
                          "--log-dir", str(tmp_path / "b")]) == 0
    weighted = out / "edgeconnect_inpaint_weighted.safetensors"
    baseline = out / "edgeconnect_inpaint_baseline.safetensors"
    assert read_meta(weighted)["boundary_lambda"] == 4.0
    assert read_meta(baseline)["boundary_lambda"] == 0.0
    logs = (tmp_path / "a" / "inpaint_weighted_loss.csv").read_text().strip().splitlines()
    assert len(logs) == 3 and all(np.isfinite(float(v)) for v in logs[-1].split(",")[1:])
    # same init, same batches: only the boundary weights can make the two models differ
    a, b = load_file(str(weighted)), load_file(str(baseline))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    (tmp_path / "again").mkdir()
    shutil.copy(out / "edgeconnect_edge.safetensors", tmp_path / "again")
    assert main(common + ["--stage", "inpaint", "--boundary-lambda", "0",
                          "--out", str(tmp_path / "again"), "--log-dir", str(tmp_path / "c")]) == 0
    again = load_file(str(tmp_path / "again" / "edgeconnect_inpaint_baseline.safetensors"))
    assert all(torch.equal(again[k], b[k]) for k in b)  # deterministic: the test means it


def test_gradient_l1_asks_for_the_truths_edges_inside_the_hole_only():
    """The gradient term is zero for a perfect fill, counts a blurred fill (same mean) and not
    a fill offset by a constant (its differences are the truth's, but at the hole's edge), and
    ignores whatever happens away from the hole."""
    hole = _hole()
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 1, hole.shape).astype(np.float32)
    m = _t(hole)
    tt = _t(truth)
    assert ec.gradient_l1(tt, tt, m).item() == 0.0
    blurred = np.where(hole, truth.mean(), truth)
    offset = np.where(hole, truth + 0.2, truth)
    g_blur = ec.gradient_l1(_t(blurred), tt, m).item()
    g_off = ec.gradient_l1(_t(offset), tt, m).item()
    assert g_blur > 0.2 and g_off < 0.2 * g_blur  # edges lost count; a shift only at its rim
    far = truth.copy()
    far[:6, :6] += 0.5  # away from the hole
    assert ec.gradient_l1(_t(far), tt, m).item() == 0.0
    # the plain pixel L1 cannot tell the blurred fill from the offset one this way
    assert ec.weighted_l1(_t(offset), tt, torch.ones_like(m), m).item() > \
        ec.weighted_l1(_t(blurred), tt, torch.ones_like(m), m).item() * 0.5
