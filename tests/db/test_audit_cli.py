"""The audit commands end to end: the method's campaign rendered with tiny weights, votes from
simulated auditors, the report files, a pool campaign, CSV export."""

import json

import numpy as np

from db.campaign import PAPER_TASKS, create_paper_campaign
from stager.cli import main


def test_paper_campaign_is_blind_and_complete(store, catalog, tiny_weights, settings_env):
    settings_env(WEIGHTS_DIR=tiny_weights)
    cid = create_paper_campaign(store, "paper", samples=4, seed=1, gold_share=0.3)
    c = store.campaign(cid)
    assert [t["name"] for t in c.tasks] == [t["name"] for t in PAPER_TASKS]
    nxt, done, total = store.next_comparison(cid, "someone")
    assert total >= 12 and done == 0
    for side in (nxt.left_item, nxt.right_item):
        name = side.path.rsplit("/", 1)[-1]
        assert side.system not in name and len(name) == len("0" * 32 + ".png")
    with store.session() as s:
        from sqlalchemy import select

        from db.schema import Comparison, Item

        systems = {i.id: i.system for i in s.scalars(select(Item))}
        cmps = list(s.scalars(select(Comparison).where(Comparison.campaign_id == cid)))
    tasks = {}
    for cmp_ in cmps:
        if cmp_.gold is None and cmp_.repeat_of is None:
            pair = frozenset((systems[cmp_.left_item_id], systems[cmp_.right_item_id]))
            tasks[pair] = tasks.get(pair, 0) + 1
    assert tasks == {frozenset(("pix2pix", "ground_truth")): 4,
                     frozenset(("edgeconnect", "ground_truth")): 4,
                     frozenset(("edgeconnect", "pix2pix")): 4}
    golds = [c for c in cmps if c.gold]
    for g in golds:  # the expected side holds the ground truth, the other the broken image
        good = g.left_item_id if g.gold == "left" else g.right_item_id
        assert systems[good] == "ground_truth"


def test_audit_commands(store, db_url, catalog, tmp_path, tiny_weights, settings_env, capsys):
    settings_env(WEIGHTS_DIR=tiny_weights, DB_URL=db_url)
    # fill the pool like the app's "send to audit pool" does
    from db.campaign import store_image

    rng = np.random.default_rng(0)
    for k in range(6):
        for system in ("telea", "edgeconnect"):
            store_image(store, rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), "p", f"s{k}",
                        system, in_pool=True)
    assert main(["audit", "create", "--name", "pool", "--tasks", "edgeconnect:telea"]) == 0
    # one person votes first: simulation is then refused on this campaign (never mixed)
    cmp_, _, _ = store.next_comparison(store.campaign("pool").id, "person")
    import datetime as dt

    store.record_vote(cmp_.public_id, "person", "left", dt.datetime(2026, 1, 1))
    capsys.readouterr()
    assert main(["audit", "simulate", "--campaign", "pool", "--auditors", "3"]) == 2
    assert "votes by people" in capsys.readouterr().err
    assert main(["audit", "create", "--name", "plan", "--tasks", "edgeconnect:telea"]) == 0
    assert main(["audit", "simulate", "--campaign", "plan", "--auditors", "3"]) == 0
    with store.session() as s:  # simulated auditors are marked as such in the database
        from sqlalchemy import select

        from db.schema import Auditor

        marks = dict(s.execute(select(Auditor.name, Auditor.simulated)).all())
    assert marks == {"person": 0, "sim0": 1, "sim1": 1, "sim2": 1}
    out = tmp_path / "rep"
    # the default report counts people only: the simulated campaign has no votes in it
    assert main(["audit", "report", "--campaign", "plan", "--out", str(out), "--bootstrap", "50"]) == 0
    rep = json.loads((out / "results.json").read_text())
    assert rep["votes"] == 0 and not rep["simulated"]
    assert rep["vote_sources"]["simulated_left_out"] > 0
    assert "not enough overlap" in (out / "results.md").read_text()
    assert main(["audit", "report", "--campaign", "plan", "--out", str(out), "--bootstrap", "50",
                 "--include-simulated"]) == 0
    rep = json.loads((out / "results.json").read_text())
    assert rep["tasks"][0]["task"] == "edgeconnect better than telea"
    assert rep["votes"] > 0 and (out / "results.png").stat().st_size > 1000
    assert rep["simulated"] and rep["vote_sources"] == {"people": 0, "simulated": rep["votes"],
                                                        "simulated_left_out": 0}
    n_sim = rep["votes"]
    md = (out / "results.md").read_text()
    assert "Wilson" in md and "Krippendorff" in md and "Planning" in md
    # every table of a report with simulated votes is labelled simulated
    assert md.count("(SIMULATED)") == md.count("\n## ") + 1
    assert main(["audit", "report", "--campaign", "pool", "--out", str(out), "--bootstrap", "50"]) == 0
    rep = json.loads((out / "results.json").read_text())
    assert rep["vote_sources"] == {"people": 1, "simulated": 0, "simulated_left_out": 0}
    assert main(["audit", "export", "--campaign", "plan", "--out", str(tmp_path / "csv"),
                 "--include-simulated"]) == 0
    lines = (tmp_path / "csv" / "votes.csv").read_text().strip().splitlines()
    assert len(lines) == n_sim + 1
    capsys.readouterr()
    assert main(["audit", "create", "--name", "x", "--tasks", "nonsense"]) == 2
    assert "--tasks" in capsys.readouterr().err
    assert main(["audit", "report", "--campaign", "does-not-exist", "--out", str(out)]) == 2


def test_malformed_db_url_from_the_cli(settings_env, capsys):
    settings_env(DB_URL="not a url ://")
    assert main(["audit", "report"]) == 2
    err = capsys.readouterr().err
    assert "STAGER_DB_URL" in err and "Traceback" not in err


def test_realism_task_compares_the_same_backend_with_and_without_the_steps(
        store, catalog, tiny_weights, settings_env):
    from db.campaign import REALISM_TASK

    settings_env(WEIGHTS_DIR=tiny_weights)
    cid = create_paper_campaign(store, "realism", samples=2, seed=3, gold_share=0.0,
                                realism=True)
    c = store.campaign(cid)
    assert c.tasks[-1]["name"] == REALISM_TASK["name"] and len(c.tasks) == 4
    with store.session() as s:
        from sqlalchemy import select

        from db.schema import Comparison, Item

        items = {i.id: i for i in s.scalars(select(Item))}
        cmps = list(s.scalars(select(Comparison).where(Comparison.campaign_id == cid)))
    pairs = [(items[x.left_item_id], items[x.right_item_id]) for x in cmps
             if {items[x.left_item_id].system, items[x.right_item_id].system}
             == {"edgeconnect", "edgeconnect_plain"}]
    assert len(pairs) >= 2
    for a, b in pairs:  # same product and scene, different images
        assert (a.product, a.scene) == (b.product, b.scene) and a.path != b.path
