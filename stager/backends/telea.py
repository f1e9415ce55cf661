"""Classical inpainting with OpenCV's Telea fast-marching method (no weights)."""

from __future__ import annotations

import cv2
import numpy as np

from .base import Backend


class TeleaBackend(Backend):
    name = "telea"
    label = "Telea (OpenCV, classical)"
    tier = "classical"
    fully_conv = True  # native resolution: no blur from a round trip through 256 px
    pad_mod = 1
    whole_region = True  # fills the whole region itself, the part under the new product too

    def run(self, image: np.ndarray, mask: np.ndarray, radius: int = 5, **_) -> np.ndarray:
        return cv2.inpaint(image, mask.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)
