"""A faiss inner-product index over unit vectors, persisted with its ids and provenance.

The index type is the ``index_factory`` setting (``Flat``, ``HNSW32``, ``IVF16,Flat`` ...).
A saved index remembers the catalog fingerprint and embedder it was built from; ``load``
returns None when either changed, so callers rebuild.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


class VectorIndex:
    def __init__(self, index, ids: list[str], meta: dict):
        self.index = index
        self.ids = ids
        self.meta = meta

    @classmethod
    def build(cls, vectors: np.ndarray, ids: list[str], factory: str = "Flat",
              meta: dict | None = None) -> "VectorIndex":
        """``vectors``: ``(n, d) float32`` unit rows; ``ids`` names each row."""
        import faiss

        if len(vectors) == 0:
            raise ValueError("cannot index an empty catalog: add scenes first")
        if len(vectors) != len(ids):
            raise ValueError("vectors and ids differ in length")
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        try:
            index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ValueError(f"STAGER_INDEX_FACTORY={factory!r} is not a valid faiss "
                             "index_factory string") from exc
        if not index.is_trained:
            index.train(x)
        index.add(x)
        return cls(index, list(ids), {"factory": factory, "dim": int(x.shape[1]), **(meta or {})})

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Top-``k`` ``(id, inner product)`` for one ``(d,)`` query, best first."""
        k = max(1, min(int(k), len(self.ids)))
        sims, idx = self.index.search(np.ascontiguousarray(query[None], dtype=np.float32), k)
        return [(self.ids[i], float(s)) for s, i in zip(sims[0], idx[0]) if i >= 0]

    def save(self, folder: Path) -> None:
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / "index.faiss.tmp"))
        (folder / "index.faiss.tmp").replace(folder / "index.faiss")
        (folder / "index.json").write_text(json.dumps({"ids": self.ids, "meta": self.meta}))

    @classmethod
    def load(cls, folder: Path, expect: dict | None = None) -> "VectorIndex | None":
        """Load from ``folder``; None when absent, unreadable, or ``expect`` items differ."""
        import faiss

        folder = Path(folder)
        try:
            info = json.loads((folder / "index.json").read_text())
            index = faiss.read_index(str(folder / "index.faiss"))
        except (OSError, ValueError, RuntimeError):
            return None
        meta = info.get("meta", {})
        for k, v in (expect or {}).items():
            if meta.get(k) != v:
                return None
        if index.ntotal != len(info.get("ids", [])):
            return None
        return cls(index, info["ids"], meta)
