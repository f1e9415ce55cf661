"""Mask panel: the scene with the proposed old-product mask as an overlay; clicks add positive
or negative points and update the mask at once; three candidates; brush add/remove layers;
undo/reset; a badge naming what made the mask (SAM, GrabCut fallback, stored annotation).

In Gradio 6.31 a mask layer set from the server does not render in ``gr.ImageEditor``, so the
proposal is drawn on the editor's background and the user paints "add" / "remove" layers.
"""

from __future__ import annotations

import time

import cv2
import gradio as gr
import numpy as np

from stager.images import overlay
from stager.shadows import find_old_shadow
from stager.pipeline import get_context
from stager.segment import apply_click, refine

from . import register
from .common import Session, UserError, friendly

STORED = "stored annotation"


SHADOW_COLOR = (40, 120, 255)  # the old product's shadow, drawn apart from the mask (pink)


def update_shadow(state: Session) -> None:
    """Detect the old product's shadow for the current mask unless the user painted it."""
    if state.shadow_edited or state.scene is None:
        return
    if state.mask is None or not state.mask.any():
        state.old_shadow, state.shadow_key = None, ""
        return
    import hashlib

    key = f"{state.scene_id}:{hashlib.sha1(np.packbits(state.mask).tobytes()).hexdigest()}"
    if key != state.shadow_key:  # detect once per mask, not on every re-draw of the view
        state.old_shadow, state.shadow_key = find_old_shadow(state.scene, state.mask).mask, key


def _view(state: Session) -> np.ndarray:
    update_shadow(state)
    img = overlay(state.scene, state.mask) if state.mask is not None else state.scene.copy()
    if state.old_shadow is not None and state.old_shadow.any():
        img = overlay(img, state.old_shadow, color=SHADOW_COLOR, alpha=0.45)
    for (x, y), lab in zip(state.points, state.labels):
        col = (40, 200, 60) if lab == 1 else (230, 40, 40)
        cv2.circle(img, (int(x), int(y)), 7, (255, 255, 255), -1)
        cv2.circle(img, (int(x), int(y)), 5, col, -1)
    return img


def _editor(state: Session) -> dict:
    return {"background": _view(state), "layers": [], "composite": None}


def _choices(state: Session) -> list[str]:
    out = [f"candidate {i + 1} (score {s:.2f})" for i, s in enumerate(state.scores)]
    if get_context().catalog.scene(state.scene_id).mask:
        out.append(STORED)
    return out


def _badge(state: Session) -> str:
    return f"**Mask by:** {state.method}"


def _outputs(state: Session, msg: str):
    choices = _choices(state)
    return (state, _view(state), _editor(state), gr.update(choices=choices, value=None), _badge(state), msg)


@friendly
def open_scene(state: Session, evt: gr.SelectData):
    """Scene gallery click -> (state, view, editor, candidates, badge, message)."""
    if not state.candidates:
        raise UserError("retrieve scenes first")
    idx = evt.index if isinstance(evt.index, int) else evt.index[0]
    cand = state.candidates[idx]
    return load_scene(state, cand.scene_id)


def load_scene(state: Session, scene_id: str):
    ctx = get_context()
    rec = ctx.catalog.scene(scene_id)
    state.scene_id, state.scene = scene_id, ctx.catalog.scene_image(scene_id)
    state.points, state.labels, state.history = [], [], []
    state.old_shadow, state.shadow_edited = None, False  # re-detected for the new scene
    state.clear_outputs()  # outputs of another scene must not stay on screen or reach the pool
    state.box = tuple(rec.box) if rec.box else None
    state.proposals, state.scores = [], []
    if state.box is not None:
        prop = ctx.segmenter.propose(state.scene, box=state.box)
        state.proposals, state.scores, state.method = prop.masks, prop.scores, prop.method
    stored = ctx.catalog.scene_mask(scene_id)
    if stored is not None:
        state.mask, state.method = stored, STORED
    elif state.proposals:
        state.mask = state.proposals[0]
    else:
        state.mask = None
    msg = (f"Scene **{scene_id}** ({rec.category}). Click the image to add points; toggle "
           "add/remove; or paint in the brush tab.")
    return _outputs(state, msg)


@friendly
def click(state: Session, mode: str, evt: gr.SelectData):
    """A click on the scene: add a point (positive or negative) and refine the current mask
    with the new proposal (the stored annotation or an edited mask is refined, not replaced)."""
    if state.scene is None:
        raise UserError("choose a scene first, then click on it")
    x, y = float(evt.index[0]), float(evt.index[1])
    positive = mode.startswith("add")
    t0 = time.perf_counter()
    state.snapshot()
    state.points.append((x, y))
    state.labels.append(1 if positive else 0)
    prop = get_context().segmenter.propose(state.scene, state.points, state.labels, box=state.box)
    state.proposals, state.scores = prop.masks, prop.scores
    base = state.mask if state.mask is not None else np.zeros(state.scene.shape[:2], bool)
    state.mask = apply_click(base, prop.masks[0], (x, y), positive)
    origin = state.method.split(" + clicks")[0] if state.method else prop.method
    state.method = f"{origin} + clicks ({prop.method})"
    state.clear_outputs()
    ms = (time.perf_counter() - t0) * 1000
    return _outputs(state, f"{len(state.points)} point(s); mask updated in {ms:.0f} ms.")


@friendly
def choose(state: Session, choice: str | None):
    if choice is None or state.scene is None:
        return _view(state), _editor(state), _badge(state)
    if choice == STORED:
        state.push(get_context().catalog.scene_mask(state.scene_id))
        state.method = STORED
    else:
        i = int(choice.split()[1]) - 1
        state.push(state.proposals[i])
        state.method = f"candidate {i + 1} of {get_context().segmenter.method}"
    state.clear_outputs()
    return _view(state), _editor(state), _badge(state)


def _layer_mask(layer) -> np.ndarray | None:
    if layer is None:
        return None
    arr = np.asarray(layer)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return arr[..., 3] > 0
    if arr.ndim == 3:
        return arr.max(axis=2) > 0
    return arr > 0


@friendly
def apply_brush(state: Session, editor: dict | None, target: str = "product mask"):
    """Read the editor's "add" and "remove" layers and apply them to the mask, or to the old
    product's shadow when ``target`` says so (blue in the view)."""
    if state.scene is None:
        raise UserError("choose a scene first")
    layers = (editor or {}).get("layers") or []
    add = _layer_mask(layers[0]) if len(layers) > 0 else None
    rem = _layer_mask(layers[1]) if len(layers) > 1 else None
    empty = np.zeros(state.scene.shape[:2], bool)
    for m in (add, rem):
        if m is not None and m.shape != empty.shape:
            raise UserError("the brush layers do not match the scene size")
    if target.startswith("old shadow"):
        base = state.old_shadow if state.old_shadow is not None else empty
        state.old_shadow = refine(base, add, rem) & ~(state.mask if state.mask is not None
                                                       else empty)
        state.shadow_edited = True
        state.clear_outputs()
        return _view(state), _editor(state), _badge(state), "Old-shadow strokes applied."
    base = state.mask if state.mask is not None else empty
    state.push(refine(base, add, rem))
    state.method = f"{state.method} + brush" if "brush" not in state.method else state.method
    state.clear_outputs()
    return _view(state), _editor(state), _badge(state), "Brush strokes applied."


@friendly
def undo(state: Session):
    """Step back exactly one mask action (a click, a candidate, a brush application)."""
    if not state.undo():
        return _view(state), _editor(state), _badge(state), "Nothing to undo."
    state.clear_outputs()
    return _view(state), _editor(state), _badge(state), "Undone one step."


@friendly
def reset(state: Session):
    if state.scene_id is None:
        raise UserError("choose a scene first")
    return load_scene(state, state.scene_id)


def render():
    with gr.Column():
        gr.Markdown("### 3 · Old-product mask")
        badge = gr.Markdown("**Mask by:** –", elem_id="mask-badge")
        with gr.Tabs():
            with gr.Tab("Click"):
                mode = gr.Radio(["add (+)", "remove (−)"], value="add (+)", label="click adds",
                                elem_id="click-mode")
                view = gr.Image(label="Scene (click to refine the mask)", interactive=False,
                                height=420, elem_id="mask-view")
            with gr.Tab("Brush"):
                editor = gr.ImageEditor(label="Paint on layer 'add' or 'remove', then apply",
                                        layers=gr.LayerOptions(allow_additional_layers=False,
                                                               layers=["add", "remove"]),
                                        brush=gr.Brush(colors=["#00c853"], color_mode="fixed"),
                                        sources=(), height=420, elem_id="mask-editor")
                target = gr.Radio(["product mask", "old shadow (blue)"], value="product mask",
                                  label="the brush edits", elem_id="brush-target")
                apply = gr.Button("Apply brush strokes")
        cands = gr.Radio([], label="Candidate masks", elem_id="mask-candidates")
        with gr.Row():
            undo_b = gr.Button("Undo", size="sm")
            reset_b = gr.Button("Reset", size="sm")
        msg = gr.Markdown("", elem_id="mask-msg")
    register(mask_badge=badge, mask_mode=mode, mask_view=view, mask_editor=editor,
             mask_brush_target=target,
             mask_apply=apply, mask_candidates=cands, mask_undo=undo_b, mask_reset=reset_b,
             mask_msg=msg)


def listen(state):
    from . import get

    outs = [state, get("mask_view"), get("mask_editor"), get("mask_candidates"), get("mask_badge"),
            get("mask_msg")]
    scene_ev = get("scene_gallery").select(open_scene, [state], outs)
    click_ev = get("mask_view").select(click, [state, get("mask_mode")], outs)
    choose_ev = get("mask_candidates").input(choose, [state, get("mask_candidates")],
                                             [get("mask_view"), get("mask_editor"), get("mask_badge")])
    small = [get("mask_view"), get("mask_editor"), get("mask_badge"), get("mask_msg")]
    brush_ev = get("mask_apply").click(apply_brush, [state, get("mask_editor"),
                                                      get("mask_brush_target")], small)
    undo_ev = get("mask_undo").click(undo, [state], small)
    reset_ev = get("mask_reset").click(reset, [state], outs)
    return [scene_ev, click_ev, choose_ev, brush_ev, undo_ev, reset_ev]
