"""Contacts: people at customer companies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, live_index
from models.mixins import Record


class Contact(Record, Base):
    __tablename__ = "contacts"
    __table_args__ = (live_index("ix_contacts_live_name", "last_name", "id"),)  # migration 0016

    first_name: Mapped[str | None] = mapped_column(String(128))
    last_name: Mapped[str] = mapped_column(String(128), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(128))
    lead_source: Mapped[str | None] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict  # the database defaults it to {} too
    )
