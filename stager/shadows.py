"""Shadows: the model both the catalog renders with and the stager composites with, the old
product's shadow found in a scene, and the scene's light estimated from it.

A shadow is a *multiplier* map (HxW float32, 1 = unshaded, lower = darker): it only ever
darkens. An object standing on the floor casts two: a soft contact shadow along its base, and a
cast shadow, its silhouette projected on the floor by a shear ``p' = (x + h vx, yb + h vy)``
(``h`` = height above the base line ``yb``), blurred by ``softness`` x the object's height.

The stager never reads the generator's light: ``estimate_light`` measures the old product's
shadow (``detect_old_shadow``) and falls back to a soft contact shadow alone when there is none.

The old shadow is removed by *relighting* (``relight``): the floor is divided by the old
silhouette's shadow under the fitted light where that explains it, and by the measured shading
where the detected shadow is left darker than its surroundings, so its grain and texture stay.
Only what the user paints beyond any fitted shadow is filled.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .images import bbox, dilate


@dataclass
class Light:
    """Cast-shadow parameters per unit object height, and where they came from."""

    vx: float = 0.0  # shadow tip offset / object height, image x
    vy: float = -0.15  # ... image y (negative: toward the wall)
    softness: float = 0.04  # blur sigma / object height
    strength: float = 0.0  # darkening of the cast shadow's core (0 = no cast shadow)
    contact: float = 0.5  # darkening of the contact shadow
    source: str = "fallback: soft contact shadow only"

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def contact_shadow(shape: tuple[int, int], box, strength: float = 0.55) -> np.ndarray:
    """Multiplier (HxW float32, 1 = no shadow): a soft ellipse along the base of ``box``."""
    x0, y0, x1, y1 = box
    w = max(x1 - x0, 2)
    cx, cy, ax, ay = int((x0 + x1) / 2), int(y1 - 2), int(w * 0.55), max(int(w * 0.06), 3)
    sigma = max(w * 0.04, 2)
    out = np.ones(shape, np.float32)
    # drawn and blurred on a crop reaching past the blur kernel (4 sigma): the same values as
    # on the whole frame, at a fraction of the cost (a 1400-px sofa at 2048 px: ~1 s whole)
    r = int(4 * sigma) + 4
    X0, X1 = max(cx - ax - r, 0), min(cx + ax + r + 1, shape[1])
    Y0, Y1 = max(cy - ay - r, 0), min(cy + ay + r + 1, shape[0])
    if X0 >= X1 or Y0 >= Y1:
        return out
    sh = np.zeros((Y1 - Y0, X1 - X0), np.float32)
    cv2.ellipse(sh, (cx - X0, cy - Y0), (ax, ay), 0, 0, 360, 1.0, -1)
    if Y0 > 0 or Y1 < shape[0] or X0 > 0 or X1 < shape[1]:
        # the whole frame reflects at the image's border only: pad the crop's other sides
        # with zeros (what the frame holds there) before blurring
        pt, pb = (r if Y0 > 0 else 0), (r if Y1 < shape[0] else 0)
        pl, pr = (r if X0 > 0 else 0), (r if X1 < shape[1] else 0)
        sh = cv2.copyMakeBorder(sh, pt, pb, pl, pr, cv2.BORDER_CONSTANT, value=0.0)
        sh = cv2.GaussianBlur(sh, (0, 0), sigma)[pt:pt + Y1 - Y0, pl:pl + X1 - X0]
    else:
        sh = cv2.GaussianBlur(sh, (0, 0), sigma)
    out[Y0:Y1, X0:X1] = 1.0 - strength * np.clip(sh, 0, 1)
    return out


def cast_shadow(alpha: np.ndarray, light: Light) -> np.ndarray:
    """Multiplier (HxW float32) of the cast shadow of an object with ``alpha`` (HxW float in
    [0, 1] or bool, scene coordinates) standing on its lowest row."""
    a = alpha.astype(np.float32)
    b = bbox(a > 0.5)
    if b is None or light.strength <= 0:
        return np.ones(a.shape, np.float32)
    yb = float(b[3])
    h = max(b[3] - b[1], 1)
    if abs(light.vy) < 0.02:  # a shadow of no depth is a singular map: keep a sliver
        light = Light(light.vx, -0.02 if light.vy <= 0 else 0.02, light.softness,
                      light.strength, light.contact, light.source)
    # p' = (x + (yb - y) vx, yb + (yb - y) vy): an affine map of the silhouette
    M = np.float32([[1, -light.vx, light.vx * yb], [0, -light.vy, yb + light.vy * yb]])
    proj = cv2.warpAffine(a, M, (a.shape[1], a.shape[0]), flags=cv2.INTER_LINEAR)
    sigma = max(light.softness * h, 1.0)
    proj = cv2.GaussianBlur(proj, (0, 0), sigma)
    return 1.0 - light.strength * np.clip(proj, 0, 1)


def object_shadow(alpha: np.ndarray, light: Light, cast: np.ndarray | None = None
                  ) -> np.ndarray:
    """Contact and cast shadow of one object together (multiplier, the darker of the two);
    ``cast``: its ``cast_shadow`` when already computed."""
    b = bbox(alpha > 0.5)
    if b is None:
        return np.ones(alpha.shape, np.float32)
    cast = cast_shadow(alpha, light) if cast is None else cast
    return np.minimum(contact_shadow(alpha.shape, b, light.contact), cast)


def apply_shade(image: np.ndarray, shade: np.ndarray) -> np.ndarray:
    """Darken ``image`` (HxWx3 uint8) by a multiplier map (values above 1 are clipped)."""
    m = np.clip(shade, 0.0, 1.0)[..., None]
    return np.clip(image.astype(np.float32) * m + 0.5, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ the old product's shadow


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def shading_ratio(scene: np.ndarray, exclude: np.ndarray, size: tuple[int, int],
                  lines: int = 0, window: tuple[int, int, int, int] | None = None,
                  below: tuple[int, int] | None = None) -> np.ndarray:
    """Per-pixel ``luma / local reference`` (HxW float32). The reference is a grey closing with
    a flat ``size = (width, height)`` ellipse: it removes dark structures narrower than the
    kernel, and being flat it hardly reaches across horizontal edges such as the wall/floor
    line. ``exclude`` (the product) is filled along each row from its left and right first, so
    the product itself does not count as shade.

    ``lines`` > 0 also closes with straight lines ``lines`` px tall at seven angles within 45
    degrees of vertical and keeps the lowest of all references. A closing never reads below
    the image, so the lowest is the tightest: a dark plank or grout line runs further than the
    line along one of those angles, so that closing follows it and it is not read as shade,
    while a shadow blob, shorter than the line every way, is still read as shade. Only lines
    lying wholly inside the image count (beyond it is bright), or a shadow at the bottom edge
    would need only half a line to be followed. ``window`` = (y0, y1, x0, x1): where the
    ratio is used; the line closings run on it (plus a line's reach) only. ``below`` = (row,
    n): from that row down, lines ``n`` px tall count as well (the floor under a product
    near the bottom edge is shorter than a line)."""
    raw = _luma(scene)
    for y in np.nonzero(exclude.any(axis=1))[0]:  # fill along rows: never across the horizon
        known = ~exclude[y]
        if known.any():
            xs = np.arange(raw.shape[1])
            raw[y, ~known] = np.interp(xs[~known], xs[known], raw[y, known])
    # texture (carpet, grain) is not shade; blurring after the fill keeps the product's own
    # colour from bleeding into the floor next to it (a vivid product would look like shade
    # in one channel and not the others)
    lum = cv2.GaussianBlur(raw, (0, 0), 3.0)
    filled = lum
    kw, kh = (int(size[0]) | 1), (int(size[1]) | 1)
    ref = cv2.morphologyEx(filled, cv2.MORPH_CLOSE,
                           cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kw, kh)))
    ref = cv2.GaussianBlur(ref, (0, 0), max(kh / 4, 1.0))
    if lines > 0:
        n = int(lines) | 1
        H, W = filled.shape
        y0, y1, x0, x1 = window or (0, H, 0, W)
        pad = n + 8  # a closing reaches a whole line's length; the blur below a little more
        y0, y1, x0, x1 = max(y0 - pad, 0), min(y1 + pad, H), max(x0 - pad, 0), min(x1 + pad, W)
        crop = filled[y0:y1, x0:x1]
        along = _line_closing(crop, n)
        if below is not None and below[1] >= 5 and below[0] < y1:
            r0, short = max(below[0] - y0, 0), int(below[1]) - 1 + int(below[1]) % 2  # odd, <=
            along[r0:] = np.minimum(along[r0:], _line_closing(crop, short)[r0:])
        lined = ref.copy()
        lined[y0:y1, x0:x1] = np.minimum(ref[y0:y1, x0:x1], along)
        ref = np.minimum(ref, cv2.GaussianBlur(lined, (0, 0), 2.0))
    return lum / np.maximum(ref, 1.0)


def _line_closing(img: np.ndarray, n: int) -> np.ndarray:
    """The lowest of grey closings of ``img`` with straight lines ``n`` px tall (odd) at seven
    angles within 45 degrees of vertical, counting only lines wholly inside the image."""
    c = n // 2
    bright = float(img.max()) + 1.0  # beyond the image: a line reaching there does not count
    out = None
    for deg in (-45, -30, -15, 0, 15, 30, 45):
        k = np.zeros((n, n), np.uint8)
        dx = np.tan(np.radians(deg)) * c
        cv2.line(k, (int(round(c - dx)), 0), (int(round(c + dx)), n - 1), 1, 1)
        r = cv2.morphologyEx(img, cv2.MORPH_CLOSE, k, borderType=cv2.BORDER_CONSTANT,
                             borderValue=bright)
        out = r if out is None else np.minimum(out, r)
    return out


def _kernel(box) -> tuple[int, int]:
    w, h = box[2] - box[0], box[3] - box[1]
    return max(int(1.6 * w), int(0.8 * h), 41), 5


def shade_maps(scene: np.ndarray, old_mask: np.ndarray, learned: bool | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(shading ratio, channel spread) around the old product, both HxW float32: the luma's
    ratio to its local reference, and how much the three channels' ratios disagree (a shadow
    darkens all channels alike; a rug or a darker plank changes the colour too). Detection and
    light estimation share them (``maps=``): they are most of either's cost.

    ``learned`` (default: with ``STAGER_SHADE_MODEL=auto``, the default, and its weights
    present, see ``shade_reader`` and the model card):
    the trained shade model (``models.shade``) corrects the ratio on the window the maps are
    read in, from the scene and the classical ratio; there it also judges colour, so the
    spread is zero on the window. ``False``: the classical maps alone; ``True``: the model or
    ``WeightsError``."""
    ratio, spread = _classical_maps(scene, old_mask)
    if learned is None:
        net = shade_model()
    else:  # asked for by name (tests, benchmarks): whatever the setting says
        net = shade_model(required=True, mode="auto") if learned else None
    b = bbox(old_mask)
    if net is None or b is None:
        return ratio, spread
    from models.shade import predict

    win = _ratio_window(b, old_mask.shape)
    ratio = predict(net, scene, old_mask, ratio, win)
    spread = spread.copy()
    spread[win[0]:win[1], win[2]:win[3]] = 0.0
    return ratio, spread


_SHADE: dict = {}  # (weights folder, setting, file stat) -> (network or None, why)
_SHADE_LOCK = threading.Lock()


def _shade_state(mode: str | None = None) -> tuple[object, str]:
    """(network or None, what reads the old shadow and why), loaded once per weights file
    (replaced on disk or another setting: read again); safe from concurrent requests.
    ``mode``: ``auto`` or ``off`` instead of ``STAGER_SHADE_MODEL``."""
    from models.weights_io import WEIGHT_FILES

    from .config import get_settings

    st = get_settings()
    path = st.weights_dir / WEIGHT_FILES["shade"]
    try:
        stat = path.stat()
        found = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        found = None
    mode = mode or st.shade_model
    key = (str(st.weights_dir), mode, found)
    with _SHADE_LOCK:
        if key not in _SHADE:
            if len(_SHADE) > 4:
                _SHADE.clear()
            _SHADE[key] = _load_shade(mode, path)
        return _SHADE[key]


def _load_shade(mode: str, path) -> tuple[object, str]:
    if mode == "off":
        return None, ("classical shading ratio: the shade model is off (STAGER_SHADE_MODEL="
                      "off; STAGER_SHADE_MODEL=auto, the default, uses shade.safetensors when "
                      "present)")
    if not path.is_file():
        return None, (f"classical shading ratio: {path.name} not found in STAGER_WEIGHTS_DIR "
                      "(train it with `python -m stager train shade`)")
    try:
        from models.shade import ShadeNet
        from models.weights_io import load_into, read_meta

        cfg = read_meta(path).get("config")
        if not isinstance(cfg, dict) or "width" not in cfg:
            raise ValueError("no Product Stager network config in its header")
        net = ShadeNet(int(cfg["width"]), int(cfg.get("res", 128)))
        load_into(net, path).eval()
    except Exception as exc:  # any unreadable file: the classical ratio, and why
        lines = str(exc).strip().splitlines()
        why = (lines[0] if lines else exc.__class__.__name__).replace(str(path), path.name)
        return None, (f"classical shading ratio: {path.name} is unreadable ({why[:160]}); "
                      "retrain it with `python -m stager train shade`")
    return net, f"trained shade model ({path.name})"


def shade_model(required: bool = False, mode: str | None = None):
    """The trained shade model, or None when it is off (``STAGER_SHADE_MODEL=off``) or its
    weights are missing or unreadable (``shade_reader`` says which). ``required``: raise
    ``WeightsError`` with that reason instead of returning None; ``mode="auto"``: load it
    whatever the setting."""
    net, why = _shade_state(mode)
    if net is None and required:
        from models.weights_io import WeightsError

        raise WeightsError(f"the shade model is not available: {why}")
    return net


def shade_reader() -> tuple[bool, str]:
    """(the trained shade model reads old shadows, what reads them and why)."""
    net, why = _shade_state()
    return net is not None, why


def _classical_maps(scene: np.ndarray, old_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b = bbox(old_mask)
    if b is None:  # no product: nothing is shade
        return np.ones(old_mask.shape, np.float32), np.zeros(old_mask.shape, np.float32)
    excl = dilate(old_mask, 2)
    # lines of 0.6 object heights: best on 80 catalog scenes (0.4 left a grey level more of
    # old shadow, 1.0 was no better); in the channels too, or a flat closing takes a coloured
    # rug as one channel's reference and the floor around it as another's, and a shadow on the
    # rug looks coloured
    lines = max(int(0.6 * (b[3] - b[1])), 21)
    # only lines wholly inside the image count: below the base of a product standing near
    # the bottom edge, shorter ones too (down to half a line), or a plank there has no line
    # to follow it; on a floor strip shorter still, the flat closing alone reads the shade
    room = old_mask.shape[0] - b[3]
    below = (b[3], room) if lines // 2 <= room < lines else None
    win = _ratio_window(b, old_mask.shape)
    ratio = shading_ratio(scene, excl, _kernel(b), lines=lines, window=win, below=below)
    chans = [shading_ratio(np.repeat(scene[..., c:c + 1], 3, axis=2), excl, _kernel(b),
                           lines=lines, window=win, below=below) for c in range(3)]
    return ratio, np.max(chans, axis=0) - np.min(chans, axis=0)


def _ratio_window(b, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) holding every pixel the shading maps are read at: the shadow zone
    (``_shadow_zone`` with reach 1.2) and the light fit's window below 0.3 of the height."""
    h, w = b[3] - b[1], b[2] - b[0]
    r = max(int(0.6 * max(h, w)), int(1.2 * h), 8) + 1
    return (max(b[1] + int(0.3 * h), 0), min(b[3] + int(0.35 * h + 0.08 * w) + 8, shape[0]),
            max(b[0] - r, 0), min(b[2] + r, shape[1]))


def _shadow_zone(old_mask: np.ndarray, b, reach: float = 0.0) -> np.ndarray:
    """Where the old product's shadow may lie (HxW bool): within a radius of the product
    (0.6 x its larger side, or ``reach`` x its height if larger: a fitted cast shadow's tip
    lies up to ~1.1 heights away), on the floor near its base, and not far in front of it."""
    h, w = b[3] - b[1], b[2] - b[0]
    # a distance transform: a 200-px disk dilation is slow
    near = cv2.distanceTransform((~old_mask).astype(np.uint8), cv2.DIST_L2, 5) \
        <= max(int(0.6 * max(h, w)), int(reach * h), 8)
    near[: max(b[1] + int(0.4 * h), 0)] = False
    near[b[3] + int(0.25 * h + 0.08 * w) + 4:] = False
    return near


def detect_old_shadow(scene: np.ndarray, old_mask: np.ndarray, margin: int = 6,
                      seed: float = 0.88, grow: float = 0.95, maps=None) -> np.ndarray:
    """The old product's contact/cast shadow: a darker region of the floor joined to the old
    mask (HxW bool, disjoint from the old mask); empty when there is none. Pixels darker than
    ``seed`` x their surroundings start it; it grows through pixels darker than ``grow``
    (hysteresis), so the soft penumbra is included."""
    b = bbox(old_mask)
    if b is None:
        return np.zeros(old_mask.shape, bool)
    h, w = b[3] - b[1], b[2] - b[0]
    near = _shadow_zone(old_mask, b)
    ratio, spread = maps if maps is not None else shade_maps(scene, old_mask)
    grey = spread < 0.08
    strong = (ratio < seed) & near & ~old_mask & grey
    strong = cv2.morphologyEx(strong.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, lab = cv2.connectedComponents(strong, connectivity=8)
    touch = dilate(old_mask, margin + 3)
    keep = np.zeros(old_mask.shape, bool)
    for i in range(1, n):
        comp = lab == i
        if not (comp & touch).any() or comp.sum() < 12:
            continue
        keep |= comp
    if not keep.any():
        return keep
    weak = (ratio < grow) & near & ~old_mask & (spread < 0.12)
    for _ in range(max(int(0.1 * h), 6)):  # geodesic growth into the penumbra
        nxt = cv2.dilate(keep.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & weak
        if (nxt == keep).all():
            break
        keep = nxt | keep
    # shadows are blobs: thin dark lines (plank joints, tile grout) that the growth followed
    # are cut away, then small gaps closed
    keep = cv2.morphologyEx(keep.astype(np.uint8), cv2.MORPH_OPEN,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    keep = cv2.morphologyEx(keep, cv2.MORPH_CLOSE,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))).astype(bool)
    if keep.sum() > 2 * old_mask.sum():  # implausibly large: keep the contact zone only
        zone = np.zeros_like(keep)
        zone[max(b[3] - int(0.15 * h), 0):b[3] + int(0.1 * h + 0.08 * w) + 4,
             max(b[0] - int(0.2 * w), 0):b[2] + int(0.2 * w)] = True
        keep &= zone
    return dilate(keep, 2) & ~old_mask


def estimate_light(scene: np.ndarray, old_mask: np.ndarray, old_shadow: np.ndarray | None,
                   maps=None) -> Light:
    """Cast-shadow direction, length, softness and strength fitted to the floor's darkening
    around the old product (``old_shadow``, detected or drawn, only decides whether there is
    a shadow to fit: the fit reads all the grey floor darkening in the window).

    Analysis by synthesis, on a ~96-px window around the product: the floor's measured
    darkening (1 - shading ratio, grey pixels, the product left out) is compared with the
    darkening the renderer would give, ``max(contact, cast)``, for a grid of directions,
    softnesses and strengths of the old silhouette's cast shadow. The best fit wins if it
    explains at least a quarter more of the darkening than the default contact shadow alone;
    otherwise, or without a detected shadow, the new product gets a contact shadow only.
    Directions stay plausible: the tip within one object height sideways, half a height back,
    a third in front.
    """
    b = bbox(old_mask)
    if b is None or old_shadow is None or old_shadow.sum() < 30:
        return Light()
    H, W = old_mask.shape
    x0, y0, x1, y1 = b
    h = max(y1 - y0, 1)
    ratio, spread = maps if maps is not None else shade_maps(scene, old_mask)
    grey = spread < 0.12
    unit_contact = 1.0 - contact_shadow(old_mask.shape, b, 1.0)
    # the contact strength stays at its default: measured under the base it is biased by
    # floor texture (plank joints, grout), and it fitted the catalog's shadows worse
    contact = Light.contact
    wx0, wx1 = max(x0 - h, 0), min(x1 + h, W)
    wy0, wy1 = max(y0 - int(0.2 * h), 0), min(y1 + int(0.35 * h) + 4, H)
    win = (slice(wy0, wy1), slice(wx0, wx1))
    f = min(1.0, 96.0 / max(wy1 - wy0, wx1 - wx0))
    size = (max(int((wx1 - wx0) * f), 8), max(int((wy1 - wy0) * f), 8))

    def small(a: np.ndarray) -> np.ndarray:
        return cv2.resize(a[win].astype(np.float32), size, interpolation=cv2.INTER_AREA)

    alpha = small(old_mask)
    dark = np.clip(1.0 - small(ratio), 0, 1)
    cpred = contact * small(unit_contact)
    rows = np.arange(size[1], dtype=np.float32)[:, None] / f + wy0
    wt = ((small(grey) > 0.5) & (small(dilate(old_mask, 3)) < 0.01)
          & (rows >= y0 + 0.3 * h)).astype(np.float32)
    base = float((wt * (dark - cpred) ** 2).sum())
    strengths = np.linspace(0.1, 0.8, 8, dtype=np.float32)[:, None, None]
    best_err, best = base, None

    def search(vxs, vys, softs):
        nonlocal best_err, best
        for soft in softs:
            for vx in vxs:
                for vy in vys:
                    p = 1.0 - cast_shadow(alpha, Light(float(vx), float(vy), soft, 1.0))
                    err = (wt * (dark - np.maximum(cpred, strengths * p)) ** 2).sum(axis=(1, 2))
                    k = int(np.argmin(err))
                    if err[k] < best_err:
                        best_err, best = float(err[k]), (float(vx), float(vy), soft,
                                                         float(strengths[k, 0, 0]))

    # coarse to fine: a 9 x 9 grid of directions, then a finer one around the best with
    # three softnesses (a third of the cost of the fine grid everywhere, same fits)
    search(np.linspace(-1.0, 1.0, 9), np.linspace(-0.5, 0.3, 9), (0.04,))
    cx, cy = (best[0], best[1]) if best else (0.0, -0.15)
    search(np.clip(cx + np.linspace(-0.25, 0.25, 9), -1.0, 1.0),
           np.clip(cy + np.linspace(-0.1, 0.1, 9), -0.5, 0.3), (0.02, 0.04, 0.07))
    if best is None or best_err > 0.75 * base:
        return Light(contact=contact, source="old shadow: contact only")
    vx, vy, soft, s = best
    return Light(round(vx, 3), round(vy, 3), soft, s, contact,
                 "estimated: fitted to the old product's shadow")


# The old product's contact shadow is lifted at this strength, under the catalog's mean (0.5;
# it renders 0.4-0.6). On 40 held-out catalog scenes, lifting the band with no bound left 7.4
# grey levels of old shadow outside the footprint at 0.45 (11.4 without any lift) and, unlike
# 0.5 or 0.55, added no scene with a bright patch (over 200 px lit 8% above the empty room).
# With the bound by the floor beside the product (``contact_lift``) 8.5, and 0.5% of lift on
# a floor with no shadow at all.
CONTACT_LIFT = 0.45


def contact_lift(scene: np.ndarray, old_mask: np.ndarray, strength: float = CONTACT_LIFT
                 ) -> np.ndarray:
    """Divisor (HxW float32, 1 = untouched) that lifts the old product's contact shadow: the
    darkened band along its base (``contact_shadow``) is divided by that shadow at
    ``strength``, but no pixel's luma (lightly blurred) is lifted above the floor beside the
    product on the same row: the 75th percentile of the luma 0.65-0.95 product widths from its
    centre, both sides pooled, pixels over 1.5x off their median dropped (a bright object
    beside the product is not floor; if too few are left, the lower side's percentile), a
    side counting only with at least max(16, 5% of the width) pixels off the product. Rows
    without such floor take the cap of the nearest rows that have it; a product with floor on
    neither side (as wide as the frame) takes the floor just below the band.

    The measured shading ratio cannot bound this lift: under a table or a sofa's skirt the
    band is as wide as the product, so the closing that makes the reference sits inside it and
    reads ~1 there. With no floor beside or below the band, it is left alone."""
    b = bbox(old_mask)
    div = np.ones(old_mask.shape, np.float32)
    if b is None or strength <= 0:
        return div
    cm = contact_shadow(old_mask.shape, b, strength)
    band = cm < 0.995
    rows = np.nonzero(band.any(axis=1))[0]
    if not len(rows):
        return div
    lum = cv2.GaussianBlur(_luma(scene), (0, 0), 1.5)
    cx, w = (b[0] + b[2]) / 2.0, max(b[2] - b[0], 2)
    xs = np.arange(old_mask.shape[1])
    sides = ((xs >= cx - 0.95 * w) & (xs <= cx - 0.65 * w),
             (xs >= cx + 0.65 * w) & (xs <= cx + 0.95 * w))
    other = dilate(old_mask, 3)
    need = max(16, int(0.05 * w))
    caps = np.full(len(rows), np.nan, np.float32)
    for i, y in enumerate(rows):
        seen = [float(np.percentile(lum[y, sel], 75))
                for sel in (sd & ~other[y] for sd in sides) if sel.sum() >= need]
        if seen:
            v = lum[y, (sides[0] | sides[1]) & ~other[y]]
            m = float(np.median(v))
            v = v[(v <= 1.5 * m + 2) & (v >= m / 1.5 - 2)]  # a bright object is not floor
            caps[i] = float(np.percentile(v, 75)) if v.size >= need else min(seen)
    known = ~np.isnan(caps)
    if known.any():
        caps = np.interp(np.arange(len(rows)), np.nonzero(known)[0], caps[known])
    else:  # no floor beside the product: the floor just below the band, under the product
        y = rows[-1] + 1
        below = lum[y:y + 8, max(b[0], 0):b[2]][~other[y:y + 8, max(b[0], 0):b[2]]]
        if below.size < need:
            return div
        caps[:] = float(np.percentile(below, 75))
    sub = lum[rows]
    # lifted (blurred) luma = lum / div <= max(cap, lum)
    div[rows] = np.maximum(cm[rows], sub / np.maximum(np.maximum(caps[:, None], sub), 1.0))
    div[~band] = 1.0
    return div


def _lifted_band(lift: np.ndarray, old_mask: np.ndarray, zone: np.ndarray) -> np.ndarray:
    """Where ``lift`` (``contact_lift``'s divisor) lifts the floor by 3% or more, smoothed (a
    grainy floor with no shadow does not speckle the mask), in ``zone``: the part of the
    contact band shown in the mask view as old shadow."""
    return (cv2.GaussianBlur(1.0 - lift, (0, 0), 4.0) > 0.03) & zone & ~old_mask


@dataclass
class OldShadow:
    """The old product's shadow as found: ``mask`` (shown in the mask view, removed), the
    ``light`` fitted to it, and ``detected``, the part the detector itself found (the rest of
    the mask is where only the fitted model says there is shadow); ``lift``, the contact
    band's divisor (``contact_lift``), handed to ``relight`` so it is computed once."""

    mask: np.ndarray
    light: Light
    detected: np.ndarray
    lift: np.ndarray | None = None


def _explained(model: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Where the floor is not much darker than the fitted shadow makes it: darker than that by
    over 0.1 is another object (a chair in a lamp's shadow), not shade to lift."""
    return ratio >= model - 0.1


def find_old_shadow(scene: np.ndarray, old_mask: np.ndarray, margin: int = 6, maps=None
                    ) -> OldShadow:
    """The old product's shadow: the detected dark region joined by where the shadow fitted to
    it darkens the floor by 3% or more (the faint penumbra and the parts of a cast shadow the
    detector's thresholds miss on a textured floor), on grey pixels the fitted shadow explains,
    in the zone the detector searches (near the product, on the floor around its base).
    A fit at the strongest strength searched is taken to have fitted an object, not a shadow:
    then only the detected region counts. The contact band along the base joins the mask
    wherever ``contact_lift`` would lift it by 3% or more (the detector's thresholds miss it
    under wide products), whatever was detected."""
    maps = maps if maps is not None else shade_maps(scene, old_mask)
    det = detect_old_shadow(scene, old_mask, margin, maps=maps)
    light = estimate_light(scene, old_mask, det, maps=maps)
    b = bbox(old_mask)
    if b is None:
        return OldShadow(det, light, det)
    zone = _shadow_zone(old_mask, b, reach=1.2)
    # the contact band along the base (``contact_lift``): lifted whatever the fit says
    lift = contact_lift(scene, old_mask)
    band = _lifted_band(lift, old_mask, zone)
    if not det.any() or light.strength >= 0.8:
        return OldShadow((det | band) & ~old_mask, light, det, lift)
    ratio, spread = maps
    model = object_shadow(old_mask.astype(np.float32), light)
    extra = (model < 0.97) & (spread < 0.12) & _explained(model, ratio) & zone
    return OldShadow((det | extra | band) & ~old_mask, light, det, lift)


def relight(scene: np.ndarray, old_mask: np.ndarray, shadow_mask: np.ndarray, light: Light,
            ratio: np.ndarray, detected: np.ndarray | None = None, left: float | None = None,
            overshoot: float | None = None, contact: float = CONTACT_LIFT,
            band_lift: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Divide the old product's shadow out of ``scene`` inside ``shadow_mask`` (feathered).

    The divisor is the old silhouette's contact and cast shadow under ``light``, bounded by
    the measured shading ratio: inside ``detected`` (the detector's own shadow; default: the
    whole mask) a pixel is lit at most ``overshoot`` (default 20%; 5% when the shade model
    reads the ratio, which does not under-read broad shadows: at 10% it left a faint bright
    patch in 51 of 240 catalog scenes, at 5% with ``left`` 0.8 in 25, with the same error
    against the empty room) above its local reference,
    elsewhere 5% where the fitted cast shadow falls and not above it otherwise. (The
    reference, a closing, under-reads broad shadows: with no overshoot allowed the catalog's
    cast shadows were only two-thirds removed.) The local reference is
    only as good as the floor around it, so a light fitted wrongly can still leave a faintly
    bright patch. Outside ``detected``, pixels much darker than the fitted shadow explains
    (another object in its path) are left alone.

    The detected pixels the fitted shadow leaves darker than ``left`` (default 0.9; 0.8 when
    the shade model reads: 0.9 lifted more noise into bright patches, and came no closer to
    the empty room) x their surroundings (a
    cast shadow the fit missed: it keeps a contact shadow alone in about two scenes of three)
    are divided by the measured shading ratio itself, so they keep their texture too (they
    used to be filled, a flat patch on carpet or wood); their noise is lifted with them, at
    most twice. Where the measured ratio is under 0.45, darker than the catalog's shadows
    (a cast shadow darkens by at most half, a contact shadow's core by 0.6; more lift would
    mostly lift noise), the pixels are taken for an object and filled. (At 0.5 the shade
    model's reading of a plank floor's shadow core, 0.495, had a few pixels filled.)

    The contact band along the old product's base (inside ``shadow_mask``) may also be divided
    by a contact shadow of strength ``contact`` (``contact_lift``; 0 = off), bounded by the
    floor beside the product instead of the ratio; the larger lift wins. ``band_lift``: that
    divisor when already computed (``OldShadow.lift``, at the default ``contact``).

    Returns (relit HxWx3 uint8, what to fill): those deep pixels, and the mask's pixels the
    fitted shadow does not cover at all (painted by the user beyond it)."""
    if shadow_mask is None or not shadow_mask.any():
        return scene, np.zeros(scene.shape[:2], bool)
    core = shadow_mask if detected is None else (shadow_mask & detected)
    reader = shade_model() is not None
    if overshoot is None:  # the shade model reads broad shadows itself: a quarter of it
        overshoot = 0.05 if reader else 0.2
    if left is None:
        left = 0.8 if reader else 0.9
    alpha = old_mask.astype(np.float32)
    cast_m = cast_shadow(alpha, light)
    model = object_shadow(alpha, light, cast_m)
    # outside the detected core, the 5% allowed above the reference is for a fitted cast
    # shadow the closing under-reads; the contact band has its own bound (``contact_lift``)
    cast = cast_m < 0.97
    over = np.where(core, overshoot, np.where(cast, min(overshoot, 0.05), 0.0)
                    ).astype(np.float32)
    div = np.clip(np.maximum(model, ratio / (1.0 + over)), 0.25, 1.0)
    lift = shadow_mask & (core | _explained(model, ratio))
    w = np.clip(cv2.GaussianBlur(lift.astype(np.float32), (0, 0), 1.5), 0, 1)
    w = np.where(lift, np.maximum(w, 0.5), w)  # the mask itself is (mostly) relit
    div = 1.0 - w * (1.0 - div)
    # the contact band: lifted by the contact shadow itself, bounded by the floor beside it,
    # not by the ratio (which reads ~1 under a wide product); the more lift of the two wins
    dc = band_lift if band_lift is not None else contact_lift(scene, old_mask, contact)
    band = shadow_mask & (dc < 1.0)
    if band.any():
        wc = np.clip(cv2.GaussianBlur(band.astype(np.float32), (0, 0), 1.5), 0, 1)
        wc = np.where(band, 1.0, wc)
        div = np.minimum(div, 1.0 - wc * (1.0 - dc))
    residual = core & (ratio / div < left)
    residual = cv2.morphologyEx(residual.astype(np.uint8), cv2.MORPH_OPEN,
                                np.ones((3, 3), np.uint8)).astype(bool)
    deep = np.zeros_like(residual)
    if residual.any():  # what the model leaves dark: divided by the measured shade ...
        measured = cv2.GaussianBlur(ratio, (0, 0), 1.5)
        deep = residual & (measured < 0.45)  # ... unless darker than a shadow: an object
        soft = residual & ~deep
        w = np.clip(cv2.GaussianBlur(soft.astype(np.float32), (0, 0), 1.5), 0, 1)
        w = np.where(soft, 1.0, w)
        div = div * (1.0 - w) + np.minimum(div, np.clip(measured, 0.5, 1.0)) * w
    # never lit above the floor the shadow does not reach (``floor_cap``): under the base, the
    # bound ``contact_lift`` keeps, now on every lift; at a fitted cast shadow's tip, where fit
    # and reader both overshoot on a plain floor
    cap = floor_cap(scene, old_mask, shadow_mask)
    if cap is not None:
        capped = np.clip(_smooth_luma(scene) / np.maximum(cap, 1.0), 0.0, 1.0)
        div = np.where(shadow_mask, np.maximum(div, capped), div)
    relit = np.clip(scene.astype(np.float32) / div[..., None] + 0.5, 0, 255).astype(np.uint8)
    beyond = shadow_mask & ~core & (model > 0.99)  # painted where no fitted shadow falls
    return relit, beyond | deep


# the relit floor's ceiling: this percentile of the luma of the floor the shadow does not reach,
# plus this much. On 24 held-out catalog pairs (Telea's fill), applied under the base only:
# under-base L1 0.0075 without it, 0.0099 with it (0.0105 at 3%, 0.0090 at 8% and the 95th
# percentile), the old-shadow region unchanged; in a new user's room with no contact shadow the
# floor under the box was lit 43 grey levels above the clean floor, 5 with it (4 at 3%, 8 at
# 8%). Over the whole shadow (the default) the catalog measured the same (240 scenes: true
# shadow 6.81 against 6.80, 22 bright patches either way; under-base L1 0.0102 against 0.0099)
# and a plain room's cast-shadow tip went from 10 levels too bright to 6.
FLOOR_CAP_PERCENTILE = 90.0
FLOOR_CAP_ALLOW = 0.05


def _smooth_luma(img: np.ndarray) -> np.ndarray:
    """Luma blurred by 2 px: the floor's level without its grain (the cap bounds the level, so
    the grain is lifted with the rest)."""
    return cv2.GaussianBlur(_luma(img), (0, 0), 2.0)


def floor_cap(scene: np.ndarray, old_mask: np.ndarray, shadow_mask: np.ndarray,
              percentile: float = FLOOR_CAP_PERCENTILE, allow: float = FLOOR_CAP_ALLOW
              ) -> np.ndarray | None:
    """The brightest the relit old shadow's level may be (HxW float32, inf outside the
    shadow's box), or None when there is no floor to measure. Per pixel, the more generous of
    two readings of the floor the shadow does not reach (neither product nor shadow, both
    grown by 3 px), each the ``percentile`` of its ``_smooth_luma`` (blurred by 2 px, so a
    bright grain pixel is not the floor's level), times ``1 + allow``:
    beside, on the same rows (+-2) within half the shadow's width beyond it on either side
    (rows with too few such pixels take the nearest measured row's); and below, in the same
    columns (+-8) just under the shadow (a pool of light in front of a sofa is brighter than the
    floor beside it, and is floor too). A relit shadow is floor without the shadow, so it is
    no brighter than that floor; a reader that sees a shadow where there is none (the shade
    model, trained on rooms whose products all have a contact shadow, read 0.68 under a box
    that had none) would otherwise light the floor 50% above it."""
    found = bbox(shadow_mask)
    if found is None:
        return None
    H, W = shadow_mask.shape
    x0, y0, x1, y1 = found
    lum = _smooth_luma(scene)
    floor = ~dilate(old_mask, 3) & ~dilate(shadow_mask, 3)
    # beside: the same rows (+-2), half the shadow's width beyond it on either side
    half = max((x1 - x0) // 2, 16)
    xa, xb = max(x0 - half, 0), min(x1 + half, W)
    need = max(24, (xb - xa) // 8)
    beside = np.full(y1 - y0, np.nan, np.float32)
    for i, y in enumerate(range(y0, y1)):
        ya, yb = max(y - 2, 0), min(y + 3, H)
        v = lum[ya:yb, xa:xb][floor[ya:yb, xa:xb]]
        if v.size >= need:
            beside[i] = float(np.percentile(v, percentile))
    if np.isfinite(beside).any():
        ok = np.nonzero(np.isfinite(beside))[0]
        beside = np.interp(np.arange(y1 - y0), ok, beside[ok]).astype(np.float32)
    # below: the same columns (+-8), just under the shadow
    depth = max(12, (y1 - y0) // 2)
    under = np.full(x1 - x0, np.nan, np.float32)
    low = np.where(shadow_mask.any(axis=0), H - 1 - np.argmax(shadow_mask[::-1], axis=0), -1)
    for j, x in enumerate(range(x0, x1)):
        xa2, xb2 = max(x - 8, 0), min(x + 9, W)
        bottom = int(low[xa2:xb2].max())
        if bottom < 0:
            continue
        ya, yb = bottom + 3, min(bottom + 3 + depth, H)
        if yb <= ya:
            continue
        v = lum[ya:yb, xa2:xb2][floor[ya:yb, xa2:xb2]]
        if v.size >= 24:
            under[j] = float(np.percentile(v, percentile))
    cap = np.fmax(beside[:, None], under[None, :])  # the more generous of the two
    if not np.isfinite(cap).any():
        return None
    out = np.full((H, W), np.inf, np.float32)
    out[y0:y1, x0:x1] = np.where(np.isfinite(cap), cap * (1.0 + allow), np.inf)
    return out
