"""Sales targets per user and period."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money, Timestamps


class Budget(Timestamps, Base):
    __tablename__ = "budgets"
    __table_args__ = (
        UniqueConstraint("user_id", "year", "period", "number", name="user_period"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("period IN ('MONTH', 'QUARTER', 'YEAR')", name="period_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    year: Mapped[int]
    period: Mapped[str] = mapped_column(String(8))
    number: Mapped[int]
    amount: Mapped[Decimal] = mapped_column(Money())
