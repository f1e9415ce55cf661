"""Embedders for retrieval: a product (RGBA) to an L2-normalised float32 vector.

``DescriptorEmbedder`` (offline, no weights): silhouette shape + aspect + colour histogram.
``ClipEmbedder``: open_clip image features, when a model and weights are configured.
``get_embedder()`` picks by the ``embedder`` setting and says which tier it is.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .composite import crop_to_alpha
from .config import get_settings
from .images import to_rgb


def scene_crop(image: np.ndarray, mask: np.ndarray, pad: int = 2) -> np.ndarray:
    """The old product of a scene as RGBA (``hxwx4 uint8``): its box, alpha = its mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("scene mask is empty")
    H, W = mask.shape
    x0, y0 = max(0, xs.min() - pad), max(0, ys.min() - pad)
    x1, y1 = min(W, xs.max() + 1 + pad), min(H, ys.max() + 1 + pad)
    a = (mask[y0:y1, x0:x1] * 255).astype(np.uint8)
    return np.dstack([image[y0:y1, x0:x1, :3], a])


class DescriptorEmbedder:
    """Colour and silhouette descriptor (tier: classical, no weights).

    Parts, each L2-normalised then weighted: the silhouette on a 16x16 grid after fitting its
    box into a square (shape), log aspect ratio, and a 6x3x3 HSV histogram of product pixels.
    """

    name = "descriptor"
    tier = "classical"
    grid = 16
    weights = (1.0, 0.35, 0.45)

    @property
    def dim(self) -> int:
        return self.grid * self.grid + 3 + 6 * 3 * 3

    def __call__(self, rgba: np.ndarray) -> np.ndarray:
        """``rgba``: product ``HxWx4 uint8``; returns ``(dim,) float32``, unit norm."""
        crop = crop_to_alpha(rgba)
        h, w = crop.shape[:2]
        side = max(h, w)
        sq = np.zeros((side, side), np.float32)
        y0, x0 = side - h, (side - w) // 2  # bottom-centred like placement
        sq[y0:y0 + h, x0:x0 + w] = crop[..., 3] / 255.0
        shape = cv2.resize(sq, (self.grid, self.grid), interpolation=cv2.INTER_AREA).ravel()
        shape = shape - shape.mean()
        ar = np.log(w / h)
        aspect = np.array([ar, ar ** 2, np.tanh(2 * ar)], np.float32)
        vis = crop[..., 3] > 128
        hsv = cv2.cvtColor(np.ascontiguousarray(crop[..., :3]), cv2.COLOR_RGB2HSV)[vis]
        hist, _ = np.histogramdd(hsv.astype(np.float32), bins=(6, 3, 3),
                                 range=((0, 180), (0, 256), (0, 256)))
        hist = np.sqrt(hist.ravel() / max(vis.sum(), 1))  # Hellinger
        parts = []
        for vec, wt in zip((shape, aspect, hist), self.weights):
            n = np.linalg.norm(vec)
            parts.append(wt * vec / n if n > 0 else vec)
        out = np.concatenate(parts).astype(np.float32)
        return out / max(np.linalg.norm(out), 1e-12)


class ClipEmbedder:
    """open_clip image embeddings (tier: pretrained)."""

    tier = "pretrained"

    def __init__(self, model=None, preprocess=None, model_name: str = "", pretrained: str = ""):
        import torch

        self._torch = torch
        if model is None:
            import open_clip

            try:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    model_name, pretrained=pretrained or None)
            except Exception as exc:  # offline without the weights, a bad name or file
                first = (str(exc).splitlines() or [exc.__class__.__name__])[0]
                raise ValueError(f"open_clip {model_name} ({pretrained}) could not be loaded: "
                                 f"{first} (check STAGER_CLIP_MODEL and STAGER_CLIP_PRETRAINED; "
                                 "a download needs STAGER_ALLOW_DOWNLOAD=1 and a network)"
                                 ) from exc
        self.model = model.eval()
        self.preprocess = preprocess
        from .segment import model_identity

        # the weights' hash is part of the name, so the index cache of one set of pretrained
        # weights is never searched with another's embeddings
        self.name = f"open_clip:{model_name or 'custom'}:{model_identity(self.model)}"
        with torch.no_grad():
            size = self.model.visual.image_size
            size = size if isinstance(size, int) else size[0]
            self.dim = int(self.model.encode_image(torch.zeros(1, 3, size, size)).shape[-1])

    def __call__(self, rgba: np.ndarray) -> np.ndarray:
        from PIL import Image

        rgb = to_rgb(crop_to_alpha(rgba)) if rgba.shape[2] == 4 else rgba
        x = self.preprocess(Image.fromarray(rgb)).unsqueeze(0)
        with self._torch.no_grad():
            f = self.model.encode_image(x)[0].float().numpy()
        return (f / max(np.linalg.norm(f), 1e-12)).astype(np.float32)


def clip_status() -> tuple[bool, str]:
    st = get_settings()
    if not st.clip_pretrained:
        return False, ("open_clip weights not configured: set STAGER_CLIP_PRETRAINED to a local "
                       "checkpoint (and STAGER_CLIP_MODEL) to embed with CLIP")
    if not Path(st.clip_pretrained).is_file() and not st.allow_download:
        return False, (f"STAGER_CLIP_PRETRAINED={st.clip_pretrained} is not a file and downloads "
                       "are off (STAGER_ALLOW_DOWNLOAD=1 enables them when online)")
    return True, f"open_clip {st.clip_model} ({st.clip_pretrained})"


def get_embedder():
    """The configured embedder: ``clip`` when asked for or available under ``auto``."""
    st = get_settings()
    if st.embedder == "descriptor":
        return DescriptorEmbedder()
    ok, why = clip_status()
    if st.embedder == "clip" and not ok:
        raise ValueError(f"STAGER_EMBEDDER=clip but {why}")
    if ok:
        return ClipEmbedder(model_name=st.clip_model, pretrained=st.clip_pretrained)
    return DescriptorEmbedder()
