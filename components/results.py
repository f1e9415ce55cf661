"""Results tab: the method's table from the votes, reliability, chart and CSV export."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from db.report import write_report
from db.store import get_store
from stager.config import get_settings

from . import register
from .audit import campaign_choices
from .common import UserError, friendly


@friendly
def show(campaign: str | None, rounds: int = 300):
    """-> (markdown, chart path, csv path)."""
    if not campaign:
        raise UserError("choose a campaign")
    cid = int(campaign.split(":")[0])
    out = Path(tempfile.mkdtemp(prefix="results-", dir=get_settings().data_dir))
    from db.report import markdown

    rep = write_report(get_store(get_settings().db_url), out, cid, int(rounds))
    return markdown(rep), str(out / "results.png"), str(out / "votes.csv")


def render():
    with gr.Column():
        gr.Markdown("### Results")
        with gr.Row():
            campaign = gr.Dropdown(campaign_choices(), label="campaign", elem_id="results-campaign")
            go = gr.Button("Compute report")
            refresh = gr.Button("Refresh campaigns", size="sm")
        table = gr.Markdown("")
        chart = gr.Image(label="% better with Wilson 95% intervals", interactive=False)
        csv = gr.File(label="All votes (CSV)")
    register(results_campaign=campaign, results_go=go, results_refresh=refresh,
             results_table=table, results_chart=chart, results_csv=csv)


def listen():
    from . import get

    get("results_go").click(show, [get("results_campaign")],
                            [get("results_table"), get("results_chart"), get("results_csv")])

    def refresh():
        return (gr.update(choices=campaign_choices()),
                gr.update(choices=campaign_choices(open_only=True)))

    get("results_refresh").click(refresh, None, [get("results_campaign"), get("audit_campaign")])
