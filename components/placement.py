"""Placement: scale / offset / flip of the new product, dilation of the old mask, and the
composite preview with the gap overlay."""

from __future__ import annotations

import gradio as gr

from stager.config import get_settings
from stager.images import overlay
from stager.pipeline import StageRequest, get_context, prepare
from stager.segment import refine

from . import register
from .common import Session, UserError, friendly
from .realism import request_fields


def request(state: Session, scale: float, dx: float, dy: float, flip: bool, dilation: int,
            seed: int = 0) -> StageRequest:
    if state.product is None:
        raise UserError("pick or upload a product first")
    if state.scene is None:
        raise UserError("choose a scene first")
    if state.mask is None or not state.mask.any():
        raise UserError("the old-product mask is empty: click on the product or paint it")
    mask = refine(state.mask, dilation=int(dilation))
    shadow = state.old_shadow & ~mask if state.old_shadow is not None else None
    return StageRequest(product=state.product, scene_id=state.scene_id, old_mask=mask,
                        scale=float(scale), offset=(float(dx), float(dy)), flip=bool(flip),
                        seed=seed, old_shadow=shadow, **request_fields(state))


@friendly
def preview(state: Session, scale, dx, dy, flip, dilation):
    """-> (state, composite with gap overlay, message)."""
    if state.product is None or state.scene is None or state.mask is None:
        return state, None, "Choose a product and a scene to see the composite."
    prep = prepare(request(state, scale, dx, dy, flip, dilation), get_context())
    state.composite = prep.composite
    img = overlay(prep.composite, prep.gap, color=(255, 200, 0), alpha=0.55)
    lt = prep.light
    state.light = lt.to_dict()
    new_shadow = _light_note(lt) if prep.request.shadow else \
        "none (\"shadow under the new product\" is off)"
    return state, img, (f"Visible gap after the paste (yellow): {int(prep.gap.sum()):,} px; "
                        f"rebuilt background: {int(prep.fill_mask.sum()):,} px (the old product,"
                        f" its margin and {_shadow_note(prep)}; {_kept_note(prep)}). "
                        f"New shadow: {new_shadow}.")


def _kept_note(prep) -> str:
    settings = get_settings()
    if not settings.margin_keep:
        return "the whole margin filled: STAGER_MARGIN_KEEP is off"
    margin = settings.gap_margin if prep.request.margin is None else prep.request.margin
    return f"{int(prep.kept(margin).sum()):,} px of floor in the margin kept as they are"


def render():
    with gr.Column():
        gr.Markdown("### 4 · Placement")
        with gr.Row():
            scale = gr.Slider(0.3, 2.0, value=1.0, step=0.05, label="scale", elem_id="scale")
            dilation = gr.Slider(-10, 20, value=0, step=1, label="mask dilation (px)")
        with gr.Row():
            dx = gr.Slider(-0.5, 0.5, value=0.0, step=0.01, label="offset x (× box width)")
            dy = gr.Slider(-0.5, 0.5, value=0.0, step=0.01, label="offset y (× box height)")
            flip = gr.Checkbox(False, label="flip")
        from . import realism

        realism.render()
        comp = gr.Image(label="Composite (yellow: the gap to inpaint)", interactive=False,
                        height=360, elem_id="composite")
        msg = gr.Markdown("", elem_id="placement-msg")
    register(place_scale=scale, place_dx=dx, place_dy=dy, place_flip=flip, place_dilation=dilation,
             place_composite=comp, place_msg=msg)


def controls():
    from . import get

    return [get("place_scale"), get("place_dx"), get("place_dy"), get("place_flip"),
            get("place_dilation")]


def listen(state, mask_events):
    from . import get

    inputs = [state] + controls()
    outs = [state, get("place_composite"), get("place_msg")]
    for ev in mask_events:
        ev.success(preview, inputs, outs)
    for c in controls():  # sliders on release (not every drag step); the checkbox on change
        event = c.release if isinstance(c, gr.Slider) else c.change
        event(preview, inputs, outs)
    from . import realism
    from .stale import clear_if_stale

    stale_out = [state, get("out_gallery"), get("out_slider"), get("out_download"),
                 get("out_msg")]
    for ev in realism.listen(state):
        ev.then(preview, inputs, outs).then(clear_if_stale, inputs, stale_out)


def _shadow_note(prep) -> str:
    """How the old shadow is removed: relit, and what of it is filled."""
    shadow = prep.old_shadow
    if shadow is None or not shadow.any():
        return "no old shadow found"
    req = prep.request
    if req is not None and not req.remove_old_shadow:
        return f"the old shadow of {int(shadow.sum()):,} px kept"
    filled = int((shadow & prep.fill_mask).sum())
    return (f"what is left of the old shadow, {filled:,} of its {int(shadow.sum()):,} px; the "
            "rest is relit")


def _light_note(lt) -> str:
    """The new product's shadow in words: a contact shadow, and the cast one when fitted."""
    contact = f"contact shadow {lt.contact:.2f}"
    if lt.strength <= 0:
        return f"{contact}, no cast shadow ({lt.source})"
    return (f"{contact} and a cast shadow {lt.strength:.2f} (x {lt.vx:+.2f}, y {lt.vy:+.2f} per "
            f"unit height; {lt.source})")
