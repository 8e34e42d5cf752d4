"""Sales stages, picklists and currencies: reference data visible to everyone."""

from __future__ import annotations

import functools
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry

import models
from resolvers import picklist as rules
from schema.context import Info
from schema.reads import ByKey, computed, value_field
from schema.relay import rows_of


@strawberry.enum
class ForecastCategory(Enum):
    PIPELINE = "PIPELINE"
    BEST_CASE = "BEST_CASE"
    COMMIT = "COMMIT"
    CLOSED = "CLOSED"
    OMITTED = "OMITTED"


@strawberry.type(description="A step of the sales process, with its default probability.")
class SalesStage:
    is_type_of = rows_of(models.SalesStage)
    key: str
    name: str
    position: int
    probability: Decimal = strawberry.field(
        description="The default probability of deals entering the stage. Changing it leaves "
        "existing deals as they are; a won stage is always 100, a lost one 0."
    )
    is_closed: bool
    is_won: bool
    is_active: bool

    forecast_category: ForecastCategory = computed(
        lambda stage: ForecastCategory(stage.forecast_category), reads=("forecast_category",)
    )


@functools.cache
def stage_by(column: str) -> ByKey:
    """The stage whose key a row's `column` holds (every stage is read: reference data)."""

    async def load(row: Any, info: Info) -> models.SalesStage | None:
        key = getattr(row, column)
        return None if key is None else await info.context.loaders.stage.load(key)

    return ByKey(models.SalesStage, "key", column, load)


@strawberry.type(description="One value of an admin-editable list; clients send the key.")
class PicklistValue:
    key: str
    position: int
    is_active: bool

    @strawberry.field
    @staticmethod
    def label(root: strawberry.Parent[models.PicklistValue | models.SalesStage]) -> str:
        return root.name if isinstance(root, models.SalesStage) else root.label


@strawberry.type(description="A currency and its rate: units of it that one base unit buys.")
class Currency:
    code: str
    rate: Decimal
    is_base: bool


@strawberry.type
class PicklistQuery:
    @value_field(description="Sales stages in order.")
    async def sales_stages(self, info: Info, include_inactive: bool = False) -> list[SalesStage]:
        return await rules.sales_stages(info.context.session, include_inactive)  # type: ignore[return-value]

    @value_field(
        description="Values of a picklist (salesStage, opportunityType, leadSource, "
        "contactRole, quoteStage, leadStatus, industry, campaignType, campaignStatus)."
    )
    async def picklist(
        self, info: Info, name: str, include_inactive: bool = False
    ) -> list[PicklistValue]:
        return await rules.picklist(info.context.session, name, include_inactive)  # type: ignore[return-value]

    @value_field()
    async def currencies(self, info: Info) -> list[Currency]:
        return await rules.currencies(info.context.session)  # type: ignore[return-value]
