"""Leads: prospects not yet qualified, converted into account, contact and deal."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, live_index
from models.mixins import Record


class Lead(Record, Base):
    __tablename__ = "leads"
    __table_args__ = (live_index("ix_leads_live_name", "last_name", "id"),)  # migration 0016

    first_name: Mapped[str | None] = mapped_column(String(128))
    last_name: Mapped[str] = mapped_column(String(128), index=True)
    company: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(128))
    industry: Mapped[str | None] = mapped_column(String(64))
    lead_source: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(64))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    is_converted: Mapped[bool] = mapped_column(Boolean, default=False)
    converted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    converted_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id"), index=True  # timelines find conversions by these two
    )
    converted_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    converted_opportunity_id: Mapped[int | None] = mapped_column(
        ForeignKey("opportunities.id"), index=True
    )
    custom_fields: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict  # the database defaults it to {} too
    )
