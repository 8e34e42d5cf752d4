"""Deal mutations: create, update, stage change, recycle bin, account and contact links."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from resolvers import opportunity as rules
from resolvers.ids import to_global_id
from schema.context import Info
from schema.customization import CustomFieldInput
from schema.mutations.base import UserError, given, mutate, provided
from schema.opportunity import Opportunity

UNSET = strawberry.UNSET
ACTUAL_CLOSE_DATE = (
    "When a closed (or closing) deal closed; today by default, never in the future, "
    "refused on an open deal."
)


@strawberry.input
class CreateOpportunityInput:
    name: str
    expected_close_date: dt.date
    sales_stage: str = strawberry.field(description="A salesStage key, e.g. QUALIFICATION.")
    amount: Decimal | None = UNSET
    currency: str | None = strawberry.field(default=UNSET, description="Defaults to EUR.")
    account_id: strawberry.ID | None = UNSET
    contact_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="Added as the primary contact, without a role."
    )
    campaign_id: strawberry.ID | None = UNSET
    assigned_to_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="Defaults to you."
    )
    type: str | None = UNSET
    next_step: str | None = UNSET
    lead_source: str | None = UNSET
    probability: Decimal | None = strawberry.field(
        default=UNSET, description="Percent; given, it stays until probabilityIsManual: false."
    )
    lost_reason: str | None = UNSET
    actual_close_date: dt.date | None = strawberry.field(
        default=UNSET, description=ACTUAL_CLOSE_DATE
    )
    description: str | None = UNSET
    custom_fields: list[CustomFieldInput] | None = strawberry.field(
        default=UNSET, description="Custom field values; those left out stay as they are."
    )


@strawberry.input
class UpdateOpportunityInput:
    id: strawberry.ID
    expected_version: int | None = UNSET
    name: str | None = UNSET
    expected_close_date: dt.date | None = UNSET
    sales_stage: str | None = UNSET
    amount: Decimal | None = UNSET
    currency: str | None = UNSET
    account_id: strawberry.ID | None = UNSET
    contact_id: strawberry.ID | None = UNSET
    campaign_id: strawberry.ID | None = UNSET
    assigned_to_id: strawberry.ID | None = UNSET
    type: str | None = UNSET
    next_step: str | None = UNSET
    lead_source: str | None = UNSET
    probability: Decimal | None = UNSET
    probability_is_manual: bool | None = strawberry.field(
        default=UNSET, description="false clears a manual probability: the stage's returns."
    )
    lost_reason: str | None = UNSET
    actual_close_date: dt.date | None = strawberry.field(
        default=UNSET, description=ACTUAL_CLOSE_DATE
    )
    description: str | None = UNSET
    custom_fields: list[CustomFieldInput] | None = strawberry.field(
        default=UNSET, description="Custom field values; those left out stay as they are."
    )


@strawberry.input
class ChangeOpportunityStageInput:
    id: strawberry.ID
    stage: str
    probability: Decimal | None = UNSET
    note: str | None = UNSET
    lost_reason: str | None = strawberry.field(
        default=UNSET, description="Required when entering a lost stage."
    )
    actual_close_date: dt.date | None = strawberry.field(
        default=UNSET, description=ACTUAL_CLOSE_DATE
    )
    expected_version: int | None = UNSET


@strawberry.input
class DeleteOpportunityInput:
    id: strawberry.ID
    expected_version: int | None = UNSET


@strawberry.input
class RestoreOpportunityInput:
    id: strawberry.ID


@strawberry.input
class PurgeOpportunityInput:
    id: strawberry.ID


@strawberry.input
class LinkOpportunityToAccountInput:
    opportunity_id: strawberry.ID
    account_id: strawberry.ID


@strawberry.input
class AddOpportunityContactInput:
    opportunity_id: strawberry.ID
    contact_id: strawberry.ID
    role: str | None = strawberry.field(default=UNSET, description="A contactRole key.")
    is_primary: bool | None = UNSET


@strawberry.input
class RemoveOpportunityContactInput:
    opportunity_id: strawberry.ID
    contact_id: strawberry.ID


@strawberry.type
class OpportunityPayload:
    opportunity: Opportunity | None
    user_errors: list[UserError]


@strawberry.type
class CreateOpportunityPayload(OpportunityPayload):
    pass


@strawberry.type
class UpdateOpportunityPayload(OpportunityPayload):
    pass


@strawberry.type
class ChangeOpportunityStagePayload(OpportunityPayload):
    pass


@strawberry.type
class RestoreOpportunityPayload(OpportunityPayload):
    pass


@strawberry.type
class LinkOpportunityToAccountPayload(OpportunityPayload):
    pass


@strawberry.type
class AddOpportunityContactPayload(OpportunityPayload):
    pass


@strawberry.type
class RemoveOpportunityContactPayload(OpportunityPayload):
    pass


@strawberry.type
class DeleteOpportunityPayload:
    deleted_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type
class PurgeOpportunityPayload:
    purged_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type
class OpportunityMutation:
    @strawberry.mutation
    async def create_opportunity(
        self, info: Info, input: CreateOpportunityInput
    ) -> CreateOpportunityPayload:
        ctx = info.context
        opp, errors = await mutate(
            info, lambda: rules.create_opportunity(ctx.session, ctx.viewer, provided(input))
        )
        return CreateOpportunityPayload(opportunity=opp, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Change the given fields; a stage change is recorded.")
    async def update_opportunity(
        self, info: Info, input: UpdateOpportunityInput
    ) -> UpdateOpportunityPayload:
        ctx = info.context
        data = provided(input, "id", "expected_version")
        opp, errors = await mutate(
            info,
            lambda: rules.update_opportunity(
                ctx.session, ctx.viewer, input.id, data, given(input.expected_version)
            ),
        )
        return UpdateOpportunityPayload(opportunity=opp, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation
    async def change_opportunity_stage(
        self, info: Info, input: ChangeOpportunityStageInput
    ) -> ChangeOpportunityStagePayload:
        ctx = info.context
        opp, errors = await mutate(
            info,
            lambda: rules.change_stage(
                ctx.session, ctx.viewer, input.id, input.stage, given(input.probability),
                given(input.note), given(input.lost_reason), given(input.expected_version),
                given(input.actual_close_date),
            ),
        )
        return ChangeOpportunityStagePayload(opportunity=opp, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Move the deal to the recycle bin.")
    async def delete_opportunity(
        self, info: Info, input: DeleteOpportunityInput
    ) -> DeleteOpportunityPayload:
        ctx = info.context
        opp, errors = await mutate(
            info,
            lambda: rules.delete_opportunity(
                ctx.session, ctx.viewer, input.id, given(input.expected_version)
            ),
        )
        deleted = None if opp is None else strawberry.ID(to_global_id("Opportunity", opp.id))
        return DeleteOpportunityPayload(deleted_id=deleted, user_errors=errors)

    @strawberry.mutation(description="Bring a deal back from the recycle bin, intact.")
    async def restore_opportunity(
        self, info: Info, input: RestoreOpportunityInput
    ) -> RestoreOpportunityPayload:
        ctx = info.context
        opp, errors = await mutate(
            info, lambda: rules.restore_opportunity(ctx.session, ctx.viewer, input.id)
        )
        return RestoreOpportunityPayload(opportunity=opp, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(
        description="Remove a deal in the recycle bin for good, with its quotes, contact links "
        "and history (admin only)."
    )
    async def purge_opportunity(
        self, info: Info, input: PurgeOpportunityInput
    ) -> PurgeOpportunityPayload:
        ctx = info.context
        pk, errors = await mutate(
            info, lambda: rules.purge_opportunity(ctx.session, ctx.viewer, input.id)
        )
        purged = None if pk is None else strawberry.ID(to_global_id("Opportunity", pk))
        return PurgeOpportunityPayload(purged_id=purged, user_errors=errors)

    @strawberry.mutation
    async def link_opportunity_to_account(
        self, info: Info, input: LinkOpportunityToAccountInput
    ) -> LinkOpportunityToAccountPayload:
        ctx = info.context
        opp, errors = await mutate(
            info,
            lambda: rules.link_account(
                ctx.session, ctx.viewer, input.opportunity_id, input.account_id
            ),
        )
        return LinkOpportunityToAccountPayload(opportunity=opp, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation
    async def add_opportunity_contact(
        self, info: Info, input: AddOpportunityContactInput
    ) -> AddOpportunityContactPayload:
        ctx = info.context
        opp, errors = await mutate(
            info,
            lambda: rules.add_contact(
                ctx.session, ctx.viewer, input.opportunity_id, input.contact_id,
                provided(input, "opportunity_id", "contact_id"),
            ),
        )
        return AddOpportunityContactPayload(opportunity=opp, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation
    async def remove_opportunity_contact(
        self, info: Info, input: RemoveOpportunityContactInput
    ) -> RemoveOpportunityContactPayload:
        ctx = info.context
        opp, errors = await mutate(
            info,
            lambda: rules.remove_contact(
                ctx.session, ctx.viewer, input.opportunity_id, input.contact_id
            ),
        )
        return RemoveOpportunityContactPayload(opportunity=opp, user_errors=errors)  # type: ignore[arg-type]
