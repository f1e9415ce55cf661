"""The pretrained tier, offline: the project's real loading code reads tiny seeded random
weights from a local Hugging Face hub cache in the hub's own layout (``tests/hubcache.py``), or
from the project's SAM cache, and nothing is ever downloaded (the subprocesses run with
``HF_HUB_OFFLINE=1`` and an unreachable endpoint and proxy).

What a Space turns on by default (``SPACE_ID`` set): downloads, open_clip ViT-B-32
(``laion2b_s34b_b79k``) and SAM ViT-B; Stable Diffusion inpainting when torch sees a GPU
(``tests/test_config.py``) or ``STAGER_DIFFUSION_MODEL_ID`` names one. Without ``SPACE_ID``
nothing is fetched.
"""

from __future__ import annotations

import json
import urllib.request

import numpy as np

from tests.conftest import tiny_sam
from tests.hubcache import offline_env, put_folder, put_snapshot, run_json

# the real open_clip CLIP class at toy sizes (as in test_retrieve)
TINY_CLIP = {"embed_dim": 16,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8,
                            "head_width": 16},
             "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2,
                          "layers": 1}}
CLIP_REPO = "stager-test/tiny-open-clip"
SD_REPO = "stager-test/tiny-sd-inpainting"


def _product() -> np.ndarray:
    img = np.zeros((40, 30, 4), np.uint8)
    img[5:35, 5:25] = (200, 30, 30, 255)
    return img


# ------------------------------------------------------------------ what a Space turns on


def test_a_space_turns_the_downloads_on_and_they_stay_off_elsewhere(settings_env, monkeypatch,
                                                                     tmp_path):
    """The loaders themselves, not only the settings: with ``SPACE_ID`` the segmenter asks for
    the official SAM ViT-B checkpoint and retrieval embeds with open_clip; without it neither
    asks for anything and the classical tier runs. (The URL request is answered with an error
    here: nothing leaves the machine.)"""
    from stager.embed import DescriptorEmbedder, clip_status, get_embedder
    from stager.segment import SAM_URLS, Segmenter

    asked = []

    def no_network(url, *a, **k):
        asked.append(url)
        raise OSError("offline test")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("SPACE_ID", "me/stager")
    from stager import config

    monkeypatch.setattr(config, "_has_cuda", lambda: False)
    settings_env(DATA_DIR=tmp_path)
    seg = Segmenter.from_settings()
    assert asked == [SAM_URLS["vit_b"]] and seg.sam is None  # asked, failed, GrabCut
    ok, why = clip_status()
    assert ok and why == "open_clip ViT-B-32 (laion2b_s34b_b79k)"
    from stager.backends.diffusion import sd_status

    # Stable Diffusion only with a GPU or when a model is named (this test fakes no GPU, so it
    # also holds on a machine that has one: tests/test_config.py covers the GPU default)
    assert not sd_status()[0]

    monkeypatch.delenv("SPACE_ID")
    settings_env(DATA_DIR=tmp_path)
    asked.clear()
    assert Segmenter.from_settings().sam is None and asked == []
    assert not clip_status()[0] and isinstance(get_embedder(), DescriptorEmbedder)


# ------------------------------------------------------------------ open_clip from the hub


CLIP_CODE = """
import json, numpy as np
from stager.embed import get_embedder
img = np.zeros((40, 30, 4), np.uint8)
img[5:35, 5:25] = (200, 30, 30, 255)
e = get_embedder()
v = e(img)
print(json.dumps({"type": type(e).__name__, "tier": e.tier, "name": e.name, "dim": e.dim,
                  "vec": [float(x) for x in v]}))
"""


def test_open_clip_loads_from_the_hub_cache_offline_on_a_space(tmp_path):
    """On a Space ``get_embedder`` builds open_clip through ``hf_hub_download``. The Space's
    ViT-B-32 is 151 M parameters (605 MB): here ``STAGER_CLIP_MODEL`` names a hub repo
    (``hf-hub:stager-test/tiny-open-clip``) holding the two files the laion ViT-B-32 repo
    holds, ``open_clip_config.json`` and ``open_clip_model.safetensors``. open_clip fetches
    the weights with the same ``download_pretrained_from_hf`` it uses for the laion tag and
    loads them with the same ``load_checkpoint``; the architecture is the real CLIP class at
    toy sizes, the smallest that exercises that path."""
    import open_clip
    import torch
    from safetensors.torch import save

    from stager.embed import ClipEmbedder
    from stager.segment import model_identity

    torch.manual_seed(0)
    model = open_clip.model.CLIP(**TINY_CLIP).eval()
    cache = tmp_path / "hub"
    put_snapshot(cache, CLIP_REPO, {
        "open_clip_config.json": json.dumps({"model_cfg": TINY_CLIP,
                                             "preprocess_cfg": {}}).encode(),
        "open_clip_model.safetensors": save({k: v.contiguous()
                                             for k, v in model.state_dict().items()})})
    env = offline_env(cache, tmp_path / "data", space_id="me/stager",
                      CLIP_MODEL=f"hf-hub:{CLIP_REPO}")
    out = run_json(CLIP_CODE, env)
    assert (out["type"], out["tier"], out["dim"]) == ("ClipEmbedder", "pretrained", 16)
    # the weights are the cached ones (open_clip would go on with random weights if the
    # file were missing), and the embedding is this model's, unit norm
    assert out["name"] == f"open_clip:hf-hub:{CLIP_REPO}:{model_identity(model)}"
    here = ClipEmbedder(model, open_clip.image_transform(32, is_train=False), "tiny")(_product())
    np.testing.assert_allclose(out["vec"], here, atol=1e-5)
    assert abs(np.linalg.norm(out["vec"]) - 1) < 1e-5


def test_the_space_default_clip_asks_the_hub_for_the_laion_weights_offline(tmp_path):
    """With the Space's defaults and an empty cache, offline, loading fails with one line that
    names the laion ViT-B-32 repo: the weights are requested there and nowhere else."""
    code = ("from stager.embed import get_embedder\n"
            "try:\n    get_embedder()\nexcept ValueError as e:\n"
            "    import json; print(json.dumps({'error': str(e)}))\n")
    out = run_json(code, offline_env(tmp_path / "hub", tmp_path / "data", space_id="me/stager"))
    err = out["error"]
    assert "\n" not in err and "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in err
    assert "STAGER_CLIP_PRETRAINED" in err


# ------------------------------------------------------------------ SAM from its cache


def test_sam_on_a_space_loads_the_cached_checkpoint_without_a_download(tmp_path, settings_env,
                                                                        monkeypatch):
    """SAM is not on the hub in segment-anything's format: a Space downloads the official
    checkpoint once into ``<data>/cache/weights/sam_<type>.pth`` and later starts read it
    from there. ViT-B (94 M parameters, about 15 s per image on two cores) is replaced by a
    test-registered model type ``vit_tiny``: the real ``Sam`` class at toy sizes, built and
    loaded by the same ``load_sam`` (``sam_model_registry[type]()``, ``torch.load`` with
    ``weights_only``, ``load_state_dict``)."""
    import torch
    from segment_anything import sam_model_registry

    from stager.segment import Segmenter, model_identity

    saved = tiny_sam(0)
    monkeypatch.setitem(sam_model_registry, "vit_tiny", lambda checkpoint=None: tiny_sam(7))
    asked = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *a, **k: asked.append(url))
    monkeypatch.setenv("SPACE_ID", "me/stager")
    settings_env(DATA_DIR=tmp_path, SAM_MODEL_TYPE="vit_tiny")
    ckpt = tmp_path / "cache" / "weights" / "sam_vit_tiny.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(saved.state_dict(), ckpt)
    seg = Segmenter.from_settings()
    assert asked == [] and seg.method == "sam"
    assert model_identity(seg.sam) == model_identity(saved)  # the file's weights, not seed 7
    scene = np.random.default_rng(0).integers(0, 256, (80, 96, 3), dtype=np.uint8)
    prop = seg.propose(scene, box=(10, 12, 60, 70))
    assert len(prop.masks) == 3 and prop.method == "sam"
    assert all(m.shape == (80, 96) and m.dtype == bool for m in prop.masks)
    assert len(list((tmp_path / "cache" / "sam").rglob("*.pt"))) == 1  # embedding cached


# ------------------------------------------------------------------ Stable Diffusion


def build_tiny_sd(folder) -> None:
    """A Stable Diffusion inpainting pipeline (UNet with 9 input channels, VAE, CLIP text
    encoder and tokenizer, DDIM) at toy sizes, seeded, saved with ``save_pretrained``."""
    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in map(chr, range(33, 127)):
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    tok = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(vocab), hidden_size=16,
                                        intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=77,
                                        bos_token_id=0, eos_token_id=1, pad_token_id=1))
    unet = UNet2DConditionModel(sample_size=64, in_channels=9, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), norm_num_groups=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                cross_attention_dim=16, attention_head_dim=2)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                        block_out_channels=(4, 4, 4, 4), norm_num_groups=2, sample_size=512,
                        down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4)
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                          clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    StableDiffusionInpaintPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                   scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False).save_pretrained(folder)


SD_CODE = """
import json, numpy as np
from stager.backends import get_backend
from stager.backends.diffusion import DiffusionBackend
from stager.pipeline import run_backend
from tests.conftest import ROOT
from tests.test_realism import plain_room, red_product, blue_shot

b = get_backend("diffusion")
ok, why = b.available()
pipe = b.load()
calls, inputs = [], []

class Spy:  # records what the loaded pipeline is given, then runs it
    def __init__(self, p):
        self.p = p
    def __call__(self, **kw):
        out = self.p(**kw)
        calls.append({**kw, "out": out.images[0]})
        return out

real_run = DiffusionBackend.run
def run(self, image, mask, **kw):
    inputs.append((image.copy(), mask.copy()))
    return real_run(self, image, mask, **kw)
DiffusionBackend.run = run
b._model = Spy(pipe)

def red(a):
    a = np.asarray(a).astype(int)
    return (a[..., 0] > 150) & (a[..., 1] < 80) & (a[..., 2] < 90)

def blue(a):
    a = np.asarray(a).astype(int)
    return a[..., 2] > a[..., 0] + 60

# 1. the backend on a scene that still holds the old (red) product in the hole
clean = plain_room()
alpha, _ = red_product()
scene = np.where((alpha > 0.5)[..., None], np.array([220, 20, 30], np.uint8), clean)
hole = alpha > 0.5
filled = b(scene, hole, seed=0)
direct = {"run_input_red_in_hole": float(red(inputs[0][0])[inputs[0][1]].mean()),
          "init_red": int(red(calls[0]["image"]).sum()),
          "init_size": list(calls[0]["image"].size),
          "mask_size": list(calls[0]["mask_image"].size),
          "out_size": list(calls[0]["out"].size),
          "outside_unchanged": bool((filled[~hole] == scene[~hole]).all()),
          "filled_shape": list(filled.shape)}

# 2. the whole copy-paste job: a blue product replaces the red one in an imported room
import tempfile
from pathlib import Path
from stager.catalog import Catalog, import_folders
from stager.images import save_png
from stager.pipeline import Context, StageRequest, prepare
root = Path(tempfile.mkdtemp())
(root / "rooms").mkdir()
save_png(root / "rooms" / "room.png", scene)
save_png(root / "rooms" / "room_mask.png", hole)
base = Catalog(root / "catalog", [], [], 0)
base.save()
cat, _ = import_folders(base, root / "rooms")
prep = prepare(StageRequest(blue_shot()[..., :3], scene_id=cat.scenes[0].id), Context(cat))
n = len(calls)
out = run_backend(prep, "diffusion")
job = {"ok": out.ok, "error": out.error, "tier": out.tier, "calls": len(calls) - n,
       "init_red": int(red(calls[-1]["image"]).sum()),
       "init_blue": int(blue(calls[-1]["image"]).sum()),
       "plate_shape": list(out.plate.shape), "scene_shape": list(prep.scene.shape)}
print(json.dumps({"ok": ok, "why": why, "label": b.label, "tier": b.tier,
                  "pipeline": type(pipe).__name__, "kind": b._kind,
                  "steps": calls[0]["num_inference_steps"], "direct": direct, "job": job}))
"""


def test_stable_diffusion_loads_from_the_hub_cache_and_starts_from_the_cleaned_background(
        tmp_path):
    """``STAGER_DIFFUSION_MODEL_ID`` names a hub repo; on a Space (downloads on) the backend
    loads it with ``AutoPipelineForInpainting.from_pretrained`` from the local cache, offline.
    A spy around the loaded pipeline records its inputs (wiring, not a model claim): the init
    image never holds the old (red) product, though the image handed to the backend does, nor
    the new (blue) one, and the output keeps every pixel outside the hole."""
    build_tiny_sd(tmp_path / "sd")
    cache = tmp_path / "hub"
    put_folder(cache, SD_REPO, tmp_path / "sd")
    env = offline_env(cache, tmp_path / "data", space_id="me/stager", DIFFUSION_MODEL_ID=SD_REPO,
                      DIFFUSION_STEPS=2, EMBEDDER="descriptor")
    out = run_json(SD_CODE, env)
    assert out["ok"] and out["why"] == f"Stable Diffusion inpainting {SD_REPO}"
    assert (out["pipeline"], out["kind"], out["tier"]) == ("StableDiffusionInpaintPipeline",
                                                           "sd", "pretrained")
    assert out["steps"] == 2
    d = out["direct"]
    assert d["run_input_red_in_hole"] > 0.9  # the old product was there...
    assert d["init_red"] == 0  # ...and Stable Diffusion does not start from it
    assert d["init_size"] == d["mask_size"] == d["out_size"] == [512, 512]
    assert d["outside_unchanged"] and d["filled_shape"] == [512, 512, 3]
    j = out["job"]
    assert j["ok"], j["error"]
    assert (j["tier"], j["calls"], j["init_red"], j["init_blue"]) == ("pretrained", 1, 0, 0)
    assert j["plate_shape"] == j["scene_shape"]
