"""What happened to a deal: its stage changes and the changes of its tracked fields."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry
from strawberry.scalars import JSON

import models
from resolvers import history
from schema.picklist import SalesStage, stage_by
from schema.reads import computed, to_one
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

    old_value: JSON | None = computed(
        lambda change: history.shown(change.field, change.old_value),
        reads=("field", "old_value"),
        description="The value before (a reference as its global id).",
    )
    new_value: JSON | None = computed(
        lambda change: history.shown(change.field, change.new_value),
        reads=("field", "new_value"),
        description="The value after (a reference as its global id).",
    )

    changed_by: User = to_one("User", "changed_by_id")


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

    from_stage: SalesStage | None = computed(
        lambda change, stage: stage, using=stage_by("from_stage"), itself=True
    )
    to_stage: SalesStage = computed(
        lambda change, stage: stage, using=stage_by("to_stage"), itself=True
    )

    changed_by: User = to_one("User", "changed_by_id")
