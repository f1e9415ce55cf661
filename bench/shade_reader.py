"""Issue 8: the old shadow's shading as read by the classical ratio and by the shade model.

On every synthetic scene of the current catalog (the shade model trains on generator rooms of
another seed, so none of these was seen), against the truth (the scene's luma over its empty
room's) in the zone where an old shadow may lie, outside the footprint: the mean absolute
error of the ratio, the share of true shadow (truth < 0.9) read as shade (< 0.92), and the
share of lit floor (truth > 0.98) read as shade. Then the cost of the shading maps with and
without the model, as a ratio measured in this process, at 512 and 1024 px.

    python bench/shade_reader.py [--limit N]

Writes ``bench/results/shade_reader.json``.
"""

from common import save, show, timeit  # noqa: I001

import argparse

import numpy as np


def main(limit: int = 0) -> dict:
    import cv2

    from stager import shadows as sh
    from stager.catalog import open_catalog
    from stager.images import bbox, dilate

    try:  # measured by name, whatever STAGER_SHADE_MODEL says
        net = sh.shade_model(required=True, mode="auto")
    except Exception as exc:
        raise SystemExit(f"the shade model is not loaded: {exc}") from None
    why = f"trained shade model, {sum(p.numel() for p in net.parameters()):,} parameters"
    cat = open_catalog()
    rows = {"classical": [], "learned": []}
    recs = [r for r in cat.scenes if r.background][: limit or None]
    for rec in recs:
        scene, bg, old = cat.scene_image(rec.id), cat.scene_background(rec.id), cat.scene_mask(rec.id)
        zone = sh._shadow_zone(old, bbox(old), 1.2) & ~dilate(old, 3)
        truth = (sh._luma(scene) + 0.5) / np.maximum(sh._luma(bg), 1.0)
        shade, lit = zone & (truth < 0.9), zone & (truth > 0.98)
        for name, learned in (("classical", False), ("learned", True)):
            r, _ = sh.shade_maps(scene, old, learned=learned)
            rows[name].append((float(np.abs(r - truth)[zone].mean()),
                               float((r[shade] < 0.92).mean()) if shade.any() else np.nan,
                               float((r[lit] < 0.92).mean()) if lit.any() else np.nan))
    res = {"scenes": len(recs), "reader": why}
    for name, v in rows.items():
        a = np.array(v)
        res[name] = {"ratio_mae": round(float(np.nanmean(a[:, 0])), 4),
                     "true_shadow_read": round(float(np.nanmean(a[:, 1])), 3),
                     "lit_floor_read": round(float(np.nanmean(a[:, 2])), 3)}
    # cost: the classical maps vs the maps with the model, same scene, same process
    rec = recs[0]
    for side in (512, 1024):
        scene = cv2.resize(cat.scene_image(rec.id), (side, side))
        old = cv2.resize(cat.scene_mask(rec.id).astype(np.uint8), (side, side),
                         interpolation=cv2.INTER_NEAREST).astype(bool)
        c = timeit(lambda s=scene, o=old: sh.shade_maps(s, o, learned=False), repeat=7)
        m = timeit(lambda s=scene, o=old: sh.shade_maps(s, o, learned=True), repeat=7)
        res[f"cost_{side}"] = {"classical_ms": round(c["median_ms"], 1),
                               "learned_ms": round(m["median_ms"], 1),
                               "ratio": round(m["median_ms"] / c["median_ms"], 2)}
    save("shade_reader", res)
    show([(f"{k}: {m.replace('_', ' ')}", res[k][m], "")
          for k in rows for m in ("ratio_mae", "true_shadow_read", "lit_floor_read")]
         + [(f"shading maps at {s} px, with the model / classical",
             res[f"cost_{s}"]["ratio"], "x") for s in (512, 1024)])
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="first N scenes only (0 = all)")
    main(ap.parse_args().limit)
