"""``python -m stager audit {create,report,simulate,export}``."""

from __future__ import annotations

import sys
from pathlib import Path

from stager.config import get_settings

from .store import AuditError, get_store


def _progress(frac, msg):
    sys.stderr.write(f"\r{msg} ({frac:4.0%})   ")
    if frac >= 1:
        sys.stderr.write("\n")


def run(a) -> int:
    store = get_store(get_settings().db_url)
    if a.action == "create":
        from .campaign import create_paper_campaign, create_pool_campaign

        if a.tasks == "paper":
            cid = create_paper_campaign(store, a.name, a.samples, a.seed, progress=_progress)
        else:
            pairs = [tuple(p.split(":")) for p in a.tasks.split(",")]
            if any(len(p) != 2 for p in pairs):
                raise AuditError("--tasks takes 'paper' or pairs like pix2pix:edgeconnect,telea:diffusion")
            cid = create_pool_campaign(store, a.name, pairs, a.samples, a.seed)
        c = store.campaign(cid)
        print(f"campaign {c.name!r} (id {cid}) with {len(store.votes(cid)) or 'no'} votes yet; "
              f"tasks: {', '.join(t['name'] for t in c.tasks)}")
        return 0
    if a.action == "simulate":
        from .simulate import SimAuditor, run as simulate

        c = store.campaign(a.campaign)
        strengths = {"ground_truth": 2.0, "edgeconnect": 0.3, "pix2pix": -1.2, "broken": -4.0}
        for t in c.tasks:
            strengths.setdefault(t["a"], 0.0)
            strengths.setdefault(t["b"], 0.0)
        auds = [SimAuditor(f"sim{i}", noise=0.05 * i) for i in range(a.auditors)]
        n = simulate(store, c.id, auds, strengths, a.seed)
        print(f"{n} simulated votes recorded in campaign {c.name!r}")
        return 0
    out = Path(a.out or "audit_report")
    if a.action == "report":
        from .report import write_report

        rep = write_report(store, out, a.campaign, a.bootstrap, a.seed)
        for r in rep["tasks"]:
            print(f"{r['task']}: {r['better_pct']:.0f}% (n={r['n']}, W/T/L {r['wins']}/{r['ties']}/{r['losses']})")
        print(f"-> {out / 'results.md'}")
        return 0
    if a.action == "export":
        from .report import write_csv

        c = store.campaign(a.campaign)
        out.mkdir(parents=True, exist_ok=True)
        path = write_csv(store.votes(c.id), out / "votes.csv")
        print(f"{path}")
        return 0
    raise AuditError(f"unknown audit action {a.action}")
