"""Issue 8 benchmark: a 3-second 24-fps 512x512 parallax clip, frames + H.264 MP4 (target < 5 s
on two cores), per camera move, with the GIF and the Telea-fallback plate timed beside it.

    python bench/bench_parallax.py
"""

from common import save, show, timeit  # noqa: I001

import tempfile
from pathlib import Path

import cv2
import numpy as np

from stager import synth
from stager.parallax import FALLBACK, make_clip, write_clip

SECONDS, FPS = 3, 24


def scene():
    """A default-catalog-style 512x512 room: the staged image, its plate (the background
    without the product and its shadow) and a soft product alpha."""
    layers = synth.render_scene(synth.sample_scene(np.random.default_rng(3), "sofa"))
    alpha = cv2.GaussianBlur(layers.mask.astype(np.float32), (3, 3), 0) * layers.mask
    return layers.image, alpha, layers.background


def main() -> None:
    image, alpha, plate = scene()
    assert image.shape == (512, 512, 3)
    out = Path(tempfile.mkdtemp(prefix="bench-parallax-"))
    results, rows = {}, []
    for move in ("sway", "push"):
        clip = make_clip(image, alpha, plate, seconds=SECONDS, fps=FPS, move=move)
        assert len(clip.frames) == SECONDS * FPS
        frames_t = timeit(lambda m=move: make_clip(image, alpha, plate, seconds=SECONDS,
                                                    fps=FPS, move=m), repeat=5, warmup=1)
        mp4_t = timeit(lambda c=clip: write_clip(c.frames, out / "c.mp4", FPS), repeat=5,
                       warmup=1)

        def both(m=move):
            c = make_clip(image, alpha, plate, seconds=SECONDS, fps=FPS, move=m)
            write_clip(c.frames, out / "c.mp4", FPS)

        total_t = timeit(both, repeat=5, warmup=1)
        results[move] = {"frames": frames_t, "mp4_encode": mp4_t, "frames_plus_mp4": total_t,
                         "mp4_bytes": (out / "c.mp4").stat().st_size}
        rows += [(f"{move}: {SECONDS * FPS} frames 512x512, median (ms)", frames_t["median_ms"], ""),
                 (f"{move}: H.264 MP4 encode, median (ms)", mp4_t["median_ms"], ""),
                 (f"{move}: frames + MP4, median (ms)", total_t["median_ms"], "target < 5000")]
    clip = make_clip(image, alpha, plate, seconds=SECONDS, fps=FPS, move="sway")
    gif_t = timeit(lambda: write_clip(clip.frames, out / "c.gif", FPS), repeat=3, warmup=1)
    fallback = make_clip(image, alpha > 0.5, None, seconds=SECONDS, fps=FPS, move="sway")
    assert fallback.plate_source == FALLBACK
    fallback_t = timeit(lambda: make_clip(image, alpha > 0.5, None, seconds=SECONDS, fps=FPS),
                        repeat=5, warmup=1)
    results["gif_encode"] = gif_t
    results["gif_bytes"] = (out / "c.gif").stat().st_size
    results["frames_telea_fallback"] = fallback_t
    rows += [("GIF encode (shared palette), median (ms)", gif_t["median_ms"], ""),
             ("sway frames with the Telea fallback plate, median (ms)", fallback_t["median_ms"], "")]
    show(rows)
    results["clip"] = {"seconds": SECONDS, "fps": FPS, "size": [512, 512]}
    print(save("parallax", results))


if __name__ == "__main__":
    main()
