import numpy as np
import pytest

from stager.catalog import Catalog
from stager.embed import ClipEmbedder, DescriptorEmbedder, scene_crop
from stager.retrieve import Retriever, fit_gap_ratio
from stager.segment import cutout


@pytest.fixture(scope="module")
def retriever(catalog):
    return Retriever(catalog, DescriptorEmbedder())


def test_same_category_first_and_rerank_shrinks_the_gap(catalog, retriever):
    hits, before, after = 0, [], []
    for p in catalog.products:
        product = cutout(catalog.product_image(p.id)[..., :3])
        ranked = retriever.search(product, k=5)
        plain = retriever.search(product, k=5, rerank=False)
        hits += ranked[0].category == p.category
        after.append(np.mean([c.gap_ratio for c in ranked]))
        before.append(np.mean([c.gap_ratio for c in plain]))
        assert [c.score for c in ranked] == sorted([c.score for c in ranked], reverse=True)
    assert hits / len(catalog.products) >= 0.9
    assert np.mean(after) < np.mean(before)


def test_category_filter(catalog, retriever):
    product = catalog.product_image(catalog.products[0].id)
    got = retriever.search(product, k=50, category="bed")
    assert got and all(c.category == "bed" for c in got)
    assert len(got) == sum(s.category == "bed" for s in catalog.scenes)


def test_index_is_persisted_and_rebuilt_when_the_catalog_changes(catalog, retriever):
    again = Retriever(catalog, DescriptorEmbedder())
    assert again.index.ids == retriever.index.ids  # loaded, same order
    smaller = Catalog(catalog.root, catalog.scenes[:20], catalog.products, catalog.seed)
    rebuilt = Retriever(smaller, DescriptorEmbedder())
    assert len(rebuilt.index.ids) == 20
    back = Retriever(catalog, DescriptorEmbedder())
    assert len(back.index.ids) == len(catalog.scenes)


def test_index_factory_setting(catalog, settings_env):
    import faiss

    settings_env(INDEX_FACTORY="HNSW16")
    r = Retriever(catalog, DescriptorEmbedder())
    assert isinstance(faiss.downcast_index(r.index.index), faiss.IndexHNSWFlat)
    settings_env(INDEX_FACTORY="NoSuchIndex")
    with pytest.raises(ValueError, match="index_factory"):
        Retriever(catalog, DescriptorEmbedder())


def test_fit_gap_ratio_by_hand():
    old = np.ones((10, 10), bool)
    half = np.full((10, 5), 255, np.uint8)  # a product half as wide: fits 5 of 10 columns
    assert fit_gap_ratio(half, old) == pytest.approx(0.5)
    assert fit_gap_ratio(np.full((4, 4), 255, np.uint8), old) == 0.0


def test_descriptor_is_unit_norm_and_crop_uses_the_mask(catalog):
    s = catalog.scenes[0]
    crop = scene_crop(catalog.scene_image(s.id), catalog.scene_mask(s.id))
    assert crop.shape[2] == 4 and (crop[..., 3] > 0).sum() == catalog.scene_mask(s.id).sum()
    v = DescriptorEmbedder()(crop)
    assert v.dtype == np.float32 and abs(np.linalg.norm(v) - 1) < 1e-5


def test_clip_embedder_wiring_with_a_tiny_open_clip():
    import open_clip
    import torch

    torch.manual_seed(0)
    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8,
                          "head_width": 16},
           "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2,
                        "layers": 1}}
    model = open_clip.model.CLIP(**cfg)
    pre = open_clip.image_transform(32, is_train=False)
    emb = ClipEmbedder(model, pre, model_name="tiny")
    # the index cache is keyed by the embedder's name: other weights, another name
    torch.manual_seed(1)
    other = ClipEmbedder(open_clip.model.CLIP(**cfg), pre, model_name="tiny")
    assert other.name != emb.name and emb.name.startswith("open_clip:tiny:")
    assert ClipEmbedder(model, pre, model_name="tiny").name == emb.name
    img = np.zeros((40, 30, 4), np.uint8)
    img[5:35, 5:25] = (200, 30, 30, 255)
    v = emb(img)
    assert v.shape == (16,) and abs(np.linalg.norm(v) - 1) < 1e-5
    img2 = img.copy()
    img2[..., :3] = (30, 30, 200)
    assert not np.allclose(v, emb(img2))


def test_a_boxy_chair_is_staged_in_a_chair_scene(catalog, retriever, settings_env,
                                                   monkeypatch):
    """A designer's hard-edged red chair (a square back on a seat and four legs): its nearest
    old product by look and fit is a cabinet, but the catalog products most like it are
    chairs, and the rerank puts a chair's scene first. Without the category term (weight 0)
    the cabinet scene came first."""
    img = np.full((600, 600, 3), 255, np.uint8)
    img[120:320, 190:410] = (200, 30, 35)  # back
    img[320:370, 170:430] = (145, 20, 25)  # seat
    for x0, y1 in ((180, 500), (215, 480), (365, 480), (400, 500)):  # legs
        img[370:y1, x0:x0 + 20] = (90, 60, 40)
    chair = cutout(img)
    query = retriever.embedder(chair)
    assert retriever.likely_category(query) == "chair"
    assert retriever.search(chair, k=3)[0].category == "chair"
    settings_env(RERANK_CATEGORY_WEIGHT="0")
    look_alike = retriever.search(chair, k=3)[0]
    assert look_alike.category != "chair"
    # a scene imported without a category is not "another category": it is not lowered
    from dataclasses import replace

    settings_env(RERANK_CATEGORY_WEIGHT="0.2")
    scene = retriever.catalog.scene
    monkeypatch.setattr(retriever.catalog, "scene", lambda sid: replace(
        scene(sid), category="unknown") if sid == look_alike.scene_id else scene(sid))
    top = retriever.search(chair, k=3)[0]
    assert top.scene_id == look_alike.scene_id and top.category == "unknown"


def test_the_app_warms_the_product_vectors(catalog):
    """The category rerank reads every catalog product's vector: the app's background warm-up
    makes them, so a designer's first search does not wait for them."""
    import app
    from stager.pipeline import get_context

    r = get_context().retriever
    r._products = None  # whatever an earlier test made
    assert "product vectors" in app.warm_models()
    vecs, cats = r._products  # made by the warm-up, not by this test
    assert vecs.shape[0] == len(cats) == len(catalog.products) > 0
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
