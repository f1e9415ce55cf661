"""Procedural staged scenes: the embedded default catalog and its ground truth.

A room is drawn in one-point perspective: a back wall (a rectangle around the vanishing point)
with the floor, ceiling and side walls as the four trapezoids around it. Floors and walls are
textured in their own plane coordinates (wood planks, tiles, carpet; paint, wallpaper), lit by
a window with distance falloff, with skirting, wall art and rugs. Products stand on the floor at
a depth ``z`` (``z = 1`` at the back wall, smaller is nearer) and are scaled by ``1 / z``.

Everything is deterministic for a seed. ``render_scene`` returns the layers a staging job needs:
the background without the hero product, the staged image, the hero mask and its box.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .furniture import render_product, sample_product
from .images import bbox
from .shadows import Light, contact_shadow, object_shadow  # noqa: F401 - contact_shadow re-exported

SIZE = 512
GENERATOR_VERSION = 2  # 2: scene light (cast shadows, lit products), studio drop shadows
CAM_HEIGHT_M = 1.3  # camera height; the back wall's floor line to the horizon spans this


@dataclass
class SceneLayers:
    """One rendered scene. Arrays are ``SIZE x SIZE``; masks bool."""

    background: np.ndarray  # HxWx3 uint8, room + other objects, no hero, no hero shadow
    image: np.ndarray  # HxWx3 uint8, the staged scene
    mask: np.ndarray  # HxW bool, hero product pixels (alpha > 0.5)
    box: tuple[int, int, int, int]  # hero (x0, y0, x1, y1)
    category: str
    params: dict


def _noise(rng: np.random.Generator, shape, scale: int) -> np.ndarray:
    small = rng.normal(0, 1, (max(shape[0] // scale, 2), max(shape[1] // scale, 2)))
    return cv2.resize(small.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


FLOOR_COLORS = [(150, 105, 65), (120, 80, 50), (185, 145, 100), (95, 70, 50), (160, 155, 150),
                (200, 185, 160), (110, 110, 115), (170, 120, 80), (135, 125, 110)]
WALL_COLORS = [(225, 220, 205), (205, 215, 220), (215, 200, 185), (190, 205, 190), (230, 225, 230),
               (200, 190, 210), (180, 195, 210), (235, 215, 190), (170, 170, 165)]


def _pick(rng: np.random.Generator, palette, jitter: int) -> list[int]:
    c = np.array(palette[int(rng.integers(len(palette)))]) + rng.integers(-jitter, jitter + 1, 3)
    return [int(v) for v in np.clip(c, 0, 255)]


def sample_room(rng: np.random.Generator) -> dict:
    """Random room parameters (JSON-serialisable)."""
    vx = float(rng.uniform(200, 312))
    vy = float(rng.uniform(170, 230))
    return {
        "vp": [vx, vy],
        "back": [float(vx - rng.uniform(150, 330)), float(vy - rng.uniform(110, 170)),
                 float(vx + rng.uniform(150, 330)), float(vy + rng.uniform(80, 120))],
        "floor": ["planks", "tiles", "carpet", "planks"][int(rng.integers(4))],
        "floor_color": _pick(rng, FLOOR_COLORS, 12),
        "wall": ["paint", "paint", "wallpaper", "panels"][int(rng.integers(4))],
        "wall_color": _pick(rng, WALL_COLORS, 8),
        "window": bool(rng.random() < 0.7),
        "window_x": float(rng.uniform(0.1, 0.6)),
        "art": bool(rng.random() < 0.7),
        "rug": bool(rng.random() < 0.55),
        "rug_color": [int(v) for v in rng.integers(60, 220, 3)],
        "light": float(rng.uniform(0.85, 1.1)),
        "seed": int(rng.integers(0, 2**31 - 1)),
    }


def _room_geometry(room: dict):
    """Per-pixel region labels and plane coordinates of the room."""
    vx, vy = room["vp"]
    bx0, by0, bx1, by1 = room["back"]
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    dx, dy = xx - vx, yy - vy
    u = np.where(dx >= 0, dx / (bx1 - vx), dx / (vx - bx0))  # +-1 on the back wall's sides
    v = np.where(dy >= 0, dy / (by1 - vy), dy / (vy - by0))
    inside = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    floor = ~inside & (v >= np.abs(u)) & (v > 0)
    ceil = ~inside & (-v >= np.abs(u)) & (v < 0)
    side = ~inside & ~floor & ~ceil
    return xx, yy, u, v, inside, floor, ceil, side


def _floor_texture(room, rng, xw, z, shape):
    base = np.array(room["floor_color"], np.float32)
    n = _noise(rng, shape, 3)
    if room["floor"] == "planks":
        plank = np.floor(xw / 0.22)
        seg = np.floor(z * 1.3 + (plank * 0.37) % 1.0)
        hsh = np.sin(plank * 12.9898 + seg * 78.233) * 43758.5453
        tone = 0.85 + 0.25 * (hsh - np.floor(hsh))
        grain = 0.05 * np.sin(xw * 90.0 + 3 * n)
        gap = (np.abs(xw / 0.22 - np.round(xw / 0.22)) < 0.02 / np.maximum(z, 0.3)).astype(np.float32)
        f = tone + grain - 0.35 * gap
    elif room["floor"] == "tiles":
        tx, tz = xw / 0.5, z * 2.2
        line = (np.minimum(np.abs(tx - np.round(tx)), np.abs(tz - np.round(tz))) < 0.025)
        checker = ((np.floor(tx) + np.floor(tz)) % 2) * 0.08
        f = 0.95 + checker + 0.03 * n - 0.3 * line.astype(np.float32)
    else:
        f = 0.95 + 0.08 * n + 0.04 * _noise(rng, shape, 1)
    return base[None, None, :] * f[..., None]


def _wall_texture(room, rng, a, b, shape):
    """a, b: horizontal and vertical wall-plane coordinates (metres)."""
    base = np.array(room["wall_color"], np.float32)
    n = _noise(rng, shape, 6)
    if room["wall"] == "wallpaper":
        f = 1.0 + 0.05 * np.sign(np.sin(a * 25.0)) + 0.02 * n
    elif room["wall"] == "panels":
        f = 1.0 - 0.12 * (np.abs(a / 0.6 - np.round(a / 0.6)) < 0.02) + 0.015 * n
    else:
        f = 1.0 + 0.012 * n
    return base[None, None, :] * f[..., None]


def render_room(room: dict) -> np.ndarray:
    """The empty room, ``SIZE x SIZE x 3`` float32 in [0, 255]."""
    rng = np.random.default_rng(room["seed"])
    shape = (SIZE, SIZE)
    xx, yy, u, v, inside, floor, ceil, side = _room_geometry(room)
    vx, vy = room["vp"]
    bx0, by0, bx1, by1 = room["back"]
    px_per_m = (by1 - vy) / CAM_HEIGHT_M
    img = np.zeros((SIZE, SIZE, 3), np.float32)
    # back wall plane coordinates: metres from the left corner / from the floor
    a_back = (xx - bx0) / px_per_m
    b_back = (by1 - yy) / px_per_m
    img[inside] = _wall_texture(room, rng, a_back, b_back, shape)[inside]
    # side walls: depth from |u|, height from v
    zs = 1.0 / np.maximum(np.abs(u), 1e-3)
    side_tex = _wall_texture(room, rng, zs * 2.0, (1 - v) * zs, shape) * 0.86
    img[side] = side_tex[side]
    # floor: depth z from v, lateral metres from x
    zf = 1.0 / np.maximum(v, 1e-3)
    xw = (xx - vx) / px_per_m * zf
    ftex = _floor_texture(room, rng, xw, zf, shape)
    img[floor] = ftex[floor]
    img[ceil] = (np.array(room["wall_color"], np.float32) * 1.05)[None, :]
    # skirting: a band at the foot of back and side walls
    sk = 0.09 * px_per_m
    skirting = (inside & (yy > by1 - sk)) | (side & (np.abs(v) * zs > (1 - 0.09 / CAM_HEIGHT_M))
                                              & (v > 0))
    img[skirting] = img[skirting] * 0.55 + 255 * 0.45 * 0.9
    # rug on the floor plane
    if room["rug"]:
        rx0, rx1 = -0.9 + rng.uniform(-0.2, 0.2), 0.9 + rng.uniform(-0.2, 0.2)
        rz0, rz1 = 0.55, 0.9
        rug = floor & (xw > rx0) & (xw < rx1) & (zf > rz0) & (zf < rz1)
        border = rug & ((xw < rx0 + 0.08) | (xw > rx1 - 0.08) | (zf < rz0 + 0.03) | (zf > rz1 - 0.03))
        col = np.array(room["rug_color"], np.float32)
        img[rug] = col * (0.95 + 0.06 * _noise(rng, shape, 1))[rug][:, None]
        img[border] = col * 0.6
    # window on the back wall with its frame; light falls off with distance from it
    light = np.full(shape, 0.72, np.float32)
    if room["window"]:
        wx0 = bx0 + room["window_x"] * (bx1 - bx0)
        wx1 = min(wx0 + 0.9 * px_per_m, bx1 - 10)
        wy0, wy1 = by1 - 2.1 * px_per_m, by1 - 0.85 * px_per_m
        win = (xx >= wx0) & (xx < wx1) & (yy >= max(wy0, by0 + 4)) & (yy < wy1) & inside
        if win.any():
            sky = np.stack([170 + 40 * (yy - wy0) / max(wy1 - wy0, 1),
                            200 + 30 * (yy - wy0) / max(wy1 - wy0, 1),
                            np.full(shape, 245.0)], -1)
            img[win] = sky[win]
            frame = win & ((np.abs(xx - (wx0 + wx1) / 2) < 2.5) | (np.abs(yy - (wy0 + wy1) / 2) < 2.5)
                           | (xx < wx0 + 4) | (xx > wx1 - 5) | (yy < max(wy0, by0 + 4) + 4)
                           | (yy > wy1 - 5))
            img[frame] = 238.0
            cx, cy = (wx0 + wx1) / 2, (wy0 + wy1) / 2
            d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2 * 0.5) / SIZE
            light += 0.35 * np.exp(-(d**2) / 0.12)
            # light pool on the floor in front of the window
            pool = floor & (np.abs(xw - ((cx - vx) / px_per_m)) < 0.6) & (zf > 0.45)
            light[pool] += 0.18
        else:
            win = None
    light += 0.12 * (1 - np.abs(xx - vx) / SIZE)  # centre brighter, vignette at the sides
    light *= room["light"]
    light = cv2.GaussianBlur(light, (0, 0), 9)
    img *= light[..., None] / 0.95
    # corner shading where planes meet (ambient occlusion)
    edge = np.minimum(np.abs(np.abs(u) - 1), np.abs(np.abs(v) - 1))
    img *= (1 - 0.18 * np.exp(-edge * 40))[..., None]
    if room["art"]:
        ax0 = bx0 + rng.uniform(0.55, 0.75) * (bx1 - bx0)
        aw, ah = rng.uniform(0.5, 0.9) * px_per_m, rng.uniform(0.4, 0.7) * px_per_m
        ay0 = by1 - 1.9 * px_per_m
        ax0, ay0 = int(min(ax0, bx1 - aw - 6)), int(max(ay0, by0 + 8))
        x1a, y1a = int(ax0 + aw), int(ay0 + ah)
        if x1a > ax0 + 10 and y1a > ay0 + 10 and x1a < SIZE:
            art = _noise(rng, (y1a - ay0, x1a - ax0), 6)
            hue = rng.integers(40, 220, 3).astype(np.float32)
            hue2 = rng.integers(40, 220, 3).astype(np.float32)
            t = (np.tanh(art * 1.5)[..., None] + 1) / 2
            img[ay0:y1a, ax0:x1a] = hue * t + hue2 * (1 - t)
            cv2.rectangle(img, (ax0, ay0), (x1a - 1, y1a - 1), (35.0, 30.0, 28.0), 4)
    return np.clip(img, 0, 255)


def floor_point(room: dict, xw: float, z: float) -> tuple[float, float, float]:
    """Image position (x, y) of floor point (lateral xw metres, depth z) and px per metre there."""
    vx, vy = room["vp"]
    by1 = room["back"][3]
    px_per_m = (by1 - vy) / CAM_HEIGHT_M
    return vx + xw * px_per_m / z, vy + (by1 - vy) / z, px_per_m / z


def paste_rgba(dst: np.ndarray, sprite: np.ndarray, x: int, y: int) -> np.ndarray:
    """Alpha-composite ``sprite`` (RGBA uint8) onto float ``dst`` at top-left (x, y); returns
    the full-size alpha (HxW float32 in [0, 1]) that was pasted."""
    h, w = sprite.shape[:2]
    H, W = dst.shape[:2]
    alpha = np.zeros((H, W), np.float32)
    sx0, sy0 = max(0, -x), max(0, -y)
    dx0, dy0 = max(0, x), max(0, y)
    dx1, dy1 = min(W, x + w), min(H, y + h)
    if dx1 <= dx0 or dy1 <= dy0:
        return alpha
    sub = sprite[sy0:sy0 + dy1 - dy0, sx0:sx0 + dx1 - dx0].astype(np.float32)
    a = sub[..., 3:4] / 255.0
    dst[dy0:dy1, dx0:dx1] = dst[dy0:dy1, dx0:dx1] * (1 - a) + sub[..., :3] * a
    alpha[dy0:dy1, dx0:dx1] = a[..., 0]
    return alpha


def sample_scene(rng: np.random.Generator, family: str | None = None) -> dict:
    """Parameters of one staged scene: room, hero product and its floor position, others."""
    room = sample_room(rng)
    hero = sample_product(rng, family)
    z = float(rng.uniform(0.5, 0.78))
    xw = float(rng.uniform(-0.5, 0.5))
    others = []
    for _ in range(int(rng.integers(0, 3))):
        fam = ["potted_plant", "floor_lamp", "chair", "cabinet"][int(rng.integers(4))]
        side = -1 if rng.random() < 0.5 else 1
        others.append({"product": sample_product(rng, fam),
                       "xw": float(side * rng.uniform(1.3, 2.0)),
                       "z": float(rng.uniform(0.9, 1.0))})
    return {"room": room, "hero": hero, "xw": xw, "z": z, "others": others,
            "light": sample_light(np.random.default_rng(room["seed"] + 1))}


def sample_light(rng: np.random.Generator) -> dict:
    """The scene's light: cast-shadow direction/length/softness/strength (a window to either
    side, in front or behind), a colour cast and a vertical gradient on the products."""
    tints = [(1.0, 1.0, 1.0), (1.05, 1.0, 0.9), (0.93, 0.98, 1.06), (1.03, 1.0, 0.95)]
    return {"vx": float(rng.uniform(-0.9, 0.9)), "vy": float(rng.uniform(-0.45, -0.05)),
            "softness": float(rng.uniform(0.02, 0.06)), "strength": float(rng.uniform(0.25, 0.5)),
            "contact": float(rng.uniform(0.4, 0.6)),
            "tint": list(tints[int(rng.integers(len(tints)))]),
            "gradient": float(rng.uniform(-0.12, 0.18))}


def _light(scene: dict) -> Light:
    lt = scene.get("light") or {}
    return Light(lt.get("vx", 0.0), lt.get("vy", -0.15), lt.get("softness", 0.04),
                 lt.get("strength", 0.0), lt.get("contact", 0.55), "scene")


def light_product(sprite: np.ndarray, scene: dict) -> np.ndarray:
    """The product sprite (RGBA uint8) under the scene's light: the room's exposure, its colour
    cast and a vertical gradient (top brighter for a positive gradient)."""
    lt = scene.get("light")
    if not lt:
        return sprite
    h = sprite.shape[0]
    y = np.linspace(0.5, -0.5, h, dtype=np.float32)[:, None, None]
    gain = scene["room"]["light"] * np.array(lt["tint"], np.float32) * (1 + lt["gradient"] * y)
    rgb = np.clip(sprite[..., :3].astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)
    return np.dstack([rgb, sprite[..., 3]])


def hero_box(scene: dict) -> tuple[int, int, int, int]:
    """Integer box (x0, y0, x1, y1) of the hero product in the scene image."""
    p = scene["hero"]
    x, y, ppm = floor_point(scene["room"], scene["xw"], scene["z"])
    h = p["height_m"] * ppm
    w = p["width_m"] * ppm
    return int(round(x - w / 2)), int(round(y - h)), int(round(x + w / 2)), int(round(y))


def render_background(scene: dict) -> np.ndarray:
    """Room plus the other objects, without the hero: ``SIZE x SIZE x 3`` float32."""
    room = scene["room"]
    img = render_room(room)
    for o in sorted(scene["others"], key=lambda o: -o["z"]):
        x, y, ppm = floor_point(room, o["xw"], o["z"])
        sprite = render_product(o["product"], int(o["product"]["height_m"] * ppm))
        h, w = sprite.shape[:2]
        box = (int(x - w / 2), int(y - h), int(x - w / 2) + w, int(y))
        alpha = paste_rgba(np.zeros_like(img), sprite, box[0], box[1])
        img *= object_shadow(alpha, _light(scene))[..., None]
        paste_rgba(img, light_product(sprite, scene), box[0], box[1])
    return img


def stage_on(background: np.ndarray, product_rgba: np.ndarray, box, scene: dict | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Place a product sprite (already sized) with its top-left at ``box[:2]`` on a background:
    its contact and cast shadows and the product lit by ``scene``'s light (without a scene: a
    contact shadow only, the product as shot). Returns (uint8 image, bool product mask)."""
    img = background.astype(np.float32).copy()
    alpha = paste_rgba(np.zeros_like(img), product_rgba, box[0], box[1])
    light = _light(scene) if scene else Light(strength=0.0, contact=0.55)
    img *= object_shadow(alpha, light)[..., None]
    sprite = light_product(product_rgba, scene) if scene else product_rgba
    alpha = paste_rgba(img, sprite, box[0], box[1])
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), alpha > 0.5


def render_scene(scene: dict) -> SceneLayers:
    """Render a staged scene (deterministic for its parameters)."""
    bg = render_background(scene)
    x0, y0, x1, y1 = hero_box(scene)
    sprite = render_product(scene["hero"], y1 - y0)
    box = (x0, y0, x0 + sprite.shape[1], y0 + sprite.shape[0])
    image, mask = stage_on(bg, sprite, box, scene)
    b = bbox(mask) or box
    return SceneLayers(np.clip(bg + 0.5, 0, 255).astype(np.uint8), image, mask, b,
                       scene["hero"]["family"], scene)


def catalog_shot(product: dict, size: int = 512, fill: float = 0.78, shadow: bool = True
                 ) -> np.ndarray:
    """The product on white as a studio photo with its true alpha: ``size x size x 4`` uint8.
    RGB is the product over a white backdrop with, by default, a soft grey drop shadow on the
    backdrop (a contact shadow and a short cast shadow); channel 3 is the product's true alpha
    (the shadow is not product)."""
    aspect = product["width_m"] / product["height_m"]
    h = int(size * fill / max(aspect, 1.0))
    sprite = render_product(product, h)
    sh, sw = sprite.shape[:2]
    if sw > size * fill:  # wide products: fit width
        sprite = render_product(product, int(h * size * fill / sw))
        sh, sw = sprite.shape[:2]
    canvas = np.full((size, size, 3), 255.0, np.float32)
    x, y = (size - sw) // 2, (size - sh) // 2
    alpha = paste_rgba(np.zeros_like(canvas), sprite, x, y)
    if shadow:
        r = np.random.default_rng(int(sum(ord(c) for c in product["family"])) + sw * 7 + sh)
        light = Light(float(r.uniform(-0.5, 0.5)), float(r.uniform(-0.12, -0.04)), 0.05,
                      float(r.uniform(0.15, 0.3)), float(r.uniform(0.35, 0.55)))
        canvas *= object_shadow(alpha, light)[..., None]
    alpha = paste_rgba(canvas, sprite, x, y)
    rgb = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return np.dstack([rgb, np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)])
