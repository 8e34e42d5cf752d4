"""addPicklistValue and updatePicklistValue (admin only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry

from models import SalesStage as SalesStageRow
from resolvers import picklist as rules
from schema.context import Info
from schema.mutations.base import UserError, mutate, provided
from schema.picklist import ForecastCategory, PicklistValue, SalesStage

UNSET = strawberry.UNSET
PICKLIST = strawberry.field(
    description="The picklist's name, as picklist(name:) takes it; salesStage for the stages."
)
STAGE_ONLY = "Sales stages only. "
PROBABILITY = (
    STAGE_ONLY + "The stage's default probability, 0–100. Deals keep the probability they "
    "have: a new default applies to the deals that enter the stage afterwards. A won stage "
    "is always 100 and a lost one 0."
)
FORECAST = (
    STAGE_ONLY + "When left out it follows the stage's state: PIPELINE when open, CLOSED when "
    "won, OMITTED when lost. Deals read it from their stage."
)


@strawberry.input
class AddPicklistValueInput:
    picklist: str = PICKLIST
    key: str = strawberry.field(
        description="SCREAMING_SNAKE, unique in the picklist, at most 64 characters; "
        "it never changes."
    )
    label: str = strawberry.field(description="At most 128 characters; for stages, the name.")
    position: int | None = strawberry.field(
        default=UNSET,
        description="1-based, past the end means last; defaults to last. The others keep "
        "their order.",
    )
    probability: Decimal | None = strawberry.field(
        default=UNSET, description=PROBABILITY + " Required for an open stage."
    )
    forecast_category: ForecastCategory | None = strawberry.field(
        default=UNSET, description=FORECAST
    )
    is_closed: bool | None = strawberry.field(
        default=UNSET, description=STAGE_ONLY + "Defaults to false (an open stage)."
    )
    is_won: bool | None = strawberry.field(
        default=UNSET, description=STAGE_ONLY + "A won stage is also closed. Defaults to false."
    )


@strawberry.input
class UpdatePicklistValueInput:
    picklist: str = PICKLIST
    key: str = strawberry.field(description="The value to change (keys never change).")
    label: str | None = strawberry.field(
        default=UNSET, description="Records keep the key, so they read the new label."
    )
    position: int | None = strawberry.field(
        default=UNSET, description="1-based, past the end means last; the others keep their order."
    )
    is_active: bool | None = strawberry.field(
        default=UNSET,
        description="An inactive value stays on the records that have it but new writes "
        "refuse it. A picklist keeps at least one active value; the sales stages keep an "
        "open, a won and a lost one.",
    )
    probability: Decimal | None = strawberry.field(default=UNSET, description=PROBABILITY)
    forecast_category: ForecastCategory | None = strawberry.field(
        default=UNSET, description=FORECAST
    )
    is_closed: bool | None = strawberry.field(
        default=UNSET, description=STAGE_ONLY + "Open stages are not closed."
    )
    is_won: bool | None = strawberry.field(
        default=UNSET, description=STAGE_ONLY + "A won stage is also closed."
    )


@strawberry.type
class AddPicklistValuePayload:
    picklist_value: PicklistValue | None
    sales_stage: SalesStage | None = strawberry.field(description="The stage, for salesStage.")
    user_errors: list[UserError]


@strawberry.type
class UpdatePicklistValuePayload:
    picklist_value: PicklistValue | None
    sales_stage: SalesStage | None = strawberry.field(description="The stage, for salesStage.")
    user_errors: list[UserError]


def _data(input: Any) -> dict[str, Any]:
    data = provided(input)
    if isinstance(data.get("forecast_category"), ForecastCategory):
        data["forecast_category"] = data["forecast_category"].value
    return data


@strawberry.type
class PicklistMutation:
    @strawberry.mutation(description="Add a value to a picklist or a sales stage (admin only).")
    async def add_picklist_value(
        self, info: Info, input: AddPicklistValueInput
    ) -> AddPicklistValuePayload:
        ctx = info.context
        data = _data(input)
        value, errors = await mutate(
            info, lambda: rules.add_picklist_value(ctx.session, ctx.viewer, data)
        )
        stage = value if isinstance(value, SalesStageRow) else None
        return AddPicklistValuePayload(
            picklist_value=value, sales_stage=stage, user_errors=errors  # type: ignore[arg-type]
        )

    @strawberry.mutation(
        description="Relabel, move, (de)activate a picklist value or change a sales stage "
        "(admin only). Records keep their keys; nothing stored on them changes."
    )
    async def update_picklist_value(
        self, info: Info, input: UpdatePicklistValueInput
    ) -> UpdatePicklistValuePayload:
        ctx = info.context
        data = _data(input)
        value, errors = await mutate(
            info, lambda: rules.update_picklist_value(ctx.session, ctx.viewer, data)
        )
        stage = value if isinstance(value, SalesStageRow) else None
        return UpdatePicklistValuePayload(
            picklist_value=value, sales_stage=stage, user_errors=errors  # type: ignore[arg-type]
        )
