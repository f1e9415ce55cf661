"""Saving and loading compact weights: fp16 safetensors with JSON metadata."""

from __future__ import annotations

import json
from pathlib import Path


#: the shipped weights files, one table for training, the backends and the model card
WEIGHT_FILES = {
    "pix2pix": "pix2pix.safetensors",
    "edge": "edgeconnect_edge.safetensors",
    "inpaint_weighted": "edgeconnect_inpaint_weighted.safetensors",
    "inpaint_baseline": "edgeconnect_inpaint_baseline.safetensors",
    "diffusion": "diffusion.safetensors",
    "shade": "shade.safetensors",
}


class WeightsError(RuntimeError):
    """Missing or unreadable weights; names the file and the setting."""


def save(model, path: Path, meta: dict) -> Path:
    """Write ``model``'s parameters as fp16 safetensors; ``meta`` goes into the header."""
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() if v.is_floating_point() else v.contiguous()
             for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"meta": json.dumps(meta)})
    tmp.replace(path)
    return path


def read_meta(path: Path) -> dict:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} not found: train it with `python -m stager train` or point "
                           "STAGER_WEIGHTS_DIR at a folder that has it")
    try:
        with safe_open(str(path), "np") as f:  # header only; no torch needed
            return json.loads((f.metadata() or {}).get("meta", "{}"))
    except Exception as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({exc.__class__.__name__}); "
                           "retrain it or fix STAGER_WEIGHTS_DIR") from exc


def load_into(model, path: Path):
    """Load fp16 weights into ``model`` (kept in fp32); raises ``WeightsError`` naming the file."""
    from safetensors.torch import load_file

    read_meta(path)  # existence and header check with the clear message
    try:
        state = load_file(str(path))
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        model.load_state_dict(state)
    except Exception as exc:
        raise WeightsError(f"{path} does not match the {model.__class__.__name__} architecture "
                           f"or is corrupt ({exc.__class__.__name__}); retrain it or fix "
                           "STAGER_WEIGHTS_DIR") from exc
    return model.eval()
