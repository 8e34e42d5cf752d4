"""Opportunities (Potentials): the deal, its contacts and its stage history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Money, Percent, UTCDateTime, live_index, utcnow
from models.mixins import Record

AMOUNT_SOURCES = ("MANUAL", "QUOTE")


class Opportunity(Record, Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("probability >= 0 AND probability <= 100", name="probability_range"),
        CheckConstraint("amount_source IN ('MANUAL', 'QUOTE')", name="amount_source_known"),
        CheckConstraint("version >= 1", name="version_positive"),
        # The pipeline page and its count: deals not in the recycle bin, by close date.
        live_index("ix_opportunities_live_close_date", "expected_close_date", "id"),
        Index("ix_opportunities_owner_close_date", "assigned_to_id", "expected_close_date"),
        # A campaign's deals: its pages, its counts and (PostgreSQL) its figures (0015).
        live_index(
            "ix_opportunities_live_campaign", "campaign_id", "expected_close_date", "id",
            postgresql_include=["assigned_to_id", "sales_stage", "currency", "amount"],
        ),
        # The recycle bin's page: deleted deals, newest deletion first (migration 0014).
        Index(
            "ix_opportunities_recycle_bin", "deleted_at", "id",
            postgresql_where=text("deleted_at IS NOT NULL"),
            sqlite_where=text("deleted_at IS NOT NULL"),
        ),
        # Forecasts and attainment of a rep or a team (owner, then close date) read only this
        # index: it holds every column they filter, group and sum on (bench/forecast.py).
        Index(
            "ix_opportunities_owner_forecast", "assigned_to_id", "expected_close_date",
            "sales_stage", "currency", "amount", "probability", "actual_close_date",
            "deleted_at",
        ),
    )

    name: Mapped[str] = mapped_column(String(255), index=True)
    amount: Mapped[Decimal] = mapped_column(Money(), default=Decimal("0"), index=True)
    currency: Mapped[str] = mapped_column(ForeignKey("currencies.code"), default="EUR")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    expected_close_date: Mapped[dt.date]
    actual_close_date: Mapped[dt.date | None]
    type: Mapped[str | None] = mapped_column(String(64))
    next_step: Mapped[str | None] = mapped_column(String(255))
    lead_source: Mapped[str | None] = mapped_column(String(64))
    sales_stage: Mapped[str] = mapped_column(ForeignKey("sales_stages.key"), index=True)
    probability: Mapped[Decimal] = mapped_column(Percent())
    probability_is_manual: Mapped[bool] = mapped_column(Boolean, default=False)
    lost_reason: Mapped[str | None] = mapped_column(Text)
    amount_source: Mapped[str] = mapped_column(String(8), default="MANUAL")
    stage_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict  # the database defaults it to {} too
    )


class OpportunityOwnerCount(Base):
    """How many deals each user owns outside the recycle bin, kept by database triggers on
    `opportunities` (migration 0009): the total of an unfiltered deal list sums a row per
    visible owner instead of counting every deal."""

    __tablename__ = "opportunity_owner_counts"

    owner_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    live: Mapped[int] = mapped_column(Integer)


class OpportunityContact(Base):
    """A contact's role in a deal; at most one primary contact per deal."""

    __tablename__ = "opportunity_contacts"
    __table_args__ = (
        Index(
            "uq_opportunity_contacts_primary",
            "opportunity_id",
            unique=True,
            sqlite_where=text("is_primary"),
            postgresql_where=text("is_primary"),
        ),
    )

    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id"), primary_key=True, index=True
    )
    role: Mapped[str | None] = mapped_column(String(64))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # One-way, for writing links of a deal not yet flushed; never loaded.
    opportunity: Mapped[Opportunity] = relationship(lazy="raise")


class StageChange(Base):
    """One move of a deal between sales stages (creation records the first)."""

    __tablename__ = "stage_changes"
    __table_args__ = (Index("ix_stage_changes_opportunity", "opportunity_id", "changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id"))
    from_stage: Mapped[str | None] = mapped_column(ForeignKey("sales_stages.key"))
    to_stage: Mapped[str] = mapped_column(ForeignKey("sales_stages.key"))
    amount: Mapped[Decimal] = mapped_column(Money())
    probability: Mapped[Decimal] = mapped_column(Percent())
    expected_close_date: Mapped[dt.date]
    # The deal's actual close date after this change (null while open).
    actual_close_date: Mapped[dt.date | None]
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
    # One-way, so that the history of a deal not yet flushed is written with it.
    opportunity: Mapped[Opportunity] = relationship(lazy="raise")
