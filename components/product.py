"""Product panel: pick a catalog product or upload a photo; shows the cutout on a checkerboard."""

from __future__ import annotations

import gradio as gr
import numpy as np

from stager.images import checkerboard, load_image
from stager.pipeline import get_context
from stager.segment import cutout

from . import register
from .common import Session, UserError, friendly, public_image


def catalog_gallery() -> list[tuple[str, str]]:
    """Display copies of the catalog shots (the catalog folder itself is never served)."""
    cat = get_context().catalog
    return [(public_image(cat.root / p.image, f"catalog/{p.id}", 256), f"{p.id} · {p.category}")
            for p in cat.products]


@friendly
def pick_product(state: Session, evt: gr.SelectData):
    """Gallery click -> (state, cutout preview, message)."""
    cat = get_context().catalog
    idx = evt.index if isinstance(evt.index, int) else evt.index[0]
    if idx is None or not (0 <= idx < len(cat.products)):
        raise UserError("that product is not in the catalog")
    p = cat.products[idx]
    return set_product(state, cat.product_image(p.id), p.id)


def set_product(state: Session, image: np.ndarray, name: str):
    rgba = cutout(image)
    state = Session(product_name=name, product=rgba)
    fg = (rgba[..., 3] > 127).mean()
    return state, checkerboard(rgba), f"**{name}** cut out ({fg:.0%} of the photo is product)."


@friendly
def upload_product(state: Session, upload):
    """Upload -> (state, cutout preview, message). ``upload`` is a file path from gr.File."""
    if upload is None:
        raise UserError("no file was uploaded")
    path = upload if isinstance(upload, str) else getattr(upload, "name", None)
    image = load_image(path, keep_alpha=True)
    return set_product(state, image, "uploaded product")


def render():
    with gr.Column():
        gr.Markdown("### 1 · Product")
        gallery = gr.Gallery(catalog_gallery(), label="Catalog products (click one)", columns=3,
                             height=260, allow_preview=False, elem_id="product-gallery")
        upload = gr.File(label="…or upload a product photo on a plain background",
                         file_types=["image"], elem_id="product-upload")
        cut = gr.Image(label="Cutout (alpha on a checkerboard)", interactive=False, height=220,
                       elem_id="product-cutout")
        msg = gr.Markdown("Pick a product to start.", elem_id="product-msg")
    register(product_gallery=gallery, product_upload=upload, product_cutout=cut, product_msg=msg)


def listen(state):
    from . import get

    ev1 = get("product_gallery").select(pick_product, [state],
                                        [state, get("product_cutout"), get("product_msg")])
    ev2 = get("product_upload").upload(upload_product, [state, get("product_upload")],
                                       [state, get("product_cutout"), get("product_msg")])
    return ev1, ev2
