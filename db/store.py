"""Engine, schema creation and the audit operations (items, campaigns, votes).

SQLite gets WAL, a busy timeout, foreign keys and ``BEGIN IMMEDIATE`` transactions (so
concurrent voters queue instead of failing on lock upgrades); any other SQLAlchemy URL
(PostgreSQL for many auditors) works as is. Votes are idempotent: the database refuses a
second vote of one auditor on one comparison.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from stager import __version__

from .schema import (MIGRATIONS, OUTCOMES, SCHEMA_VERSION, Auditor, Base, Campaign, Comparison,
                     Item, Meta, Vote, utcnow)


SIMULATED = "sim"  # the source of simulated auditors' votes


class AuditError(ValueError):
    """Bad audit input or database state; one-line message for the user."""


def make_engine(url: str, busy_timeout_ms: int = 30_000) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout (how long a writer waits for
    a lock before giving up), FKs and immediate transactions."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise AuditError(f"STAGER_DB_URL={url!r} is not a valid SQLAlchemy URL") from exc
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):  # URI form: left as given
            folder = Path(db).parent
            if not folder.exists():
                folder.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000,
                                                  "check_same_thread": False},
                               pool_size=40, max_overflow=20)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            try:
                cur.execute("PRAGMA journal_mode=WAL")
            except Exception:  # read-only file: WAL cannot be switched on; reads still work
                pass
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            # readers take no write lock (WAL lets them run beside a writer); writers take
            # it at BEGIN so a lock upgrade can never fail half-way
            read = conn.get_execution_options().get("stager_read_only")
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")
    else:
        try:
            engine = create_engine(url, pool_pre_ping=True, pool_size=40, max_overflow=20)
        except (ArgumentError, ImportError) as exc:
            raise AuditError(f"STAGER_DB_URL={url!r} cannot be used ({exc})") from exc
    return engine


class Store:
    """The audit database: ``Store(url)`` creates or upgrades the schema."""

    def __init__(self, url: str, busy_timeout_ms: int = 30_000):
        self.url = url
        self.engine = make_engine(url, busy_timeout_ms)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.ReadSession = sessionmaker(self.engine.execution_options(stager_read_only=True),
                                        expire_on_commit=False)
        # SQLite has one writer at a time; this process's writers queue on a lock instead of
        # polling the file lock in SQLite's busy handler (sleeps of up to 100 ms each)
        self._totals: dict[int, int] = {}  # campaign id -> its number of comparisons
        self._write_lock = threading.RLock() if self.engine.dialect.name == "sqlite" else None
        try:
            self._init_schema()
        except OperationalError as exc:
            raise AuditError(f"the audit database at {url} cannot be opened or written "
                             f"({str(exc.orig).splitlines()[0]})") from exc

    def _init_schema(self) -> None:
        Base.metadata.create_all(self.engine)
        with self.session() as s:
            row = s.get(Meta, "schema_version")
            if row is None:
                s.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
                return
            v = int(row.value)
            if v > SCHEMA_VERSION:
                raise AuditError(f"the audit database has schema v{v}, newer than this app "
                                 f"(v{SCHEMA_VERSION}): upgrade Product Stager")
            for target in range(v + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS.get(target, []):
                    s.connection().exec_driver_sql(stmt)
                row.value = str(target)

    @contextmanager
    def session(self, read_only: bool = False):
        """A transaction: commits on success, rolls back on error. ``read_only``: a reader's
        transaction (on SQLite, no write lock)."""
        lock = None if read_only else self._write_lock
        if lock is not None:
            lock.acquire()
        s: Session = (self.ReadSession if read_only else self.Session)()
        try:
            yield s
            s.commit()
        except OperationalError as exc:
            s.rollback()
            msg = str(exc.orig).splitlines()[0]
            if "readonly" in msg or "read-only" in msg:
                raise AuditError("the audit database is read-only: nothing was saved; "
                                 "check the file's permissions or STAGER_DB_URL") from exc
            if "locked" in msg:
                raise AuditError("the audit database is locked by another process: nothing was "
                                 "saved; try again") from exc
            raise AuditError(f"audit database error: {msg}") from exc
        except Exception:
            s.rollback()
            raise
        finally:
            s.close()
            if lock is not None:
                lock.release()

    # ------------------------------------------------------------------ items
    def add_item(self, product: str, scene: str, system: str, path: str | Path, image_hash: str,
                 params: dict | None = None, seed: int = 0, in_pool: bool = False) -> int:
        """Insert an item (or return the existing one with the same key). ``image_hash`` is
        the item's key: ``db.campaign.item_key`` (content hash and system), so two systems
        that produce the same image get two items, each with its own label."""
        with self.session() as s:
            got = s.scalar(select(Item).where(Item.image_hash == image_hash))
            if got is not None:
                if got.system != system:
                    raise AuditError(f"item key {image_hash} is already {got.system!r}'s, not "
                                     f"{system!r}'s: keys must include the system")
                if in_pool and not got.in_pool:
                    got.in_pool = 1
                return got.id
            it = Item(product=product, scene=scene, system=system, path=str(path),
                      image_hash=image_hash, params=params or {}, seed=seed, in_pool=int(in_pool))
            s.add(it)
            s.flush()
            return it.id

    def pool_items(self) -> list[Item]:
        with self.session(read_only=True) as s:
            return list(s.scalars(select(Item).where(Item.in_pool == 1)))

    # ------------------------------------------------------------------ campaigns
    def create_campaign(self, name: str, tasks: list[dict], comparisons: list[dict],
                        seed: int = 0) -> int:
        """Create a campaign and all its comparisons in one transaction.

        ``comparisons``: dicts with task, left, right (item ids), gold (None/'left'/'right'),
        repeat_of (index into this list or None)."""
        with self.session() as s:
            if s.scalar(select(Campaign).where(Campaign.name == name)) is not None:
                raise AuditError(f"a campaign named {name!r} already exists")
            c = Campaign(name=name, tasks=tasks, seed=seed)
            s.add(c)
            s.flush()
            made: list[Comparison] = []
            for pos, spec in enumerate(comparisons):
                cmp_ = Comparison(public_id=secrets.token_hex(8), campaign_id=c.id,
                                  task=spec["task"], left_item_id=spec["left"],
                                  right_item_id=spec["right"], position=pos,
                                  gold=spec.get("gold"))
                if spec.get("repeat_of") is not None:
                    cmp_.repeat_of = made[spec["repeat_of"]].id
                s.add(cmp_)
                s.flush()
                made.append(cmp_)
            return c.id

    def campaign(self, name_or_id: str | int | None = None) -> Campaign:
        with self.session(read_only=True) as s:
            q = select(Campaign)
            if name_or_id is None:
                c = s.scalar(q.order_by(Campaign.id.desc()))
            elif isinstance(name_or_id, int) or str(name_or_id).isdigit():
                c = s.get(Campaign, int(name_or_id))
            else:
                c = s.scalar(q.where(Campaign.name == name_or_id))
            if c is None:
                raise AuditError(f"no campaign {name_or_id!r}" if name_or_id else "no campaign yet: "
                                 "create one with `python -m stager audit create`")
            return c

    def campaigns(self) -> list[Campaign]:
        with self.session(read_only=True) as s:
            return list(s.scalars(select(Campaign).order_by(Campaign.id)))

    def set_status(self, campaign_id: int, status: str) -> None:
        with self.session() as s:
            c = s.get(Campaign, campaign_id)
            if c is None:
                raise AuditError(f"no campaign {campaign_id}")
            c.status = status

    # ------------------------------------------------------------------ voting
    def auditor_id(self, s: Session, name: str, source: str = "name") -> int:
        """The auditor's id, created on first use. A person can never vote as a simulated
        auditor, nor a simulation as a person: the name is refused instead."""
        name = (name or "").strip()
        if not name:
            raise AuditError("no auditor identity: log in or enter your name before voting")
        simulated = int(source == SIMULATED)
        got = s.execute(select(Auditor.id, Auditor.simulated).where(Auditor.name == name)).first()
        if got is None:
            try:
                with s.begin_nested():
                    a = Auditor(name=name, source=source, simulated=simulated)
                    s.add(a)
                return a.id
            except IntegrityError:  # another thread created it first
                got = s.execute(select(Auditor.id, Auditor.simulated)
                                .where(Auditor.name == name)).first()
        if int(got.simulated) != simulated:
            raise AuditError(f"the name {name!r} belongs to a "
                             f"{'simulated auditor' if got.simulated else 'person'}: "
                             "choose another name")
        return got.id

    def next_comparison(self, campaign_id: int, auditor: str, exclude: list[str] | None = None
                        ) -> tuple[Comparison | None, int, int]:
        """(next unvoted comparison for the auditor or None, done, total); comparisons whose
        public id is in ``exclude`` (skipped ones) are passed over."""
        with self.session(read_only=True) as s:
            total = self._totals.get(campaign_id)
            if total is None:  # a campaign's comparisons are made once, all together
                total = s.scalar(select(func.count()).select_from(Comparison)
                                 .where(Comparison.campaign_id == campaign_id)) or 0
                if total:
                    self._totals[campaign_id] = total
            aid = s.scalar(select(Auditor.id).where(Auditor.name == auditor))
            voted = select(Vote.comparison_id).where(Vote.auditor_id == aid) if aid else None
            q = select(Comparison).where(Comparison.campaign_id == campaign_id)
            done = 0
            if voted is not None:
                q = q.where(Comparison.id.not_in(voted))
                done = s.scalar(select(func.count()).select_from(Vote).join(Comparison)
                                .where(Vote.auditor_id == aid,
                                       Comparison.campaign_id == campaign_id)) or 0
            if exclude:
                q = q.where(Comparison.public_id.not_in(list(exclude)))
            # both items in the same query (the caller shows them)
            c = s.scalar(q.options(joinedload(Comparison.left_item),
                                   joinedload(Comparison.right_item))
                         .order_by(Comparison.position).limit(1))
            return c, done, total

    def campaign_items(self, campaign_id: int) -> list[Item]:
        """Every item a campaign shows (each once), in presentation order."""
        with self.session(read_only=True) as s:
            rows = s.execute(select(Comparison.left_item_id, Comparison.right_item_id)
                             .where(Comparison.campaign_id == campaign_id)
                             .order_by(Comparison.position)).all()
            order = list(dict.fromkeys(i for row in rows for i in row))
            items = {i.id: i for i in s.scalars(select(Item).where(Item.id.in_(order)))}
            return [items[i] for i in order]

    def comparison(self, public_id: str) -> Comparison:
        with self.session(read_only=True) as s:
            c = s.scalar(select(Comparison).where(Comparison.public_id == public_id))
            if c is None:
                raise AuditError(f"unknown comparison {public_id!r}")
            c.left_item, c.right_item  # noqa: B018
            return c

    def record_vote(self, public_id: str, auditor: str, outcome: str, shown_at: dt.datetime,
                    comment: str = "", source: str = "name",
                    answered_at: dt.datetime | None = None,
                    campaign_id: int | None = None) -> tuple[bool, str]:
        """Store a vote. Returns (True, "recorded") once it is committed, or (False, "already
        voted"); raises ``AuditError`` for an unknown comparison (or, with ``campaign_id``,
        one of another campaign), a closed campaign, a bad outcome or no identity."""
        if outcome not in OUTCOMES:
            raise AuditError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
        answered_at = answered_at or utcnow()
        with self.session() as s:
            got = s.execute(select(Comparison.id, Comparison.campaign_id, Campaign.status)
                            .join(Campaign, Campaign.id == Comparison.campaign_id)
                            .where(Comparison.public_id == public_id)).first()
            if got is None or (campaign_id is not None and got.campaign_id != campaign_id):
                raise AuditError(f"unknown comparison {str(public_id)[:40]!r} in this campaign: "
                                 "nothing was saved")
            if got.status != "open":
                raise AuditError("this campaign is closed: votes are no longer accepted")
            aid = self.auditor_id(s, auditor, source)
            try:
                with s.begin_nested():
                    s.add(Vote(comparison_id=got.id, auditor_id=aid, outcome=outcome,
                               shown_at=shown_at, answered_at=answered_at,
                               lead_ms=max(0.0, (answered_at - shown_at).total_seconds() * 1000),
                               app_version=__version__, comment=comment[:2000]))
            except IntegrityError:
                return False, "already voted on this comparison"
            return True, "recorded"

    def votes(self, campaign_id: int, include_simulated: bool = True) -> list[dict]:
        """Every vote of a campaign joined with what was shown (for statistics and CSV); each
        says whether a simulated auditor cast it. ``include_simulated=False``: people only."""
        with self.session(read_only=True) as s:
            q = (select(Vote, Comparison, Auditor)
                 .join(Comparison, Vote.comparison_id == Comparison.id)
                 .join(Auditor, Vote.auditor_id == Auditor.id)
                 .where(Comparison.campaign_id == campaign_id))
            if not include_simulated:
                q = q.where(Auditor.simulated == 0)
            rows = s.execute(q.order_by(Vote.id)).all()
            items = {i.id: i for i in s.scalars(select(Item))}
            out = []
            for v, c, a in rows:
                out.append({
                    "vote_id": v.id, "comparison": c.public_id, "comparison_id": c.id,
                    "task": c.task, "auditor": a.name, "simulated": bool(a.simulated),
                    "outcome": v.outcome,
                    "left_system": items[c.left_item_id].system,
                    "right_system": items[c.right_item_id].system,
                    "left_item": c.left_item_id, "right_item": c.right_item_id,
                    "gold": c.gold, "repeat_of": c.repeat_of, "lead_ms": v.lead_ms,
                    "shown_at": v.shown_at.isoformat(), "answered_at": v.answered_at.isoformat(),
                    "app_version": v.app_version, "comment": v.comment})
            return out


_STORES: dict[str, Store] = {}
_STORES_LOCK = threading.Lock()


def get_store(url: str) -> Store:
    """One ``Store`` (engine, pool, schema check) per URL for the process; the app's handlers
    call this on every vote instead of building a new engine each time. Thread-safe: the
    first votes of many auditors at once build it once."""
    got = _STORES.get(url)
    if got is None:
        with _STORES_LOCK:
            got = _STORES.get(url)
            if got is None:
                got = _STORES[url] = Store(url)
    return got
