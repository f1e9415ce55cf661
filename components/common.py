"""Helpers shared by the components: session state, error handling, small image utilities."""

from __future__ import annotations

import functools
import threading
import logging
from dataclasses import dataclass, field

import gradio as gr
import numpy as np

from stager.catalog import CatalogError
from stager.images import ImageError

log = logging.getLogger("stager.app")


@dataclass
class Session:
    """Everything one designer's page holds between events (kept server-side in gr.State)."""

    product_name: str | None = None
    product: np.ndarray | None = None  # HxWx4 cutout
    candidates: list = field(default_factory=list)
    scene_id: str | None = None
    scene: np.ndarray | None = None
    box: tuple | None = None
    points: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    proposals: list = field(default_factory=list)  # candidate masks
    scores: list = field(default_factory=list)
    method: str = ""
    mask: np.ndarray | None = None  # the current old-product mask (before dilation)
    history: list = field(default_factory=list)  # undo stack: one snapshot per mask action
    outputs: dict = field(default_factory=dict)  # backend -> image
    plates: dict = field(default_factory=dict)  # backend -> HxWx3 background plate, or None
    product_alpha: np.ndarray | None = None  # HxW float32 in [0, 1], the placed new product
    selected: str | None = None  # the backend whose output was last clicked
    outputs_key: str = ""  # job_key of the inputs the outputs were made from
    outputs_seed: int = 0
    composite: np.ndarray | None = None
    old_shadow: np.ndarray | None = None  # the old product's shadow (detected or painted)
    shadow_edited: bool = False  # painted by the user: not re-detected when the mask changes
    shadow_key: str = ""  # the scene and mask the detected shadow belongs to
    realism: dict = field(default_factory=dict)  # StageRequest shadow / light settings
    light: dict = field(default_factory=dict)  # the last estimated light (for the sliders)

    def snapshot(self) -> None:
        """Remember the mask, points and method before an action, so undo restores exactly
        the state before that one action."""
        self.history.append((None if self.mask is None else self.mask.copy(), list(self.points),
                             list(self.labels), self.method))
        del self.history[:-20]

    def undo(self) -> bool:
        if not self.history:
            return False
        self.mask, self.points, self.labels, self.method = self.history.pop()
        return True

    def push(self, mask: np.ndarray) -> None:
        """One action that replaces the mask (candidate, stored annotation, brush)."""
        self.snapshot()
        self.mask = mask

    def clear_outputs(self) -> None:
        self.outputs, self.outputs_key = {}, ""
        self.plates, self.product_alpha, self.selected = {}, None, None


def job_key(state: Session, scale, dx, dy, flip, dilation) -> str:
    """A fingerprint of everything an output is made from: product, scene, mask, placement.
    Outputs whose key differs from the current one no longer match the screen."""
    import hashlib

    h = hashlib.sha1()
    for arr in (state.product, state.mask):
        h.update(b"none" if arr is None else arr.tobytes() + str(arr.shape).encode())
    h.update(b"none" if state.old_shadow is None else state.old_shadow.tobytes())
    h.update(repr((state.scene_id, round(float(scale), 4), round(float(dx), 4),
                   round(float(dy), 4), bool(flip), int(dilation),
                   sorted(state.realism.items()))).encode())
    return h.hexdigest()[:20]


def placement_of(scale, dx, dy, flip, dilation) -> dict:
    return {"scale": float(scale), "offset": [float(dx), float(dy)], "flip": bool(flip),
            "dilation": int(dilation)}


def is_admin(request) -> bool:
    """Whether the logged-in user has the admin role (STAGER_APP_ADMINS or the Space owner).
    Without a login nobody is an admin in the app: reports come from the command line."""
    from stager.config import get_settings

    user = getattr(request, "username", None) if request is not None else None
    return bool(user) and user in get_settings().admins


class UserError(Exception):
    """An error to show the user as one line."""


def _as_gr_error(fn_name: str, exc: Exception) -> gr.Error:
    if isinstance(exc, (UserError, ImageError, CatalogError, ValueError)):
        return gr.Error(_one_line(exc), print_exception=False)
    log.exception("handler %s failed", fn_name)  # unexpected: log it, show one line
    return gr.Error(f"something went wrong ({exc.__class__.__name__}: {_one_line(exc)})",
                    print_exception=False)


def friendly(fn):
    """Turn any exception in a handler into a one-line ``gr.Error`` (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise _as_gr_error(fn.__name__, exc) from None

    return wrapper


def friendly_gen(fn):
    """``friendly`` for generator handlers (streaming)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise _as_gr_error(fn.__name__, exc) from None

    return wrapper


def said(fn, outputs: int, msg: int, toast: bool = True):
    """``fn`` as an event handler whose refusal (a ``gr.Error``) is said on its message line
    (output ``msg`` of ``outputs``), and in a toast with ``toast``, every other output
    unchanged: a raised error leaves a bare red "Error" badge on each output (and, for events
    that skip the queue, no text at all). Called directly, ``fn`` still raises."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            if toast:
                gr.Warning(exc.message)
            out = [gr.update()] * outputs
            out[msg] = f"**{exc.message}**"
            return out[0] if outputs == 1 else tuple(out)

    return wrapper


def _one_line(exc: Exception) -> str:
    s = str(exc).strip()
    return s.splitlines()[0] if s else exc.__class__.__name__


def grey_card(text: str, size: int = 256) -> np.ndarray:
    """A grey placeholder image for an unavailable backend."""
    import cv2

    img = np.full((size, size, 3), 225, np.uint8)
    words, lines, cur = text.split(), [], ""
    for w in words:
        if len(cur) + len(w) > 28:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    lines.append(cur)
    for i, line in enumerate(lines[:8]):
        cv2.putText(img, line, (10, 40 + 22 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (110, 110, 110), 1,
                    cv2.LINE_AA)
    return img


def public_image(src, name: str, max_side: int = 768, quality: int = 92) -> str:
    """A display copy of an image file under ``<data>/public/`` (the only folder the app
    serves), made once and named by ``name`` plus the source's size and mtime, so a changed
    source gets a new copy. JPEG at display size keeps pages light; returns the path."""
    import hashlib
    from pathlib import Path

    import cv2

    from stager.config import get_settings
    from stager.images import load_image

    src = Path(src)
    st = src.stat()
    tag = hashlib.sha1(f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:10]
    dest = get_settings().public_dir / f"{name}-{tag}.jpg"
    if not dest.is_file():
        img = load_image(src, keep_alpha=False)
        s = max_side / max(img.shape[:2])
        if s < 1:
            img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)),
                             interpolation=cv2.INTER_AREA)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(f".{threading.get_ident()}.tmp")
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
        tmp.write_bytes(buf.tobytes())
        tmp.replace(dest)
    return str(dest)
