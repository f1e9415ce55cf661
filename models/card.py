"""Write ``models/weights/MODEL_CARD.md`` from the weights' metadata and an ``eval.json``.

    python -m models.card --eval out/eval/eval.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from .weights_io import read_meta

ROOT = Path(__file__).resolve().parent.parent
FILES = {
    "pix2pix": "pix2pix.safetensors",
    "EdgeConnect edge model": "edgeconnect_edge.safetensors",
    "EdgeConnect inpainting, weighted boundary loss": "edgeconnect_inpaint_weighted.safetensors",
    "EdgeConnect inpainting, baseline": "edgeconnect_inpaint_baseline.safetensors",
    "compact diffusion": "diffusion.safetensors",
    "shade model (old-shadow reader)": "shade.safetensors",
}


def build(eval_path: Path | None, weights_dir: Path, notes: str = "") -> str:
    lines = ["# Model card: Product Stager compact weights", "",
             "Trained by this project on its embedded default catalog (procedural rooms and "
             "furniture, `stager/synth.py`), train split only (scenes whose index mod 5 != 4). "
             "Held-out products (60) and eval scenes (48) were never seen in training. These "
             "weights make every backend work offline on the default catalog; for real photos, "
             "configure pretrained models (see the README).", "",
             "## Weights", "",
             "| model | file | params | size | res | steps | batch | wall time | threads |",
             "|---|---|---|---|---|---|---|---|---|"]
    total = 0
    for label, f in FILES.items():
        p = weights_dir / f
        if not p.is_file():
            lines.append(f"| {label} | {f} (missing) | | | | | | | |")
            continue
        m = read_meta(p)
        size = p.stat().st_size
        total += size
        lines.append(f"| {label} | `{f}` | {m.get('params', 0):,} | {size / 2**20:.1f} MB | "
                     f"{m.get('res')} | {m.get('steps')} | {m.get('batch')} | "
                     f"{m.get('wall_s', 0) / 60:.1f} min | {m.get('threads')} |")
    lines += ["", f"Total {total / 2**20:.1f} MB (fp16 safetensors; metadata in each file's header).",
              "", "## Training", "",
              f"Hardware: CPU only, {platform.machine()}, two cores shared by two jobs at a time "
              "(each job one torch thread). Data: 1,200 precomputed copy-paste pairs per run "
              "(another train scene's hero placed into a scene's old-product mask exactly as "
              "compositing does; the hole is the real gap) plus 25% free-form stroke masks; "
              "context windows resized to the model's resolution; horizontal flips.", "",
              "- pix2pix: U-Net (unet_256 structure with num_downs = log2(res)) + 70x70 PatchGAN, "
              "GAN + 100 x L1, Adam 2e-4 (0.5, 0.999). Input: the product on white at its place; "
              "target: the staged scene.",
              "- EdgeConnect: edge model trained first (adversarial + 10 x feature matching, "
              "spectral norm); inpainting models trained on the frozen edge model's predicted "
              "edges with hinge GAN (0.1) + L1, the baseline with lambda = 0 and the method's "
              "model with the weighted boundary loss; both from the same seed on the same "
              "batches. Perceptual and style losses are off: VGG19 weights are not available "
              "offline (recorded in the metadata).",
              "- Compact diffusion: diffusers UNet2DModel on (noisy RGB, masked RGB, mask), DDPM "
              "cosine schedule, epsilon objective weighted toward the hole. Sampling: DDIM, 20 "
              "steps, started from the Telea fill noised to strength 0.5 (SDEdit); see Notes.",
              "", "Loss curves: `curves/` beside this card.", ""]
    if eval_path and Path(eval_path).is_file():
        ev = json.loads(Path(eval_path).read_text())
        md = (Path(eval_path).parent / "eval.md").read_text() if (Path(eval_path).parent / "eval.md").is_file() else ""
        lines += ["## Evaluation", "", f"`python -m stager evaluate --pairs {ev['pairs']}` on "
                  "held-out (product, eval scene) pairs against the generator's ground truth.", ""]
        lines += md.split("\n", 2)[2].splitlines() if md else []
    if notes:
        lines += ["", "## Notes", "", notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval", type=Path, default=None)
    ap.add_argument("--weights", type=Path, default=ROOT / "models" / "weights")
    ap.add_argument("--notes", type=Path, default=None)
    a = ap.parse_args()
    notes = a.notes.read_text() if a.notes else ""
    out = a.weights / "MODEL_CARD.md"
    out.write_text(build(a.eval, a.weights, notes))
    print(out)


if __name__ == "__main__":
    main()
