"""Helpers shared by the components: session state, error handling, small image utilities."""

from __future__ import annotations

import functools
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
    history: list = field(default_factory=list)  # undo stack of masks
    outputs: dict = field(default_factory=dict)  # backend -> image
    plates: dict = field(default_factory=dict)  # backend -> HxWx3 background plate, or None
    product_alpha: np.ndarray | None = None  # HxW float32 in [0, 1], the placed new product
    selected: str | None = None  # the backend whose output was last clicked
    composite: np.ndarray | None = None

    def push(self, mask: np.ndarray) -> None:
        if self.mask is not None:
            self.history.append(self.mask.copy())
            del self.history[:-20]
        self.mask = mask


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
