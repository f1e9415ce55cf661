"""Shared fixtures: an isolated data dir with the default catalog (built once per session),
tiny seeded random weights for every network, and a tiny seeded SAM."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from stager.config import reset_settings  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory):
    """Every test runs against a private data dir; the default catalog is built into it once
    (or reused from STAGER_TEST_CATALOG_CACHE to speed up local reruns)."""
    d = tmp_path_factory.mktemp("stager_data")
    os.environ["STAGER_DATA_DIR"] = str(d)
    os.environ["STAGER_DB_URL"] = f"sqlite:///{d / 'audit.sqlite'}"
    reset_settings()
    from stager import pipeline

    pipeline.reset_context()
    yield d


@pytest.fixture(scope="session")
def catalog(data_dir):
    from stager.catalog import open_catalog

    return open_catalog()


@pytest.fixture
def settings_env(monkeypatch):
    """Set STAGER_* variables for one test: ``settings_env(WEIGHTS_DIR=...)``."""

    def apply(**kw):
        for k, v in kw.items():
            monkeypatch.setenv(f"STAGER_{k.upper()}", str(v))
        reset_settings()
        from stager import backends

        backends._INSTANCES.clear()

    yield apply
    monkeypatch.undo()
    reset_settings()
    from stager import backends

    backends._INSTANCES.clear()


def make_tiny_weights(folder: Path) -> Path:
    """Seeded random weights of every network at tiny widths, in the shipped file layout."""
    import torch

    from models import diffusion as dm
    from models import edgeconnect as ec
    from models import pix2pix as p2p
    from models.train import WEIGHT_FILES
    from models.weights_io import save

    torch.manual_seed(0)
    base = {"steps": 0, "res": 64, "seed": 0, "note": "tiny random weights for wiring tests"}
    g = p2p.UNetGenerator(width=4, num_downs=6)
    save(g, folder / WEIGHT_FILES["pix2pix"], {**base, "config": g.config})
    e = ec.EdgeGenerator(4, 1)
    save(e, folder / WEIGHT_FILES["edge"], {**base, "config": e.config})
    for key, lam in (("inpaint_weighted", 4.0), ("inpaint_baseline", 0.0)):
        i = ec.InpaintGenerator(4, 1)
        save(i, folder / WEIGHT_FILES[key], {**base, "config": i.config, "boundary_lambda": lam})
    u = dm.build_unet(32, 8)
    save(u, folder / WEIGHT_FILES["diffusion"], {**base, "res": 32,
                                                  "config": {"res": 32, "width": 8}})
    return folder


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    return make_tiny_weights(tmp_path_factory.mktemp("tiny_weights"))


def tiny_sam(seed: int = 0):
    """A segment-anything ``Sam`` with the real architecture at toy sizes, seeded."""
    import torch
    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                           TwoWayTransformer)

    torch.manual_seed(seed)
    sam = Sam(
        image_encoder=ImageEncoderViT(img_size=64, patch_size=16, embed_dim=32, depth=1,
                                      num_heads=2, mlp_ratio=2, out_chans=32, qkv_bias=True,
                                      use_rel_pos=True, window_size=2, global_attn_indexes=(0,)),
        prompt_encoder=PromptEncoder(embed_dim=32, image_embedding_size=(4, 4),
                                     input_image_size=(64, 64), mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=32,
                                                               mlp_dim=64, num_heads=2),
                                 transformer_dim=32, iou_head_depth=2, iou_head_hidden_dim=16),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    return sam.eval()


def random_scene(seed: int = 0, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def image_campaign(name: str, systems: tuple[str, str], n: int = 3, seed: int = 0):
    """A small A/B campaign of random images in the session's audit database.

    Returns (store, campaign id, item ids in (a, b) pairs)."""
    from db.campaign import plan, store_image
    from db.store import Store
    from stager.config import get_settings

    store = Store(get_settings().db_url)
    rng = np.random.default_rng(seed)
    ids = [store_image(store, rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), "p",
                       f"{name}{k}", s) for k in range(n) for s in systems]
    task = f"{systems[0]} vs {systems[1]}"
    cid = store.create_campaign(name, [{"name": task, "a": systems[0], "b": systems[1]}],
                                plan([(task, ids[2 * k], ids[2 * k + 1]) for k in range(n)], [], 0, 0))
    return store, cid, ids
