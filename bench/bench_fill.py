"""Native-resolution fills: EdgeConnect (the shipped weights) on a 1024x1024 photo with a
300-px product, as a ratio against Telea in the same process, plus the 128-px cap for
comparison. Target: EdgeConnect < 1 s on two cores."""

from __future__ import annotations

import os

import numpy as np

from common import save, show, timeit


def main(repeat: int = 5) -> dict:
    import cv2

    from stager import backends, gaps
    from stager.config import reset_settings
    from stager.images import erode
    from stager.pipeline import fill_plate

    img = cv2.resize(gaps.real_photos("all", 1024)["astronaut"], (1024, 1024))
    g = gaps.product_gap(np.random.default_rng(0), (1024, 1024), height=(0.29, 0.3), shadow=0.0)
    hidden = g.hole & erode(g.new, 4)
    out = {"photo": "astronaut 1024x1024", "old_product_px": int(g.old.any(1).sum()),
           "hole_px": int(g.hole.sum()), "visible_gap_px": int(g.visible.sum())}
    for cap in ("768", "128"):
        os.environ["STAGER_FILL_MAX_SIDE"] = cap
        reset_settings()
        backends._INSTANCES.clear()
        for name in ("telea", "edgeconnect"):
            out[f"{name}_cap{cap}"] = timeit(lambda: fill_plate(name, img, g.hole, hidden),
                                             repeat=repeat, warmup=1)
    out["edgeconnect_over_telea"] = (out["edgeconnect_cap768"]["median_ms"]
                                     / out["telea_cap768"]["median_ms"])
    show([("EdgeConnect, native (cap 768), ms", out["edgeconnect_cap768"]["median_ms"], "< 1000"),
          ("Telea, native, ms", out["telea_cap768"]["median_ms"], "baseline"),
          ("EdgeConnect through a 128-px window, ms", out["edgeconnect_cap128"]["median_ms"], ""),
          ("EdgeConnect / Telea", out["edgeconnect_over_telea"], "ratio")])
    save("fill", out)
    return out


if __name__ == "__main__":
    main()
