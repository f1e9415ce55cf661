"""EdgeConnect (Nazeri et al. 2019): edges first, then colour, with the weighted boundary loss.

Edge generator: (grey, edges, mask) -> edges, spectral norm throughout.
Inpainting generator: (masked RGB, edges) -> RGB.
Both: encoder (7x7 conv, two stride-2 4x4 convs), dilated residual blocks, decoder.
Discriminators: spectral-norm PatchGANs that also return features for feature matching.

The weighted boundary loss (the method's change): the L1 term is weighted per pixel by
``w = 1 + lambda * exp(-d^2 / (2 sigma^2))``, ``d`` the distance in pixels to the hole's
boundary, normalised to mean 1 per image; ``lambda = 0`` is the EdgeConnect baseline.
The edge discriminator sees (edges, grey image): 2 channels, as in EdgeConnect.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from .layers import PatchDiscriminator, ResnetBlock, sn


class _Generator(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, width: int, blocks: int, spectral: bool):
        super().__init__()
        w = width

        def conv(cin, cout, k, s, p, t=False):
            layer = (nn.ConvTranspose2d if t else nn.Conv2d)(cin, cout, k, s, p, bias=not spectral)
            return [sn(layer, spectral), nn.InstanceNorm2d(cout, track_running_stats=False),
                    nn.ReLU(True)]

        self.encoder = nn.Sequential(nn.ReflectionPad2d(3), *conv(in_ch, w, 7, 1, 0),
                                     *conv(w, 2 * w, 4, 2, 1), *conv(2 * w, 4 * w, 4, 2, 1))
        self.middle = nn.Sequential(*[ResnetBlock(4 * w, 2, spectral) for _ in range(blocks)])
        self.decoder = nn.Sequential(*conv(4 * w, 2 * w, 4, 2, 1, t=True),
                                     *conv(2 * w, w, 4, 2, 1, t=True), nn.ReflectionPad2d(3),
                                     nn.Conv2d(w, out_ch, 7))
        self.config = {"width": width, "blocks": blocks}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.middle(self.encoder(x)))


class EdgeGenerator(_Generator):
    """``(B, 3, H, W)`` = grey, edges, mask in [0, 1] -> edge probability ``(B, 1, H, W)``."""

    def __init__(self, width: int = 64, blocks: int = 8):
        super().__init__(3, 1, width, blocks, spectral=True)

    def forward(self, x):
        return torch.sigmoid(super().forward(x))


class InpaintGenerator(_Generator):
    """``(B, 4, H, W)`` = masked RGB (hole white), edges in [0, 1] -> RGB ``(B, 3, H, W)``.

    With ``prior="telea"`` the input is ``(B, 5, H, W)`` = RGB with the hole pre-filled by a
    classical fill, edges, mask; the network predicts a bounded correction of that prior and
    its last layer starts at zero, so an untrained model returns the prior exactly and training
    can only move it toward the truth (a compact model learns texture and structure on top of
    a fill that already has the right low frequencies).
    """

    def __init__(self, width: int = 64, blocks: int = 8, prior: str | None = None):
        super().__init__(5 if prior else 4, 3, width, blocks, spectral=False)
        self.prior = prior
        if prior:
            self.config["prior"] = prior
            last = self.decoder[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x):
        out = super().forward(x)
        if self.prior:
            return (x[:, :3] + 0.5 * torch.tanh(out)).clamp(0, 1)
        return (torch.tanh(out) + 1) / 2


def classical_prior(rgb: np.ndarray, mask: np.ndarray, kind: str = "telea") -> np.ndarray:
    """The classical fill of ``mask`` in a uint8 RGB image that a residual model refines:
    Telea (what ``prior="telea"`` models train on), or ``"lines"``, line-guided Telea
    (``stager.linefill``: Telea's fill with straight structure carried across the hole)."""
    import cv2

    if kind == "lines":
        from stager.linefill import fill

        return fill(np.ascontiguousarray(rgb), mask.astype(bool), 5)
    return cv2.inpaint(np.ascontiguousarray(rgb), mask.astype(np.uint8) * 255, 5,
                       cv2.INPAINT_TELEA)


def fsr_fill(rgb: np.ndarray, mask: np.ndarray, max_px: int = 8000) -> np.ndarray | None:
    """OpenCV's frequency-selective reconstruction (``cv2.xphoto``, FSR fast; opencv-contrib)
    of ``mask`` in a uint8 RGB image, or None when this OpenCV build lacks ``xphoto``. It costs
    about 60 us per hole pixel on one core, so a hole of more than ``max_px`` pixels is
    reconstructed at the scale that brings it to ``max_px`` and scaled back (a low-pass fill
    there); pixels outside the mask come back unchanged."""
    import cv2

    if not hasattr(cv2, "xphoto"):
        return None
    m = mask.astype(bool)
    n = int(m.sum())
    if n == 0:
        return rgb.copy()
    h, w = m.shape
    scale = min(1.0, (max_px / n) ** 0.5)
    img, mm = np.ascontiguousarray(rgb), m
    if scale < 1.0:
        sw, sh = max(int(round(w * scale)), 8), max(int(round(h * scale)), 8)
        img = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
        mm = cv2.resize(m.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_AREA) > 0
    out = np.zeros_like(img)
    cv2.xphoto.inpaint(img, (~mm).astype(np.uint8), out, cv2.xphoto.INPAINT_FSR_FAST)
    if scale < 1.0:
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(m[..., None], out, rgb)


# FSR is blended in fully where its low frequencies (blurred 4 px) stay within this many grey
# levels of the classical fill, not at all from 2.5 times as many: in a plain imported room it
# carried the floor line up into a dark band on the wall (-18.6 grey levels over the 14 rows
# above the line after EdgeConnect; -0.2 without FSR). Measured (30 real-photo gaps / 48
# catalog pairs, below Telea): unbounded 9.1% / 25.9% and the band; 16: 8.2% / 24.9%;
# 12: 7.8% / 24.8%; 6: 7.0% / 24.0%; the band test passes up to 16 and fails at 24.
FSR_LOW_CLIP = 12.0


def blend_fsr(prior: np.ndarray, mask: np.ndarray, mix: float, max_px: int = 8000,
              low_clip: float | None = None) -> np.ndarray:
    """``prior`` (uint8 RGB whose ``mask`` holds a classical fill) with ``mix`` of FSR's
    reconstruction of the hole (``fsr_fill``, from the pixels outside it) blended in, fully
    where its low frequencies (blurred 4 px, the largest channel) stay within ``low_clip``
    grey levels of the prior's and less further out, none from 2.5 times that (a structure
    FSR invents, not texture). The prior unchanged when ``mix`` is 0 or OpenCV lacks
    ``xphoto``."""
    import cv2

    if mix <= 0:
        return prior
    f = fsr_fill(prior, mask, max_px)
    if f is None:
        return prior
    clip = FSR_LOW_CLIP if low_clip is None else low_clip
    m = mask.astype(bool)[..., None]
    diff = f.astype(np.float32) - prior.astype(np.float32)
    low = np.abs(cv2.GaussianBlur(diff, (0, 0), 4.0)).max(-1, keepdims=True)
    w = mix * np.clip((2.5 * clip - low) / (1.5 * clip), 0.0, 1.0)  # full to clip, none at 2.5x
    mixed = prior.astype(np.float32) + w * diff
    return np.where(m, np.clip(mixed + 0.5, 0, 255).astype(np.uint8), prior)


def build_inpaint(config: dict) -> "InpaintGenerator":
    """An inpainting generator from a weights file's ``config``."""
    return InpaintGenerator(config["width"], config["blocks"], config.get("prior"))


def build_discriminator(in_ch: int, width: int = 64) -> PatchDiscriminator:
    return PatchDiscriminator(in_ch, width, n_layers=3, spectral=True, norm=False)


def boundary_weight(mask: np.ndarray, lam: float, sigma: float) -> np.ndarray:
    """Per-pixel L1 weight ``1 + lam * exp(-d^2 / (2 sigma^2))`` (HxW float32).

    ``d`` counts pixels from the boundary on either side (Euclidean distance transform minus
    one), so the pixels touching the hole/known boundary get ``d = 0`` and weight ``1 + lam``.
    """
    m = mask.astype(bool)
    if not m.any() or m.all() or lam == 0:
        return np.ones(m.shape, np.float32)
    d_in = ndimage.distance_transform_edt(m)
    d_out = ndimage.distance_transform_edt(~m)
    d = np.where(m, d_in, d_out) - 1.0
    return (1.0 + lam * np.exp(-(d ** 2) / (2.0 * sigma ** 2))).astype(np.float32)


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
    """EdgeConnect's L1 (mean over the image, divided by the hole fraction), weighted per pixel
    by ``weight / mean(weight)`` of each image: the weights move emphasis toward the boundary
    without changing the loss's overall scale, so a weighted and a plain model train with the
    same L1 strength against the same adversarial term. ``weight`` all ones is plain L1."""
    w = weight / weight.mean(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    return (w * (pred - target).abs()).mean() / mask.mean().clamp_min(1e-3)


def gradient_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 between the horizontal and vertical finite differences of ``pred`` and ``target``,
    over the differences that touch the hole (either pixel in ``mask``), divided by the hole
    fraction like ``weighted_l1``. A pixel loss alone lets a fill that is unsure of a plank's
    tone settle on the blur between tones; this term also asks for the truth's edges, so the
    fill keeps its contrast (the sharpness ratio ``stager.evaluate.sharpness_ratio`` reads)."""
    def diffs(t):
        return t[..., :, 1:] - t[..., :, :-1], t[..., 1:, :] - t[..., :-1, :]

    mx = torch.maximum(mask[..., :, 1:], mask[..., :, :-1])
    my = torch.maximum(mask[..., 1:, :], mask[..., :-1, :])
    (px, py), (tx, ty) = diffs(pred), diffs(target)
    num = ((px - tx).abs() * mx).mean() + ((py - ty).abs() * my).mean()
    return num / mask.mean().clamp_min(1e-3)


def canny(gray: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Canny edges (bool) of a greyscale float image in [0, 1] with Gaussian ``sigma``."""
    from skimage.feature import canny as sk_canny

    return sk_canny(gray, sigma=sigma)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float greyscale in [0, 1] (ITU-R 601 luma)."""
    return (rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


def edge_input(rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grey, known edges) for one image: both HxW float32, hole regions zeroed/whitened."""
    gray = to_gray(rgb)
    edges = canny(gray).astype(np.float32) * (~mask)
    return gray, edges


@torch.no_grad()
def inpaint(edge_gen: EdgeGenerator, inp_gen: InpaintGenerator, rgb: np.ndarray,
            mask: np.ndarray, prefilled: bool = False, prior_kind: str = "telea",
            fsr_mix: float = 0.0, fsr_max_px: int = 8000) -> np.ndarray:
    """Run both stages on one image; returns uint8 RGB (hole filled). ``prefilled``: the
    pixels under ``mask`` already hold the classical prior (a Telea fill of a larger region,
    see ``stager.pipeline.fill_plate``), so a residual model refines them as they are;
    otherwise a residual model starts from ``classical_prior(..., prior_kind)``. ``fsr_mix``:
    the share of FSR's reconstruction blended into that prior (``blend_fsr``; 0 = none)."""
    gray, edges = edge_input(rgb, mask)
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    g = torch.from_numpy(gray)[None, None]
    e = torch.from_numpy(edges)[None, None]
    img = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    e_pred = edge_gen(torch.cat([g * (1 - m) + m, e, m], 1))
    e_merged = e * (1 - m) + e_pred * m
    if getattr(inp_gen, "prior", None):
        base = rgb if prefilled else classical_prior(rgb, mask, prior_kind)
        base = blend_fsr(base, mask, fsr_mix, fsr_max_px)
        prior = torch.from_numpy(base.astype(np.float32) / 255.0)
        x = img * (1 - m) + prior.permute(2, 0, 1)[None] * m
        out = inp_gen(torch.cat([x, e_merged, m], 1))
    else:
        out = inp_gen(torch.cat([img * (1 - m) + m, e_merged], 1))
    merged = img * (1 - m) + out * m
    return (merged[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
