"""What happened to a deal: its stage changes and the changes of its tracked fields."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry
from strawberry.scalars import JSON

import models
from resolvers import history
from schema.common import related
from schema.context import Info
from schema.picklist import SalesStage
from schema.relay import rows_of
from schema.user import User


@strawberry.type(description="A tracked field of a deal changing value.")
class FieldChange:
    is_type_of = rows_of(models.FieldChange)
    field: str = strawberry.field(
        description="amount, salesStage, probability, expectedCloseDate, assignedTo, account, "
        "campaign (values: global ids), or a custom field key."
    )
    source: str = strawberry.field(
        description="MUTATION, QUOTE_SYNC, IMPORT, CONVERSION or UNDO."
    )
    changed_at: dt.datetime

    @strawberry.field(description="The value before (a reference as its global id).")
    @staticmethod
    def old_value(root: strawberry.Parent[models.FieldChange]) -> JSON | None:
        return history.shown(root.field, root.old_value)  # type: ignore[no-any-return]

    @strawberry.field(description="The value after (a reference as its global id).")
    @staticmethod
    def new_value(root: strawberry.Parent[models.FieldChange]) -> JSON | None:
        return history.shown(root.field, root.new_value)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def changed_by(root: strawberry.Parent[models.FieldChange], info: Info) -> User:
        return await related(info, "User", root.changed_by_id)  # type: ignore[no-any-return]


@strawberry.type(description="One move between sales stages.")
class StageChange:
    is_type_of = rows_of(models.StageChange)
    amount: Decimal
    probability: Decimal
    expected_close_date: dt.date
    actual_close_date: dt.date | None = strawberry.field(
        description="The deal's actual close date after this change (null while open)."
    )
    changed_at: dt.datetime
    note: str | None

    @strawberry.field
    @staticmethod
    async def from_stage(
        root: strawberry.Parent[models.StageChange], info: Info
    ) -> SalesStage | None:
        if root.from_stage is None:
            return None
        return await info.context.loaders.stage.load(root.from_stage)  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def to_stage(root: strawberry.Parent[models.StageChange], info: Info) -> SalesStage:
        return await info.context.loaders.stage.load(root.to_stage)  # type: ignore[return-value]

    @strawberry.field
    @staticmethod
    async def changed_by(root: strawberry.Parent[models.StageChange], info: Info) -> User:
        return await related(info, "User", root.changed_by_id)  # type: ignore[no-any-return]
