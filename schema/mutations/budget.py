"""setBudget and setCurrencyRate."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from resolvers import budget as budgets
from resolvers import picklist
from schema.budget import Budget, PeriodUnit
from schema.context import Info
from schema.mutations.base import UserError, mutate
from schema.picklist import Currency


@strawberry.input
class SetBudgetInput:
    user_id: strawberry.ID
    year: int
    period: PeriodUnit
    number: int = strawberry.field(description="Month 1–12, quarter 1–4, or 1 for a year.")
    amount: Decimal = strawberry.field(description="In the base currency.")


@strawberry.input
class SetCurrencyRateInput:
    code: str = strawberry.field(description="ISO 4217, e.g. USD.")
    rate: Decimal = strawberry.field(description="Units of it that one base unit buys.")


@strawberry.type
class SetBudgetPayload:
    budget: Budget | None
    user_errors: list[UserError]


@strawberry.type
class SetCurrencyRatePayload:
    currency: Currency | None
    user_errors: list[UserError]


@strawberry.type
class BudgetMutation:
    @strawberry.mutation(description="Set a target: managers for their team, admins for all.")
    async def set_budget(self, info: Info, input: SetBudgetInput) -> SetBudgetPayload:
        ctx = info.context
        budget, errors = await mutate(
            info,
            lambda: budgets.set_budget(
                ctx.session, ctx.viewer, input.user_id, input.year, input.period.value,
                input.number, input.amount,
            ),
        )
        return SetBudgetPayload(budget=budget, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Add a currency or change its rate (admin only).")
    async def set_currency_rate(
        self, info: Info, input: SetCurrencyRateInput
    ) -> SetCurrencyRatePayload:
        ctx = info.context
        currency, errors = await mutate(
            info,
            lambda: picklist.set_currency_rate(ctx.session, ctx.viewer, input.code, input.rate),
        )
        return SetCurrencyRatePayload(currency=currency, user_errors=errors)  # type: ignore[arg-type]
