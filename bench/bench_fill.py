"""Native-resolution fills: EdgeConnect (the shipped weights) on a 1024x1024 photo with a
300-px product, as a ratio against Telea in the same process, plus the 128-px cap for
comparison; EdgeConnect on a Telea prior and on the default line-guided prior, and the
line-guided Telea backend (``lines``) itself. Target: EdgeConnect < 1 s on two cores."""

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
    for cap, prior in (("768", "lines"), ("128", "lines"), ("768", "telea")):
        os.environ["STAGER_FILL_MAX_SIDE"] = cap
        os.environ["STAGER_FILL_PRIOR"] = prior
        reset_settings()
        backends._INSTANCES.clear()
        tag = f"cap{cap}" + ("" if prior == "lines" else "_telea_prior")
        for name in ("telea", "lines", "edgeconnect"):
            if name != "edgeconnect" and prior != "lines":
                continue
            out[f"{name}_{tag}"] = timeit(lambda: fill_plate(name, img, g.hole, hidden),
                                          repeat=repeat, warmup=1)
    os.environ["STAGER_FSR_MIX"] = "0"  # the same prior without FSR's blend (session 18)
    reset_settings()
    backends._INSTANCES.clear()
    out["edgeconnect_cap768_no_fsr"] = timeit(lambda: fill_plate("edgeconnect", img, g.hole,
                                                                  hidden), repeat=repeat, warmup=1)
    os.environ.pop("STAGER_FSR_MIX")
    os.environ.pop("STAGER_FILL_PRIOR")
    out["edgeconnect_over_telea"] = (out["edgeconnect_cap768"]["median_ms"]
                                     / out["telea_cap768"]["median_ms"])
    show([("EdgeConnect, native (cap 768), ms", out["edgeconnect_cap768"]["median_ms"], "< 1000"),
          ("Telea, native, ms", out["telea_cap768"]["median_ms"], "baseline"),
          ("line-guided Telea, native, ms", out["lines_cap768"]["median_ms"], ""),
          ("EdgeConnect on a Telea prior, ms", out["edgeconnect_cap768_telea_prior"]["median_ms"],
           ""),
          ("EdgeConnect without the FSR blend, ms", out["edgeconnect_cap768_no_fsr"]["median_ms"],
           ""),
          ("EdgeConnect with / without the FSR blend", out["edgeconnect_cap768"]["median_ms"]
           / out["edgeconnect_cap768_no_fsr"]["median_ms"], "ratio"),
          ("EdgeConnect through a 128-px window, ms", out["edgeconnect_cap128"]["median_ms"], ""),
          ("EdgeConnect / Telea", out["edgeconnect_over_telea"], "ratio")])
    save("fill", out)
    return out


if __name__ == "__main__":
    main()
