"""Currencies and their conversion rate to the base currency."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Currency(Base):
    """vtiger's conversion rate: units of this currency that one base unit buys."""

    __tablename__ = "currencies"
    __table_args__ = (CheckConstraint("rate > 0", name="rate_positive"),)

    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    rate: Mapped[Decimal] = mapped_column(Numeric(18, 6, asdecimal=True))
    is_base: Mapped[bool] = mapped_column(Boolean, default=False)
