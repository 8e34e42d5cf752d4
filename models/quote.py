"""Quotes and their product lines; a synced quote drives its deal's amount."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Numeric, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money, Percent, Timestamps, UTCDateTime, live_index


class Quote(Timestamps, Base):
    __tablename__ = "quotes"
    __table_args__ = (
        Index(
            "uq_quotes_synced_per_opportunity",
            "opportunity_id",
            unique=True,
            sqlite_where=text("is_synced"),
            postgresql_where=text("is_synced"),
        ),
        live_index("ix_quotes_live_created_at", "created_at", "id", "opportunity_id"),  # 0016
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    subject: Mapped[str] = mapped_column(String(255))
    stage: Mapped[str] = mapped_column(String(64), default="CREATED")
    valid_until: Mapped[dt.date | None]
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    is_synced: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class QuoteLine(Base):
    __tablename__ = "quote_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("list_price >= 0", name="list_price_non_negative"),
        CheckConstraint(
            "discount_percent >= 0 AND discount_percent <= 100", name="discount_range"
        ),
        CheckConstraint("tax_percent >= 0 AND tax_percent <= 100", name="tax_range"),
        Index("ix_quote_lines_quote_position", "quote_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    description: Mapped[str | None] = mapped_column(String(1000))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3, asdecimal=True))
    list_price: Mapped[Decimal] = mapped_column(Money())
    discount_percent: Mapped[Decimal] = mapped_column(Percent(), default=Decimal("0"))
    tax_percent: Mapped[Decimal] = mapped_column(Percent(), default=Decimal("0"))
