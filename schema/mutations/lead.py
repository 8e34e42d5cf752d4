"""convertLead: a lead becomes an account, a contact and (optionally) a deal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from resolvers import lead as rules
from schema.account import Account
from schema.contact import Contact
from schema.context import Info
from schema.customization import CustomFieldInput
from schema.lead import Lead
from schema.mutations.base import UserError, mutate, provided
from schema.opportunity import Opportunity

UNSET = strawberry.UNSET


@strawberry.input
class ConvertLeadAccountInput:
    name: str | None = strawberry.field(default=UNSET, description="Defaults to the company.")
    industry: str | None = strawberry.field(
        default=UNSET, description="Defaults to the lead's."
    )


@strawberry.input
class ConvertLeadOpportunityInput:
    expected_close_date: dt.date
    sales_stage: str
    name: str | None = strawberry.field(default=UNSET, description="Defaults to the company.")
    amount: Decimal | None = UNSET
    next_step: str | None = UNSET
    type: str | None = UNSET
    custom_fields: list[CustomFieldInput] | None = strawberry.field(
        default=UNSET, description="Win over the values mapped from the lead's fields."
    )


@strawberry.input
class ConvertLeadInput:
    lead_id: strawberry.ID
    assigned_to_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="Owner of what is created; defaults to you."
    )
    account_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="Use this account instead of creating one."
    )
    account: ConvertLeadAccountInput | None = strawberry.field(
        default=UNSET,
        description="The account to create; an existing one with the same name is reused.",
    )
    create_account: bool = strawberry.field(
        default=True, description="false: no account (a contact must then be created)."
    )
    create_contact: bool = True
    opportunity: ConvertLeadOpportunityInput | None = strawberry.field(
        default=UNSET, description="The deal to create; none when omitted."
    )


@strawberry.type
class ConvertLeadPayload:
    lead: Lead | None
    account: Account | None
    contact: Contact | None
    opportunity: Opportunity | None
    user_errors: list[UserError]


@strawberry.type
class LeadMutation:
    @strawberry.mutation(description="Convert a lead, in one transaction; once only.")
    async def convert_lead(self, info: Info, input: ConvertLeadInput) -> ConvertLeadPayload:
        ctx = info.context
        data = provided(input)
        for part in ("account", "opportunity"):
            if data.get(part) is not None:
                data[part] = provided(data[part])
        done, errors = await mutate(
            info, lambda: rules.convert_lead(ctx.session, ctx.viewer, data)
        )
        if done is None:
            return ConvertLeadPayload(
                lead=None, account=None, contact=None, opportunity=None, user_errors=errors
            )
        return ConvertLeadPayload(
            lead=done.lead, account=done.account, contact=done.contact,  # type: ignore[arg-type]
            opportunity=done.opportunity, user_errors=errors,  # type: ignore[arg-type]
        )
