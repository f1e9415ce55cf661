"""Results tab (admin role only): the method's table from the votes, reliability, chart and
CSV export, and a form that makes a campaign from the audit pool. Auditors see only their own
progress in the Audit tab; the handlers check the role themselves, so hiding the panel is not
the only lock."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from db.report import markdown, write_report
from db.store import AuditError, get_store
from stager.config import get_settings

from . import register
from .audit import campaign_choices
from .common import UserError, friendly, is_admin

NOT_ADMIN = ("Results, reports and vote exports are for admins: log in with an account listed "
             "in STAGER_APP_ADMINS (or as the Space's owner), or run "
             "`python -m stager audit report` on the server.")


def _require_admin(request) -> None:
    if not is_admin(request):
        raise UserError("results are for admins only (STAGER_APP_ADMINS)")


def _store():
    return get_store(get_settings().db_url)


@friendly
def show(campaign: str | None, include_simulated: bool = False, rounds: int = 300,
         request: gr.Request = None):
    """-> (markdown, chart path, csv path); admins only."""
    _require_admin(request)
    if not campaign:
        raise UserError("choose a campaign")
    cid = int(campaign.split(":")[0])
    # written outside the data folder: the report files reach the admin through the cache
    out = Path(tempfile.mkdtemp(prefix="stager-results-"))
    rep = write_report(_store(), out, cid, int(rounds), include_simulated=bool(include_simulated))
    return markdown(rep), str(out / "results.png"), str(out / "votes.csv")


def pool_summary() -> str:
    try:
        items = _store().pool_items()
    except AuditError:
        return "The audit pool is empty."
    if not items:
        return "The audit pool is empty: send outputs to it from the Stage tab."
    systems = sorted({i.system for i in items})
    pairs = len({(i.product, i.scene) for i in items})
    return (f"The pool has {len(items)} outputs of {pairs} (product, scene) pairs from "
            f"{', '.join(systems)}.")


@friendly
def create_from_pool(name: str, pairs: str, samples: float, request: gr.Request = None):
    """-> (message, results dropdown, audit dropdown); admins only."""
    from db.campaign import create_pool_campaign

    _require_admin(request)
    name = (name or "").strip()
    if not name:
        raise UserError("give the campaign a name")
    spec = [tuple(p.strip() for p in part.split(":")) for part in (pairs or "").split(",")
            if part.strip()]
    if not spec or any(len(p) != 2 or not all(p) for p in spec):
        raise UserError("system pairs look like edgeconnect:pix2pix, telea:diffusion")
    cid = create_pool_campaign(_store(), name, spec, int(samples or 100))
    label = f"{cid}: {name}"
    return (f"Campaign **{name}** created (id {cid}). Auditors can choose it in the Audit tab.",
            gr.update(choices=campaign_choices(), value=label),
            gr.update(choices=campaign_choices(open_only=True), value=label))


def on_load(request: gr.Request):
    """Page load: the admin panel for admins, a note for everyone else; fresh lists."""
    admin = is_admin(request)
    return (gr.update(visible=admin), gr.update(visible=not admin),
            gr.update(choices=campaign_choices() if admin else [], value=None),
            pool_summary() if admin else "")


def render():
    with gr.Column():
        gr.Markdown("### Results")
        note = gr.Markdown(NOT_ADMIN, elem_id="results-note")
        with gr.Column(visible=False, elem_id="results-admin") as panel:
            with gr.Row():
                campaign = gr.Dropdown([], label="campaign", elem_id="results-campaign")
                sim = gr.Checkbox(False, label="include simulated votes (labelled simulated)")
                go = gr.Button("Compute report", elem_id="results-go")
            table = gr.Markdown("", elem_id="results-table")
            chart = gr.Image(label="% better with Wilson 95% intervals", interactive=False)
            csv = gr.File(label="All votes (CSV)")
            gr.Markdown("#### Create a campaign from the audit pool")
            pool = gr.Markdown("", elem_id="pool-summary")
            with gr.Row():
                cname = gr.Textbox(label="campaign name", elem_id="pool-name")
                cpairs = gr.Textbox(label="system pairs (a:b, c:d)", value="edgeconnect:pix2pix",
                                    elem_id="pool-pairs")
                csamples = gr.Number(100, label="samples per pair", precision=0, minimum=1)
                create = gr.Button("Create campaign from pool", elem_id="pool-create")
            cmsg = gr.Markdown("", elem_id="pool-msg")
    register(results_campaign=campaign, results_go=go, results_sim=sim, results_table=table,
             results_chart=chart, results_csv=csv, results_panel=panel, results_note=note,
             results_pool=pool, pool_name=cname, pool_pairs=cpairs, pool_samples=csamples,
             pool_create=create, pool_msg=cmsg)


def listen():
    from . import get

    get("results_go").click(show, [get("results_campaign"), get("results_sim")],
                            [get("results_table"), get("results_chart"), get("results_csv")])
    get("pool_create").click(create_from_pool,
                             [get("pool_name"), get("pool_pairs"), get("pool_samples")],
                             [get("pool_msg"), get("results_campaign"), get("audit_campaign")])
