"""Parallax clip of the selected output: the "Make parallax clip" button (in the outputs row)
renders a layered 2.5D clip with ``stager.parallax`` and shows it as an MP4 with a GIF download.

Layers come from the session: the chosen backend's background plate (``state.plates``; when a
backend gave none, ``stager.parallax`` makes the classical Telea fallback and the message says
so), the output image and the placed product's alpha (``state.product_alpha``).
"""

from __future__ import annotations

import secrets
import time

import gradio as gr

from stager import parallax as px
from stager.config import get_settings

from . import register
from .common import Session, UserError, friendly, said
from .outputs import shown_output

MOVES = {"sway (sideways, looping)": "sway", "push-in (zoom toward the product)": "push"}


def chosen_output(state: Session) -> str:
    """The backend whose output the clip animates: the one the user is looking at (the last
    clicked, else the one the before/after slider shows), never simply the first run."""
    if not state.outputs:
        raise UserError("run the backends first, then pick an output for the clip")
    if state.product_alpha is None:
        raise UserError("no product layer: run the backends again")
    return shown_output(state)


@friendly
def make_clip(state: Session, seconds, fps, amplitude, move, progress=gr.Progress()):
    """-> (MP4 path for the video player, GIF download update, message)."""
    name = chosen_output(state)
    move = MOVES.get(move, move)
    t0 = time.perf_counter()

    def report(lo: float, hi: float):
        return lambda frac, msg: progress(lo + (hi - lo) * frac, desc=msg)

    clip = px.make_clip(state.outputs[name], state.product_alpha, state.plates.get(name),
                        seconds=float(seconds), fps=int(fps), amplitude=float(amplitude),
                        move=move, progress=report(0.0, 0.7))
    # served files live in the public folder only, under an unguessable name
    stem = (get_settings().public_dir / "clips"
            / f"{secrets.token_hex(8)}_{state.scene_id}_{name}")
    mp4 = px.write_clip(clip.frames, stem.with_name(stem.name + "_parallax.mp4"), clip.fps,
                        report(0.7, 0.85))
    gif = px.write_clip(clip.frames, stem.with_name(stem.name + "_parallax.gif"), clip.fps,
                        report(0.85, 1.0))
    ms = (time.perf_counter() - t0) * 1000
    from stager.backends import get_backend

    msg = (f"Parallax clip of **{get_backend(name).label}**: {len(clip.frames)} frames, {clip.seconds:.1f} s at "
           f"{clip.fps} fps, {clip.move}, amplitude {clip.amplitude:g}; plate: "
           f"{clip.plate_source} · {ms:.0f} ms")
    return str(mp4), gr.update(value=str(gif), visible=True), msg


def render():
    s = get_settings()
    default_move = next((k for k, v in MOVES.items() if v == s.parallax_move), next(iter(MOVES)))
    with gr.Column():
        with gr.Accordion("Parallax clip settings", open=False), gr.Row():
            seconds = gr.Slider(1, 10, value=s.parallax_seconds, step=0.5, label="seconds")
            fps = gr.Slider(8, 30, value=s.parallax_fps, step=1, label="fps")
            amplitude = gr.Slider(0.005, 0.1, value=s.parallax_amplitude, step=0.005,
                                  label="amplitude (nearest layer's shift / width)")
            move = gr.Radio(list(MOVES), value=default_move, label="camera move")
        video = gr.Video(label="Parallax clip (MP4)", interactive=False, elem_id="parallax-video",
                         loop=True, autoplay=True, height=420)
        gif = gr.DownloadButton("Download GIF", visible=False, elem_id="parallax-gif")
        msg = gr.Markdown("", elem_id="parallax-msg")
    register(px_seconds=seconds, px_fps=fps, px_amplitude=amplitude, px_move=move,
             px_video=video, px_gif=gif, px_msg=msg)


def listen(state):
    from . import get

    # before a run: said on the message line, no "Error" badge on the player
    get("out_parallax").click(said(make_clip, 3, 2),
                              [state, get("px_seconds"), get("px_fps"), get("px_amplitude"),
                               get("px_move")],
                              [get("px_video"), get("px_gif"), get("px_msg")])
