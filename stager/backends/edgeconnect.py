"""EdgeConnect backends: the method's weighted-boundary model and the plain baseline."""

from __future__ import annotations

import threading

import numpy as np

from ..config import get_settings
from . import weights
from .base import Backend


def _prior_note(trained_on: str | None, trained_mix: float = 0.0) -> str:
    """What a residual model refines here, next to what it was trained to refine."""
    if not trained_on:
        return ""
    st = get_settings()
    used = st.fill_prior
    names = {"lines": "line-guided Telea", "telea": "Telea"}
    label = names.get(used, used)
    if st.fsr_mix > 0:
        import cv2

        label = (f"{label} fill blended {st.fsr_mix:.0%} with OpenCV's frequency-selective "
                 "reconstruction (STAGER_FSR_MIX)" if hasattr(cv2, "xphoto") else
                 f"{label} fill (STAGER_FSR_MIX asks for OpenCV's frequency-selective "
                 "reconstruction, which needs opencv-contrib-python-headless)")
    else:
        label = f"{label} fill"
    on = f"{names.get(trained_on, trained_on)} fills" + (
        f" blended {trained_mix:.0%} with FSR" if trained_mix else "")
    if used == trained_on:
        return f", refines a {label} (trained on {on})"
    return f", refines a {label} (STAGER_FILL_PRIOR; trained on {on})"


class EdgeConnectBackend(Backend):
    name = "edgeconnect"
    label = "EdgeConnect + weighted boundary loss"
    tier = "trained compact"
    variant = "inpaint_weighted"
    fully_conv = True  # runs at the gap's native resolution (see base.py)

    def __init__(self):
        self._models = None
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        ok, why = weights.check("edge", self.variant)
        if not ok:
            return False, why
        return True, f"{self.label} ({self.tier} weights, {weights.path(self.variant).name})"

    def describe(self) -> str:
        ok, why = self.available()
        if not ok:
            return why
        m = weights.meta(self.variant)
        prior = m.get("config", {}).get("prior")
        tuned = " fine-tuned" if m.get("init") else ""
        # the file's name only: a public page does not show the server's folders
        return (f"{self.label}: trained compact weights {weights.path(self.variant).name}, "
                f"{m.get('steps')} steps{tuned} on {m.get('res')}-px crops "
                f"({m.get('device', '?')}), "
                f"lambda={m.get('boundary_lambda')}"
                f"{_prior_note(prior, float(m.get('fsr_mix') or 0))}; fills at native "
                f"resolution; data: {str(m.get('data', 'default catalog')).split(';')[0]}")

    def load(self):
        with self._lock:
            if self._models is None:
                from models import edgeconnect as ec
                from models.weights_io import load_into

                me, mi = weights.meta("edge"), weights.meta(self.variant)
                ge = ec.EdgeGenerator(me["config"]["width"], me["config"]["blocks"])
                gi = ec.build_inpaint(mi["config"])
                load_into(ge, weights.path("edge"))
                load_into(gi, weights.path(self.variant))
                self._models = (ge, gi)
        return self._models

    def takes_prior(self) -> bool:
        """True when the loaded model refines a classical fill (``prior`` in its config)."""
        return bool(weights.meta(self.variant).get("config", {}).get("prior"))

    def run(self, image: np.ndarray, mask: np.ndarray, prefilled: bool = False, **_
            ) -> np.ndarray:
        from models.edgeconnect import inpaint

        ge, gi = self.load()
        st = get_settings()
        return inpaint(ge, gi, image, mask, prefilled=prefilled and bool(gi.prior),
                       prior_kind=st.fill_prior, fsr_mix=st.fsr_mix,
                       fsr_max_px=st.fsr_max_px)


class EdgeConnectBaselineBackend(EdgeConnectBackend):
    name = "edgeconnect_baseline"
    label = "EdgeConnect baseline (plain L1)"
    variant = "inpaint_baseline"
