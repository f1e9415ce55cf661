"""Tables of the audit database. ``SCHEMA_VERSION`` and ``MIGRATIONS`` version the schema."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (JSON, CheckConstraint, DateTime, Float, ForeignKey, Integer, String,
                        Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

OUTCOMES = ("left", "right", "tie", "both_bad")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class Auditor(Base):
    __tablename__ = "auditors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    source: Mapped[str] = mapped_column(String(32), default="name")  # login | hf | name | sim
    # 1 for simulated auditors (``audit simulate``): reports leave them out unless asked
    simulated: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Item(Base):
    """One image that can be audited: a system's output for a (product, scene)."""

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    product: Mapped[str] = mapped_column(String(128))
    scene: Mapped[str] = mapped_column(String(128))
    system: Mapped[str] = mapped_column(String(64), index=True)
    image_hash: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    in_pool: Mapped[int] = mapped_column(Integer, default=0)  # sent to the audit pool
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    tasks: Mapped[list] = mapped_column(JSON, default=list)  # [{"name", "a", "b"}]
    seed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    comparisons: Mapped[list["Comparison"]] = relationship(back_populates="campaign")
    __table_args__ = (CheckConstraint("status in ('open', 'closed')", name="ck_campaign_status"),)


class Comparison(Base):
    """Two items shown side by side; which system is on which side is recorded here only."""

    __tablename__ = "comparisons"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)  # neutral id in URLs
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(64))  # e.g. "pix2pix vs ground_truth"
    left_item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    right_item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    position: Mapped[int] = mapped_column(Integer)  # order of presentation
    gold: Mapped[str | None] = mapped_column(String(8), nullable=True)  # expected side
    repeat_of: Mapped[int | None] = mapped_column(ForeignKey("comparisons.id"), nullable=True)
    campaign: Mapped[Campaign] = relationship(back_populates="comparisons")
    left_item: Mapped[Item] = relationship(foreign_keys=[left_item_id])
    right_item: Mapped[Item] = relationship(foreign_keys=[right_item_id])


class Vote(Base):
    __tablename__ = "votes"
    id: Mapped[int] = mapped_column(primary_key=True)
    comparison_id: Mapped[int] = mapped_column(ForeignKey("comparisons.id", ondelete="CASCADE"), index=True)
    auditor_id: Mapped[int] = mapped_column(ForeignKey("auditors.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(8))
    shown_at: Mapped[dt.datetime] = mapped_column(DateTime)
    answered_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    lead_ms: Mapped[float] = mapped_column(Float)
    app_version: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (
        UniqueConstraint("comparison_id", "auditor_id", name="uq_vote_once"),
        CheckConstraint("outcome in ('left', 'right', 'tie', 'both_bad')", name="ck_vote_outcome"),
    )


SCHEMA_VERSION = 2
# version -> list of SQL statements bringing the schema from version-1 to version
MIGRATIONS: dict[int, list[str]] = {
    # v2: simulated auditors are marked; v1 wrote them with source 'sim'
    2: ["ALTER TABLE auditors ADD COLUMN simulated INTEGER NOT NULL DEFAULT 0",
        "UPDATE auditors SET simulated = 1 WHERE source = 'sim'"],
}
