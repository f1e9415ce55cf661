"""The documented API for scripts and ``gradio_client``: /retrieve, /propose, /stage, and the
scripted-vote pair /next_pair, /vote (handlers in ``components.audit``).

They call the same library functions as the UI handlers; hidden components carry the values
so images travel to remote clients as files. Products are catalog ids or uploaded images,
scenes are catalog ids: a string is never opened as a server path, and every unknown id gets
the same error whether or not a file of that name exists. Every other event of the app is
private (``layout.PUBLIC_API``)."""

from __future__ import annotations

import gradio as gr
import numpy as np

from stager.backends import REGISTRY
from stager.catalog import CatalogError
from stager.images import load_image, overlay
from stager.pipeline import StageRequest, StageResult, get_context, iter_outputs, prepare, report

from . import audit
from .common import UserError, friendly

ENDPOINTS = ("retrieve", "propose", "stage", "next_pair", "vote")


def _label(value) -> str:
    text = str(value)
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _product(product_id: str | None, upload: np.ndarray | None) -> tuple[str, np.ndarray]:
    """(name, RGB/RGBA image) of a catalog product or an uploaded image; nothing else."""
    if upload is not None:
        return "uploaded product", load_image(np.asarray(upload), keep_alpha=True)
    cat = get_context().catalog
    if isinstance(product_id, str) and cat.has_product(product_id):
        return product_id, cat.product_image(product_id)
    raise UserError(f"product {_label(product_id)} is not a catalog product id: give one "
                    "(see the catalog) or upload an image")


def _scene(scene_id: str | None) -> str:
    if isinstance(scene_id, str):
        try:
            return get_context().catalog.scene(scene_id).id
        except CatalogError:
            pass
    raise UserError(f"scene {_label(scene_id)} is not a catalog scene id: take one from "
                    "/retrieve")


def _points(points) -> list[tuple[float, float, int]]:
    """``[[x, y, label], ...]`` with label 1 (positive) or 0 (negative)."""
    if not points:
        return []
    if not isinstance(points, list) or len(points) > 64:
        raise UserError("points must be a list of at most 64 [x, y, label] triples")
    out = []
    for p in points:
        if (not isinstance(p, (list, tuple)) or len(p) != 3
                or not all(isinstance(v, (int, float)) for v in p) or p[2] not in (0, 1)):
            raise UserError("each point must be [x, y, label] with label 1 (add) or 0 (remove)")
        out.append((float(p[0]), float(p[1]), int(p[2])))
    return out


@friendly
def api_retrieve(product_id: str, k: float, category: str, upload=None) -> list[dict]:
    _, image = _product(product_id, upload)
    from stager.segment import cutout

    ctx = get_context()
    k = int(k or 8)
    if not 1 <= k <= 64:
        raise UserError("k must be between 1 and 64")
    cands = ctx.retriever.search(cutout(image), k, category or None)
    return [c.to_dict() for c in cands]


def _mask_from(scene_id: str, points):
    ctx = get_context()
    scene_id = _scene(scene_id)
    pts = _points(points)
    rec = ctx.catalog.scene(scene_id)
    img = ctx.catalog.scene_image(scene_id)
    if not pts:
        m = ctx.catalog.scene_mask(scene_id)
        if m is None:
            raise UserError(f"scene {scene_id} has no stored mask: give points")
        return scene_id, img, m, "stored annotation", []
    prop = ctx.segmenter.propose(img, [(x, y) for x, y, _ in pts], [lab for *_, lab in pts],
                                 box=tuple(rec.box) if rec.box else None)
    return scene_id, img, prop.masks[0], prop.method, prop.scores


@friendly
def api_propose(scene_id: str, points):
    _, img, m, method, scores = _mask_from(scene_id, points)
    return {"method": method, "scores": scores, "area": int(m.sum())}, overlay(img, m)


@friendly
def api_stage(product_id: str, scene_id: str, points, backends: str, upload=None):
    names = [b.strip() for b in (backends or "").split(",") if b.strip()] or list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise UserError(f"unknown backend {_label(unknown[0])}; choose from {', '.join(REGISTRY)}")
    name, image = _product(product_id, upload)
    scene_id, _, mask, method, _ = _mask_from(scene_id, points)
    # the product goes in as an image array: the pipeline never resolves a path from the API
    req = StageRequest(product=image, scene_id=scene_id, old_mask=mask)
    prep = prepare(req, get_context())
    prep.product_name = name
    outs = list(iter_outputs(prep, names))
    rep = report(StageResult(prep, outs))
    rep["mask_method"] = method
    gallery = [(o.image, o.backend) for o in outs if o.ok]
    return rep, prep.composite, gallery


def render_and_listen():
    with gr.Column(visible=False):
        pid, sid, k, cat = gr.Textbox(), gr.Textbox(), gr.Number(8), gr.Textbox()
        upload = gr.Image(type="numpy", image_mode=None, label="product image (optional)")
        pts, names = gr.JSON(), gr.Textbox()
        out_json, out_img, out_gal = gr.JSON(), gr.Image(), gr.Gallery()
        b1, b2, b3 = gr.Button(), gr.Button(), gr.Button()
    b1.click(api_retrieve, [pid, k, cat, upload], out_json, api_name="retrieve")
    b2.click(api_propose, [sid, pts], [out_json, out_img], api_name="propose")
    b3.click(api_stage, [pid, sid, pts, names, upload], [out_json, out_img, out_gal],
             api_name="stage", concurrency_id="models")

    render_vote_api()


def render_vote_api():
    """The scripted-vote endpoints alone (the app calls this; so does the audit-only test
    server of the kill -9 test, which needs no catalog)."""
    with gr.Column(visible=False):
        campaign, auditor, comparison = gr.Textbox(), gr.Textbox(), gr.Textbox()
        outcome, comment = gr.Textbox(), gr.Textbox()
        pair, img_a, img_b = gr.JSON(), gr.Image(type="filepath"), gr.Image(type="filepath")
        b4, b5 = gr.Button(), gr.Button()
    # votes are light database work: like the tab's voting events they skip the queue, so
    # they never wait behind model jobs
    b4.click(audit.api_next_pair, [campaign, auditor], [pair, img_a, img_b],
             api_name="next_pair", **audit.AUDIT_QUEUE)
    b5.click(audit.api_vote, [campaign, auditor, comparison, outcome, comment],
             [pair, img_a, img_b], api_name="vote", **audit.AUDIT_QUEUE)
