"""The page: tabs for staging, auditing, results and model status. Arranges only."""

from __future__ import annotations

import gradio as gr

from . import api, audit, mask, outputs, parallax, placement, product, results, scenes, stale, status
from . import get
from .common import Session

PUBLIC_API = api.ENDPOINTS  # the documented endpoints; every other event is private

# A slider's number box sends its value (Gradio's "release") only when it loses focus; a
# designer types a scale and presses Enter. Enter in any number box commits it the same way,
# a moment later: the box's value reaches the component only after its own input event has
# been handled (blurring at once sent the previous value after a paste or fast typing).
ENTER_COMMITS_JS = """
() => {
  if (window.__stagerEnter) return; window.__stagerEnter = true;
  document.addEventListener('keydown', (e) => {
    const el = e.target;
    if (e.key !== 'Enter' || !el || el.tagName !== 'INPUT' || el.type !== 'number') return;
    el.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => el.blur(), 120);
  });
}
"""

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
        stale.listen(state, after_product, mask_events)
        audit.listen()
        results.listen()
        status.listen()
        api.render_and_listen()
        demo.load(None, None, None, js=audit.KEYS_JS)
        demo.load(None, None, None, js=ENTER_COMMITS_JS)
        demo.load(audit.refresh_lists, None, get("audit_campaign"))
        demo.load(results.on_load, None, [get("results_panel"), get("results_note"),
                                          get("results_campaign"), get("results_pool")])
    make_private(demo, PUBLIC_API)
    return demo


def make_private(demo: gr.Blocks, public: tuple[str, ...]) -> list[str]:
    """Every event except the documented ``public`` endpoints becomes private: not listed by
    the server's API info nor callable by name from ``gradio_client``. Done here once, so a
    newly added UI event can never become an endpoint by accident. Returns the names hidden."""
    hidden = []
    for fn in demo.fns.values():
        if fn.api_name not in public and fn.api_visibility != "private":
            fn.api_visibility = "private"
            hidden.append(str(fn.api_name))
    return hidden
