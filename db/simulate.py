"""Simulated auditors with known preferences: to check that reports recover them and to plan
how many samples a difference needs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np


@dataclass
class SimAuditor:
    name: str
    noise: float = 0.0  # chance of a random answer
    left_bias: float = 0.0  # extra chance of answering "left" on a decisive vote
    tie_rate: float = 0.05
    mean_lead_s: float = 6.0


def p_win(strengths: dict[str, float], a: str, b: str) -> float:
    """Bradley-Terry probability that ``a`` beats ``b`` from log-strengths."""
    return float(1 / (1 + np.exp(strengths[b] - strengths[a])))


def simulate_vote(rng: np.random.Generator, aud: SimAuditor, left_sys: str, right_sys: str,
                  strengths: dict[str, float], gold: str | None = None) -> str:
    if gold is not None and rng.random() > aud.noise:
        return gold
    if rng.random() < aud.noise:
        return str(rng.choice(["left", "right", "tie", "both_bad"]))
    if rng.random() < aud.tie_rate:
        return "tie"
    if rng.random() < aud.left_bias:
        return "left"
    return "left" if rng.random() < p_win(strengths, left_sys, right_sys) else "right"


def run(store, campaign_id: int, auditors: list[SimAuditor], strengths: dict[str, float],
        seed: int = 0, share: float = 1.0) -> int:
    """Every simulated auditor votes on (a ``share`` of) the campaign; returns votes stored."""
    from sqlalchemy import select

    from .schema import Comparison, Item

    rng = np.random.default_rng(seed)
    with store.session() as s:
        cmps = list(s.scalars(select(Comparison).where(Comparison.campaign_id == campaign_id)))
        systems = {i.id: i.system for i in s.scalars(select(Item))}
    n = 0
    now = dt.datetime(2026, 1, 1)
    for aud in auditors:
        for c in cmps:
            if rng.random() > share:
                continue
            outcome = simulate_vote(rng, aud, systems[c.left_item_id], systems[c.right_item_id],
                                    strengths, c.gold)
            lead = dt.timedelta(seconds=float(rng.exponential(aud.mean_lead_s)) + 0.3)
            ok, _ = store.record_vote(c.public_id, aud.name, outcome, now, source="sim",
                                      answered_at=now + lead)
            n += ok
    return n
