"""Gradio UI pieces. Each module has ``render()`` (widgets) and ``listen()`` (events); handlers
are plain functions that call ``stager/`` and ``db/`` (never torch) so tests can call them.

``UI`` is the registry through which components find each other's widgets.
"""

from __future__ import annotations

UI: dict = {}


def register(**widgets) -> None:
    UI.update(widgets)


def get(name: str):
    return UI[name]
