"""The page: tabs for staging, auditing, results and model status. Arranges only."""

from __future__ import annotations

import gradio as gr

from . import api, audit, mask, outputs, parallax, placement, product, results, scenes, status
from .common import Session

CSS = """
#mask-badge p {font-size: 0.95em}
.gallery-item .caption-label {font-size: 0.75em}
"""


def build(concurrency: int = 1) -> gr.Blocks:
    with gr.Blocks(title="Product Stager") as demo:
        state = gr.State(Session())
        gr.Markdown("# Product Stager\nStage a catalog product in a room: retrieve scenes with a "
                    "similar product, refine the old product's mask, and compare inpainting "
                    "backends side by side.")
        with gr.Tabs():
            with gr.Tab("Stage", id="stage"):
                with gr.Row():
                    with gr.Column(scale=1):
                        product.render()
                    with gr.Column(scale=2):
                        scenes.render()
                with gr.Row():
                    with gr.Column():
                        mask.render()
                    with gr.Column():
                        placement.render()
                outputs.render()
                parallax.render()
            with gr.Tab("Audit", id="audit"):
                audit.render()
            with gr.Tab("Results", id="results"):
                results.render()
            with gr.Tab("Status", id="status"):
                status.render()
        after_product = product.listen(state)
        scenes.listen(state, after_product)
        mask_events = mask.listen(state)
        placement.listen(state, mask_events)
        outputs.listen(state, concurrency)
        parallax.listen(state)
        audit.listen()
        results.listen()
        status.listen()
        api.render_and_listen()
        demo.load(None, None, None, js=audit.KEYS_JS)
    return demo
