"""Retrieved scenes: top-k gallery with similarity, gap ratio and score; category filter."""

from __future__ import annotations

import gradio as gr

from stager.pipeline import get_context

from . import register
from .common import Session, UserError, friendly, public_image

ANY = "any category"


@friendly
def search(state: Session, k: int, category: str):
    """-> (state, gallery items, message)."""
    if state.product is None:
        raise UserError("pick or upload a product first")
    ctx = get_context()
    cands = ctx.retriever.search(state.product, int(k), None if category in (None, "", ANY) else category)
    if not cands:
        raise UserError(f"no scene of category {category!r} in the catalog")
    state.candidates = cands
    items = [(public_image(ctx.catalog.root / ctx.catalog.scene(c.scene_id).image,
                           f"scenes/{c.scene_id}", 384),
              f"{c.scene_id} · {c.score:.2f}")  # short: a gallery caption is one cut line
             for c in cands]
    rows = "; ".join(f"{c.scene_id} {c.score:.2f} (sim {c.similarity:.2f}, gap {c.gap_ratio:.0%})"
                     for c in cands)
    n = len(cands)
    return state, items, (f"{n} scene{'s' if n != 1 else ''}, best first by score = similarity − gap weight × "
                          f"gap ratio: {rows}.")


def categories():
    """The category choices as the catalog has them now (a ``catalog import`` adds some while
    the app runs: imported scenes without a category are "unknown")."""
    return gr.update(choices=[ANY] + get_context().catalog.categories())


def render():
    ctx = get_context()
    with gr.Column():
        gr.Markdown("### 2 · Retrieved scenes")
        with gr.Row():
            k = gr.Slider(1, 24, value=8, step=1, label="top-k", elem_id="topk")
            cat = gr.Dropdown([ANY] + ctx.catalog.categories(), value=ANY, label="category")
        gallery = gr.Gallery(label="Scenes (click one to edit its mask; caption: id · score)",
                             columns=4, height=420,
                             allow_preview=False, elem_id="scene-gallery")
        msg = gr.Markdown("", elem_id="scene-msg")
    register(scene_k=k, scene_category=cat, scene_gallery=gallery, scene_msg=msg)


def listen(state, after_product):
    from . import get

    inputs = [state, get("scene_k"), get("scene_category")]
    outputs = [state, get("scene_gallery"), get("scene_msg")]
    for ev in after_product:
        ev.success(search, inputs, outputs)
    get("scene_k").release(search, inputs, outputs)
    get("scene_category").change(search, inputs, outputs)
    get("scene_category").focus(categories, None, get("scene_category"))
