"""Writing audit results: ``results.json``, ``results.md``, a PNG chart and a CSV of votes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .campaign import PAPER_SCORES
from .stats import build_report
from .store import Store


SIMULATED_NOTE = ("SIMULATED: this report counts votes of simulated auditors (planning "
                  "assumptions, not human judgments)")


def campaign_report(store: Store, campaign: str | int | None = None, rounds: int = 1000,
                    seed: int = 0, include_simulated: bool = False) -> dict:
    """The campaign's statistics from people's votes; with ``include_simulated`` also from
    simulated auditors, and then the report says so everywhere. ``vote_sources`` counts the
    votes of each source that the statistics used."""
    c = store.campaign(campaign)
    every = store.votes(c.id)
    votes = [v for v in every if include_simulated or not v["simulated"]]
    rep = build_report(votes, c.tasks, rounds, seed)
    rep["campaign"] = {"id": c.id, "name": c.name, "status": c.status}
    rep["vote_sources"] = {"people": sum(not v["simulated"] for v in votes),
                           "simulated": sum(bool(v["simulated"]) for v in votes),
                           "simulated_left_out": sum(bool(v["simulated"]) for v in every) -
                           sum(bool(v["simulated"]) for v in votes)}
    rep["simulated"] = rep["vote_sources"]["simulated"] > 0
    if rep["simulated"]:
        rep["note"] = SIMULATED_NOTE
    return rep


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{x:.0f}%"


def _alpha(ag: dict) -> str:
    a = ag["krippendorff_alpha"]
    return "not enough overlap" if a != a else f"{a:.3f}"


def markdown(rep: dict) -> str:
    sim = rep.get("simulated", False)
    tag = " (SIMULATED)" if sim else ""
    src = rep.get("vote_sources", {})
    lines = [f"# Audit results{tag}: {rep['campaign']['name']}", ""]
    if sim:
        lines += [f"**{SIMULATED_NOTE}.**", ""]
    lines += [f"{rep['votes']} votes from {rep['auditors']} auditors "
              f"({src.get('people', rep['votes'])} by people, {src.get('simulated', 0)} simulated"
              + (f"; {src['simulated_left_out']} simulated votes left out"
                 if src.get("simulated_left_out") else "") + ").", "",
              f"## The method's table{tag}", "",
              "| audit task | score (% better) | Wilson 95% | W / T / L / both bad | sign p (Holm) | method's score |",
              "|---|---|---|---|---|---|"]
    for r in rep["tasks"]:
        paper = PAPER_SCORES.get(r["task"])
        lo, hi = r["wilson95"]
        ci = "n/a" if r["n"] == 0 or lo != lo else f"{lo:.0f}-{hi:.0f}%"
        p_ = "n/a" if r["sign_p_holm"] != r["sign_p_holm"] else f"{r['sign_p_holm']:.3g}"
        lines.append(f"| {r['task']} | {_pct(r['better_pct'])} | {ci} | "
                     f"{r['wins']} / {r['ties']} / {r['losses']} / {r['both_bad']} | "
                     f"{p_} | {'' if paper is None else f'{paper:.0f}%'} |")
    lines += ["", "Planning: decisive votes a sign test needs (alpha 0.05, power 0.8) to tell each "
              "task's observed win rate from 50%: " + ", ".join(
                  f"{r['task']}: {r['needed_n'] if r['needed_n'] else 'n/a'}" for r in rep["tasks"]) + "."]
    if rep["bradley_terry"]:
        lines += ["", f"## Bradley-Terry (log-strength, ties as half wins){tag}", "",
                  "| system | log-strength | bootstrap 95% |", "|---|---|---|"]
        for s, v in sorted(rep["bradley_terry"].items(), key=lambda kv: -kv[1]["log_strength"]):
            lines.append(f"| {s} | {v['log_strength']:+.2f} | {v['ci95'][0]:+.2f} to {v['ci95'][1]:+.2f} |")
    ag = rep["agreement"]
    pb = rep["position_bias"]
    raw = "n/a" if ag["raw"] != ag["raw"] else f"{ag['raw']:.3f}"
    lines += ["", f"## Reliability{tag}", "",
              f"Krippendorff's alpha (nominal) {_alpha(ag)}, raw agreement "
              f"{raw} over {ag['units']} comparisons judged by two or more auditors.",
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
    ax.set_xlabel("% better (Wilson 95%); red: the method's published score"
                  + ("  [SIMULATED votes included]" if rep.get("simulated") else ""))
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


def write_report(store: Store, out_dir: Path, campaign=None, rounds: int = 1000, seed: int = 0,
                 include_simulated: bool = False) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rep = campaign_report(store, campaign, rounds, seed, include_simulated)
    # NaN (no overlap) is written as null: results.json stays valid JSON
    (out_dir / "results.json").write_text(json.dumps(_no_nan(rep), indent=1, default=str))
    (out_dir / "results.md").write_text(markdown(rep))
    chart(rep, out_dir / "results.png")
    write_csv(store.votes(rep["campaign"]["id"], include_simulated), out_dir / "votes.csv")
    return rep


def _no_nan(x):
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_no_nan(v) for v in x]
    return x
