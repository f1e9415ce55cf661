"""Line-guided classical fill: straight structure is carried across the hole first, then each
side of it is filled from its own side.

Telea fills a hole from every pixel around it at once, so a wall/floor boundary, a skirting
board, a rug's border or the gaps between planks that cross the hole are smeared into a
blurred band (most of Telea's error on the default catalog's rooms). Here:

1. Straight segments are found in the image around the hole (OpenCV's line segment
   detector) and cut back to their parts away from the hole (a line the old product
   interrupts ends at its outline; what lies in the hole may be the old product's own edges).
2. A segment whose end lies within a few pixels of the hole is extended straight through it.
   The extension is kept only where the far side agrees: the line leaves the hole onto an
   edge of the known image, and the colours on either side of it match those where it went
   in. Two lines that go in, find no far side and meet inside the hole (a rug's corner under
   the old product) are drawn to where they meet, if neither invented arm is longer than the
   line seen leading into it, and no arm crosses a line carried through (a wall's stripe
   ends at the wall's foot). Nothing else is invented.
3. The kept lines cut the hole into parts. Each part is filled by Telea from the known pixels
   on its own side of every line that bounds it (the known pixels on the other side, within
   ``MARGIN`` px of the line's ends along it, are hidden from that run), and the
   line's own pixels take the colour the line has where it enters and leaves the hole. Two
   parallel lines too close to fill the strip between them from its own side (a skirting
   board's dark line, a rug's narrow border: under 5 px apart) are one line carrying that
   strip: each of its pixels takes the strip's colour at its own offset where the strip
   enters and leaves, so the strip stays a line instead of fading into either side.

With no line kept, the result is Telea's exactly. Deterministic, no weights. Measured in
``models/weights/MODEL_CARD.md`` (the ``lines`` backend).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_LENGTH = 12  # px: shorter segments are texture, not structure
REACH = 8  # px: how close to the hole a segment must end to be extended
CHECK = 10  # px beyond the exit that must lie on a known edge
COLOUR_TOL = 28.0  # mean grey levels: the two sides of a line must match across the hole
MAX_LINES = 32
MARGIN = 40  # px along a line beyond the hole where it still separates the two sides


@dataclass
class Crossing:
    """A straight line carried through the hole: from ``entry`` (last known pixel before the
    hole, x/y) along unit ``direction`` for ``length`` px, to the first known pixel after it
    or, for a corner's arm (``stops``), to where it meets the other arm."""

    entry: np.ndarray
    direction: np.ndarray
    length: float
    colour_in: np.ndarray
    colour_out: np.ndarray
    stops: bool = False  # ends inside the hole (at a corner), so it separates nothing beyond
    # a strip too thin to fill from its own side carried with the line (a skirting board's
    # dark line, a rug's narrow border): its extent across the line, in px along
    # (direction[1], -direction[0]) from the line; (0, 0) = none (see ``_band``)
    band: tuple[float, float] = (0.0, 0.0)


def _inside(shape, p) -> bool:
    x, y = int(round(p[0])), int(round(p[1]))
    return 0 <= x < shape[1] and 0 <= y < shape[0]


def _at(a: np.ndarray, p) -> np.ndarray:
    return a[int(round(p[1])), int(round(p[0]))]


def _sides(img: np.ndarray, hole: np.ndarray, p, n, d: float = 3.0) -> np.ndarray | None:
    """Colours at ``d`` px either side of point ``p`` across normal ``n`` (2x3), or None when
    either lies off the image or in the hole."""
    a, b = p + d * n, p - d * n
    if not (_inside(img.shape, a) and _inside(img.shape, b)) or _at(hole, a) or _at(hole, b):
        return None
    return np.stack([_at(img, a), _at(img, b)]).astype(np.float32)


def find_crossings(image: np.ndarray, hole: np.ndarray, max_span: int | None = None
                   ) -> list[Crossing]:
    """The straight lines of the known image that cross ``hole`` and agree on its far side."""
    h, w = hole.shape
    if not hole.any() or hole.all():
        return []
    if max_span is None:  # the walk stops where the hole ends: this only bounds it
        ys, xs = np.nonzero(hole)
        max_span = int(np.hypot(ys.max() - ys.min(), xs.max() - xs.min())) + 2
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    near = cv2.dilate(hole.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    segs = cv2.createLineSegmentDetector().detect(grey)[0]
    if segs is None:
        return []
    edges = cv2.Canny(cv2.GaussianBlur(grey, (0, 0), 1.0), 30, 90) > 0
    edges = cv2.dilate((edges & ~near).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    segs = segs.reshape(-1, 4)
    pieces = []  # the parts of each segment away from the hole (a line the old product cut)
    for x0, y0, x1, y1 in segs:
        n_pts = max(int(np.hypot(x1 - x0, y1 - y0)), 2)
        ts = np.linspace(0, 1, n_pts)
        px, py = x0 + ts * (x1 - x0), y0 + ts * (y1 - y0)
        off = ~near[np.clip(py.round().astype(int), 0, h - 1),
                    np.clip(px.round().astype(int), 0, w - 1)]
        edges_of_runs = np.flatnonzero(np.diff(np.r_[0, off.astype(np.int8), 0]))
        for i0, i1 in zip(edges_of_runs[::2], edges_of_runs[1::2]):
            if i1 - i0 >= MIN_LENGTH:
                pieces.append((px[i0], py[i0], px[i1 - 1], py[i1 - 1]))
    if not pieces:
        return []
    segs = np.array(pieces, np.float64)
    lengths = np.hypot(segs[:, 2] - segs[:, 0], segs[:, 3] - segs[:, 1])
    full: list[Crossing] = []
    ends = []  # (entry, direction, evidence length) of lines that go in but find no far side
    for k in np.argsort(-lengths):
        if lengths[k] < MIN_LENGTH:
            break
        a, b = segs[k, :2], segs[k, 2:]
        u = (b - a) / lengths[k]
        for end, d in ((b, u), (a, -u)):
            entry = _entry(hole, end, d)
            if entry is None:
                continue
            c = _cross(image, hole, edges, entry, d, max_span)
            if c is not None:
                twin = next((o for o in full if _same(c, o)), None)
                if twin is None and len(full) < MAX_LINES:
                    full.append(c)
                elif twin is not None:  # a close parallel line: the strip between is carried
                    off = _offset(twin, c.entry)
                    if abs(off) >= 1.5:
                        twin.band = (min(twin.band[0], off), max(twin.band[1], off))
            elif lengths[k] >= 2 * MIN_LENGTH and len(ends) < 2 * MAX_LINES:
                ends.append((entry, d, float(lengths[k])))
    return full + _junctions(image, hole, ends, full)


def _entry(hole, end, d):
    """The last known pixel before the hole along ``d`` from a segment's ``end``, or None
    when the hole is not within ``REACH``."""
    t = 1.0
    while t <= REACH and _inside(hole.shape, end + t * d) and not _at(hole, end + t * d):
        t += 1.0
    if t > REACH or not _inside(hole.shape, end + t * d):
        return None
    return end + (t - 1.0) * d


def _colour(image, p, d):
    """The line's colour just outside the hole at ``p``: the median of up to 4 pixels along
    it, walking away from the hole (one pixel is noisy on a photo)."""
    pts = [p - i * d for i in range(1, 5) if _inside(image.shape, p - i * d)] or [p]
    return np.median(np.stack([_at(image, q) for q in pts]).astype(np.float32), axis=0)


def _cross(image, hole, edges, entry, d, max_span) -> Crossing | None:
    """The line from ``entry`` through the hole, if the far side continues it."""
    shape = hole.shape
    s = 1.0
    while _inside(shape, entry + s * d) and _at(hole, entry + s * d):
        s += 1.0
        if s > max_span:
            return None
    exit_ = entry + s * d
    beyond = [exit_ + i * d for i in range(1, CHECK + 1)]
    if not all(_inside(shape, p) for p in beyond) or any(_at(hole, p) for p in beyond):
        return None
    if np.mean([_at(edges, p) for p in beyond]) < 0.6:
        return None  # nothing on the far side continues the line
    n = np.array([-d[1], d[0]])
    before = _first_sides(image, hole, entry, -d, n)
    after = _first_sides(image, hole, exit_, d, n)
    if before is None or after is None or np.abs(before - after).mean(1).max() > COLOUR_TOL:
        return None  # the two sides of the line differ across the hole: another structure
    # (the line's own colour is not compared: an edge's pixel is either side's by a fraction
    # of a pixel, and that check cost a fifth of the catalog's gain for no measured safety)
    return Crossing(entry, d, float(np.hypot(*(exit_ - entry))), _colour(image, entry, d),
                    _colour(image, exit_, -d))


def _first_sides(image, hole, p, away, n):
    """``_sides`` at the first of 2-6 px from ``p`` (walking ``away`` from the hole) where
    neither sample lies in the hole: a line meeting the hole at a slant has the hole beside
    it for a few pixels."""
    for k in range(2, 7):
        got = _sides(image, hole, p + k * away, n)
        if got is not None:
            return got
    return None


def _in_hole(hole, p, d, length) -> bool:
    return all(_inside(hole.shape, p + t * d) and _at(hole, p + t * d)
               for t in np.arange(1.0, length, 1.0))


def _on_line(p, d, c: Crossing, tol: float = 3.0) -> bool:
    """Ray ``p``, ``d`` starts on crossing ``c`` and runs along it (parallel, within ``tol`` px
    of its line, where it enters or leaves the hole): the same line found from its far end.
    The same line met again in another part of the hole is not it."""
    if abs(abs(float(d @ c.direction)) - 1.0) > 2e-3:
        return False
    off = p - c.entry
    along = float(off @ c.direction)
    return (abs(off[0] * c.direction[1] - off[1] * c.direction[0]) < tol
            and -tol <= along <= c.length + tol)


def _cuts(p, d, length: float, c: Crossing) -> bool:
    """The arm from ``p`` along ``d`` for ``length`` px crosses crossing ``c`` on the way (at
    its entry too, where a carried line runs along the hole's edge; not within 2 px of the
    corner it turns)."""
    den = d[0] * c.direction[1] - d[1] * c.direction[0]
    if abs(den) < 1e-6:
        return False
    off = c.entry - p
    s = (off[0] * c.direction[1] - off[1] * c.direction[0]) / den
    t = (off[0] * d[1] - off[1] * d[0]) / den
    return 0.0 < s < length - 2.0 and -1.0 <= t <= c.length + 1.0


def _junctions(image, hole, ends, full: list[Crossing] = ()) -> list[Crossing]:
    """Pairs of lines that go into the hole, find no far side, and meet inside it (a rug's
    hidden corner: an L), each invented arm no longer than the line seen leading into it.
    A line already carried through (in ``full``, found from its other end) is not an arm, and
    no arm may cross a carried line: a wall's stripe that comes down into the hole ends at
    the wall's foot, it does not turn a corner with the rug's edge on the floor below. (A
    wall's foot that runs just outside the hole is not carried, so it stops no arm; there
    Telea's fill of the floor from the wall above is the larger error. Requiring both arms
    to part the same two colours cost the catalog 0.0005 gap L1: plank tones.)
    (Lines stopped where they meet a crossing line, T-junctions, measured worse on the
    catalog: 8.3% below Telea with them and the corners, 10.2% with the corners alone.)"""
    out: list[Crossing] = []
    used: set[int] = set()
    pairs = []  # L: two rays that meet inside the hole
    ends = [e for e in ends if not any(_on_line(e[0], e[1], c) for c in full)]
    for i in range(len(ends)):
        for j in range(i + 1, len(ends)):
            (p, d, _), (q, e, _) = ends[i], ends[j]
            den = d[0] * e[1] - d[1] * e[0]
            if abs(den) < 0.42:  # under ~25 degrees apart
                continue
            off = q - p
            s = (off[0] * e[1] - off[1] * e[0]) / den
            t = (off[0] * d[1] - off[1] * d[0]) / den
            # each invented arm no longer than the line seen leading into it
            if (2.0 < s <= ends[i][2] and 2.0 < t <= ends[j][2]
                    and not any(_cuts(p, d, s, c) or _cuts(q, e, t, c) for c in full)):
                pairs.append((s + t, i, j, s, t))
    for _, i, j, s, t in sorted(pairs):
        if i in used or j in used:
            continue
        (p, d, _), (q, e, _) = ends[i], ends[j]
        if _in_hole(hole, p, d, s) and _in_hole(hole, q, e, t):
            out += [Crossing(p, d, float(s), _colour(image, p, d), _colour(image, p, d), True),
                    Crossing(q, e, float(t), _colour(image, q, e), _colour(image, q, e), True)]
            used |= {i, j}
    return out


def _offset(c: Crossing, p) -> float:
    """How far point ``p`` lies across crossing ``c``'s line (px along (d[1], -d[0]))."""
    return float((p[0] - c.entry[0]) * c.direction[1] - (p[1] - c.entry[1]) * c.direction[0])


def _band(win: np.ndarray, hl: np.ndarray, c: Crossing, shift: np.ndarray) -> None:
    """Paint crossing ``c``'s thin strip (``c.band``) in ``win`` (the fill's window, ``hl``
    its hole): every hole pixel between the two lines takes, at its own offset across them,
    the colour the strip has at that offset where it enters the hole and where it leaves
    (the median of 3 known pixels there, walking out), interpolated along it, so a dark line
    between a wall and a floor stays a line. Each offset finds its own entry and exit (a
    hole's edge meets the strip at a slant); an offset whose samples reach off the image or
    into the hole again is left as filled."""
    lo, hi = c.band[0] - 0.5, c.band[1] + 0.5
    if hi - lo <= 1.0 or c.stops:
        return
    h, w = hl.shape
    d = c.direction
    n = np.array([d[1], -d[0]])
    e = c.entry - shift
    ys, xs = np.nonzero(hl)
    along = (xs - e[0]) * d[0] + (ys - e[1]) * d[1]
    across = (xs - e[0]) * d[1] - (ys - e[1]) * d[0]
    near = (across >= lo) & (across <= hi) & (along > -REACH - 8) & (along < c.length + REACH + 8)
    if not near.any():
        return
    ts = np.arange(-REACH - 8.0, c.length + REACH + 9.0)
    for o in np.arange(np.ceil(lo), np.floor(hi) + 1.0):
        pts = e + o * n + ts[:, None] * d
        ii, jj = np.round(pts[:, 1]).astype(int), np.round(pts[:, 0]).astype(int)
        inside = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
        holed = np.ones(len(ts), bool)  # off the image counts as unknown
        holed[inside] = hl[ii[inside], jj[inside]]
        # the hole's run along this offset: the one that overlaps the crossing most
        edges = np.flatnonzero(np.diff(np.r_[0, holed.astype(np.int8), 0]))
        runs = [(min(b, len(ts)) - a, a, b) for a, b in zip(edges[::2], edges[1::2])
                if ts[min(b, len(ts)) - 1] >= 0 and ts[a] <= c.length]
        if not runs:
            continue
        _, a, b = max(runs)
        if a < 3 or b + 3 > len(ts) or holed[a - 3:a].any() or holed[b:b + 3].any():
            continue  # no three known pixels on one side
        cin = np.median(win[ii[a - 3:a], jj[a - 3:a]].astype(np.float32), axis=0)
        cout = np.median(win[ii[b:b + 3], jj[b:b + 3]].astype(np.float32), axis=0)
        t0, t1 = ts[a - 1], ts[b]
        sel = near & (np.abs(across - o) <= 0.5) & (along > t0) & (along < t1)
        f = ((along[sel] - t0) / max(t1 - t0, 1.0))[:, None]
        win[ys[sel], xs[sel]] = np.clip((1 - f) * cin + f * cout + 0.5, 0, 255).astype(np.uint8)


def _same(a: Crossing, b: Crossing) -> bool:
    """The same stretch of line found from both of its ends (or twice), or one so close and
    parallel to it, over the same stretch, that the strip between them would be too thin to
    fill from its own side. The same line crossing another part of the hole is not the same."""
    if abs(abs(float(a.direction @ b.direction)) - 1.0) > 2e-3:
        return False
    off = b.entry - a.entry
    if abs(off[0] * a.direction[1] - off[1] * a.direction[0]) >= 5.0:
        return False
    lo, hi = sorted((float(off @ a.direction),
                     float((off + b.direction * b.length) @ a.direction)))
    return lo <= a.length + 2.0 and hi >= -2.0


def fill(image: np.ndarray, hole: np.ndarray, radius: int = 5,
         crossings: list[Crossing] | None = None) -> np.ndarray:
    """``image`` (HxWx3 uint8) with ``hole`` (HxW bool) filled along the lines that cross it."""
    hole = hole.astype(bool)
    m8 = hole.astype(np.uint8) * 255
    base = cv2.inpaint(image, m8, radius, cv2.INPAINT_TELEA)
    lines = find_crossings(image, hole) if crossings is None else crossings
    if not lines or not hole.any():
        return base
    H, W = hole.shape
    ys, xs = np.nonzero(hole)  # everything below happens in the hole's box and its reach
    pad = MARGIN + 4 * radius
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, H)
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, W)
    img = np.ascontiguousarray(image[y0:y1, x0:x1])
    hl = hole[y0:y1, x0:x1]
    h, w = hl.shape
    shift = np.array([x0, y0], np.float64)
    barrier = np.zeros((h, w), np.uint8)
    for c in lines:
        p0 = c.entry - shift
        p1 = p0 + c.direction * c.length
        cv2.line(barrier, tuple(int(round(v)) for v in p0), tuple(int(round(v)) for v in p1),
                 1, 1, cv2.LINE_8)
    barrier = (barrier > 0) & hl
    n, lab = cv2.connectedComponents((hl & ~barrier).astype(np.uint8), connectivity=4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    side, rel = [], []
    for c in lines:
        dx, dy = xx - (c.entry[0] - x0), yy - (c.entry[1] - y0)
        t = dx * c.direction[0] + dy * c.direction[1]
        side.append(dx * c.direction[1] - dy * c.direction[0] > 0)
        rel.append((t > -MARGIN) & (t < c.length + (0.0 if c.stops else MARGIN)))
    out = base.copy()
    win = out[y0:y1, x0:x1]
    known = ~hl
    for k in range(1, n):
        part = lab == k
        if part.sum() < 4:
            continue
        hide = np.zeros((h, w), bool)
        for s, r in zip(side, rel):
            on = part & r
            if not on.any():
                continue
            share = s[on].mean()
            if 0.1 < share < 0.9:
                continue  # the part lies on both sides: this line does not bound it
            hide |= known & r & (s != (share > 0.5))
        if not hide.any():
            continue
        py, px = np.nonzero(part)  # Telea on the part's own box and what it may reach
        a0, a1 = max(py.min() - pad, 0), min(py.max() + pad + 1, h)
        b0, b1 = max(px.min() - pad, 0), min(px.max() + pad + 1, w)
        m = (hl | hide)[a0:a1, b0:b1].astype(np.uint8) * 255
        filled = cv2.inpaint(np.ascontiguousarray(img[a0:a1, b0:b1]), m, radius,
                             cv2.INPAINT_TELEA)
        sub = part[a0:a1, b0:b1]
        win[a0:a1, b0:b1][sub] = filled[sub]
    # the line's own pixels: its colour where it enters and leaves, interpolated along it
    by, bx = np.nonzero(barrier)
    for c in lines:
        ex, ey = c.entry[0] - x0, c.entry[1] - y0
        t = (bx - ex) * c.direction[0] + (by - ey) * c.direction[1]
        dist = np.abs((bx - ex) * c.direction[1] - (by - ey) * c.direction[0])
        on = (dist <= 1.0) & (t >= -1) & (t <= c.length + 1)
        f = np.clip(t[on] / max(c.length, 1.0), 0, 1)[:, None]
        win[by[on], bx[on]] = np.clip((1 - f) * c.colour_in + f * c.colour_out + 0.5, 0, 255
                                      ).astype(np.uint8)
    for c in lines:  # thin strips carried with a line, over the line's own pixels too
        _band(win, hl, c, shift)
    return out
