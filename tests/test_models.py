"""Networks: shapes, parameter counts, overfit checks, the boundary weight map, weights I/O."""

import numpy as np
import pytest
import torch

from models import diffusion as dm
from models import edgeconnect as ec
from models import pix2pix as p2p
from models.layers import count_params
from models.weights_io import WeightsError, load_into, read_meta, save


def unet_params(w: int, n: int, cin: int = 3, cout: int = 3) -> int:
    """pix2pix U-Net parameters from its layer list (4x4 convs; BN = 2 per channel)."""
    total = cin * w * 16 + 2 * w * cout * 16 + cout  # outermost down (no bias) / up (bias)
    for a, b in ((w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w)):  # down a->b, up 2b->a
        total += a * b * 16 + 2 * b + 2 * b * a * 16 + 2 * a
    total += (n - 5) * (8 * w * 8 * w * 16 + 16 * w + 16 * w * 8 * w * 16 + 16 * w)
    total += 8 * w * 8 * w * 16 * 2 + 16 * w  # innermost: down, up, BN
    return total


def ec_params(w: int, blocks: int, cin: int, cout: int, bias: bool) -> int:
    """EdgeConnect generator parameters (instance norm has none; final conv has a bias)."""
    convs = [(cin, w, 49), (w, 2 * w, 16), (2 * w, 4 * w, 16)] + \
        [(4 * w, 4 * w, 9)] * (2 * blocks) + [(4 * w, 2 * w, 16), (2 * w, w, 16)]
    total = sum(a * b * k + (b if bias else 0) for a, b, k in convs)
    return total + w * cout * 49 + cout


def test_pix2pix_shapes_and_params():
    g = p2p.UNetGenerator(width=8, num_downs=6)
    x = torch.randn(2, 3, 64, 64)
    assert g(x).shape == (2, 3, 64, 64)
    assert g(x).abs().max() <= 1.0  # tanh output
    assert count_params(g) == unet_params(8, 6) == 458_579
    assert count_params(p2p.UNetGenerator(width=16, num_downs=8)) == unet_params(16, 8)
    d = p2p.build_discriminator(8)
    logits, feats = d(torch.randn(2, 6, 64, 64))
    assert logits.shape == (2, 1, 6, 6) and len(feats) == 4
    # 70x70 receptive field: one output cell depends on a 70-pixel window
    x = torch.zeros(1, 6, 140, 140, requires_grad=True)
    d.eval()
    d(x)[0][0, 0, 5, 5].backward()
    cols = np.nonzero(x.grad.abs().sum((0, 1, 2)).numpy())[0]
    assert cols.max() - cols.min() + 1 == 70


def test_edgeconnect_shapes_and_params():
    e, i = ec.EdgeGenerator(8, 2), ec.InpaintGenerator(8, 2)
    assert e(torch.rand(1, 3, 64, 64)).shape == (1, 1, 64, 64)
    out = i(torch.rand(1, 4, 64, 64))
    assert out.shape == (1, 3, 64, 64) and 0 <= out.min() and out.max() <= 1
    assert count_params(e) == ec_params(8, 2, 3, 1, bias=False)
    assert count_params(i) == ec_params(8, 2, 4, 3, bias=True)
    # spectral norm in the edge generator only
    assert any("weight_orig" in n for n, _ in e.named_parameters())
    assert not any("weight_orig" in n for n, _ in i.named_parameters())


def test_diffusion_unet_shapes_and_params():
    u = dm.build_unet(32, 8)
    eps = u(torch.randn(2, 7, 32, 32), torch.tensor([10, 500])).sample
    assert eps.shape == (2, 3, 32, 32)
    # conv weights dominate: doubling the width multiplies the count by close to 4
    ratio = count_params(dm.build_unet(32, 16)) / count_params(u)
    assert 3.5 < ratio < 4.0
    first = u.conv_in.weight
    assert first.shape == (8, 7, 3, 3)  # noisy RGB + masked RGB + mask in


def _overfit(model, loss_fn, steps=8, lr=1e-3):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_one_seeded_step_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    x, y = torch.rand(2, 4, 32, 32), torch.rand(2, 3, 32, 32)
    m = (torch.rand(2, 1, 32, 32) > 0.6).float()
    w = torch.from_numpy(np.stack([ec.boundary_weight(mm[0].numpy() > 0, 4.0, 4.0) for mm in m]))[:, None]
    gi = ec.InpaintGenerator(8, 1)
    losses = _overfit(gi, lambda: ec.weighted_l1(gi(x), y, w, m))
    assert losses[-1] < losses[0] * 0.9
    g = p2p.UNetGenerator(width=4, num_downs=5)
    xi, yi = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 3, 32, 32) * 2 - 1
    losses = _overfit(g, lambda: (g(xi) - yi).abs().mean(), lr=2e-3)
    assert losses[-1] < losses[0]
    u = dm.build_unet(16, 8)
    sched = dm.train_scheduler()
    noise, t = torch.randn(2, 3, 16, 16), torch.tensor([100, 700])
    img = torch.rand(2, 3, 16, 16) * 2 - 1
    mm = torch.ones(2, 1, 16, 16)
    noisy = sched.add_noise(img, noise, t)
    losses = _overfit(u, lambda: ((u(torch.cat([noisy, dm.condition(img, mm)], 1), t).sample
                                   - noise) ** 2).mean(), steps=10)
    assert losses[-1] < losses[0]


def test_boundary_weight_map():
    m = np.zeros((64, 64), bool)
    m[16:48, 16:48] = True
    w = ec.boundary_weight(m, lam=4.0, sigma=3.0)
    # pixels touching the boundary on either side get 1 + lambda
    assert w[16, 30] == pytest.approx(5.0) and w[15, 30] == pytest.approx(5.0)
    assert w[32, 32] == pytest.approx(1.0, abs=1e-4)  # 16 px inside: exp(-15.5^2/18) ~ 0
    assert w[0, 0] == pytest.approx(1.0, abs=1e-6)
    # 5 px in from the boundary pixel on the left edge (and far from the others)
    assert w[32, 21] == pytest.approx(1 + 4 * np.exp(-(5.0 ** 2) / (2 * 9.0)), rel=1e-6)
    # outside too: 3 px beyond the boundary pixel of the known side
    assert w[32, 12] == pytest.approx(1 + 4 * np.exp(-(3.0 ** 2) / (2 * 9.0)), rel=1e-6)
    assert np.all(ec.boundary_weight(m, 0.0, 3.0) == 1.0)  # baseline: plain L1
    assert w.min() >= 1.0 and w.max() == pytest.approx(5.0)


def test_weights_roundtrip_and_errors(tmp_path):
    g = ec.InpaintGenerator(4, 1)
    path = save(g, tmp_path / "x.safetensors", {"config": g.config, "steps": 3})
    assert read_meta(path)["steps"] == 3
    g2 = load_into(ec.InpaintGenerator(4, 1), path)
    x = torch.rand(1, 4, 16, 16)
    assert torch.allclose(g(x), g2(x), atol=2e-2)  # fp16 storage
    with pytest.raises(WeightsError, match="not found"):
        read_meta(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(WeightsError, match="bad.safetensors.*STAGER_WEIGHTS_DIR"):
        read_meta(bad)
    with pytest.raises(WeightsError, match="does not match"):
        load_into(ec.InpaintGenerator(8, 1), path)


@pytest.mark.parametrize("kind", ["ddim", "dpm"])
def test_samplers_keep_known_pixels_and_stay_in_range(kind):
    torch.manual_seed(0)
    u = dm.build_unet(16, 8).eval()
    rgb = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    out = dm.sample(u, rgb, mask, steps=5, seed=1, scheduler=kind)
    # known pixels survive the [-1, 1] round trip within one level
    assert np.abs(out[~mask].astype(int) - rgb[~mask].astype(int)).max() <= 1
    # a random (untrained) model must not blow up to saturated noise: thresholding/clipping
    assert 0.05 < (out[mask] / 255.0).std() and out[mask].mean() not in (0, 255)
    again = dm.sample(u, rgb, mask, steps=5, seed=1, scheduler=kind)
    assert np.array_equal(out, again)  # seeded


def test_sdedit_start_follows_the_init():
    torch.manual_seed(0)
    u = dm.build_unet(16, 8).eval()
    rgb = np.full((16, 16, 3), 128, np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    init = rgb.copy()
    init[mask] = (250, 20, 20)
    low = dm.sample(u, rgb, mask, steps=10, seed=0, init=init, strength=0.1)
    high = dm.sample(u, rgb, mask, steps=10, seed=0, init=init, strength=1.0)
    red = np.array([250, 20, 20])
    d_low = np.abs(low[mask].astype(int) - red).mean()
    d_high = np.abs(high[mask].astype(int) - red).mean()
    assert d_low < 40 < d_high  # a little noise keeps the init; full strength forgets it


def test_training_cli_resumes_and_accumulates(tmp_path, catalog):
    """Two short runs of the real training entry point: the second resumes the first."""
    from stager.cli import main

    out, log = tmp_path / "w", tmp_path / "log"
    args = ["train", "pix2pix", "--res", "64", "--width", "4", "--batch", "2", "--pairs", "8",
            "--sample-every", "2", "--out", str(out), "--log-dir", str(log)]
    assert main(args + ["--steps", "2"]) == 0
    assert read_meta(out / "pix2pix.safetensors")["steps"] == 2
    ckpt = log / "pix2pix_ckpt.pt"
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 2
    state["wall_s"] = 1000.0  # pretend the first run took long: the total must carry it
    torch.save(state, ckpt)
    assert main(args + ["--steps", "4", "--resume"]) == 0
    meta = read_meta(out / "pix2pix.safetensors")
    assert meta["steps"] == 4 and 1000.0 < meta["wall_s"] < 1100.0
    rows = (log / "pix2pix_loss.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]  # one log, no restart
    assert (log / "pix2pix_loss.png").is_file() and (log / "pix2pix_samples_000004.png").is_file()


def test_compact_diffusion_keeps_the_classical_fills_low_frequencies(monkeypatch):
    """The compact sampler's colour drift (a pale cloud around the product) is taken out: in
    the hole the backend's output has the classical fill's local mean and the sampler's detail;
    outside it the image is untouched."""
    import cv2

    from stager.backends import diffusion as bd
    from stager.backends import get_backend

    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(120, 3, (64, 64, 3)), 0, 255).astype(np.uint8)
    img[:, 32:] = np.clip(img[:, 32:].astype(int) + 50, 0, 255)  # a two-tone room
    hole = np.zeros((64, 64), bool)
    hole[20:44, 12:52] = True
    telea = cv2.inpaint(img, hole.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    grain = rng.normal(0, 12, (64, 64, 1)).astype(np.float32)
    pale = np.clip(telea.astype(np.float32) + 40 + grain, 0, 255).astype(np.uint8)  # drifted

    def fake_sample(model, image, mask, **kw):
        return np.where(mask[..., None], pale, image)

    monkeypatch.setattr("models.diffusion.sample", fake_sample)
    b = get_backend("diffusion")
    monkeypatch.setattr(b, "load", lambda: object())
    b._kind = "compact"
    out = b.run(img, hole)
    inner = hole.copy()
    lo = lambda a: cv2.GaussianBlur(a.astype(np.float32), (0, 0), 4)  # noqa: E731
    assert np.abs(lo(out) - lo(telea))[inner].mean() < 4  # the drift (40) is gone
    assert np.abs(lo(pale) - lo(telea))[inner].mean() > 35
    detail = (out.astype(np.float32) - lo(out))[hole].std()
    assert detail > 0.7 * (pale.astype(np.float32) - lo(pale))[hole].std()  # grain kept
    assert np.array_equal(out[~hole], img[~hole])
    assert bd.keep_low_frequencies(pale, telea, np.zeros_like(hole)).tobytes() == pale.tobytes()
