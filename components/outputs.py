"""Backends side by side: every backend on the same gap, streamed as each finishes, with
latency and weights; unavailable ones greyed with the reason; a before/after slider,
downloads, a parallax clip of the selected output (``components/parallax.py``), and "send to
audit pool"."""

from __future__ import annotations

import hashlib
import secrets
import time

import gradio as gr

from stager.backends import REGISTRY, get_backend
from stager.config import get_settings
from stager.images import save_png
from stager.pipeline import get_context, prepare, run_backend

from . import register
from .common import (Session, UserError, friendly, friendly_gen, grey_card, job_key, said,
                     placement_of)
from .placement import controls, request

try:  # Hugging Face ZeroGPU; optional everywhere else
    import spaces  # type: ignore

    gpu = spaces.GPU
except Exception:  # noqa: BLE001 - the package is absent or not on a Space
    def gpu(fn):
        return fn


@gpu
def _run_one(prep, name, seed):
    return run_backend(prep, name, seed=seed)


@friendly_gen
def run_all(state: Session, scale, dx, dy, flip, dilation, seed=0, progress=gr.Progress()):
    """Generator -> (state, gallery, before/after, message) after each backend. A step left
    out (no product, scene or mask) is said on the message line and in a toast, and nothing
    else changes: a raised error would mark the gallery and the slider with a bare "Error"."""
    try:
        req = request(state, scale, dx, dy, flip, dilation, int(seed))
    except UserError as exc:
        gr.Warning(str(exc))
        yield state, gr.update(), gr.update(), f"**{exc}**"
        return
    prep = prepare(req, get_context())
    state.clear_outputs()
    state.composite = prep.composite
    # provenance: the pool accepts these outputs only while the inputs still match this key
    state.outputs_key, state.outputs_seed = job_key(state, scale, dx, dy, flip, dilation), int(seed)
    state.plates, state.product_alpha, state.selected = {}, prep.placement.alpha, None
    items, t0 = [], time.perf_counter()
    names = list(REGISTRY)
    yield state, items, _slider(state), "Running…"
    for i, name in enumerate(names):
        progress((i + 0.5) / len(names), desc=f"{name}…")
        b = get_backend(name)
        ok, why = b.available()
        if not ok:
            items.append((grey_card(f"{b.label}: unavailable. {why}"), f"{name} · unavailable: {why}"))
            yield state, items, None, f"{name} unavailable."
            continue
        out = _run_one(prep, name, int(seed))
        if out.ok:
            state.outputs[name] = out.image
            # the filled background before shadow and product; None -> the clip's fallback
            state.plates[name] = getattr(out, "plate", None)
            items.append((out.image, f"{out.label} · {out.latency_ms:.0f} ms · {out.tier}"))
        else:
            items.append((grey_card(f"{b.label} failed: {out.error}"), f"{name} · failed: {out.error}"))
        yield state, items, _slider(state, name) if out.ok else gr.update(), f"{name} done."
    total = (time.perf_counter() - t0) * 1000
    yield state, items, _slider(state), f"All backends done in {total:.0f} ms. Click an output to compare or download."


PREFERRED = ("edgeconnect", "diffusion", "edgeconnect_baseline", "lines", "telea", "pix2pix")


def shown_output(state: Session) -> str | None:
    """The output the user is looking at: the one clicked last, else the one the before/after
    slider opens on (the method's own when there is one, ``PREFERRED``); None before a run."""
    if state.selected in state.outputs:
        return state.selected
    return next((n for n in PREFERRED if n in state.outputs), next(iter(state.outputs), None))


def _slider(state: Session, name: str | None = None):
    """The before/after slider for output ``name`` (default: ``shown_output``), labelled with
    the backend it shows."""
    if not state.outputs:
        return gr.update(value=None, label="Before / after (composite vs output)")
    if name is None:
        name = shown_output(state)
    label = get_backend(name).label
    return gr.update(value=(state.composite, state.outputs[name]),
                     label=f"Before / after: composite vs {label}")


@friendly
def pick(state: Session, evt: gr.SelectData):
    """Gallery click -> (before/after, download file)."""
    idx = evt.index if isinstance(evt.index, int) else evt.index[0]
    name = list(REGISTRY)[idx]  # the gallery shows every backend in registry order
    if name not in state.outputs:
        raise UserError(f"{name} produced no output")
    state.selected = name
    # a download is served from the public folder under an unguessable name
    folder = get_settings().public_dir / "downloads"
    path = save_png(folder / f"{secrets.token_hex(8)}_{state.scene_id}_{name}.png",
                    state.outputs[name])
    return _slider(state, name), gr.update(value=str(path), visible=True)


@friendly
def send_to_pool(state: Session, scale=1.0, dx=0.0, dy=0.0, flip=False, dilation=0):
    """Store every output of this job as audit items (neutral file names), each with the
    scene, product, mask and placement it was made from. Refused when the outputs on screen
    no longer match the current product, scene, mask or placement."""
    if not state.outputs:
        raise UserError("run the backends first")
    if job_key(state, scale, dx, dy, flip, dilation) != state.outputs_key:
        state.clear_outputs()
        raise UserError("the outputs were made for another product, scene, mask or placement: "
                        "run the backends again before sending them to the pool")
    from db.campaign import store_image
    from db.store import get_store

    store = get_store(get_settings().db_url)
    mask_sha = hashlib.sha1(state.mask.tobytes()).hexdigest()[:16]
    n = 0
    for name, img in state.outputs.items():
        store_image(store, img, state.product_name or "uploaded", state.scene_id, name,
                    {"backend": name, "job": state.outputs_key, "mask_sha1": mask_sha,
                     "placement": placement_of(scale, dx, dy, flip, dilation)},
                    seed=state.outputs_seed, in_pool=True)
        n += 1
    return f"Sent {n} outputs of scene {state.scene_id} to the audit pool."


def render():
    with gr.Column():
        gr.Markdown("### 5 · Backends side by side")
        with gr.Row():
            seed = gr.Number(0, label="seed", precision=0, minimum=0, scale=1)
            run = gr.Button("Run all backends", variant="primary", scale=3, elem_id="run-backends")
        # one row, one thumbnail per backend (with 5 columns the sixth wrapped, half hidden)
        # PNG, not Gradio's default WebP: the gallery's own download is a designer's file
        gallery = gr.Gallery(label="Outputs", columns=len(REGISTRY), height=300,
                             elem_id="outputs-gallery", allow_preview=True, format="png")
        # no explicit height: in Gradio 6.31 a fixed height misaligns the two images
        slider = gr.ImageSlider(label="Before / after (composite vs output)", elem_id="before-after")
        with gr.Row():
            download = gr.DownloadButton("Download selected output", visible=False)
            clip = gr.Button("Make parallax clip", elem_id="make-parallax")
            pool = gr.Button("Send outputs to audit pool", elem_id="send-pool")
        msg = gr.Markdown("", elem_id="outputs-msg")
    register(out_seed=seed, out_run=run, out_gallery=gallery, out_slider=slider,
             out_download=download, out_pool=pool, out_msg=msg, out_parallax=clip)


def listen(state, concurrency: int):
    from . import get

    get("out_run").click(run_all, [state] + controls() + [get("out_seed")],
                         [state, get("out_gallery"), get("out_slider"), get("out_msg")],
                         concurrency_limit=concurrency, concurrency_id="models")
    get("out_gallery").select(pick, [state], [get("out_slider"), get("out_download")])
    get("out_pool").click(said(send_to_pool, 1, 0), [state] + controls(), [get("out_msg")])
