"""Marketing campaigns, the source of leads and deals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Money
from models.mixins import Record


class Campaign(Record, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(
            "budget_cost >= 0 AND actual_cost >= 0 AND expected_revenue >= 0",
            name="money_non_negative",
        ),
    )

    name: Mapped[str] = mapped_column(String(255), index=True)
    type: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(64))
    expected_close_date: Mapped[dt.date | None]
    budget_cost: Mapped[Decimal | None] = mapped_column(Money())
    actual_cost: Mapped[Decimal | None] = mapped_column(Money())
    expected_revenue: Mapped[Decimal | None] = mapped_column(Money())
