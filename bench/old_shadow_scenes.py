"""Issue 8: old-shadow removal on every catalog scene, before any new product goes in.

For each synthetic scene of the current catalog (its empty room is stored, so the truth is
known): the region is the old shadow as the stager sees it (the detected shadow and the fitted
extension, grown 3 px) outside the footprint's fill margin. It compares filling that shadow
(Telea, with the footprint: the pipeline before relighting, run on today's detector) with
relighting (``shadows.relight``, Telea on the footprint and on the few pixels relighting
leaves to fill), as the mean absolute error against the
empty room in grey levels, and counts the scenes where relighting is worse and the scenes
with a bright patch (over 200 px lit 8% above the empty room), for both.

That region moves when detection changes, so two fixed regions, read from the data and not
from the stager, compare versions like with like: ``true``, where the scene is 3% or more
darker than its empty room (the real old shadow) outside the footprint margin, and ``zone``,
the whole area the stager may touch (``shadows._shadow_zone``, 1.2 heights) outside the
margin, where lifting or painting over the floor costs too. ``none`` is the footprint filled
and the shadow left.

    python bench/old_shadow_scenes.py [--limit N]

Writes ``bench/results/old_shadow_scenes.json``. Quality, not speed: any load is fine.
"""

from common import save, show  # noqa: I001

import argparse

import numpy as np


def main(limit: int = 0) -> dict:
    from stager import shadows as sh
    from stager.backends import get_backend
    from stager.catalog import open_catalog
    from stager.images import dilate

    telea = get_backend("telea")
    cat = open_catalog()
    rows, fixed_rows = [], {}
    for rec in cat.scenes[: limit or None]:
        bg, old = cat.scene_background(rec.id), cat.scene_mask(rec.id)
        if bg is None or old is None:
            continue
        scene = cat.scene_image(rec.id)
        maps = sh.shade_maps(scene, old)
        found = sh.find_old_shadow(scene, old, 6, maps=maps)
        relit, fill = sh.relight(scene, old, found.mask, found.light, maps[0], found.detected)
        new = telea(relit, dilate(old, 6) | fill)
        before = telea(scene, dilate(old, 6) | found.detected)
        region = dilate(found.mask | found.detected, 3) & ~dilate(old, 6)
        truth = bg.astype(np.float32)

        def err(img, region=region, truth=truth):
            return float(np.abs(img.astype(np.float32) - truth).mean(-1)[region].mean())

        def bright(img, region=region, truth=truth):
            return int(((img.astype(np.float32).mean(-1) > 1.08 * truth.mean(-1) + 2)
                        & region).sum())

        # every scene counts in the fixed regions, whatever the stager found in it
        margin = ~dilate(old, 6)
        ratio = sh._luma(scene) / np.maximum(sh._luma(bg), 1.0)
        fixed = {"true": (ratio < 0.97) & margin,
                 "zone": sh._shadow_zone(old, sh.bbox(old), 1.2) & margin}
        kept = telea(scene, dilate(old, 6))
        for name, reg in fixed.items():
            if reg.any():
                for arm, img in (("none", kept), ("before", before), ("relit", new)):
                    fixed_rows.setdefault((name, arm), []).append(err(img, reg))
        if not region.any():
            continue
        rows.append({"scene": rec.id, "before": err(before), "relit": err(new),
                     "bright_px": bright(new), "bright_px_before": bright(before),
                     "light": found.light.source})
    d = np.array([r["relit"] - r["before"] for r in rows])
    res = {"scenes": len(rows),
           "before_mean": round(float(np.mean([r["before"] for r in rows])), 2),
           "relit_mean": round(float(np.mean([r["relit"] for r in rows])), 2),
           "worse_by_2": int((d > 2).sum()), "worse_by_5": int((d > 5).sum()),
           "worst": sorted(((round(float(x), 1), r["scene"]) for x, r in zip(d, rows)),
                           reverse=True)[:5],
           "bright_patch_scenes": int(sum(r["bright_px"] > 200 for r in rows)),
           "bright_patch_scenes_before": int(sum(r["bright_px_before"] > 200 for r in rows)),
           "cast_fitted": int(sum(r["light"].startswith("estimated") for r in rows)),
           "fixed_regions": {f"{name}_{arm}": round(float(np.mean(v)), 2)
                             for (name, arm), v in sorted(fixed_rows.items())},
           "note": "grey levels against the empty room in the stager's old-shadow region outside "
                   "the footprint margin; before = the detected shadow filled (the old pipeline)"}
    save("old_shadow_scenes", res)
    show([("old-shadow region, old pipeline (fill)", res["before_mean"], "grey levels"),
          ("old-shadow region, relit", res["relit_mean"], "grey levels"),
          ("scenes worse than the old pipeline by > 2 levels", res["worse_by_2"], "scenes"),
          ("scenes with a bright patch (> 200 px at +8%), relit", res["bright_patch_scenes"],
           "scenes"),
          ("... old pipeline", res["bright_patch_scenes_before"], "scenes")]
         + [(f"fixed region {k.replace('_', ', ')}", v, "grey levels")
            for k, v in res["fixed_regions"].items()])
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="first N scenes only (0 = all)")
    main(ap.parse_args().limit)
