"""Index types as a setting: recall of approximate types against exact search, memory-mapped
loading, training on a sample, and incremental growth with the catalog."""

import numpy as np
import pytest

from stager.catalog import Catalog
from stager.embed import DescriptorEmbedder
from stager.index import VectorIndex, clustered_vectors, recall_at_k
from stager.retrieve import Retriever


@pytest.fixture(scope="module")
def data():
    x = clustered_vectors(4000, 64, seed=0, clusters=40)
    q = clustered_vectors(100, 64, seed=1, clusters=40)
    return x, q, [f"v{i}" for i in range(len(x))]


@pytest.fixture(scope="module")
def exact(data):
    x, q, ids = data
    flat = VectorIndex.build(x, ids, "Flat")
    _, rows = flat.search_batch(q, 10)
    # the flat index is exact: it agrees with a numpy scan
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    assert recall_at_k(rows, truth) == 1.0
    return rows


def test_recall_at_k_by_hand():
    exact = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    found = np.array([[3, 2, 9, -1], [7, 6, 5, 4]])
    assert recall_at_k(found, exact) == pytest.approx((2 / 4 + 4 / 4) / 2)


@pytest.mark.parametrize("factory, knob, low, high", [
    ("IVF32,Flat", "nprobe", 1, 16),
    ("HNSW8", "ef_search", 10, 128),
])
def test_approximate_recall_is_measured_against_flat(data, exact, factory, knob, low, high):
    x, q, ids = data
    idx = VectorIndex.build(x, ids, factory)
    recalls = {}
    for v in (low, high):
        idx.set_search_params(**{knob: v})
        recalls[v] = recall_at_k(idx.search_batch(q, 10)[1], exact)
    assert recalls[high] >= 0.95  # a usable setting
    assert recalls[low] < recalls[high]  # the knob trades recall for speed: the measure sees it


def test_training_uses_a_sample_and_too_small_catalogs_fail_clearly(data):
    x, _, ids = data
    idx = VectorIndex.build(x, ids, "IVF16,SQ8", train_size=1000)
    assert idx.meta["trained_on"] == 1000 and len(idx) == len(x)
    with pytest.raises(ValueError, match="IVF64.*training on 10 vectors failed"):
        VectorIndex.build(x[:10], ids[:10], "IVF64,Flat")
    with pytest.raises(ValueError, match="not a valid faiss"):
        VectorIndex.build(x, ids, "Nope99")


@pytest.mark.parametrize("factory", ["Flat", "HNSW8", "IVF32,SQ8"])
def test_memory_mapped_index_returns_what_the_loaded_one_does(data, tmp_path, factory):
    x, q, ids = data
    VectorIndex.build(x, ids, factory).save(tmp_path)
    loaded = VectorIndex.load(tmp_path, mmap=False)
    mapped = VectorIndex.load(tmp_path, mmap=True)
    assert not loaded.mmapped and mapped.mmapped
    for idx in (loaded, mapped):
        idx.set_search_params(nprobe=8, ef_search=64)
    s1, r1 = loaded.search_batch(q, 10)
    s2, r2 = mapped.search_batch(q, 10)
    assert np.array_equal(r1, r2) and np.array_equal(s1, s2)
    assert mapped.search(q[0], 3) == loaded.search(q[0], 3)
    with pytest.raises(RuntimeError, match="memory-mapped"):
        mapped.add(x[:1], ["new"])  # faiss would abort the process on a mapped IVF
    loaded.add(x[:1], ["new"])
    assert len(loaded) == len(x) + 1


def test_index_grows_incrementally_when_scenes_are_added(catalog, settings_env, tmp_path):
    settings_env(DATA_DIR=tmp_path)  # a private index cache; the catalog stays where it is
    emb = DescriptorEmbedder()
    small = Catalog(catalog.root, catalog.scenes[:30], catalog.products, catalog.seed)
    r30 = Retriever(small, emb)
    assert len(r30.index) == 30
    grown = Catalog(catalog.root, catalog.scenes[:40], catalog.products, catalog.seed)
    r40 = Retriever(grown, emb)
    assert r40.added == 10 and r40.index.ids == [s.id for s in catalog.scenes[:40]]
    again = Retriever(grown, emb)  # nothing new: loaded as saved
    assert again.added == 0 and again.index.mmapped
    # the grown index answers exactly as one built from scratch
    fresh = Retriever(grown, emb, index=None)
    scratch = fresh.build()
    product = catalog.product_image(catalog.products[0].id)
    q = emb(product)
    assert r40.index.search(q, 40) == scratch.search(q, 40)
    # a changed scene (same id, new record) forces a full rebuild, not an append
    changed = list(catalog.scenes[:40])
    changed[3] = type(changed[3])(**{**changed[3].__dict__, "category": "changed"})
    r = Retriever(Catalog(catalog.root, changed, catalog.products, catalog.seed), emb)
    assert r.added == 0 and len(r.index) == 40 and r.index.meta["scene_keys"] != \
        r40.index.meta["scene_keys"]
