"""Line-guided Telea (``stager.linefill``): a classical fill that carries straight structure
across the hole before filling each side from its own side (no weights)."""

from __future__ import annotations

import numpy as np

from .base import Backend


class LinesBackend(Backend):
    name = "lines"
    label = "Line-guided Telea (classical)"
    tier = "classical"
    fully_conv = True  # native resolution
    pad_mod = 1
    whole_image = True  # lines are read across the whole image, not a window around the hole
    whole_region = True  # fills the whole region itself, the part under the new product too

    def run(self, image: np.ndarray, mask: np.ndarray, radius: int = 5, **_) -> np.ndarray:
        from ..linefill import fill

        return fill(image, mask, radius)

    def _run_native(self, win: np.ndarray, wmask: np.ndarray, max_side: int, **params
                    ) -> np.ndarray:
        # always at full resolution: the lines and the per-side fills are cheap (the Telea
        # runs are cut to the hole's box), and a downscaled fill would blur the gap
        return self.run(win, wmask, **params)
