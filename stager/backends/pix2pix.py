"""Vanilla staging with pix2pix: the product on white at its place -> a whole staged scene.

The base class treats everything but the product as the hole, over the whole image, so the
product's own pixels come back exactly.
"""

from __future__ import annotations

import threading

import numpy as np

from . import weights
from .base import Backend


class Pix2PixBackend(Backend):
    name = "pix2pix"
    label = "pix2pix vanilla staging"
    tier = "trained compact"
    whole_image = True

    def __init__(self):
        self._model = None
        self._lock = threading.Lock()
        self.resolution = 128

    def available(self) -> tuple[bool, str]:
        ok, why = weights.check("pix2pix")
        return (True, f"{self.label} ({weights.path('pix2pix').name})") if ok else (False, why)

    def describe(self) -> str:
        ok, why = self.available()
        if not ok:
            return why
        m = weights.meta("pix2pix")
        return f"{self.label}: trained compact weights, {m.get('steps')} steps at {m.get('res')} px"

    def load(self):
        with self._lock:
            if self._model is None:
                from models.pix2pix import UNetGenerator
                from models.weights_io import load_into

                m = weights.meta("pix2pix")
                g = UNetGenerator(width=m["config"]["width"], num_downs=m["config"]["num_downs"])
                self._model = load_into(g, weights.path("pix2pix"))
                self.resolution = int(m.get("res", 128))
        return self._model

    def __call__(self, image, mask, **params):
        if self.available()[0]:
            self.load()
        return super().__call__(image, mask, **params)

    def run(self, image: np.ndarray, mask: np.ndarray, **_) -> np.ndarray:
        import torch

        g = self.load()
        x = np.where(mask[..., None], 255, image).astype(np.float32) / 127.5 - 1
        with torch.no_grad():
            y = g(torch.from_numpy(x).permute(2, 0, 1)[None])[0]
        return ((y.permute(1, 2, 0).numpy() + 1) * 127.5 + 0.5).clip(0, 255).astype(np.uint8)
