import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from db.schema import SCHEMA_VERSION, Comparison, Meta, Vote
from db.store import AuditError, Store
from tests.conftest import ROOT
from tests.db.conftest import make_items, simple_campaign

NOW = dt.datetime(2026, 1, 1, 12, 0, 0)


def _cmps(store, cid):
    with store.session() as s:
        return list(s.scalars(select(Comparison).where(Comparison.campaign_id == cid)
                              .order_by(Comparison.position)))


def test_schema_is_versioned(store):
    with store.session() as s:
        assert s.get(Meta, "schema_version").value == str(SCHEMA_VERSION)


def test_vote_roundtrip_lead_time_and_idempotence(store):
    cid = simple_campaign(store)
    c = _cmps(store, cid)[0]
    ok, msg = store.record_vote(c.public_id, "ann", "left", NOW, "fine",
                                answered_at=NOW + dt.timedelta(seconds=4))
    assert ok and msg == "recorded"
    ok, msg = store.record_vote(c.public_id, "ann", "right", NOW)  # a double click
    assert not ok and "already" in msg
    votes = store.votes(cid)
    assert len(votes) == 1 and votes[0]["outcome"] == "left" and votes[0]["lead_ms"] == 4000
    assert votes[0]["left_system"] == "a" and votes[0]["comment"] == "fine"
    nxt, done, total = store.next_comparison(cid, "ann")
    assert (done, total) == (1, 5) and nxt.public_id != c.public_id


def test_database_enforces_one_vote_per_auditor(store):
    cid = simple_campaign(store)
    c = _cmps(store, cid)[0]
    store.record_vote(c.public_id, "bob", "tie", NOW)
    with pytest.raises(IntegrityError):
        with store.session() as s:
            v = s.scalar(select(Vote))
            s.add(Vote(comparison_id=v.comparison_id, auditor_id=v.auditor_id, outcome="left",
                       shown_at=NOW, lead_ms=1.0, app_version="x"))


def test_bad_votes_are_refused_and_nothing_is_stored(store):
    cid = simple_campaign(store)
    c = _cmps(store, cid)[0]
    with pytest.raises(AuditError, match="unknown comparison"):
        store.record_vote("nope", "ann", "left", NOW)
    with pytest.raises(AuditError, match="identity"):
        store.record_vote(c.public_id, "  ", "left", NOW)
    with pytest.raises(AuditError, match="outcome"):
        store.record_vote(c.public_id, "ann", "maybe", NOW)
    store.set_status(cid, "closed")
    with pytest.raises(AuditError, match="closed"):
        store.record_vote(c.public_id, "ann", "left", NOW)
    assert store.votes(cid) == []


def test_campaign_creation_is_all_or_nothing(store):
    ids = make_items(store, n=2)
    good = {"task": "t", "left": ids[(0, "a")], "right": ids[(0, "b")], "gold": None}
    bad = {"task": "t", "left": 999999, "right": ids[(1, "b")], "gold": None}  # no such item
    with pytest.raises(Exception):
        store.create_campaign("half", [], [good, bad])
    with pytest.raises(AuditError):
        store.campaign("half")
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Comparison)) == 0
    store.create_campaign("whole", [], [good])
    with pytest.raises(AuditError, match="already exists"):
        store.create_campaign("whole", [], [good])


def test_malformed_url_is_a_clear_error():
    with pytest.raises(AuditError, match="not a valid SQLAlchemy URL"):
        Store("this is :// not a url")


def test_read_only_database_loses_nothing(tmp_path):
    if os.geteuid() == 0:
        # root ignores file permissions; open the file read-only through SQLite's URI instead
        path = tmp_path / "ro.sqlite"
        s = Store(f"sqlite:///{path}")
        cid = simple_campaign(s)
        c = _cmps(s, cid)[0]
        s.record_vote(c.public_id, "ann", "left", NOW)
        s.engine.dispose()
        ro = Store(f"sqlite:///file:{path}?mode=ro&uri=true")
        with pytest.raises(AuditError, match="read-only"):
            ro.record_vote(_cmps(ro, cid)[1].public_id, "ann", "left", NOW)
        assert len(ro.votes(cid)) == 1
    else:  # pragma: no cover
        pytest.skip("needs root to exercise the uri read-only path the same way")


def test_32_concurrent_auditors_lose_and_duplicate_nothing(store):
    cid = simple_campaign(store, n=20)
    cmps = [c.public_id for c in _cmps(store, cid)]
    errors = []
    barrier = threading.Barrier(32)

    def voter(k):
        try:
            barrier.wait()
            for pid in cmps:
                store.record_vote(pid, f"aud{k}", "left" if k % 2 else "right", NOW)
                store.record_vote(pid, f"aud{k}", "tie", NOW)  # double click: refused
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=voter, args=(k,)) for k in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    votes = store.votes(cid)
    assert len(votes) == 32 * 20
    assert len({(v["comparison"], v["auditor"]) for v in votes}) == 32 * 20
    assert all(v["outcome"] != "tie" for v in votes)


def test_killed_process_leaves_a_consistent_database(db_url, store, tmp_path):
    cid = simple_campaign(store, n=200)
    script = tmp_path / "voter.py"
    script.write_text(
        "import sys, datetime as dt\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from db.store import Store\n"
        "from sqlalchemy import select\n"
        "from db.schema import Comparison\n"
        f"s = Store({db_url!r})\n"
        "with s.session() as x:\n"
        f"    ids = [c.public_id for c in x.scalars(select(Comparison).where(Comparison.campaign_id == {cid}))]\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    for k in range(1000):\n"
        "        for p in ids:\n"
        "            s.record_vote(p, f'v{k}', 'left', dt.datetime(2026, 1, 1))\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store.engine.dispose()
    after = Store(db_url)
    votes = after.votes(cid)
    assert len(votes) > 0
    assert len({(v["comparison"], v["auditor"]) for v in votes}) == len(votes)
    with after.session() as s:
        if after.engine.dialect.name == "sqlite":
            assert s.connection().exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert s.connection().exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        orphans = s.scalar(select(func.count()).select_from(Vote)
                           .where(Vote.comparison_id.not_in(select(Comparison.id))))
        assert orphans == 0
    # the survivor keeps working
    nxt, done, total = after.next_comparison(cid, "fresh")
    assert nxt is not None and total == 200
    assert after.record_vote(nxt.public_id, "fresh", "left", NOW)[0]


def test_locked_database_is_reported_and_loses_nothing(tmp_path):
    import sqlite3

    path = tmp_path / "locked.sqlite"
    s = Store(f"sqlite:///{path}", busy_timeout_ms=200)
    cid = simple_campaign(s)
    c = _cmps(s, cid)[0]
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with pytest.raises(AuditError, match="locked"):
            s.record_vote(c.public_id, "ann", "left", NOW)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert s.votes(cid) == []
    assert s.record_vote(c.public_id, "ann", "left", NOW)[0]  # works once the lock is gone


def test_identical_images_of_two_systems_keep_their_labels(store, tmp_path, settings_env):
    import numpy as np

    from db.campaign import store_image

    settings_env(DATA_DIR=tmp_path)
    img = np.full((8, 8, 3), 77, np.uint8)
    a = store_image(store, img, "p", "s", "telea", in_pool=True)
    b = store_image(store, img, "p", "s", "edgeconnect", in_pool=True)
    assert a != b and store_image(store, img, "p", "s", "telea") == a
    assert sorted(i.system for i in store.pool_items()) == ["edgeconnect", "telea"]
    with pytest.raises(AuditError, match="system"):  # a key is never relabelled
        store.add_item("p", "s", "pix2pix", "/x.png", next(
            i.image_hash for i in store.pool_items() if i.system == "telea"))


def test_skipped_comparisons_are_passed_over(store):
    cid = simple_campaign(store)
    first, _, _ = store.next_comparison(cid, "ann")
    second, _, _ = store.next_comparison(cid, "ann", exclude=[first.public_id])
    assert second.public_id != first.public_id
    assert store.next_comparison(cid, "ann", exclude=[c.public_id for c in _cmps(store, cid)])[0] \
        is None


def test_people_and_simulated_auditors_never_share_a_name(store):
    cid = simple_campaign(store)
    c = _cmps(store, cid)
    store.record_vote(c[0].public_id, "sim0", "left", NOW, source="sim")
    with pytest.raises(AuditError, match="simulated"):
        store.record_vote(c[1].public_id, "sim0", "left", NOW, source="name")
    store.record_vote(c[0].public_id, "ann", "left", NOW, source="name")
    with pytest.raises(AuditError, match="person"):
        store.record_vote(c[1].public_id, "ann", "left", NOW, source="sim")
    people = store.votes(cid, include_simulated=False)
    assert [v["auditor"] for v in people] == ["ann"] and not people[0]["simulated"]


def test_v1_database_is_migrated_and_simulated_auditors_marked(tmp_path):
    import sqlite3

    path = tmp_path / "v1.sqlite"
    con = sqlite3.connect(path)  # the v1 auditors table and version row, as v1 wrote them
    con.executescript(
        "CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value VARCHAR(256));"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE auditors (id INTEGER PRIMARY KEY, name VARCHAR(128) UNIQUE, "
        "source VARCHAR(32), created_at DATETIME);"
        "INSERT INTO auditors (name, source) VALUES ('sim0', 'sim'), ('ann', 'name');")
    con.commit()
    con.close()
    store = Store(f"sqlite:///{path}")
    with store.session() as s:
        from db.schema import Auditor

        assert s.get(Meta, "schema_version").value == str(SCHEMA_VERSION) == "2"
        assert dict(s.execute(select(Auditor.name, Auditor.simulated)).all()) == \
            {"sim0": 1, "ann": 0}
    store.engine.dispose()
