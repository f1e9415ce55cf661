"""Writing audit results: ``results.json``, ``results.md``, a PNG chart and a CSV of votes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .campaign import PAPER_SCORES
from .stats import build_report
from .store import Store


def campaign_report(store: Store, campaign: str | int | None = None, rounds: int = 1000,
                    seed: int = 0) -> dict:
    c = store.campaign(campaign)
    votes = store.votes(c.id)
    rep = build_report(votes, c.tasks, rounds, seed)
    rep["campaign"] = {"id": c.id, "name": c.name, "status": c.status}
    return rep


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{x:.0f}%"


def markdown(rep: dict) -> str:
    lines = [f"# Audit results: {rep['campaign']['name']}", "",
             f"{rep['votes']} votes from {rep['auditors']} auditors.", "",
             "| audit task | score (% better) | Wilson 95% | W / T / L / both bad | sign p (Holm) | method's score |",
             "|---|---|---|---|---|---|"]
    for r in rep["tasks"]:
        paper = PAPER_SCORES.get(r["task"])
        lo, hi = r["wilson95"]
        lines.append(f"| {r['task']} | {_pct(r['better_pct'])} | {lo:.0f}-{hi:.0f}% | "
                     f"{r['wins']} / {r['ties']} / {r['losses']} / {r['both_bad']} | "
                     f"{r['sign_p_holm']:.3g} | {'' if paper is None else f'{paper:.0f}%'} |")
    lines += ["", "Planning: decisive votes a sign test needs (alpha 0.05, power 0.8) to tell each "
              "task's observed win rate from 50%: " + ", ".join(
                  f"{r['task']}: {r['needed_n'] if r['needed_n'] else 'n/a'}" for r in rep["tasks"]) + "."]
    if rep["bradley_terry"]:
        lines += ["", "## Bradley-Terry (log-strength, ties as half wins)", "",
                  "| system | log-strength | bootstrap 95% |", "|---|---|---|"]
        for s, v in sorted(rep["bradley_terry"].items(), key=lambda kv: -kv[1]["log_strength"]):
            lines.append(f"| {s} | {v['log_strength']:+.2f} | {v['ci95'][0]:+.2f} to {v['ci95'][1]:+.2f} |")
    ag = rep["agreement"]
    pb = rep["position_bias"]
    lines += ["", "## Reliability", "",
              f"Krippendorff's alpha (nominal) {ag['krippendorff_alpha']:.3f}, raw agreement "
              f"{ag['raw']:.3f} over {ag['units']} comparisons judged by two or more auditors.",
              f"Position bias: {pb['left']} left / {pb['right']} right (p = {pb['p']:.3g}).", "",
              "| auditor | votes | gold accuracy | repeat consistency | median lead (s) | fast votes |",
              "|---|---|---|---|---|---|"]
    for name, q in rep["auditor_quality"].items():
        ga = "n/a" if q["gold_accuracy"] is None else f"{q['gold_accuracy']:.0%} of {q['gold_n']}"
        rc = "n/a" if q["repeat_consistency"] is None else f"{q['repeat_consistency']:.0%} of {q['repeat_n']}"
        ml = "n/a" if q["median_lead_ms"] is None else f"{q['median_lead_ms'] / 1000:.1f}"
        lines.append(f"| {name} | {q['votes']} | {ga} | {rc} | {ml} | {q['fast_votes']} |")
    return "\n".join(lines) + "\n"


def chart(rep: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rep["tasks"]
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.7 * len(rows)))
    ys = range(len(rows))
    vals = [r["better_pct"] if r["n"] else 0 for r in rows]
    errs = [[v - r["wilson95"][0] for v, r in zip(vals, rows)],
            [r["wilson95"][1] - v for v, r in zip(vals, rows)]]
    ax.barh(list(ys), vals, xerr=errs, color="#4c72b0", capsize=4)
    for y, r in zip(ys, rows):
        if r["task"] in PAPER_SCORES:
            ax.plot(PAPER_SCORES[r["task"]], y, "r|", markersize=18, mew=3)
    ax.set_yticks(list(ys), [r["task"] for r in rows], fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% better (Wilson 95%); red: the method's published score")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_csv(votes: list[dict], path: Path) -> Path:
    path = Path(path)
    keys = list(votes[0]) if votes else ["vote_id"]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(votes)
    return path


def write_report(store: Store, out_dir: Path, campaign=None, rounds: int = 1000, seed: int = 0) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rep = campaign_report(store, campaign, rounds, seed)
    (out_dir / "results.json").write_text(json.dumps(rep, indent=1, default=str))
    (out_dir / "results.md").write_text(markdown(rep))
    chart(rep, out_dir / "results.png")
    write_csv(store.votes(rep["campaign"]["id"]), out_dir / "votes.csv")
    return rep
