"""A faiss inner-product index over unit vectors, persisted with its ids and provenance.

The index type is the ``index_factory`` setting: ``Flat`` (exact), ``HNSW32`` (graph),
``IVF1024,SQ8`` or ``IVF1024,PQ64`` (inverted lists, compressed codes) ... Types that need
training (IVF, PQ, SQ) are trained on a seeded random sample of at most ``train_size`` rows,
so a million-vector build does not cluster a million points.

A saved index can be memory-mapped on load (``mmap=True``): inverted lists of IVF types are
mapped with ``IO_FLAG_MMAP``, the flat codes of Flat / HNSW types with ``IO_FLAG_MMAP_IFC``, so
several processes (Ray actors, app workers) share one copy in the page cache. A mapped index is
read-only; ``add`` refuses it (faiss would abort the process).

A saved index remembers the embedder it was built from and one key per scene; callers add only
the vectors of new scenes when the catalog grows (``Retriever`` does this).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TRAIN_SIZE = 100_000  # rows sampled to train IVF / PQ / SQ types


def _clean(vectors: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a 2-D (n, d) array, got shape {x.shape}")
    return x


def _factory_error(factory: str, why: str) -> ValueError:
    return ValueError(f"STAGER_INDEX_FACTORY={factory!r}: {why}")


class VectorIndex:
    """A faiss index, the id of each row, and provenance ``meta`` (factory, dim, embedder...)."""

    def __init__(self, index, ids: list[str], meta: dict, mmapped: bool = False):
        self.index = index
        self.ids = ids
        self.meta = meta
        self.mmapped = mmapped

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, vectors: np.ndarray, ids: list[str], factory: str = "Flat",
              meta: dict | None = None, train_size: int = TRAIN_SIZE, seed: int = 0
              ) -> "VectorIndex":
        """``vectors``: ``(n, d) float32`` unit rows; ``ids`` names each row."""
        if len(vectors) == 0:
            raise ValueError("cannot index an empty catalog: add scenes first")
        if len(vectors) != len(ids):
            raise ValueError("vectors and ids differ in length")
        x = _clean(vectors)
        out = cls.empty(x.shape[1], factory, meta)
        out.train(x, train_size, seed)
        out.add(x, ids)
        return out

    @classmethod
    def empty(cls, dim: int, factory: str = "Flat", meta: dict | None = None) -> "VectorIndex":
        """An untrained, empty index of ``factory`` type over ``dim``-d vectors."""
        import faiss

        try:
            index = faiss.index_factory(int(dim), factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError:
            raise _factory_error(factory, "not a valid faiss index_factory string") from None
        return cls(index, [], {"factory": factory, "dim": int(dim), **(meta or {})})

    def train(self, vectors: np.ndarray, train_size: int = TRAIN_SIZE, seed: int = 0) -> None:
        """Train on a seeded sample of at most ``train_size`` rows (no-op for Flat / HNSW)."""
        if self.index.is_trained:
            return
        x = _clean(vectors)
        if len(x) > train_size:
            pick = np.random.default_rng(seed).choice(len(x), train_size, replace=False)
            x = x[np.sort(pick)]
        try:
            self.index.train(x)
        except RuntimeError as exc:  # e.g. fewer training points than IVF lists
            raise _factory_error(self.meta["factory"], f"training on {len(x)} vectors failed "
                                 f"({str(exc).splitlines()[-1].strip()}); use a smaller index "
                                 "or Flat") from None
        self.meta["trained_on"] = int(len(x))

    def add(self, vectors: np.ndarray, ids: list[str]) -> None:
        """Append rows (the index must be trained and not memory-mapped)."""
        if self.mmapped:
            raise RuntimeError("this index is memory-mapped (read-only): load it with "
                               "mmap=False to add vectors")
        if not self.index.is_trained:
            raise RuntimeError("train the index before adding vectors")
        x = _clean(vectors)
        if len(x) != len(ids):
            raise ValueError("vectors and ids differ in length")
        if len(x):
            self.index.add(x)
            self.ids.extend(ids)

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Speed / recall knobs: IVF lists probed, HNSW candidate list size."""
        import faiss

        ivf = faiss.try_extract_index_ivf(self.index)
        if nprobe is not None and ivf is not None:
            ivf.nprobe = int(nprobe)
        if ef_search is not None and hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = int(ef_search)

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Top-``k`` ``(id, inner product)`` for one ``(d,)`` query, best first."""
        sims, idx = self.search_batch(query[None], k)
        return [(self.ids[i], float(s)) for s, i in zip(sims[0], idx[0]) if i >= 0]

    def search_batch(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw faiss search of ``(nq, d)`` queries: ``(nq, k)`` similarities and row numbers
        (-1 where fewer than ``k`` rows were found)."""
        k = max(1, min(int(k), len(self.ids)))
        return self.index.search(_clean(queries), k)

    def save(self, folder: Path) -> None:
        """Write ``index.faiss`` and ``index.json`` (ids, meta), each atomically."""
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / "index.faiss.tmp"))
        (folder / "index.faiss.tmp").replace(folder / "index.faiss")
        (folder / "index.json.tmp").write_text(json.dumps({"ids": self.ids, "meta": self.meta}))
        (folder / "index.json.tmp").replace(folder / "index.json")

    @classmethod
    def load(cls, folder: Path, expect: dict | None = None, mmap: bool = False
             ) -> "VectorIndex | None":
        """Load from ``folder``; None when absent, unreadable, or ``expect`` items differ.

        ``mmap=True`` maps the index file instead of reading it (read-only; falls back to a
        plain read for types faiss cannot map)."""
        folder = Path(folder)
        try:
            info = json.loads((folder / "index.json").read_text())
        except (OSError, ValueError):
            return None
        meta = info.get("meta", {})
        for k, v in (expect or {}).items():
            if meta.get(k) != v:
                return None
        try:
            index, mapped = _read(folder / "index.faiss", meta.get("factory", ""), mmap)
        except (OSError, RuntimeError):
            return None
        if index.ntotal != len(info.get("ids", [])):
            return None
        return cls(index, info["ids"], meta, mapped)


def _read(path: Path, factory: str, mmap: bool):
    """(faiss index, whether it is memory-mapped)."""
    import faiss

    if not path.is_file():
        raise OSError(f"{path} does not exist")
    if mmap:
        # IVF types map their inverted lists; the others map their flat codes.
        flag = faiss.IO_FLAG_MMAP if "IVF" in factory.upper() else faiss.IO_FLAG_MMAP_IFC
        try:
            return faiss.read_index(str(path), flag), True
        except RuntimeError:
            pass
    return faiss.read_index(str(path)), False


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each query's exact top-k (``(nq, k)`` row numbers) that ``found`` (``(nq,
    k')`` row numbers, -1 = none) also returns; 1.0 = the approximate index lost nothing."""
    if found.shape[0] != exact.shape[0]:
        raise ValueError("found and exact cover different numbers of queries")
    k = exact.shape[1]
    hits = [len(set(f[f >= 0].tolist()) & set(e.tolist())) for f, e in zip(found, exact)]
    return float(np.mean(hits) / k)


def clustered_vectors(n: int, dim: int, seed: int = 0, clusters: int = 1000, latent: int = 48,
                      noise: float = 0.05) -> np.ndarray:
    """Synthetic unit vectors ``(n, dim) float32``, deterministic for ``seed``: a mixture of
    ``clusters`` Gaussians in a ``latent``-d space mapped into ``dim`` dimensions, plus a little
    isotropic noise. Real embeddings cluster (by category, style) and have a low intrinsic
    dimension; uniform noise has neither, and on it no approximate index beats a scan. The
    centres and the map depend only on the sizes, so calls with other seeds (chunks of one
    large set, held-out queries) draw from the same distribution."""
    fixed = np.random.default_rng(12345)
    w = fixed.standard_normal((latent, dim)).astype(np.float32) / np.sqrt(latent)
    centres = fixed.standard_normal((clusters, latent)).astype(np.float32)
    rng = np.random.default_rng(seed)
    h = centres[rng.integers(0, clusters, n)]
    h += 0.5 * rng.standard_normal((n, latent), dtype=np.float32)
    x = h @ w
    x += noise * rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x
