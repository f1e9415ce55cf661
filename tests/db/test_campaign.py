from collections import Counter

import pytest

from db import stats
from db.campaign import plan
from db.simulate import SimAuditor, run as simulate
from tests.db.conftest import make_items


@pytest.mark.parametrize("seed", range(12))
def test_plan_randomises_sides_adds_gold_and_swapped_repeats(seed):
    task_items = [("t", 100 + k, 200 + k) for k in range(100)]
    gold = [(1, 2), (3, 4)]
    specs = plan(task_items, gold, 0.1, seed=seed)
    main = [s for s in specs if s["gold"] is None and s["repeat_of"] is None]
    reps = [s for s in specs if s["repeat_of"] is not None]
    golds = [s for s in specs if s["gold"] is not None]
    assert len(main) == 100 and len(reps) == 10 and len(golds) == 2
    left_is_a = sum(s["left"] < 200 for s in main)
    assert 30 <= left_is_a <= 70  # sides randomised
    for i, s in enumerate(specs):
        if s["repeat_of"] is not None:
            o = specs[s["repeat_of"]]
            assert s["repeat_of"] < i and (s["left"], s["right"]) == (o["right"], o["left"])
    for g in golds:  # the good item is the expected side
        good = g["left"] if g["gold"] == "left" else g["right"]
        assert good in (1, 3)


def test_simulated_auditors_are_recovered_by_the_report(store):
    strengths = {"gt": 2.0, "ec": 0.5, "p2p": -1.0, "broken": -5.0}
    ids = make_items(store, ("gt", "ec", "p2p", "broken"), n=40)
    tasks = [{"name": "p2p vs gt", "a": "p2p", "b": "gt"}, {"name": "ec vs gt", "a": "ec", "b": "gt"},
             {"name": "ec vs p2p", "a": "ec", "b": "p2p"}]
    items = [(t["name"], ids[(k, t["a"])], ids[(k, t["b"])]) for t in tasks for k in range(40)]
    gold = [(ids[(k, "gt")], ids[(k, "broken")]) for k in range(6)]
    cid = store.create_campaign("sim", tasks, plan(items, gold, 0.1, 0))
    auditors = [SimAuditor("good", noise=0.0), SimAuditor("ok", noise=0.1),
                SimAuditor("lefty", noise=0.05, left_bias=0.5), SimAuditor("fast", mean_lead_s=0.2)]
    n = simulate(store, cid, auditors, strengths, seed=1)
    votes = store.votes(cid)
    assert n == len(votes) == 4 * (120 + 6 + 12)
    rep = stats.build_report(votes, tasks, rounds=100)
    bt = rep["bradley_terry"]
    assert sorted(bt, key=lambda s: -bt[s]["log_strength"]) == ["gt", "ec", "p2p"]
    rows = {r["task"]: r for r in rep["tasks"]}
    # true win rates 18%, 18%, 82%: each Wilson interval should hold the rate of its auditors
    assert rows["ec vs p2p"]["better_pct"] > 60 > rows["ec vs gt"]["better_pct"]
    assert rows["ec vs p2p"]["sign_p_holm"] < 0.01
    q = rep["auditor_quality"]
    assert q["good"]["gold_accuracy"] == 1.0 and q["good"]["repeat_consistency"] > 0.6
    assert q["fast"]["fast_votes"] > q["good"]["fast_votes"]
    lefty = [v for v in votes if v["auditor"] == "lefty"]
    assert stats.position_bias(lefty)["p"] < 0.01
    assert 0 < rep["agreement"]["krippendorff_alpha"] <= 1
    assert Counter(v["outcome"] for v in votes)["left"] > 0
