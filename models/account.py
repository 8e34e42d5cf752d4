"""Accounts (Aziende): the customer companies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money, live_index
from models.mixins import Record


class Account(Record, Base):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("annual_revenue >= 0", name="annual_revenue_non_negative"),
        CheckConstraint("employees >= 0", name="employees_non_negative"),
        live_index("ix_accounts_live_name", "name", "id"),  # migration 0016
    )

    name: Mapped[str] = mapped_column(String(255), index=True)
    industry: Mapped[str | None] = mapped_column(String(64))
    website: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254))
    city: Mapped[str | None] = mapped_column(String(128))
    country: Mapped[str | None] = mapped_column(String(128))
    annual_revenue: Mapped[Decimal | None] = mapped_column(Money())
    employees: Mapped[int | None]
    custom_fields: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict  # the database defaults it to {} too
    )
