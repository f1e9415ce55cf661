"""Statistics of pairwise audits.

Votes are dicts as ``Store.votes`` returns them. For a task "A vs B" each vote is mapped to
A's point of view: ``win`` (A chosen), ``loss`` (B chosen), ``tie``, ``both_bad``. "% better"
is wins over all votes (the method's score); the sign test uses decisive votes only.
Gold comparisons and repeats are kept out of the task table and used for auditor quality.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
from scipy import stats as sps

FAST_MS = 1500.0  # answers quicker than this are flagged


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test p-value (ties dropped): the binomial test against 1/2."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    # P(X <= k) for X ~ Bin(n, 1/2), doubled (the distribution is symmetric)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adj = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adj[i] = running
    return adj


def orient(vote: dict, a: str) -> str:
    """The vote from system ``a``'s point of view: win | loss | tie | both_bad."""
    o = vote["outcome"]
    if o in ("tie", "both_bad"):
        return o
    chosen = vote["left_system"] if o == "left" else vote["right_system"]
    return "win" if chosen == a else "loss"


def task_table(votes: list[dict], tasks: list[dict]) -> list[dict]:
    """One row per task: W/T/L/both-bad, % better with a Wilson interval, sign test p, Holm."""
    rows = []
    for t in tasks:
        a, b = t["a"], t["b"]
        vs = [v for v in votes if v["gold"] is None and v["repeat_of"] is None
              and {v["left_system"], v["right_system"]} == {a, b}]
        c = Counter(orient(v, a) for v in vs)
        n = len(vs)
        lo, hi = wilson(c["win"], n)
        rows.append({"task": t["name"], "a": a, "b": b, "n": n, "wins": c["win"],
                     "ties": c["tie"], "losses": c["loss"], "both_bad": c["both_bad"],
                     "better_pct": 100.0 * c["win"] / n if n else float("nan"),
                     "wilson95": [100 * lo, 100 * hi],
                     "sign_p": sign_test(c["win"], c["loss"])})
    for r, p in zip(rows, holm([r["sign_p"] for r in rows])):
        r["sign_p_holm"] = p
        decisive = r["wins"] + r["losses"]
        rate = r["wins"] / decisive if decisive else 0.5
        r["needed_n"] = required_samples(min(max(rate, 0.01), 0.99)) if rate != 0.5 else None
    return rows


def _bt_fit(wins: np.ndarray, games: np.ndarray, iters: int, tol: float) -> np.ndarray:
    """MM iterations (Hunter 2004) on a win vector and a symmetric games matrix; returns
    strengths normalised to geometric mean 1. A prior of one game (half a win) against a
    virtual average opponent keeps undefeated systems finite."""
    m = len(wins)
    w = wins + 0.5
    p = np.ones(m)
    for _ in range(iters):
        denom = (games / (p[:, None] + p[None, :])).sum(1) + 1.0 / (p + 1.0)
        new = w / denom
        new /= np.exp(np.log(new).mean())
        done = np.abs(new - p).max() < tol
        p = new
        if done:
            break
    return p


def _bt_counts(i: np.ndarray, j: np.ndarray, s: np.ndarray, m: int, weights=None):
    """Wins per system and the games matrix from pair arrays (optionally weighted counts)."""
    wt = np.ones(len(i)) if weights is None else weights
    wins = np.bincount(i, wt * s, m) + np.bincount(j, wt * (1 - s), m)
    games = np.bincount(i * m + j, wt, m * m).reshape(m, m)
    return wins, games + games.T


def bradley_terry(pairs: list[tuple[str, str, float]], iters: int = 500, tol: float = 1e-10
                  ) -> dict[str, float]:
    """Bradley-Terry log-strengths (mean zero) by Hunter's MM algorithm.

    ``pairs``: (i, j, s) with s = 1 when i beat j, 0.5 for a tie."""
    systems = sorted({p[0] for p in pairs} | {p[1] for p in pairs})
    idx = {name: k for k, name in enumerate(systems)}
    i = np.array([idx[p[0]] for p in pairs], int)
    j = np.array([idx[p[1]] for p in pairs], int)
    sc = np.array([p[2] for p in pairs], float)
    wins, games = _bt_counts(i, j, sc, len(systems))
    logp = np.log(_bt_fit(wins, games, iters, tol))
    return {name: float(logp[idx[name]] - logp.mean()) for name in systems}


def bt_pairs(votes: list[dict]) -> list[tuple[str, str, float]]:
    out = []
    for v in votes:
        if v["gold"] is not None or v["repeat_of"] is not None:
            continue
        L, R = v["left_system"], v["right_system"]
        if v["outcome"] == "left":
            out.append((L, R, 1.0))
        elif v["outcome"] == "right":
            out.append((L, R, 0.0))
        elif v["outcome"] == "tie":
            out.append((L, R, 0.5))
    return out


def bt_with_intervals(votes: list[dict], rounds: int = 1000, seed: int = 0) -> dict:
    """Bradley-Terry log-strengths with percentile bootstrap 95% intervals (votes resampled).

    Each bootstrap round draws multinomial counts over the votes, so a round costs one
    ``bincount`` and a few vectorised MM iterations, not a pass over the votes in Python."""
    pairs = bt_pairs(votes)
    if not pairs:
        return {}
    est = bradley_terry(pairs)
    systems = sorted(est)
    idx = {name: k for k, name in enumerate(systems)}
    m = len(systems)
    i = np.array([idx[p[0]] for p in pairs], int)
    j = np.array([idx[p[1]] for p in pairs], int)
    sc = np.array([p[2] for p in pairs], float)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(pairs), np.full(len(pairs), 1 / len(pairs)), size=rounds)
    boots = np.empty((rounds, m))
    for r in range(rounds):
        wins, games = _bt_counts(i, j, sc, m, draws[r].astype(float))
        logp = np.log(_bt_fit(wins, games, 200, 1e-7))
        boots[r] = logp - logp.mean()
    return {name: {"log_strength": est[name],
                   "ci95": [float(np.percentile(boots[:, idx[name]], 2.5)),
                            float(np.percentile(boots[:, idx[name]], 97.5))]}
            for name in systems}


def krippendorff_alpha(units: dict, metric: str = "nominal") -> float:
    """Krippendorff's alpha for nominal data. ``units``: {unit: {coder: value}}; units with
    fewer than two values are not pairable and are ignored."""
    if metric != "nominal":
        raise ValueError("only the nominal metric is implemented")
    coinc: Counter = Counter()
    for values in units.values():
        vals = [v for v in values.values() if v is not None]
        m = len(vals)
        if m < 2:
            continue
        for i, c in enumerate(vals):
            for j, k in enumerate(vals):
                if i != j:
                    coinc[(c, k)] += 1.0 / (m - 1)
    n_c: Counter = Counter()
    for (c, _k), w in coinc.items():
        n_c[c] += w
    n = sum(n_c.values())
    if n <= 1:
        return float("nan")
    d_o = sum(w for (c, k), w in coinc.items() if c != k)
    d_e = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k) / (n - 1)
    return float(1 - d_o / d_e) if d_e > 0 else 1.0


def raw_agreement(units: dict) -> float:
    """Share of agreeing pairs of judgments over all pairs within units."""
    agree = total = 0
    for values in units.values():
        vals = [v for v in values.values() if v is not None]
        for i in range(len(vals)):
            for j in range(i + 1, len(vals)):
                total += 1
                agree += vals[i] == vals[j]
    return agree / total if total else float("nan")


def agreement_units(votes: list[dict]) -> dict:
    """{comparison: {auditor: canonical outcome}} for task comparisons (not gold/repeats);
    outcomes are oriented to the alphabetically first system so sides do not matter."""
    units: dict = defaultdict(dict)
    for v in votes:
        if v["gold"] is not None or v["repeat_of"] is not None:
            continue
        a = min(v["left_system"], v["right_system"])
        units[v["comparison_id"]][v["auditor"]] = orient(v, a)
    return units


def auditor_quality(votes: list[dict]) -> dict:
    """Per auditor: votes, gold accuracy, repeat consistency, median lead time, fast answers."""
    by_cmp_auditor = {(v["comparison_id"], v["auditor"]): v for v in votes}
    out: dict = {}
    for name in sorted({v["auditor"] for v in votes}):
        mine = [v for v in votes if v["auditor"] == name]
        gold = [v for v in mine if v["gold"] is not None]
        gold_ok = sum(v["outcome"] == v["gold"] for v in gold)
        reps = [v for v in mine if v["repeat_of"] is not None]
        consistent = checked = 0
        for r in reps:
            orig = by_cmp_auditor.get((r["repeat_of"], name))
            if orig is None:
                continue
            checked += 1
            a = min(r["left_system"], r["right_system"])
            consistent += orient(r, a) == orient(orig, a)
        leads = [v["lead_ms"] for v in mine]
        out[name] = {"votes": len(mine),
                     "gold_accuracy": gold_ok / len(gold) if gold else None,
                     "gold_n": len(gold),
                     "repeat_consistency": consistent / checked if checked else None,
                     "repeat_n": checked,
                     "median_lead_ms": float(np.median(leads)) if leads else None,
                     "fast_votes": int(sum(x < FAST_MS for x in leads))}
    return out


def position_bias(votes: list[dict]) -> dict:
    """Share of decisive votes for the left side, with a two-sided binomial test against 1/2."""
    left = sum(v["outcome"] == "left" for v in votes)
    right = sum(v["outcome"] == "right" for v in votes)
    n = left + right
    return {"left": left, "right": right, "left_share": left / n if n else float("nan"),
            "p": sign_test(left, right)}


def required_samples(p_better: float, alpha: float = 0.05, power: float = 0.8,
                     max_n: int = 5000) -> int | None:
    """Smallest n (decisive votes) at which a two-sided sign test at ``alpha`` detects a true
    win rate ``p_better`` with the given power (exact binomial)."""
    if p_better == 0.5:
        return None
    for n in range(5, max_n + 1):
        # rejection region: k with two-sided p <= alpha
        ks = np.arange(n + 1)
        pmf_null = sps.binom.pmf(ks, n, 0.5)
        cdf = np.cumsum(pmf_null)
        lower = ks[2 * cdf <= alpha]
        upper = n - lower
        reject = np.zeros(n + 1, bool)
        reject[lower] = True
        reject[upper] = True
        if sps.binom.pmf(ks, n, p_better)[reject].sum() >= power:
            return n
    return None


def build_report(votes: list[dict], tasks: list[dict], rounds: int = 1000, seed: int = 0) -> dict:
    units = agreement_units(votes)
    quality = auditor_quality(votes)
    return {
        "votes": len(votes),
        "auditors": len({v["auditor"] for v in votes}),
        "tasks": task_table(votes, tasks),
        "bradley_terry": bt_with_intervals(votes, rounds, seed),
        "agreement": {"krippendorff_alpha": krippendorff_alpha(units),
                      "raw": raw_agreement(units),
                      "units": sum(1 for u in units.values() if len(u) >= 2)},
        "auditor_quality": quality,
        "position_bias": position_bias(votes),
        "fast_vote_threshold_ms": FAST_MS,
    }
