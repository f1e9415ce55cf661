"""Voting tab: blind A/B comparisons (no system names, neutral image names), keyboard
shortcuts (A, B, T for tie, X for both bad, S to skip), progress, comment, identity from the
app's login or a name field. A double click cannot vote twice: the database refuses it.

Also the scripted-vote API (``/next_pair``, ``/vote``): the same identity rules, the same
store calls and the same display copies as the tab. A vote is acknowledged only after its
transaction has committed."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr

from db.schema import OUTCOMES, utcnow
from db.store import AuditError, get_store
from stager.config import get_settings

from . import register
from .common import UserError, friendly, public_image, said

log = logging.getLogger("stager.app")

#: the voting events skip the queue: each is a few ms of database work, answered in the
#: response to one POST (no queue round trip, no event stream), never behind model jobs
AUDIT_QUEUE = {"queue": False}

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
    """(auditor, source): the app's login wins; on a Space voting needs the HF login; else the
    name typed once per session."""
    user = getattr(request, "username", None) if request is not None else None
    if user:
        return user, "login"
    if get_settings().space_id:
        raise UserError("log in with your Hugging Face account (button above) to vote")
    name = (name or "").strip()
    if not name:
        raise UserError("enter your name (or log in) before voting")
    if len(name) > 64:
        raise UserError("your name is too long (64 characters at most)")
    return name, "name"


def _progress_html(done: int, total: int) -> str:
    pct = 100 * done / total if total else 0
    return (f"<div style='background:#eee;border-radius:4px;height:14px'><div style='width:{pct:.1f}%;"
            f"background:#4c72b0;height:14px;border-radius:4px'></div></div>"
            f"<small>{done} of {total} judged</small>")


def _campaign_id(campaign: str | None) -> int:
    """The id in a campaign label (``"3: paper"`` or ``"3"``), not yet looked up."""
    if not campaign:
        try:
            any_open = any(c.status == "open" for c in _store().campaigns())
        except AuditError:  # not "no campaign": the list is empty because it was not read
            raise UserError("the audit database cannot be reached: try again shortly") from None
        if not any_open:
            raise UserError("no campaign is open for voting yet: an admin creates one "
                            "(`python -m stager audit create --name NAME`), then reload the page")
        raise UserError("choose a campaign in the list first")
    try:
        return int(str(campaign).split(":")[0])
    except ValueError:
        raise UserError("that campaign does not exist: reload the page and choose another") \
            from None


def _resolve(campaign: str | None) -> int:
    """The chosen campaign's id; refused when none is chosen or it is closed (the campaign is
    always the one visible in the list, never picked silently)."""
    cid = _campaign_id(campaign)
    try:
        status = _store().campaign(cid).status
    except (ValueError, AuditError):
        raise UserError("that campaign does not exist: reload the page and choose another") from None
    if status != "open":
        raise UserError(f"campaign {str(campaign).split(':', 1)[-1].strip()} is closed: choose "
                        "an open one")
    return cid


def display_image(item) -> str:
    """A display-size copy of an item's image in the public folder, named by its content
    hash only (no system name, no item id)."""
    return public_image(item.path, f"audit/{Path(item.path).stem}")


@friendly
def next_item(campaign: str | None, name: str, cur: dict, request: gr.Request = None):
    """-> (name box, current dict, image A, image B, progress html, message, comment).

    ``cur["skipped"]`` holds the comparisons skipped in this session: they come after every
    other one, then return."""
    cid = _resolve(campaign)  # first: with no campaign to vote in, a name is no help
    who, source = identity(name, request)
    skipped = [s for s in (cur or {}).get("skipped", []) if isinstance(s, str)]
    if (cur or {}).get("campaign") != cid:
        skipped = []
    cmp_, done, total = _store().next_comparison(cid, who, exclude=skipped)
    if cmp_ is None and skipped:  # only skipped ones are left: they come back, in order
        cmp_, done, total = _store().next_comparison(cid, who)
        skipped = []
    # the name is asked once per session: locked after the first use
    name_box = gr.update(value=who if source == "name" else "", interactive=False)
    if cmp_ is None:
        return (name_box, {"campaign": cid, "skipped": []}, None, None,
                _progress_html(done, total), "All comparisons judged: thank you!", "")
    state = {"public_id": cmp_.public_id, "campaign": cid, "shown_at": utcnow().isoformat(),
             "skipped": skipped}
    return (name_box, state, display_image(cmp_.left_item), display_image(cmp_.right_item),
            _progress_html(done, total), "Which staging looks better?", "")


def vote(outcome: str):
    @friendly
    def handler(campaign, name, cur: dict, comment: str, request: gr.Request = None):
        if not cur or "public_id" not in cur:
            raise UserError("no comparison on screen: press Start")
        who, source = identity(name, request)
        if _resolve(campaign) != cur.get("campaign"):
            raise UserError("the campaign changed: press Start to load its next comparison")
        ok, msg = _store().record_vote(cur["public_id"], who, outcome,
                                       dt.datetime.fromisoformat(cur["shown_at"]), comment or "",
                                       source)
        nxt = next_item(campaign, name, {"campaign": cur["campaign"],
                                         "skipped": cur.get("skipped", [])}, request)
        note = "Saved." if ok else "That comparison was already judged (nothing changed)."
        return (*nxt[:5], f"{note} {nxt[5]}", "")

    handler.__name__ = f"vote_{outcome}"
    return handler


@friendly
def skip(campaign, name, cur, request: gr.Request = None):
    """Skip: show the next comparison; the skipped one returns after the others."""
    if not cur or "public_id" not in cur:
        raise UserError("no comparison on screen: press Start")
    skipped = [s for s in cur.get("skipped", []) if s != cur["public_id"]] + [cur["public_id"]]
    out = next_item(campaign, name, {"campaign": cur["campaign"], "skipped": skipped}, request)
    return (*out[:5], f"Skipped: it comes back later. {out[5]}", out[6])


_WARMED: set[int] = set()
_WARM_LOCK = threading.Lock()


def warm_display_copies() -> int:
    """Make the display copies of every open campaign's images not made yet (at start-up and
    when a page load finds a new campaign, in the background), so no vote waits for a JPEG
    to be encoded. Returns the number of images checked."""
    with _WARM_LOCK:
        n = 0
        try:
            for c in _store().campaigns():
                if c.status != "open" or c.id in _WARMED:
                    continue
                for item in _store().campaign_items(c.id):
                    display_image(item)
                    n += 1
                _WARMED.add(c.id)
        except Exception as exc:  # noqa: BLE001 - best effort: a vote makes a missing copy
            log.warning("display copies not made in advance: %s", exc)
        return n


def refresh_lists():
    """On page load: the current campaign lists (campaigns made after the server started
    appear); an only open campaign is chosen, visibly. A new campaign's display copies are
    made in the background."""
    open_ = campaign_choices(open_only=True)
    if any(int(c.split(":")[0]) not in _WARMED for c in open_):
        threading.Thread(target=warm_display_copies, name="warm-display", daemon=True).start()
    return gr.update(choices=open_, value=open_[0] if len(open_) == 1 else None)


# ---------------------------------------------------------------- scripted-vote API
_SHOWN: OrderedDict = OrderedDict()  # (auditor, public id) -> when the API handed it out
_SHOWN_LOCK = threading.Lock()
_SHOWN_MAX = 100_000


def _shown(who: str, public_id: str, when: dt.datetime | None = None) -> dt.datetime | None:
    """Remember (``when`` given) or take back when a pair was handed to an auditor by the
    API, so a scripted vote's lead time is measured like the tab's."""
    with _SHOWN_LOCK:
        if when is not None:
            _SHOWN[(who, public_id)] = when
            while len(_SHOWN) > _SHOWN_MAX:
                _SHOWN.popitem(last=False)
            return when
        return _SHOWN.pop((who, public_id), None)


def _api_pair(cid: int, who: str) -> tuple[dict, str | None, str | None]:
    cmp_, done, total = _store().next_comparison(cid, who)
    info = {"campaign": cid, "auditor": who, "done": done, "total": total,
            "comparison": None if cmp_ is None else cmp_.public_id}
    if cmp_ is None:
        return info, None, None
    _shown(who, cmp_.public_id, utcnow())
    return info, display_image(cmp_.left_item), display_image(cmp_.right_item)


@friendly
def api_next_pair(campaign: str, auditor: str, request: gr.Request = None):
    """``/next_pair``: -> ({campaign, auditor, comparison, done, total}, image A, image B).
    ``comparison`` is None (and the images too) when the auditor has judged everything."""
    who, _ = identity(auditor, request)
    return _api_pair(_resolve(campaign), who)


@friendly
def api_vote(campaign: str, auditor: str, comparison: str, outcome: str, comment: str = "",
             request: gr.Request = None):
    """``/vote``: store one vote, then -> ({saved, message, next pair as /next_pair}, image A,
    image B) of the auditor's next comparison. ``saved`` is True only once the vote is
    committed; a second vote on the same comparison is refused (saved False)."""
    who, source = identity(auditor, request)
    cid = _campaign_id(campaign)  # record_vote checks that it holds the comparison and is open
    if outcome not in OUTCOMES:
        raise UserError(f"outcome {str(outcome)[:20]!r} is not one of {', '.join(OUTCOMES)}")
    if not isinstance(comparison, str) or not comparison.strip():
        raise UserError("give the comparison id that /next_pair returned")
    if len(comment or "") > 2000:
        raise UserError("the comment is too long (2000 characters at most)")
    now = utcnow()
    shown = _shown(who, comparison.strip()) or now
    ok, msg = _store().record_vote(comparison.strip(), who, outcome, shown, comment or "",
                                   source, answered_at=now, campaign_id=cid)
    info, a, b = _api_pair(cid, who)
    return {"saved": ok, "message": msg, **info}, a, b


def render():
    with gr.Column(elem_id="audit-tab"):
        gr.Markdown("### Blind A/B audit\nKeys: **A** left better · **B** right better · **T** tie · "
                    "**X** both bad · **S** skip.")
        if get_settings().space_id:  # on a Space: identify auditors by their HF account
            gr.LoginButton()
        with gr.Row():
            campaign = gr.Dropdown([], value=None, label="campaign (open)",
                                   elem_id="audit-campaign")
            name = gr.Textbox(label="your name (asked once; or log in)", elem_id="audit-name",
                              visible=not get_settings().space_id)
            start = gr.Button("Start", elem_id="audit-start")
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


def in_page(fn):
    """The tab's events skip the queue, and there the page shows a raised ``gr.Error`` as a bare
    "Error" on every output, without its text: the message goes to the tab's message line
    instead, and nothing else on the page changes (outputs: name, current, A, B, progress,
    message, comment)."""
    return said(fn, 7, 5, toast=False)


def listen():
    from . import get

    campaign, name, cur = get("audit_campaign"), get("audit_name"), get("audit_cur")
    outs = [name, cur, get("audit_left"), get("audit_right"), get("audit_progress"),
            get("audit_msg"), get("audit_comment")]
    get("audit_start").click(in_page(next_item), [campaign, name, cur], outs, **AUDIT_QUEUE)
    for button, outcome in zip(get("audit_buttons"), ("left", "right", "tie", "both_bad")):
        # trigger_mode="once": extra clicks while a vote is in flight are dropped
        button.click(in_page(vote(outcome)), [campaign, name, cur, get("audit_comment")], outs,
                     trigger_mode="once", **AUDIT_QUEUE)
    get("audit_skip").click(in_page(skip), [campaign, name, cur], outs, trigger_mode="once",
                            **AUDIT_QUEUE)
