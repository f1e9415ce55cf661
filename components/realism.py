"""Shadows and light: the new product's shadow (estimated from the old one's, or set by hand),
the product photo's own shadow (drop it, or keep it as a multiply layer), removal of the old
product's shadow, and light matching. The settings live in the session and go into every
staging request; changing one re-draws the placement preview and clears stale outputs."""

from __future__ import annotations

import gradio as gr

from . import register
from .common import Session


def settings(state: Session, product_shadow: str, new_shadow: bool, auto: bool, vx: float,
             vy: float, strength: float, remove_old: bool, light: float) -> Session:
    """Store the controls as StageRequest fields in the session."""
    state.realism = {"product_shadow": "keep" if product_shadow.startswith("keep") else "drop",
                     "shadow": bool(new_shadow), "remove_old_shadow": bool(remove_old),
                     "harmonise": float(light)}
    if not auto:
        state.realism["light"] = (("vx", float(vx)), ("vy", float(vy)),
                                  ("strength", float(strength)))
    return state


def request_fields(state: Session) -> dict:
    """The session's realism settings as keyword arguments of ``StageRequest``."""
    out = dict(state.realism)
    if "light" in out:
        out["light"] = dict(out["light"])
    return out


def render():
    with gr.Accordion("Shadows and light", open=False):
        with gr.Row():
            product_shadow = gr.Radio(["drop it", "keep it (multiply layer)"], value="drop it",
                                      label="the product photo's own shadow")
            new_shadow = gr.Checkbox(True, label="shadow under the new product")
            remove_old = gr.Checkbox(True, label="remove the old product's shadow (blue)")
        with gr.Row():
            auto = gr.Checkbox(True, label="auto shadow (from the old one)")
        with gr.Row():
            vx = gr.Slider(-1.5, 1.5, value=0.0, step=0.05, label="shadow x / height",
                           interactive=False)
            vy = gr.Slider(-1.0, 0.5, value=-0.15, step=0.05, label="shadow y / height",
                           interactive=False)
            strength = gr.Slider(0.0, 1.0, value=0.35, step=0.05,
                                 label="cast shadow strength (auto off)", interactive=False)
        light = gr.Slider(0.0, 1.0, value=0.0, step=0.05,
                          label="light matching (0 = the product as photographed)")
    register(real_product_shadow=product_shadow, real_new_shadow=new_shadow, real_auto=auto,
             real_vx=vx, real_vy=vy, real_strength=strength, real_remove_old=remove_old,
             real_light=light)


def controls():
    from . import get

    return [get(k) for k in ("real_product_shadow", "real_new_shadow", "real_auto", "real_vx",
                             "real_vy", "real_strength", "real_remove_old", "real_light")]


def _auto(state: Session, auto: bool):
    """The direction and strength sliders apply only when the direction is set by hand; when
    the user takes over they start from the estimate in use."""
    if auto or not state.light:
        upd = gr.update(interactive=not auto)
        return upd, upd, upd
    lt = state.light
    return (gr.update(interactive=True, value=round(float(lt.get("vx", 0.0)), 2)),
            gr.update(interactive=True, value=round(float(lt.get("vy", -0.15)), 2)),
            gr.update(interactive=True, value=round(float(lt.get("strength", 0.35)), 2)))


def listen(state):
    """Each change stores the settings; returns the events so the preview can follow."""
    from . import get

    get("real_auto").change(_auto, [state, get("real_auto")],
                            [get("real_vx"), get("real_vy"), get("real_strength")])
    events = []
    for c in controls():
        event = c.release if isinstance(c, gr.Slider) else c.change
        events.append(event(settings, [state] + controls(), [state]))
    return events
