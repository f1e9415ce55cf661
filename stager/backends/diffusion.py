"""Diffusion inpainting: Stable Diffusion inpainting (diffusers) when configured, else the
project's compact pixel-space model. ``describe()`` says which one runs."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ..config import get_settings
from . import weights
from .base import Backend

PROMPTS = {
    "sofa": "a living room with a sofa", "armchair": "a living room with an armchair",
    "chair": "a room with a chair", "coffee_table": "a living room with a coffee table",
    "floor_lamp": "a room with a floor lamp", "cabinet": "a room with a cabinet",
    "potted_plant": "a room with a potted plant", "bed": "a bedroom with a bed",
}


def sd_status() -> tuple[bool, str]:
    st = get_settings()
    if not st.diffusion_model_id:
        return False, "STAGER_DIFFUSION_MODEL_ID not set (Stable Diffusion inpainting off)"
    if not Path(st.diffusion_model_id).exists() and not st.allow_download:
        return False, (f"STAGER_DIFFUSION_MODEL_ID={st.diffusion_model_id} is not a local folder "
                       "and STAGER_ALLOW_DOWNLOAD is off")
    return True, f"Stable Diffusion inpainting {st.diffusion_model_id}"


class DiffusionBackend(Backend):
    name = "diffusion"
    tier = "trained compact"

    def __init__(self):
        self._model = None
        self._kind = None
        self._lock = threading.Lock()
        self.resolution = 64

    @property
    def label(self) -> str:  # type: ignore[override]
        ok, _ = sd_status()
        return "Stable Diffusion inpainting" if ok else "compact diffusion (project-trained)"

    def available(self) -> tuple[bool, str]:
        ok, why = sd_status()
        if ok:
            self.tier = "pretrained"
            return True, why
        ok2, why2 = weights.check("diffusion")
        if ok2:
            return True, f"compact diffusion ({weights.path('diffusion').name}); {why}"
        return False, f"{why}; {why2}"

    def describe(self) -> str:
        ok, why = self.available()
        if not ok or sd_status()[0]:
            return why
        m = weights.meta("diffusion")
        st = get_settings()
        start = ("from noise" if st.diffusion_strength >= 1 else
                 f"SDEdit from the Telea fill at strength {st.diffusion_strength}")
        return (f"compact diffusion: trained compact weights, {m.get('steps')} steps at "
                f"{m.get('res')} px, {st.diffusion_sampler.upper()} {st.diffusion_steps} steps, {start}")

    def load(self):
        with self._lock:
            if self._model is None:
                st = get_settings()
                if sd_status()[0]:
                    import torch
                    from diffusers import AutoPipelineForInpainting

                    # on a GPU in half precision (a Space's default: half the download too);
                    # on the CPU in full precision, where half is slow or unsupported
                    cuda = torch.cuda.is_available()
                    pipe = AutoPipelineForInpainting.from_pretrained(
                        st.diffusion_model_id,
                        torch_dtype=torch.float16 if cuda else torch.float32)
                    self._model = pipe.to("cuda") if cuda else pipe
                    self._kind, self.resolution, self.tier = "sd", 512, "pretrained"
                else:
                    from models.diffusion import build_unet
                    from models.weights_io import load_into

                    m = weights.meta("diffusion")
                    unet = build_unet(m["config"]["res"], m["config"]["width"])
                    self._model = load_into(unet, weights.path("diffusion"))
                    self._kind, self.resolution = "compact", int(m["config"]["res"])
        return self._model

    def __call__(self, image, mask, **params):
        if self.available()[0]:
            self.load()
        return super().__call__(image, mask, **params)

    def run(self, image: np.ndarray, mask: np.ndarray, seed: int = 0, steps: int | None = None,
            category: str = "", strength: float | None = None, **_) -> np.ndarray:
        model = self.load()
        st = get_settings()
        steps = steps or st.diffusion_steps
        strength = st.diffusion_strength if strength is None else float(strength)
        if self._kind == "sd":
            import cv2
            import torch
            from PIL import Image

            # never start from the old product: Stable Diffusion sees the hole's pixels at
            # strength < 1 and would ghost it back; start from a cleaned (classical) fill
            image = cv2.inpaint(image, mask.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)

            out = model(prompt=PROMPTS.get(category, "an empty room, interior photo"),
                        image=Image.fromarray(image), mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
                        num_inference_steps=steps, strength=strength,
                        generator=torch.Generator().manual_seed(seed),
                        height=self.resolution, width=self.resolution).images[0]
            return np.asarray(out.convert("RGB").resize((self.resolution,) * 2))
        import cv2

        from models.diffusion import sample

        # the compact model is weak at low frequencies: start from the classical fill (SDEdit)
        init = cv2.inpaint(image, mask.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
        out = sample(model, image, mask, steps=steps, seed=seed, scheduler=st.diffusion_sampler,
                     init=init, strength=strength)
        return keep_low_frequencies(out, init, mask)


LOW_FREQ_SIGMA = 2.0  # px at the model's resolution (64): about 8 px on a 256-px window


def keep_low_frequencies(out: np.ndarray, init: np.ndarray, mask: np.ndarray,
                         sigma: float = LOW_FREQ_SIGMA) -> np.ndarray:
    """The compact model's fill with its low frequencies replaced by the classical fill's: the
    model adds detail, the classical fill keeps the hole's mean colours. Even started from that
    fill, the sampler drifts in colour at this resolution, a pale or tinted cloud around the
    product (48 held-out catalog pairs, gap L1: 0.0561 -> 0.0490; 30 real-photo gaps: 0.1169 ->
    0.1076; sigma 4: 0.0512 and 0.1105). Pixels outside ``mask`` come back unchanged."""
    import cv2

    blur = lambda a: cv2.GaussianBlur(a, (0, 0), sigma)  # noqa: E731
    o, i = out.astype(np.float32), init.astype(np.float32)
    mixed = np.clip(blur(i) + (o - blur(o)) + 0.5, 0, 255).astype(np.uint8)
    return np.where(mask[..., None], mixed, out)
