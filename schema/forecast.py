"""Forecasts by any combination of dimensions, and attainment against budgets."""

from __future__ import annotations

from decimal import Decimal
from enum import Enum

import strawberry

from resolvers import forecast as rules
from resolvers.errors import RequestError
from resolvers.ids import pk_of
from schema.budget import PeriodUnit
from schema.campaign import Campaign
from schema.context import Info
from schema.opportunity import OpportunityFilter
from schema.picklist import ForecastCategory, SalesStage, stage_by
from schema.reads import computed, to_one, value_field
from schema.user import User


@strawberry.enum
class ForecastDimension(Enum):
    PERIOD = "PERIOD"
    ASSIGNEE = "ASSIGNEE"
    STAGE = "STAGE"
    CAMPAIGN = "CAMPAIGN"
    FORECAST_CATEGORY = "FORECAST_CATEGORY"
    TYPE = "TYPE"
    LEAD_SOURCE = "LEAD_SOURCE"


@strawberry.interface(description="Figures in the report currency, rounded to cents.")
class ForecastFigures:
    count: int
    amount: Decimal = strawberry.field(description="Σ amount of every deal in the group.")
    weighted_amount: Decimal = strawberry.field(
        description="Σ amount × probability / 100: won deals weigh 100%, lost 0%."
    )
    open_amount: Decimal
    won_amount: Decimal
    lost_amount: Decimal


@strawberry.type
class ForecastTotals(ForecastFigures):
    is_type_of = staticmethod(lambda obj, _info: isinstance(obj, rules.Figures))


@strawberry.type(description="One group; dimensions not grouped by are null.")
class ForecastBucket(ForecastFigures):
    is_type_of = staticmethod(lambda obj, _info: isinstance(obj, rules.Bucket))
    period: str | None = strawberry.field(description="2027-03, 2027-Q1 or 2027.")
    type: str | None
    lead_source: str | None

    assigned_to: User | None = to_one("User", "assigned_to_id")

    stage: SalesStage | None = computed(
        lambda bucket, stage: stage, using=stage_by("stage"), itself=True
    )

    campaign: Campaign | None = to_one("Campaign", "campaign_id")

    @strawberry.field
    @staticmethod
    def forecast_category(root: strawberry.Parent[rules.Bucket]) -> ForecastCategory | None:
        return None if root.forecast_category is None else ForecastCategory(root.forecast_category)


@strawberry.type
class Forecast:
    currency: str
    buckets: list[ForecastBucket]
    totals: ForecastTotals


@strawberry.type(description="A user's (and their team's) figures for a period, in base currency.")
class BudgetAttainment:
    target: Decimal | None
    closed_won: Decimal = strawberry.field(description="Won deals closed in the period.")
    commit: Decimal = strawberry.field(description="closedWon + open COMMIT deals due.")
    best_case: Decimal = strawberry.field(description="commit + open BEST_CASE deals due.")
    pipeline: Decimal = strawberry.field(description="Every open deal due in the period.")
    weighted_pipeline: Decimal
    gap: Decimal | None = strawberry.field(description="target − closedWon.")
    attainment_percent: Decimal | None = strawberry.field(
        description="closedWon / target × 100; null without a target."
    )
    best_band: Decimal = strawberry.field(description="Open deals due with probability ≥ 70.")
    forecast_band: Decimal = strawberry.field(description="… with probability ≥ 80.")
    worst_band: Decimal = strawberry.field(description="… with probability ≥ 90.")


@strawberry.type
class ForecastQuery:
    @value_field(description="Pipeline figures grouped by the given dimensions.")
    async def forecast(
        self,
        info: Info,
        group_by: list[ForecastDimension],
        period: PeriodUnit = PeriodUnit.MONTH,
        filter: OpportunityFilter | None = None,
        currency: str | None = None,
    ) -> Forecast:
        ctx = info.context
        result = await rules.forecast(
            ctx.session, ctx.viewer, [d.value for d in group_by], period.value,
            filter.to_rules() if filter else None, currency,
        )
        return result  # type: ignore[return-value]

    @value_field(description="Attainment against target; null for a user you may not see.")
    async def budget_attainment(
        self,
        info: Info,
        year: int,
        period: PeriodUnit,
        number: int,
        user_id: strawberry.ID | None = None,
    ) -> BudgetAttainment | None:
        ctx = info.context
        problem = rules.valid_period(year, period.value, number)
        if problem:
            raise RequestError(problem)
        uid = ctx.viewer.user.id if user_id is None else pk_of(user_id, "User")
        if uid is None:
            return None
        return await rules.attainment(  # type: ignore[return-value]
            ctx.session, ctx.viewer, uid, year, period.value, number
        )
