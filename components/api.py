"""Stateless API endpoints for scripts and ``gradio_client``: /retrieve, /propose, /stage.

They call the same library functions as the UI handlers; hidden components carry the
values so images travel to remote clients as files."""

from __future__ import annotations

import gradio as gr

from stager.backends import REGISTRY
from stager.images import overlay
from stager.pipeline import StageRequest, get_context, iter_outputs, prepare, report, StageResult

from .common import UserError, friendly


@friendly
def api_retrieve(product_id: str, k: float, category: str) -> list[dict]:
    ctx = get_context()
    if not ctx.catalog.has_product(product_id):
        raise UserError(f"product {product_id!r} is not in the catalog")
    from stager.segment import cutout

    cands = ctx.retriever.search(cutout(ctx.catalog.product_image(product_id)), int(k),
                                 category or None)
    return [c.to_dict() for c in cands]


def _mask_from(scene_id: str, points: list | None):
    ctx = get_context()
    rec = ctx.catalog.scene(scene_id)
    img = ctx.catalog.scene_image(scene_id)
    if not points:
        m = ctx.catalog.scene_mask(scene_id)
        if m is None:
            raise UserError(f"scene {scene_id} has no stored mask: give points")
        return img, m, "stored annotation", []
    seg = ctx.segmenter
    seg.set_image(img, key=f"scene:{scene_id}")
    prop = seg.predict([(p[0], p[1]) for p in points], [int(p[2]) for p in points],
                       box=tuple(rec.box) if rec.box else None)
    return img, prop.masks[0], prop.method, prop.scores


@friendly
def api_propose(scene_id: str, points: list | None):
    img, m, method, scores = _mask_from(scene_id, points)
    return {"method": method, "scores": scores, "area": int(m.sum())}, overlay(img, m)


@friendly
def api_stage(product_id: str, scene_id: str, points: list | None, backends: str):
    names = [b for b in (backends or "").split(",") if b] or list(REGISTRY)
    _, mask, method, _ = _mask_from(scene_id, points)
    req = StageRequest(product=product_id, scene_id=scene_id, old_mask=mask)
    prep = prepare(req, get_context())
    outs = list(iter_outputs(prep, names))
    rep = report(StageResult(prep, outs))
    rep["mask_method"] = method
    gallery = [(o.image, o.backend) for o in outs if o.ok]
    return rep, prep.composite, gallery


def render_and_listen():
    with gr.Column(visible=False):
        pid, sid, k, cat = gr.Textbox(), gr.Textbox(), gr.Number(8), gr.Textbox()
        pts, names = gr.JSON(), gr.Textbox()
        out_json, out_img, out_gal = gr.JSON(), gr.Image(), gr.Gallery()
        b1, b2, b3 = gr.Button(), gr.Button(), gr.Button()
    b1.click(api_retrieve, [pid, k, cat], out_json, api_name="retrieve")
    b2.click(api_propose, [sid, pts], [out_json, out_img], api_name="propose")
    b3.click(api_stage, [pid, sid, pts, names], [out_json, out_img, out_gal], api_name="stage",
             concurrency_id="models")



