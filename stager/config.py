"""Every setting of Product Stager, read from ``STAGER_*`` environment variables in one place.

Nothing else in the project reads the environment. ``get_settings()`` returns a cached object;
tests call ``reset_settings()`` after changing the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    # On a Hugging Face Space with persistent storage, /data survives restarts.
    if Path("/data").is_dir() and os.access("/data", os.W_OK):
        return Path("/data/product-stager")
    return REPO_ROOT / "data"


@dataclass
class Settings:
    """All tunables. Each field maps to ``STAGER_<FIELD_NAME_UPPER>``."""

    data_dir: Path = None  # type: ignore[assignment]  # catalog, caches, index, outputs
    db_url: str = ""  # SQLAlchemy URL of the audit database; default sqlite in data_dir
    weights_dir: Path = REPO_ROOT / "models" / "weights"  # project-trained compact weights
    catalog_scenes: int = 240  # scenes in the embedded default catalog
    catalog_products: int = 60  # unstaged (held-out) catalog products
    catalog_seed: int = 7
    max_pixels: int = 40_000_000  # decompression-bomb guard for uploads
    max_side: int = 2048  # uploads are downscaled to this longest side
    # segmentation
    sam_checkpoint: str = ""  # path to a segment-anything checkpoint (.pth)
    sam_model_type: str = "vit_b"
    allow_download: bool = False  # fetch pretrained weights when online
    # retrieval
    embedder: str = "auto"  # auto | clip | descriptor
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = ""  # local path or open_clip tag; empty = not configured
    index_factory: str = "Flat"  # faiss index_factory string: Flat, HNSW32, IVF1024,SQ8 ...
    index_mmap: bool = True  # memory-map the saved index (shared page cache, read-only)
    index_nprobe: int = 16  # IVF types: inverted lists probed per query
    index_ef_search: int = 64  # HNSW types: candidate list size per query
    top_k: int = 8
    rerank_pool: int = 32  # candidates fetched before the fit-aware rerank
    rerank_gap_weight: float = 0.5  # score = similarity - weight * gap ratio
    # ... - weight when the scene's category is not the one the product's nearest catalog
    # products agree on (3 of 5; no agreement, no penalty); 0 = off
    rerank_category_weight: float = 0.2
    # compositing
    gap_margin: int = 6  # pixels the old product's footprint is dilated by before filling
    # keep the margin's pixels that match the floor beyond it, not the old product's rim
    # (composite.margin_keep): they stay as they are instead of being filled
    margin_keep: bool = True
    context_scale: float = 1.6  # context window side / mask bbox side for backends
    fill_max_side: int = 768  # fully convolutional fills run at native resolution up to this
    fill_prior: str = "lines"  # classical fill under the new product, refined by residual models: lines | telea
    # share of OpenCV's frequency-selective reconstruction (opencv-contrib's xphoto, FSR fast)
    # blended into the classical fill EdgeConnect refines (0 = that fill alone; see MODEL_CARD)
    fsr_mix: float = 0.65
    fsr_max_px: int = 8000  # larger holes are reconstructed at the scale that brings them to this
    shade_model: str = "auto"  # auto: the trained shade model reads old shadows when its weights are present (see MODEL_CARD) | off: the classical shading ratio
    # models
    boundary_lambda: float = 4.0  # weighted boundary loss strength (0 = EdgeConnect baseline)
    boundary_sigma: float = 4.0  # px
    diffusion_model_id: str = ""  # local path / hub id of an SD inpainting model
    diffusion_steps: int = 20
    diffusion_sampler: str = "ddim"  # ddim | dpm (compact model; DDIM measured better here)
    diffusion_strength: float = 0.5  # compact model: 1 = from pure noise; <1 = SDEdit from Telea
    seed: int = 0
    # parallax clip
    parallax_seconds: float = 3.0  # clip length
    parallax_fps: int = 24
    parallax_amplitude: float = 0.03  # nearest layer's largest shift, fraction of the width
    parallax_move: str = "sway"  # sway (sideways, looping) | push (zoom toward the product)
    # batch staging on Ray (python -m stager batch --ray)
    ray_actors: int = 2  # backend actors (each loads the backend's model once)
    ray_actor_cpus: float = 0.5  # CPUs per actor: fractional, so tasks still run on two cores
    ray_actor_gpus: float = 0.0  # GPUs per actor (e.g. 1, or 0.5 to share one GPU)
    ray_batch_size: int = 4  # products per actor call
    ray_overlap: bool = False  # the driver stages products itself until Ray's actors are up
    # app
    app_concurrency: int = 1  # concurrent model jobs in the Gradio queue
    app_auth: str = ""  # "user:pass,user2:pass2" for local launch auth
    app_admins: str = ""  # "alice,bob": logins that see results, reports and vote exports
    app_max_upload_mb: int = 20  # largest file an upload may be (enforced by the server)
    app_port: int = 7860  # falls back to GRADIO_SERVER_PORT when set
    app_host: str = "127.0.0.1"  # falls back to GRADIO_SERVER_NAME (0.0.0.0 on a Space)
    space_id: str = ""  # set on Hugging Face Spaces (SPACE_ID): enables the HF login button

    def __post_init__(self) -> None:
        if self.data_dir is None:
            self.data_dir = _default_data_dir()
        self.data_dir = Path(self.data_dir)
        self.weights_dir = Path(self.weights_dir)
        mode = str(self.shade_model).strip().lower()
        modes = {"auto": "auto", "on": "auto", "1": "auto", "true": "auto", "yes": "auto",
                 "off": "off", "0": "off", "false": "off", "no": "off"}
        if mode not in modes:
            raise ValueError(f"STAGER_SHADE_MODEL={self.shade_model!r}: use auto or off")
        self.shade_model = modes[mode]
        if not 0.0 <= self.fsr_mix <= 1.0:
            raise ValueError(f"STAGER_FSR_MIX={self.fsr_mix}: use a share from 0 to 1")
        if self.fsr_max_px < 64:
            raise ValueError(f"STAGER_FSR_MAX_PX={self.fsr_max_px}: use 64 or more")
        self.fill_prior = str(self.fill_prior).strip().lower()
        if self.fill_prior not in ("lines", "telea"):
            raise ValueError(f"STAGER_FILL_PRIOR={self.fill_prior!r}: use lines or telea")
        if not self.db_url:
            self.db_url = f"sqlite:///{self.data_dir / 'audit.sqlite'}"

    @property
    def catalog_dir(self) -> Path:
        return self.data_dir / "catalog"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def public_dir(self) -> Path:
        """The only folder the app's file route serves: display copies of audit images."""
        return self.data_dir / "public"

    @property
    def admins(self) -> set[str]:
        """Logins with the admin role: STAGER_APP_ADMINS, plus the Space's owner on a Space."""
        names = {n.strip() for n in self.app_admins.split(",") if n.strip()}
        if "/" in self.space_id:
            names.add(self.space_id.split("/", 1)[0])
        return names


def _coerce(value: str, kind: type, name: str):
    if kind is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"STAGER_{name.upper()}={value!r} is not a boolean (use 1/0)")
    try:
        return kind(value)
    except ValueError as exc:
        raise ValueError(f"STAGER_{name.upper()}={value!r} is not a valid {kind.__name__}") from exc


SPACE_SD_MODEL = "stable-diffusion-v1-5/stable-diffusion-inpainting"  # a Space with a GPU


def _has_cuda() -> bool:
    """A CUDA device torch can use (asked only on a Space: importing torch takes a second)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no torch, or a broken driver: no GPU
        return False


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (default ``os.environ``); bad values raise ``ValueError``."""
    env = dict(os.environ if env is None else env)
    kwargs = {}
    for outside, ours in (("SPACE_ID", "STAGER_SPACE_ID"), ("GRADIO_SERVER_NAME", "STAGER_APP_HOST"),
                          ("GRADIO_SERVER_PORT", "STAGER_APP_PORT")):
        if outside in env and ours not in env:
            env[ours] = env[outside]
    if env.get("STAGER_SPACE_ID"):  # on a Space: the pretrained tier for real photos by default
        env.setdefault("STAGER_ALLOW_DOWNLOAD", "1")  # SAM ViT-B and open_clip ViT-B-32
        env.setdefault("STAGER_CLIP_PRETRAINED", "laion2b_s34b_b79k")
        if _has_cuda():  # Stable Diffusion inpainting only where a GPU runs it
            env.setdefault("STAGER_DIFFUSION_MODEL_ID", SPACE_SD_MODEL)
    defaults = Settings()
    for f in fields(Settings):
        key = f"STAGER_{f.name.upper()}"
        if key in env:
            kind = type(getattr(defaults, f.name))
            kind = Path if isinstance(getattr(defaults, f.name), Path) else kind
            kwargs[f.name] = _coerce(env[key], kind, f.name)
    return Settings(**kwargs)


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as ``STAGER_*`` variables, for worker processes (Ray) to load the same."""
    out = {}
    for f in fields(Settings):
        v = getattr(settings, f.name)
        out[f"STAGER_{f.name.upper()}"] = ("1" if v else "0") if isinstance(v, bool) else str(v)
    return out


_SETTINGS: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    global _SETTINGS
    if _SETTINGS is None:
        _SETTINGS = load_settings()
    return _SETTINGS


def reset_settings() -> None:
    """Forget cached settings (tests change the environment, then call this)."""
    global _SETTINGS
    _SETTINGS = None

