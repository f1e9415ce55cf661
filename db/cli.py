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
            cid = create_paper_campaign(store, a.name, a.samples, a.seed, progress=_progress,
                                        realism=getattr(a, "realism", False))
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
        if any(not v["simulated"] for v in store.votes(c.id)):
            raise AuditError(f"campaign {c.name!r} has votes by people: simulate on a separate "
                             "planning campaign (`audit create --name plan ...`)")
        # planning assumptions (log-strengths), not measurements: reports label these votes
        strengths = {"ground_truth": 2.0, "edgeconnect": 0.3, "pix2pix": -1.2, "broken": -4.0}
        for t in c.tasks:
            strengths.setdefault(t["a"], 0.0)
            strengths.setdefault(t["b"], 0.0)
        auds = [SimAuditor(f"sim{i}", noise=0.05 * i) for i in range(a.auditors)]
        n = simulate(store, c.id, auds, strengths, a.seed)
        print(f"{n} simulated votes recorded in campaign {c.name!r} (left out of reports "
              "unless --include-simulated)")
        return 0
    out = Path(a.out or "audit_report")
    if a.action == "report":
        from .report import _pct, write_report

        rep = write_report(store, out, a.campaign, a.bootstrap, a.seed, a.include_simulated)
        src = rep["vote_sources"]
        print(f"{'SIMULATED ' if rep['simulated'] else ''}report: {src['people']} votes by "
              f"people, {src['simulated']} simulated"
              + (f" ({src['simulated_left_out']} simulated left out)"
                 if src["simulated_left_out"] else ""))
        for r in rep["tasks"]:
            print(f"{r['task']}: {_pct(r['better_pct'])} (n={r['n']}, "
                  f"W/T/L {r['wins']}/{r['ties']}/{r['losses']})")
        print(f"-> {out / 'results.md'}")
        return 0
    if a.action == "export":
        from .report import write_csv

        c = store.campaign(a.campaign)
        out.mkdir(parents=True, exist_ok=True)
        path = write_csv(store.votes(c.id, a.include_simulated), out / "votes.csv")
        print(f"{path}")
        return 0
    raise AuditError(f"unknown audit action {a.action}")
