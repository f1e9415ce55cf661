"""Where a backend's compact weights live, and an honest availability check."""

from __future__ import annotations

from pathlib import Path

from ..config import get_settings

from models.weights_io import WEIGHT_FILES as FILES  # noqa: E402 - one table (torch-free)

TRAIN_HINT = {
    "pix2pix": "python -m stager train pix2pix",
    "edge": "python -m stager train edgeconnect --stage edge",
    "inpaint_weighted": "python -m stager train edgeconnect --stage inpaint",
    "inpaint_baseline": "python -m stager train edgeconnect --stage inpaint --boundary-lambda 0",
    "diffusion": "python -m stager train diffusion --res 64 --width 32",
    "shade": "python -m stager train shade",
}


def path(key: str) -> Path:
    return get_settings().weights_dir / FILES[key]


def check(*keys: str) -> tuple[bool, str]:
    """(True, "") when every weights file is present and readable, else (False, reason)."""
    from models.weights_io import WeightsError, read_meta  # torch-free header read

    for k in keys:
        p = path(k)
        if not p.is_file():
            return False, (f"{p} not found: train with `{TRAIN_HINT[k]}` or set "
                           "STAGER_WEIGHTS_DIR to a folder with the weights")
        try:
            m = read_meta(p)
        except WeightsError as exc:
            return False, str(exc)
        if not isinstance(m.get("config"), dict):
            return False, (f"{p} has no Product Stager metadata (no network config in its "
                           f"header): it is not a weights file of this project; retrain with "
                           f"`{TRAIN_HINT[k]}` or fix STAGER_WEIGHTS_DIR")
    return True, ""


def meta(key: str) -> dict:
    from models.weights_io import read_meta

    return read_meta(path(key))
