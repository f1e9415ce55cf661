"""Issue 3 benchmarks: network latency at 256x256 on the CPU, shipped configurations.

    python bench/bench_models.py
"""

from common import save, show, timeit  # noqa: I001

import numpy as np
import torch

from models import diffusion as dm
from models import edgeconnect as ec
from models import pix2pix as p2p
from stager.backends import weights


def main() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    res = 256
    img = rng.integers(0, 255, (res, res, 3), dtype=np.uint8)
    mask = np.zeros((res, res), bool)
    mask[80:180, 90:170] = True
    out = {}
    me, mi = weights.meta("edge"), weights.meta("inpaint_weighted")
    ge = ec.EdgeGenerator(me["config"]["width"], me["config"]["blocks"]).eval()
    gi = ec.InpaintGenerator(mi["config"]["width"], mi["config"]["blocks"]).eval()
    out["edgeconnect_256"] = timeit(lambda: ec.inpaint(ge, gi, img, mask), repeat=10)
    mp = weights.meta("pix2pix")
    g = p2p.UNetGenerator(width=mp["config"]["width"], num_downs=mp["config"]["num_downs"]).eval()
    x = torch.randn(1, 3, res, res)
    with torch.no_grad():
        out["pix2pix_256"] = timeit(lambda: g(x), repeat=10)
    md = weights.meta("diffusion") if weights.check("diffusion")[0] else {"config": {"width": 32}}
    for r in (md["config"].get("res", 64), 256):
        u = dm.build_unet(r, md["config"]["width"]).eval()
        im = rng.integers(0, 255, (r, r, 3), dtype=np.uint8)
        mm = np.zeros((r, r), bool)
        mm[r // 4:r // 2, r // 4:r // 2] = True
        out[f"diffusion_{r}_20steps"] = timeit(lambda: dm.sample(u, im, mm, steps=20), repeat=3,
                                               warmup=1)
    show([("EdgeConnect (edge + inpaint) at 256, median ms", out["edgeconnect_256"]["median_ms"], "target < 150"),
          ("pix2pix generator at 256, median ms", out["pix2pix_256"]["median_ms"], "target < 100")]
         + [(f"compact diffusion {k.split('_')[1]} px, 20 steps, median ms", v["median_ms"],
             "target < 2000") for k, v in out.items() if k.startswith("diffusion")])
    save("models", out)


if __name__ == "__main__":
    main()
