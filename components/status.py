"""Status: every model, its tier, and how to enable a missing one."""

from __future__ import annotations

import gradio as gr

from stager.backends import status as backend_status
from stager.embed import clip_status
from stager.segment import sam_status
from stager.shadows import shade_reader

from . import register

COLUMNS = ["component", "tier", "available", "detail / how to enable"]
#: narrow name, tier and yes/no columns; the rest goes to the how-to text, which wraps
#: (never cut: no ``max_chars``) so its setting names stay readable
WIDTHS = ["18%", "17%", "9%", "56%"]


def rows() -> list[list[str]]:
    out = [[r["label"], r["tier"], "yes" if r["available"] else "no", r["detail"]]
           for r in backend_status()]
    ok, why = shade_reader()
    out.append(["old-shadow reader", "trained compact (shade model)" if ok else
                "classical (shading ratio)", "yes", why])
    ok, why = sam_status()
    out.append(["mask proposals", "pretrained (SAM)" if ok else "classical (GrabCut fallback)",
                "yes", why])
    ok, why = clip_status()
    out.append(["retrieval embedder", "pretrained (open_clip)" if ok else
                "classical (colour + silhouette descriptor)", "yes", why])
    return out


def render():
    gr.Markdown("### Models and tiers\nTrained compact weights ship with the app; pretrained "
                "foundation models load when configured; classical fallbacks always work.")
    table = gr.Dataframe(value=rows(), headers=COLUMNS, interactive=False, wrap=True,
                         column_widths=WIDTHS, max_chars=None, max_height=1200,
                         elem_id="status-table")
    refresh = gr.Button("Refresh", size="sm")
    register(status_table=table, status_refresh=refresh)


def listen():
    from . import get

    get("status_refresh").click(rows, None, get("status_table"))
