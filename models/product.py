"""The product catalogue that quote lines refer to."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money, Percent, Timestamps, UTCDateTime, live_index


class Product(Timestamps, Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("unit_price >= 0", name="unit_price_non_negative"),
        CheckConstraint("tax_percent >= 0 AND tax_percent <= 100", name="tax_percent_range"),
        live_index("ix_products_live_name", "name", "id"),  # migration 0016
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    code: Mapped[str | None] = mapped_column(String(64), index=True)
    unit_price: Mapped[Decimal] = mapped_column(Money())
    tax_percent: Mapped[Decimal] = mapped_column(Percent(), default=Decimal("0"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
