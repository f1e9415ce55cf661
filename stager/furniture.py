"""Parametric furniture sprites: eight families drawn with shading, as RGBA.

``sample_product(rng, family)`` draws parameters; ``render_product(params, height)`` draws the
sprite (``HxWx4 uint8``, transparent outside the product). Drawing happens at 2x and is
downsampled so edges are anti-aliased. Coordinates inside a family are relative (0..1) to the
sprite box, y pointing down.
"""

from __future__ import annotations

import cv2
import numpy as np

FAMILIES = ("sofa", "armchair", "chair", "coffee_table", "floor_lamp", "cabinet",
            "potted_plant", "bed")

# real-world (width, height) ranges in metres, used for scale in rooms
SIZES = {
    "sofa": ((1.8, 2.3), (0.80, 0.95)),
    "armchair": ((0.80, 1.0), (0.85, 1.0)),
    "chair": ((0.45, 0.55), (0.85, 1.0)),
    "coffee_table": ((0.9, 1.3), (0.40, 0.50)),
    "floor_lamp": ((0.35, 0.5), (1.5, 1.8)),
    "cabinet": ((0.8, 1.3), (0.75, 1.2)),
    "potted_plant": ((0.45, 0.7), (0.8, 1.3)),
    "bed": ((1.5, 1.9), (0.95, 1.2)),
}

FABRICS = [(170, 40, 40), (40, 70, 130), (70, 110, 80), (120, 120, 125), (190, 150, 70),
           (90, 60, 110), (60, 60, 65), (160, 100, 70), (40, 120, 130), (200, 120, 130),
           (110, 90, 70), (150, 160, 170)]
WOODS = [(120, 80, 45), (160, 115, 70), (90, 60, 35), (185, 145, 100), (60, 45, 35),
         (205, 175, 130)]
PAINTS = [(225, 220, 210), (40, 45, 50), (110, 140, 150), (190, 80, 60), (220, 190, 90),
          (80, 100, 80)]
GREENS = [(50, 110, 50), (70, 140, 60), (40, 90, 55), (95, 150, 70)]


def _jitter(rng: np.random.Generator, color, amount: int = 18) -> tuple[int, int, int]:
    c = np.clip(np.array(color) + rng.integers(-amount, amount + 1, 3), 15, 232)
    return tuple(int(v) for v in c)


def sample_product(rng: np.random.Generator, family: str | None = None) -> dict:
    """Random parameters of one product (JSON-serialisable)."""
    family = family or FAMILIES[int(rng.integers(len(FAMILIES)))]
    (w0, w1), (h0, h1) = SIZES[family]
    p = {
        "family": family,
        "width_m": round(float(rng.uniform(w0, w1)), 3),
        "height_m": round(float(rng.uniform(h0, h1)), 3),
        "color": _jitter(rng, FABRICS[int(rng.integers(len(FABRICS)))]),
        "wood": _jitter(rng, WOODS[int(rng.integers(len(WOODS)))], 10),
        "paint": _jitter(rng, PAINTS[int(rng.integers(len(PAINTS)))], 10),
        "green": _jitter(rng, GREENS[int(rng.integers(len(GREENS)))], 12),
        "variant": int(rng.integers(0, 3)),
        "count": int(rng.integers(2, 4)),
        "seed": int(rng.integers(0, 2**31 - 1)),
    }
    return p


class _Canvas:
    """RGB + alpha float canvas at supersampled resolution."""

    def __init__(self, w: int, h: int, seed: int):
        self.w, self.h = w, h
        self.rgb = np.zeros((h, w, 3), np.float32)
        self.a = np.zeros((h, w), np.float32)
        rng = np.random.default_rng(seed)
        n = rng.normal(0, 1, (max(h // 4, 2), max(w // 4, 2))).astype(np.float32)
        self.noise = cv2.resize(n, (w, h), interpolation=cv2.INTER_LINEAR)

    def px(self, pts):
        return np.array([[x * (self.w - 1), y * (self.h - 1)] for x, y in pts], np.int32)

    def _paint(self, m: np.ndarray, color, top: float, bottom: float, left: float = 1.0,
               right: float = 1.0, texture: float = 0.04) -> None:
        ys, xs = np.nonzero(m)
        if len(ys) == 0:
            return
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        ty = np.linspace(top, bottom, y1 - y0, dtype=np.float32)[:, None]
        tx = np.linspace(left, right, x1 - x0, dtype=np.float32)[None, :]
        shade = ty * tx * (1.0 + texture * self.noise[y0:y1, x0:x1])
        col = np.array(color, np.float32)[None, None, :] * shade[..., None]
        sub = m[y0:y1, x0:x1].astype(np.float32)[..., None]
        self.rgb[y0:y1, x0:x1] = self.rgb[y0:y1, x0:x1] * (1 - sub) + col * sub
        self.a[y0:y1, x0:x1] = np.maximum(self.a[y0:y1, x0:x1], sub[..., 0])

    def poly(self, pts, color, top=1.0, bottom=0.85, left=1.05, right=0.95, texture=0.04):
        m = np.zeros((self.h, self.w), np.uint8)
        cv2.fillPoly(m, [self.px(pts)], 1, lineType=cv2.LINE_8)
        self._paint(m.astype(bool), color, top, bottom, left, right, texture)

    def rect(self, x0, y0, x1, y1, color, **kw):
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], color, **kw)

    def ellipse(self, cx, cy, rx, ry, color, angle=0.0, **kw):
        m = np.zeros((self.h, self.w), np.uint8)
        cv2.ellipse(m, (int(cx * (self.w - 1)), int(cy * (self.h - 1))),
                    (max(1, int(rx * self.w)), max(1, int(ry * self.h))), angle, 0, 360, 1, -1)
        self._paint(m.astype(bool), color, **{"top": 1.05, "bottom": 0.85, **kw})

    def line(self, x0, y0, x1, y1, color, width=0.006):
        m = np.zeros((self.h, self.w), np.uint8)
        t = max(1, int(width * self.w))
        cv2.line(m, tuple(self.px([(x0, y0)])[0]), tuple(self.px([(x1, y1)])[0]), 1, t)
        m = m.astype(bool) & (self.a > 0.5)  # seams only on existing surfaces
        self.rgb[m] = self.rgb[m] * 0.0 + np.array(color, np.float32)


def _mul(c, f):
    return tuple(float(min(255.0, v * f)) for v in c)


def _sofa(cv: _Canvas, p: dict, seats: int) -> None:
    c, legs = p["color"], _mul(p["wood"], 0.6)
    for x in (0.05, 0.9):
        cv.rect(x, 0.88, x + 0.05, 1.0, legs, top=0.9, bottom=0.6)
    round_top = p["variant"] == 1
    cv.rect(0.07, 0.12 if round_top else 0.04, 0.93, 0.55, c, top=1.0, bottom=0.78)
    if round_top:
        cv.ellipse(0.5, 0.13, 0.43, 0.1, c, top=1.1, bottom=0.95)
    for i in range(1, seats):
        x = 0.12 + 0.76 * i / seats
        cv.line(x, 0.1, x, 0.48, _mul(c, 0.55), 0.004)
    cv.poly([(0.13, 0.45), (0.87, 0.45), (0.9, 0.56), (0.1, 0.56)], c, top=1.2, bottom=1.05)
    cv.rect(0.1, 0.56, 0.9, 0.72, c, top=1.0, bottom=0.85)
    for i in range(1, seats):
        x = 0.1 + 0.8 * i / seats
        cv.line(x, 0.46, x, 0.72, _mul(c, 0.5), 0.004)
    cv.rect(0.03, 0.72, 0.97, 0.9, c, top=0.8, bottom=0.62)
    arm_top = 0.28 if p["variant"] != 2 else 0.4
    for x0 in (0.0, 0.85):
        cv.rect(x0, arm_top + 0.05, x0 + 0.15, 0.9, c, top=1.05, bottom=0.7,
                left=1.1 if x0 == 0 else 0.95, right=0.95 if x0 == 0 else 0.85)
        cv.ellipse(x0 + 0.075, arm_top + 0.05, 0.075, 0.05, c, top=1.2, bottom=1.05)


def _chair(cv: _Canvas, p: dict) -> None:
    w = p["wood"] if p["variant"] != 2 else p["paint"]
    dark = _mul(w, 0.7)
    for x in (0.2, 0.74):
        cv.rect(x, 0.55, x + 0.06, 0.94, dark)
    cv.rect(0.12, 0.0, 0.2, 0.6, w, left=1.1, right=0.9)
    cv.rect(0.8, 0.0, 0.88, 0.6, w, left=1.0, right=0.8)
    if p["variant"] == 0:
        for i in range(3):
            x = 0.28 + i * 0.16
            cv.rect(x, 0.1, x + 0.1, 0.5, w, top=1.0, bottom=0.8)
    else:
        cv.rect(0.2, 0.06, 0.8, 0.45, p["color"], top=1.05, bottom=0.8)
    cv.rect(0.1, 0.0, 0.9, 0.07, w, top=1.1, bottom=0.9)
    cv.poly([(0.14, 0.52), (0.86, 0.52), (0.92, 0.6), (0.08, 0.6)], p["color"], top=1.2,
            bottom=1.0)
    cv.rect(0.08, 0.6, 0.92, 0.66, w, top=0.9, bottom=0.75)
    for x in (0.08, 0.86):
        cv.rect(x, 0.64, x + 0.06, 1.0, w, top=0.95, bottom=0.7)


def _table(cv: _Canvas, p: dict) -> None:
    w = p["wood"] if p["variant"] != 1 else p["paint"]
    dark = _mul(w, 0.65)
    for x in (0.14, 0.8):
        cv.rect(x, 0.2, x + 0.06, 0.88, dark)
    if p["variant"] == 2:
        cv.rect(0.1, 0.66, 0.9, 0.74, _mul(w, 0.85))
    cv.poly([(0.06, 0.0), (0.94, 0.0), (1.0, 0.14), (0.0, 0.14)], w, top=1.25, bottom=1.05,
            texture=0.08)
    cv.rect(0.0, 0.14, 1.0, 0.24, w, top=0.85, bottom=0.7)
    for x in (0.02, 0.92):
        cv.rect(x, 0.24, x + 0.06, 1.0, w, top=0.9, bottom=0.65)


def _lamp(cv: _Canvas, p: dict) -> None:
    metal = p["paint"] if p["variant"] == 0 else (70, 70, 72)
    cv.ellipse(0.5, 0.97, 0.28, 0.03, _mul(metal, 0.8))
    cv.rect(0.475, 0.3, 0.525, 0.97, metal, left=1.2, right=0.7)
    shade = tuple(min(v, 205.0) for v in _mul(p["color"], 1.35))
    top_w = 0.2 if p["variant"] != 2 else 0.32
    cv.poly([(0.5 - top_w, 0.0), (0.5 + top_w, 0.0), (0.98, 0.34), (0.02, 0.34)], shade,
            top=0.95, bottom=1.12, texture=0.02)
    cv.ellipse(0.5, 0.34, 0.48, 0.025, _mul(shade, 1.3), top=1.1, bottom=1.1)


def _cabinet(cv: _Canvas, p: dict) -> None:
    body = p["wood"] if p["variant"] == 0 else p["paint"]
    for x in (0.04, 0.9):
        cv.rect(x, 0.9, x + 0.06, 1.0, _mul(body, 0.5))
    cv.poly([(0.02, 0.0), (0.98, 0.0), (1.0, 0.05), (0.0, 0.05)], body, top=1.3, bottom=1.15)
    cv.rect(0.0, 0.05, 1.0, 0.92, body, top=1.0, bottom=0.8, texture=0.06)
    n = p["count"]
    if p["variant"] == 2:  # drawers
        for i in range(n):
            y0 = 0.09 + i * 0.8 / n
            cv.rect(0.05, y0, 0.95, y0 + 0.8 / n - 0.03, _mul(body, 0.95), top=1.0, bottom=0.9)
            cv.rect(0.42, y0 + 0.1 / n, 0.58, y0 + 0.16 / n, (190, 190, 195))
    else:
        for i in range(n):
            x0 = 0.05 + i * 0.9 / n
            cv.rect(x0, 0.09, x0 + 0.9 / n - 0.02, 0.88, _mul(body, 0.95), top=1.0, bottom=0.88)
            hx = x0 + (0.9 / n - 0.02) * (0.85 if i % 2 == 0 else 0.1)
            cv.rect(hx, 0.42, hx + 0.02, 0.55, (200, 200, 205))


def _plant(cv: _Canvas, p: dict) -> None:
    rng = np.random.default_rng(p["seed"])
    green = p["green"]
    n = 14 + 4 * p["count"]
    for _ in range(n):
        ang = rng.uniform(-80, 80)
        length = rng.uniform(0.18, 0.32)
        cx = 0.5 + np.sin(np.radians(ang)) * length * 0.9
        cy = 0.58 - np.cos(np.radians(ang)) * length * 1.6
        col = _mul(green, rng.uniform(0.7, 1.25))
        cv.ellipse(cx, max(cy, 0.12), 0.05 + 0.03 * rng.random(), length * 0.55, col,
                   angle=ang, top=1.1, bottom=0.85)
    pot = p["paint"] if p["variant"] != 1 else (170, 95, 60)
    cv.poly([(0.24, 0.62), (0.76, 0.62), (0.68, 1.0), (0.32, 1.0)], pot, left=1.15, right=0.8)
    cv.rect(0.22, 0.6, 0.78, 0.66, _mul(pot, 1.1), top=1.1, bottom=0.95)


def _bed(cv: _Canvas, p: dict) -> None:
    frame = p["wood"] if p["variant"] != 1 else p["paint"]
    cv.rect(0.0, 0.0, 1.0, 0.55, frame if p["variant"] != 2 else p["color"], top=1.0,
            bottom=0.75, texture=0.07)
    for x in (0.25, 0.75):
        cv.ellipse(x, 0.38, 0.2, 0.08, (232, 230, 224), top=1.05, bottom=0.9, texture=0.02)
    blanket = p["color"]
    cv.poly([(0.04, 0.42), (0.96, 0.42), (1.0, 0.6), (0.0, 0.6)], blanket, top=1.15, bottom=1.0)
    cv.rect(0.0, 0.6, 1.0, 0.8, blanket, top=0.95, bottom=0.78)
    cv.rect(0.0, 0.8, 1.0, 0.92, frame, top=0.8, bottom=0.65)
    for x in (0.02, 0.93):
        cv.rect(x, 0.9, x + 0.05, 1.0, _mul(frame, 0.6))


DRAW = {
    "sofa": lambda cv, p: _sofa(cv, p, p["count"]),
    "armchair": lambda cv, p: _sofa(cv, p, 1),
    "chair": _chair,
    "coffee_table": _table,
    "floor_lamp": _lamp,
    "cabinet": _cabinet,
    "potted_plant": _plant,
    "bed": _bed,
}


def render_product(params: dict, height: int, supersample: int = 2) -> np.ndarray:
    """Draw a product sprite ``height`` px tall; returns ``HxWx4 uint8`` RGBA."""
    fam = params["family"]
    aspect = params["width_m"] / params["height_m"]
    h = max(8, int(height))
    w = max(8, int(round(h * aspect)))
    cv = _Canvas(w * supersample, h * supersample, params["seed"])
    if fam not in DRAW:
        raise ValueError(f"unknown furniture family {fam!r}; choose from {FAMILIES}")
    DRAW[fam](cv, params)
    prem = cv.rgb * cv.a[..., None]
    prem = cv2.resize(prem, (w, h), interpolation=cv2.INTER_AREA)
    a = cv2.resize(cv.a, (w, h), interpolation=cv2.INTER_AREA)
    rgb = prem / np.maximum(a[..., None], 1e-6)
    out = np.dstack([np.clip(rgb, 0, 255), np.clip(a * 255.0, 0, 255)])
    return (out + 0.5).astype(np.uint8)
