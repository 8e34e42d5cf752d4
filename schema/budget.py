"""Sales targets per user and period."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import Enum

import strawberry

import models
from resolvers import budget as rules
from resolvers.ids import pk_of
from schema.context import Info
from schema.reads import computed, node_id, to_one, value_field
from schema.relay import Node, rows_of
from schema.user import User


@strawberry.enum
class PeriodUnit(Enum):
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    YEAR = "YEAR"


@strawberry.type(description="A target: `number` is the month (1–12), quarter (1–4) or 1.")
class Budget(Node):
    is_type_of = rows_of(models.Budget)
    id: strawberry.ID = node_id("Budget")
    year: int
    number: int
    amount: Decimal
    updated_at: dt.datetime

    period: PeriodUnit = computed(lambda budget: PeriodUnit(budget.period), reads=("period",))

    user: User = to_one("User", "user_id")


@strawberry.type
class BudgetQuery:
    @value_field(description="Targets of the viewer and their team.")
    async def budgets(
        self, info: Info, year: int | None = None, user_id: strawberry.ID | None = None
    ) -> list[Budget]:
        user = None if user_id is None else (pk_of(user_id, "User") or -1)
        return await rules.list_budgets(  # type: ignore[return-value]
            info.context.session, info.context.viewer, year, user
        )
