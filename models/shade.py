"""The shade model: a compact network that reads the floor's shading around an old product.

The classical shading ratio (``stager.shadows.shading_ratio``: luma over a morphological
reference) cannot tell a broad shadow from a darker material around it: on a rug inside a
darker wood floor, or under a sofa whose shadow is wider than any line that fits, the
reference sits inside the shadow and the ratio reads ~1. This network refines that ratio.

Input, on the window the shading maps are read in (``stager.shadows._ratio_window``) resized
to ``res`` x ``res``: RGB in [0, 1], the old product's mask (dilated 2 px) and the classical
ratio, 5 channels. Output: the log shading ratio (scene luma over the empty room's) as the
classical log ratio plus a correction; the last layer starts at zero, so an untrained network
returns the classical ratio exactly. A small U-Net: two stride-2 levels and dilated convolutions
(rates 2, 4, 8) at a quarter resolution, so every output pixel sees the whole window.

Trained on scenes from the catalog generator (``stager.synth``) with a seed the default catalog
does not use: the truth is the staged scene over its empty room, which the generator renders.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

RATIO_MIN, RATIO_MAX = 0.2, 1.3


class ShadeNet(nn.Module):
    def __init__(self, width: int = 24, res: int = 128):
        super().__init__()
        w = width

        def conv(cin, cout, stride=1, dil=1):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dil, dilation=dil), nn.ReLU(True))

        self.e1 = nn.Sequential(conv(5, w), conv(w, w))
        self.e2 = nn.Sequential(conv(w, 2 * w, 2), conv(2 * w, 2 * w))
        self.e3 = nn.Sequential(conv(2 * w, 4 * w, 2), conv(4 * w, 4 * w), conv(4 * w, 4 * w, 1, 2),
                                conv(4 * w, 4 * w, 1, 4), conv(4 * w, 4 * w, 1, 8))
        self.d2 = nn.Sequential(conv(6 * w, 2 * w), conv(2 * w, 2 * w))
        self.d1 = nn.Sequential(conv(3 * w, w), conv(w, w))
        self.out = nn.Conv2d(w, 1, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.config = {"width": width, "res": res}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 5, res, res)`` -> log shading ratio ``(B, 1, res, res)``."""
        e1 = self.e1(x)
        e2 = self.e2(e1)
        e3 = self.e3(e2)
        up = lambda t, ref: F.interpolate(t, size=ref.shape[-2:], mode="bilinear",
                                          align_corners=False)
        d2 = self.d2(torch.cat([up(e3, e2), e2], 1))
        d1 = self.d1(torch.cat([up(d2, e1), e1], 1))
        prior = torch.log(x[:, 4:5].clamp(RATIO_MIN, RATIO_MAX))
        return (prior + self.out(d1)).clamp(math.log(RATIO_MIN), math.log(RATIO_MAX))


def _window(a: np.ndarray, window: tuple[int, int, int, int], res: int) -> np.ndarray:
    """``a`` cut to ``window`` (y0, y1, x0, x1) and area-resized to ``res`` x ``res``
    (float32; a bool mask becomes the share of each cell it covers)."""
    y0, y1, x0, x1 = window
    return cv2.resize(np.ascontiguousarray(a[y0:y1, x0:x1], np.float32), (res, res),
                      interpolation=cv2.INTER_AREA)


def window_input(scene: np.ndarray, old_mask: np.ndarray, ratio: np.ndarray,
                 window: tuple[int, int, int, int], res: int) -> np.ndarray:
    """The network's input (res x res x 5 float32) for the ``window`` (y0, y1, x0, x1)."""
    from stager.images import dilate

    def rs(a):
        return _window(a, window, res)

    return np.concatenate([rs(scene[..., :3]) / 255.0,
                           rs(dilate(old_mask, 2))[..., None],
                           np.clip(rs(ratio), RATIO_MIN, RATIO_MAX)[..., None]], -1)


def true_ratio(scene: np.ndarray, background: np.ndarray, old_mask: np.ndarray,
               window: tuple[int, int, int, int], res: int) -> tuple[np.ndarray, np.ndarray]:
    """Training target on the window: (shading ratio scene/empty room, res x res float32;
    where it is defined, bool: off the product, on lit pixels)."""
    from stager.images import dilate
    from stager.shadows import _luma

    ls = cv2.GaussianBlur(_luma(scene), (0, 0), 1.0)
    lb = cv2.GaussianBlur(_luma(background), (0, 0), 1.0)
    r = np.clip(ls / np.maximum(lb, 1.0), RATIO_MIN, RATIO_MAX)
    valid = ~dilate(old_mask, 1) & (lb > 5)
    return _window(r, window, res), _window(valid, window, res) > 0.99


@torch.no_grad()
def predict(net: ShadeNet, scene: np.ndarray, old_mask: np.ndarray, ratio: np.ndarray,
            window: tuple[int, int, int, int]) -> np.ndarray:
    """``ratio`` (HxW float32, the classical shading ratio) corrected on the window by the
    network: its correction (its log ratio minus the classical one it was given, both at
    ``res``) is resized to the window and applied to the full-resolution classical ratio, so
    the window keeps its detail and a zero correction changes nothing."""
    res = int(net.config.get("res", 128))
    inp = window_input(scene, old_mask, ratio, window, res)
    x = torch.from_numpy(inp).permute(2, 0, 1)[None].float()
    corr = (net(x)[0, 0] - torch.log(x[0, 4].clamp(RATIO_MIN, RATIO_MAX))).numpy()
    y0, y1, x0, x1 = window
    out = ratio.copy()
    up = cv2.resize(corr, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    out[y0:y1, x0:x1] *= np.exp(up)
    return out


def texture_field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A random multiplicative texture (HxW float32 around 1): planks 8-40 px wide of tone
    0.8-1.15 tilted up to 35 degrees, tiles, or soft blotches. Laid on a scene and on its empty
    room alike, it changes what the floor looks like and not the true shading ratio, so the
    model learns that darker texture is not shade."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:
        u = xx + (yy - h) * np.tan(np.radians(rng.uniform(-35, 35)))
        width = rng.uniform(8, 40)
        tones = rng.uniform(0.8, 1.15, 512).astype(np.float32)
        return tones[((u + 4096) // width).astype(int) % 512]
    if kind == 1:
        s = rng.uniform(16, 64)
        tones = rng.uniform(0.85, 1.1, (64, 64)).astype(np.float32)
        t = tones[(yy // s).astype(int) % 64, (xx // s).astype(int) % 64]
        grout = (np.minimum(yy % s, xx % s) < 2).astype(np.float32)
        return t * (1 - 0.3 * grout)
    small = rng.uniform(0.8, 1.15, (int(rng.integers(3, 12)),) * 2).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0.7, 1.25)


def _floor_field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A multiplicative floor texture for ``synthetic_room``: none, tilted planks of any
    width (``texture_field``), horizontal boards with a stretched grain, or tiles/blotches."""
    h, w = shape
    pick = rng.random()
    if pick < 0.2:
        return np.ones(shape, np.float32)
    if pick < 0.65:  # planks toward a vanishing point: tilted up to 40 degrees off vertical
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        u = xx + (yy - h) * np.tan(np.radians(rng.uniform(-40, 40)))
        width = rng.uniform(6, 40)
        tones = rng.uniform(0.78, 1.18, 512).astype(np.float32)
        return tones[((u + 4096) // width).astype(int) % 512]
    if pick < 0.85:  # boards across the view with a grain stretched along them
        step = int(rng.integers(8, 28))
        tone = np.repeat(rng.uniform(0.82, 1.18, h // step + 1), step)[:h, None]
        grain = cv2.GaussianBlur(rng.normal(0, rng.uniform(0.02, 0.08), shape).astype(np.float32),
                                 (0, 0), float(rng.uniform(3, 8)), sigmaY=0.7)
        return (tone + grain).astype(np.float32)
    return texture_field(rng, shape)


def synthetic_room(rng: np.random.Generator, size: int = 512, shadowless: float = 0.0):
    """(scene, empty room, old product mask) of a random room simpler than the catalog's but
    wider in what matters to the shade reader: a wall over a floor of any colour, plain or
    textured (planks at any angle, boards, tiles), an old product anywhere on the floor, its
    base down to the image's bottom edge, a contact and cast shadow of any direction,
    softness and strength (no cast shadow in one room in eight; no shadow at all in a
    ``shadowless`` share of rooms), and, in a third of them, dark objects
    the empty room lacks (their true ratio is their own darkness, not shade to lift)."""
    from stager import shadows as sh
    from stager.furniture import render_product, sample_product

    wall = rng.uniform(120, 240, 3)
    floor = rng.uniform(40, 200, 3)
    horizon = int(rng.uniform(0.3, 0.65) * size)
    room = np.zeros((size, size, 3), np.float32)
    room[:horizon], room[horizon:] = wall, floor
    field = _floor_field(rng, (size, size))
    if rng.random() < 0.7:  # the texture on the floor alone (else on both, as a plank test)
        field[:horizon] = 1.0
    room = room * field[..., None] + rng.normal(0, rng.uniform(0, 4), room.shape)
    sprite = render_product(sample_product(rng), int(rng.uniform(0.18, 0.45) * size))
    h, w = sprite.shape[:2]
    if w > 0.9 * size:
        h, w = max(int(h * 0.9 * size / w), 2), int(0.9 * size)
        sprite = cv2.resize(sprite, (w, h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.3:  # standing at the bottom edge (a product cut by the frame: 0-80 px)
        base = size - int(rng.integers(0, 81))
    else:
        base = int(horizon + rng.uniform(0.25, 1.0) * (size - horizon))
    base = int(np.clip(base, h + 1, size))
    x0 = int(np.clip(rng.uniform(0.05, 0.95) * size - w / 2, 0, size - w))
    alpha = np.zeros((size, size), np.float32)
    alpha[base - h:base, x0:x0 + w] = sprite[..., 3] / 255.0
    draw = rng.random()
    strength = 0.0 if draw < 0.125 else float(rng.uniform(0.15, 0.6))
    light = sh.Light(float(rng.uniform(-0.9, 0.9)), float(rng.uniform(-0.5, -0.03)),
                     float(rng.uniform(0.02, 0.08)), strength, float(rng.uniform(0.3, 0.7)))
    shade = sh.object_shadow(alpha, light)
    if draw >= 1.0 - shadowless:  # no contact shadow either: nothing is shade (no extra draw,
        shade = np.ones_like(shade)  # so with shadowless=0 the rooms are those of before; and
        # taken from the top of the draw, the rooms with a contact shadow only stay)
    img = room * shade[..., None]
    if rng.random() < 0.5:
        colour = rng.uniform(0, 255, 3)[None, None]
    else:
        colour = sprite[..., :3].astype(np.float32).mean((0, 1))[None, None]
    img = img * (1 - alpha[..., None]) + colour * alpha[..., None]
    if rng.random() < 1 / 3:  # dark objects in the scene only, near the product
        for _ in range(int(rng.integers(1, 4))):
            bh, bw = int(rng.integers(10, 50)), int(rng.integers(10, 50))
            cy = int(np.clip(base + rng.uniform(-0.6, 0.3) * h, horizon, size - bh))
            cx = int(np.clip(x0 + rng.uniform(-0.8, 1.8) * w, 0, size - bw))
            patch = np.zeros((size, size), bool)
            patch[cy:cy + bh, cx:cx + bw] = True
            patch &= alpha < 0.5
            img[patch] = rng.uniform(15, 90, 3) * rng.uniform(0.6, 1.0)
    clip = lambda a: np.clip(a + 0.5, 0, 255).astype(np.uint8)
    return clip(img), clip(room), alpha > 0.5


class ShadePool:
    """Windows of generator scenes with their true shading: ``scenes`` rooms rendered from
    ``stager.catalog.default_specs(scenes, 0, seed)``. The default catalog is rendered from
    ``STAGER_CATALOG_SEED`` (7): any other seed gives rooms it does not hold, so its held-out
    scenes stay unseen (``seed`` equal to the catalog's is refused)."""

    def __init__(self, scenes: int, res: int = 128, seed: int = 202, progress=None,
                 negatives: float = 0.15, texture: float = 0.3, rooms: float = 0.0,
                 shadowless: float = 0.0):
        from stager import gaps, synth
        from stager import shadows as sh
        from stager.catalog import default_specs
        from stager.config import get_settings
        from stager.images import bbox, dilate

        if seed == get_settings().catalog_seed:
            raise ValueError(f"shade training seed {seed} is the default catalog's: its held-out "
                             "scenes would be trained on; pick another")
        specs, _ = default_specs(scenes, 0, seed)
        xs, ys, vs = [], [], []
        total = scenes + int(scenes * rooms) + int(scenes * negatives)

        def add(image, background, old):  # one window: input, true ratio, where it is defined
            win = sh._ratio_window(bbox(old), old.shape)
            ratio, _ = sh.shade_maps(image, old, learned=False)
            xs.append(window_input(image, old, ratio, win, res).astype(np.float16))
            y, v = true_ratio(image, background, old, win, res)
            ys.append(y.astype(np.float16))
            vs.append(v)

        trng = np.random.default_rng(seed + 2)
        for i, spec in enumerate(specs):
            layers = synth.render_scene(spec)
            old = layers.mask.astype(bool)
            image, background = layers.image, layers.background
            if trng.random() < texture:  # the same texture on the scene and its empty room
                t = texture_field(trng, old.shape)[..., None]
                image = np.clip(image * t + 0.5, 0, 255).astype(np.uint8)
                background = np.clip(background * t + 0.5, 0, 255).astype(np.uint8)
            add(image, background, old)
            if progress:
                progress(i + 1, total)
        rrng = np.random.default_rng(seed + 3)
        for j in range(int(scenes * rooms)):  # simple rooms, wider in light, texture, placement
            add(*synthetic_room(rrng, shadowless=shadowless))
            if progress:
                progress(scenes + j + 1, total)
        self.rooms = len(xs) - scenes
        # negatives: product outlines on the bundled real photographs (train split), where no
        # product casts a shadow: the truth is a ratio of 1 everywhere, so darker texture,
        # natural shade and colour changes around a product are not read as its shadow
        photos = list(gaps.real_photos("train", max_side=768).values())
        rng = np.random.default_rng(seed + 1)
        bank = gaps.silhouette_bank()
        for j in range(int(scenes * negatives) if photos else 0):
            img = photos[int(rng.integers(len(photos)))]
            h, w = img.shape[:2]
            side = int(min(h, w) * rng.uniform(0.6, 1.0))
            y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = cv2.resize(img[y0:y0 + side, x0:x0 + side], (512, 512),
                              interpolation=cv2.INTER_AREA)
            if rng.random() < 0.5:
                crop = np.ascontiguousarray(crop[:, ::-1])
            old = gaps.product_gap(rng, (512, 512), height=(0.3, 0.6), shadow=0.0, bank=bank).old
            win = sh._ratio_window(bbox(old), old.shape)
            ratio, _ = sh.shade_maps(crop, old, learned=False)
            xs.append(window_input(crop, old, ratio, win, res).astype(np.float16))
            ys.append(np.ones((res, res), np.float16))
            vs.append(_window(~dilate(old, 1), win, res) > 0.99)
            if progress:
                progress(len(xs), total)
        self.negatives = len(xs) - scenes - self.rooms
        self.x = np.stack(xs)  # (N, res, res, 5)
        self.y = np.stack(ys)  # (N, res, res) true ratio
        self.valid = np.stack(vs)
        self.res, self.seed, self.texture, self.shadowless = res, seed, texture, shadowless

    def describe(self) -> str:
        n_gen = len(self.x) - self.negatives - self.rooms
        rooms = (f"{self.rooms} synthetic rooms (models.shade.synthetic_room: plain or textured "
                 "floors, products down to the bottom edge, any light, dark objects; "
                 f"{self.shadowless:.0%} with no shadow at all), " if self.rooms else "")
        return (f"{n_gen} generator scenes (stager.synth, default_specs "
                f"seed {self.seed}; the default catalog uses another; {self.texture:.0%} with a "
                f"random texture laid on the scene and its empty room alike) as {self.res}-px "
                f"windows around the hero, {rooms}and {self.negatives} negatives: product "
                "outlines on the bundled real photographs (train split), true ratio 1")

    def tensors(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(self.x[idx].astype(np.float32)).permute(0, 3, 1, 2)
        y = torch.log(torch.from_numpy(self.y[idx].astype(np.float32)))[:, None]
        v = torch.from_numpy(self.valid[idx])[:, None].float()
        return x, y, v


def masked_log_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean |log ratio error| over the pixels where the truth is defined."""
    return ((pred - target).abs() * valid).sum() / valid.sum().clamp_min(1.0)
