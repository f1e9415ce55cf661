"""Inpainting / staging backends in a plain dict registry keyed by ``name``."""

from __future__ import annotations

from .base import Backend, BackendUnavailable, context_window
from .diffusion import DiffusionBackend
from .edgeconnect import EdgeConnectBackend, EdgeConnectBaselineBackend
from .lines import LinesBackend
from .pix2pix import Pix2PixBackend
from .telea import TeleaBackend

REGISTRY: dict[str, type[Backend]] = {
    cls.name: cls for cls in (Pix2PixBackend, EdgeConnectBackend, EdgeConnectBaselineBackend,
                              DiffusionBackend, TeleaBackend, LinesBackend)
}
COPY_PASTE = ("edgeconnect", "edgeconnect_baseline", "diffusion", "telea", "lines")  # fill the gap
VANILLA = ("pix2pix",)  # generate the whole background

_INSTANCES: dict[str, Backend] = {}


def get_backend(name: str) -> Backend:
    """The shared instance of a backend (models load once per process)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(REGISTRY)}")
    if name not in _INSTANCES:
        _INSTANCES[name] = REGISTRY[name]()
    return _INSTANCES[name]


def status() -> list[dict]:
    """Every backend with its tier, availability and the reason / how to enable it."""
    rows = []
    for name in REGISTRY:
        b = get_backend(name)
        ok, why = b.available()
        rows.append({"name": name, "label": b.label, "tier": b.tier if ok else "missing",
                     "available": ok, "detail": b.describe() if ok else why})
    return rows


__all__ = ["Backend", "BackendUnavailable", "REGISTRY", "COPY_PASTE", "VANILLA", "get_backend",
           "status", "context_window"]
