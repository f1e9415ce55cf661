"""Outputs never outlive their inputs: a change of product, scene, mask or placement clears
the outputs, the slider and the download on screen. (The pool checks again on its own:
``outputs.send_to_pool`` refuses outputs whose inputs changed.)"""

from __future__ import annotations

import gradio as gr

from .common import Session, job_key


def clear_if_stale(state: Session, scale, dx, dy, flip, dilation):
    """-> (state, gallery, slider, download, message): unchanged while the outputs still
    match the inputs on screen, else all cleared."""
    if state.outputs and job_key(state, scale, dx, dy, flip, dilation) == state.outputs_key:
        return state, gr.update(), gr.update(), gr.update(), gr.update()
    state.clear_outputs()
    return (state, [], gr.update(value=None, label="Before / after (composite vs output)"),
            gr.update(value=None, visible=False), "")


def reject_upload():
    """After a refused upload: no product, no scenes, no outputs of the previous one."""
    return (Session(), None, "Upload refused: pick a catalog product or upload another photo.",
            [], "")


def listen(state, product_events, mask_events):
    from . import get
    from .placement import controls

    targets = [state, get("out_gallery"), get("out_slider"), get("out_download"), get("out_msg")]
    inputs = [state] + controls()
    for ev in (*product_events, *mask_events):
        ev.then(clear_if_stale, inputs, targets)
    for c in controls():
        c.change(clear_if_stale, inputs, targets)
    product_events[1].failure(reject_upload, None,
                              [state, get("product_cutout"), get("product_msg"),
                               get("scene_gallery"), get("scene_msg")]).then(
        clear_if_stale, inputs, targets)
