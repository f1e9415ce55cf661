"""The audit suite runs on SQLite by default and on any server given by STAGER_TEST_DB_URL
(``.ci/run`` sets it to a local PostgreSQL and runs this folder a second time)."""

import os

import pytest
from sqlalchemy import text

from db.schema import Base
from db.store import Store


def _fresh(url: str) -> Store:
    store = Store(url)
    Base.metadata.drop_all(store.engine)
    with store.engine.begin() as conn:
        if store.engine.dialect.name != "sqlite":
            conn.execute(text("DROP TABLE IF EXISTS meta CASCADE"))
    store.engine.dispose()
    return Store(url)


@pytest.fixture
def db_url(tmp_path):
    return os.environ.get("STAGER_TEST_DB_URL") or f"sqlite:///{tmp_path / 'audit.sqlite'}"


@pytest.fixture
def store(db_url):
    s = _fresh(db_url)
    yield s
    s.engine.dispose()


def make_items(store, systems=("a", "b"), n=5):
    ids = {}
    for k in range(n):
        for sys_ in systems:
            ids[(k, sys_)] = store.add_item(f"p{k}", f"s{k}", sys_, f"/x/{sys_}{k}.png",
                                            f"h-{sys_}-{k}")
    return ids


def simple_campaign(store, name="c", n=5, systems=("a", "b")):
    ids = make_items(store, systems, n)
    specs = [{"task": "a vs b", "left": ids[(k, "a")], "right": ids[(k, "b")], "gold": None}
             for k in range(n)]
    return store.create_campaign(name, [{"name": "a vs b", "a": "a", "b": "b"}], specs)
