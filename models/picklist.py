"""Admin-editable value lists: sales stages and the other picklists."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Percent

FORECAST_CATEGORIES = ("PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMITTED")


class SalesStage(Base):
    __tablename__ = "sales_stages"
    __table_args__ = (
        CheckConstraint("probability >= 0 AND probability <= 100", name="probability_range"),
    )

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    position: Mapped[int]
    probability: Mapped[Decimal] = mapped_column(Percent())
    forecast_category: Mapped[str] = mapped_column(String(16))
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_won: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class PicklistValue(Base):
    __tablename__ = "picklist_values"
    __table_args__ = (UniqueConstraint("picklist", "key", name="picklist_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    picklist: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(128))
    position: Mapped[int]
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
