"""Voting tab: blind A/B comparisons (no system names, neutral image names), keyboard
shortcuts (A, B, T for tie, X for both bad, S to skip), progress, comment, identity from the
app's login or a name field. A double click cannot vote twice: the database refuses it."""

from __future__ import annotations

import datetime as dt

import gradio as gr

from db.schema import utcnow
from db.store import AuditError, get_store
from stager.config import get_settings

from . import register
from .common import UserError, friendly

KEYS_JS = """
() => {
  if (window.__stagerKeys) return; window.__stagerKeys = true;
  const map = {a: 'vote-left', b: 'vote-right', t: 'vote-tie', x: 'vote-bad', s: 'vote-skip'};
  document.addEventListener('keydown', (e) => {
    const tag = (e.target.tagName || '').toLowerCase();
    if (tag === 'textarea' || tag === 'input') return;
    const id = map[e.key.toLowerCase()];
    if (!id) return;
    const tab = document.getElementById('audit-tab');
    if (!tab || tab.offsetParent === null) return;
    const el = document.querySelector('#' + id + ' button, button#' + id);
    if (el) { el.click(); e.preventDefault(); }
  });
}
"""


def _store():
    return get_store(get_settings().db_url)


def campaign_choices(open_only: bool = False) -> list[str]:
    """Campaign labels, oldest first; the voting tab lists open campaigns only."""
    try:
        return [f"{c.id}: {c.name}" + (" (closed)" if c.status != "open" else "")
                for c in _store().campaigns() if c.status == "open" or not open_only]
    except AuditError:
        return []


def identity(name: str, request: gr.Request | None) -> tuple[str, str]:
    user = getattr(request, "username", None) if request is not None else None
    if user:
        return user, "login"
    name = (name or "").strip()
    if not name:
        raise UserError("enter your name (or log in) before voting")
    return name, "name"


def _progress_html(done: int, total: int) -> str:
    pct = 100 * done / total if total else 0
    return (f"<div style='background:#eee;border-radius:4px;height:14px'><div style='width:{pct:.1f}%;"
            f"background:#4c72b0;height:14px;border-radius:4px'></div></div>"
            f"<small>{done} of {total} judged</small>")


def _resolve(campaign: str | None) -> tuple[int, str]:
    """The chosen campaign (refused when closed), or the newest open one when none is chosen."""
    if campaign:
        cid = int(campaign.split(":")[0])
        if _store().campaign(cid).status != "open":
            raise UserError(f"campaign {campaign.split(':', 1)[1].strip()} is closed: choose an "
                            "open one")
        return cid, campaign
    open_ = [c for c in _store().campaigns() if c.status == "open"]
    if not open_:
        raise UserError("no open campaign: create one with `python -m stager audit create`")
    c = open_[-1]
    return c.id, f"{c.id}: {c.name}"


@friendly
def next_item(campaign: str | None, name: str, cur: dict, request: gr.Request = None):
    """-> (campaign dropdown, current dict, image A, image B, progress html, message, comment)."""
    who, _ = identity(name, request)
    cid, label = _resolve(campaign)
    menu = gr.update(choices=campaign_choices(open_only=True), value=label)
    cmp_, done, total = _store().next_comparison(cid, who)
    if cmp_ is None:
        return (menu, {}, None, None, _progress_html(done, total),
                "All comparisons judged: thank you!", "")
    state = {"public_id": cmp_.public_id, "campaign": cid, "shown_at": utcnow().isoformat()}
    return (menu, state, cmp_.left_item.path, cmp_.right_item.path, _progress_html(done, total),
            "Which staging looks better?", "")


def vote(outcome: str):
    @friendly
    def handler(campaign, name, cur: dict, comment: str, request: gr.Request = None):
        if not cur or "public_id" not in cur:
            raise UserError("no comparison on screen: press Start")
        who, source = identity(name, request)
        ok, msg = _store().record_vote(cur["public_id"], who, outcome,
                                       dt.datetime.fromisoformat(cur["shown_at"]), comment or "",
                                       source)
        nxt = next_item(campaign, name, {}, request)
        note = "Saved." if ok else "That comparison was already judged (nothing changed)."
        return (*nxt[:5], f"{note} {nxt[5]}", "")

    handler.__name__ = f"vote_{outcome}"
    return handler


@friendly
def skip(campaign, name, cur, request: gr.Request = None):
    """Skip: show the next comparison after the current one without voting."""
    if not cur:
        raise UserError("no comparison on screen: press Start")
    return next_item(campaign, name, {}, request)


def render():
    with gr.Column(elem_id="audit-tab"):
        gr.Markdown("### Blind A/B audit\nKeys: **A** left better · **B** right better · **T** tie · "
                    "**X** both bad · **S** skip.")
        if get_settings().space_id:  # on a Space: identify auditors by their HF account
            gr.LoginButton()
        with gr.Row():
            choices = campaign_choices(open_only=True)
            campaign = gr.Dropdown(choices, value=choices[-1] if choices else None,
                                   label="campaign (open)", elem_id="audit-campaign")
            name = gr.Textbox(label="your name (if not logged in)", elem_id="audit-name")
            start = gr.Button("Start / refresh", elem_id="audit-start")
        progress = gr.HTML(_progress_html(0, 0), elem_id="audit-progress")
        with gr.Row():
            left = gr.Image(label="A", interactive=False, height=400, elem_id="audit-left")
            right = gr.Image(label="B", interactive=False, height=400, elem_id="audit-right")
        with gr.Row():
            bl = gr.Button("A is better", elem_id="vote-left", variant="primary")
            bt = gr.Button("Tie", elem_id="vote-tie")
            bb = gr.Button("Both bad", elem_id="vote-bad")
            br = gr.Button("B is better", elem_id="vote-right", variant="primary")
            bs = gr.Button("Skip", elem_id="vote-skip", size="sm")
        comment = gr.Textbox(label="comment (optional)", lines=1)
        msg = gr.Markdown("", elem_id="audit-msg")
        cur = gr.State({})
    register(audit_campaign=campaign, audit_name=name, audit_start=start, audit_progress=progress,
             audit_left=left, audit_right=right, audit_buttons=(bl, br, bt, bb), audit_skip=bs,
             audit_comment=comment, audit_msg=msg, audit_cur=cur)


def listen():
    from . import get

    campaign, name, cur = get("audit_campaign"), get("audit_name"), get("audit_cur")
    outs = [campaign, cur, get("audit_left"), get("audit_right"), get("audit_progress"),
            get("audit_msg"), get("audit_comment")]
    get("audit_start").click(next_item, [campaign, name, cur], outs)
    for button, outcome in zip(get("audit_buttons"), ("left", "right", "tie", "both_bad")):
        # trigger_mode="once": extra clicks while a vote is in flight are dropped
        button.click(vote(outcome), [campaign, name, cur, get("audit_comment")], outs,
                     trigger_mode="once")
    get("audit_skip").click(skip, [campaign, name, cur], outs, trigger_mode="once")
