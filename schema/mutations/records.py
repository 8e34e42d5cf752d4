"""Create and update for accounts, contacts, leads, campaigns and products."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import strawberry

from resolvers import editing
from schema.account import Account
from schema.campaign import Campaign
from schema.contact import Contact
from schema.context import Info
from schema.customization import CustomFieldInput
from schema.lead import Lead
from schema.mutations.base import UserError, mutate, provided
from schema.product import Product

UNSET = strawberry.UNSET
OWNER = strawberry.field(default=UNSET, description="Defaults to you.")


async def _create(info: Info, type_name: str, input: Any) -> tuple[Any, list[UserError]]:
    ctx = info.context
    return await mutate(
        info, lambda: editing.create_record(ctx.session, ctx.viewer, type_name, provided(input))
    )


async def _update(info: Info, type_name: str, input: Any) -> tuple[Any, list[UserError]]:
    ctx = info.context
    data = provided(input, "id")
    return await mutate(
        info,
        lambda: editing.update_record(ctx.session, ctx.viewer, type_name, input.id, data),
    )


@strawberry.input
class CreateAccountInput:
    name: str
    industry: str | None = UNSET
    website: str | None = UNSET
    phone: str | None = UNSET
    email: str | None = UNSET
    city: str | None = UNSET
    country: str | None = UNSET
    annual_revenue: Decimal | None = UNSET
    employees: int | None = UNSET
    description: str | None = UNSET
    assigned_to_id: strawberry.ID | None = OWNER
    custom_fields: list[CustomFieldInput] | None = strawberry.field(
        default=UNSET, description="Custom field values; those left out stay as they are."
    )


@strawberry.input
class UpdateAccountInput:
    id: strawberry.ID
    name: str | None = UNSET
    industry: str | None = UNSET
    website: str | None = UNSET
    phone: str | None = UNSET
    email: str | None = UNSET
    city: str | None = UNSET
    country: str | None = UNSET
    annual_revenue: Decimal | None = UNSET
    employees: int | None = UNSET
    description: str | None = UNSET
    assigned_to_id: strawberry.ID | None = UNSET
    custom_fields: list[CustomFieldInput] | None = strawberry.field(
        default=UNSET, description="Custom field values; those left out stay as they are."
    )


@strawberry.input
class CreateContactInput:
    last_name: str
    first_name: str | None = UNSET
    email: str | None = UNSET
    phone: str | None = UNSET
    title: str | None = UNSET
    lead_source: str | None = UNSET
    account_id: strawberry.ID | None = UNSET
    description: str | None = UNSET
    assigned_to_id: strawberry.ID | None = OWNER
    custom_fields: list[CustomFieldInput] | None = strawberry.field(
        default=UNSET, description="Custom field values; those left out stay as they are."
    )


@strawberry.input
class UpdateContactInput:
    id: strawberry.ID
    last_name: str | None = UNSET
    first_name: str | None = UNSET
    email: str | None = UNSET
    phone: str | None = UNSET
    title: str | None = UNSET
    lead_source: str | None = UNSET
    account_id: strawberry.ID | None = UNSET
    description: str | None = UNSET
    assigned_to_id: strawberry.ID | None = UNSET
    custom_fields: list[CustomFieldInput] | None = strawberry.field(
        default=UNSET, description="Custom field values; those left out stay as they are."
    )


@strawberry.input
class CreateLeadInput:
    last_name: str
    company: str
    first_name: str | None = UNSET
    email: str | None = UNSET
    phone: str | None = UNSET
    title: str | None = UNSET
    industry: str | None = UNSET
    lead_source: str | None = UNSET
    status: str | None = UNSET
    campaign_id: strawberry.ID | None = UNSET
    description: str | None = UNSET
    assigned_to_id: strawberry.ID | None = OWNER
    custom_fields: list[CustomFieldInput] | None = strawberry.field(
        default=UNSET, description="Custom field values; those left out stay as they are."
    )


@strawberry.input
class UpdateLeadInput:
    id: strawberry.ID
    last_name: str | None = UNSET
    company: str | None = UNSET
    first_name: str | None = UNSET
    email: str | None = UNSET
    phone: str | None = UNSET
    title: str | None = UNSET
    industry: str | None = UNSET
    lead_source: str | None = UNSET
    status: str | None = UNSET
    campaign_id: strawberry.ID | None = UNSET
    description: str | None = UNSET
    assigned_to_id: strawberry.ID | None = UNSET
    custom_fields: list[CustomFieldInput] | None = strawberry.field(
        default=UNSET, description="Custom field values; those left out stay as they are."
    )


@strawberry.input
class CreateCampaignInput:
    name: str
    type: str | None = UNSET
    status: str | None = UNSET
    expected_close_date: dt.date | None = UNSET
    budget_cost: Decimal | None = UNSET
    actual_cost: Decimal | None = UNSET
    expected_revenue: Decimal | None = UNSET
    description: str | None = UNSET
    assigned_to_id: strawberry.ID | None = OWNER


@strawberry.input
class UpdateCampaignInput:
    id: strawberry.ID
    name: str | None = UNSET
    type: str | None = UNSET
    status: str | None = UNSET
    expected_close_date: dt.date | None = UNSET
    budget_cost: Decimal | None = UNSET
    actual_cost: Decimal | None = UNSET
    expected_revenue: Decimal | None = UNSET
    description: str | None = UNSET
    assigned_to_id: strawberry.ID | None = UNSET


@strawberry.input
class CreateProductInput:
    name: str
    unit_price: Decimal
    code: str | None = UNSET
    tax_percent: Decimal | None = UNSET
    is_active: bool | None = UNSET


@strawberry.input
class UpdateProductInput:
    id: strawberry.ID
    name: str | None = UNSET
    unit_price: Decimal | None = UNSET
    code: str | None = UNSET
    tax_percent: Decimal | None = UNSET
    is_active: bool | None = UNSET


@strawberry.type
class AccountPayload:
    account: Account | None
    user_errors: list[UserError]


@strawberry.type
class ContactPayload:
    contact: Contact | None
    user_errors: list[UserError]


@strawberry.type
class LeadPayload:
    lead: Lead | None
    user_errors: list[UserError]


@strawberry.type
class CampaignPayload:
    campaign: Campaign | None
    user_errors: list[UserError]


@strawberry.type
class ProductPayload:
    product: Product | None
    user_errors: list[UserError]


@strawberry.type
class CreateAccountPayload(AccountPayload):
    pass


@strawberry.type
class UpdateAccountPayload(AccountPayload):
    pass


@strawberry.type
class CreateContactPayload(ContactPayload):
    pass


@strawberry.type
class UpdateContactPayload(ContactPayload):
    pass


@strawberry.type
class CreateLeadPayload(LeadPayload):
    pass


@strawberry.type
class UpdateLeadPayload(LeadPayload):
    pass


@strawberry.type
class CreateCampaignPayload(CampaignPayload):
    pass


@strawberry.type
class UpdateCampaignPayload(CampaignPayload):
    pass


@strawberry.type
class CreateProductPayload(ProductPayload):
    pass


@strawberry.type
class UpdateProductPayload(ProductPayload):
    pass


@strawberry.type
class RecordMutation:
    @strawberry.mutation
    async def create_account(self, info: Info, input: CreateAccountInput) -> CreateAccountPayload:
        record, errors = await _create(info, "Account", input)
        return CreateAccountPayload(account=record, user_errors=errors)

    @strawberry.mutation
    async def update_account(self, info: Info, input: UpdateAccountInput) -> UpdateAccountPayload:
        record, errors = await _update(info, "Account", input)
        return UpdateAccountPayload(account=record, user_errors=errors)

    @strawberry.mutation
    async def create_contact(self, info: Info, input: CreateContactInput) -> CreateContactPayload:
        record, errors = await _create(info, "Contact", input)
        return CreateContactPayload(contact=record, user_errors=errors)

    @strawberry.mutation
    async def update_contact(self, info: Info, input: UpdateContactInput) -> UpdateContactPayload:
        record, errors = await _update(info, "Contact", input)
        return UpdateContactPayload(contact=record, user_errors=errors)

    @strawberry.mutation
    async def create_lead(self, info: Info, input: CreateLeadInput) -> CreateLeadPayload:
        record, errors = await _create(info, "Lead", input)
        return CreateLeadPayload(lead=record, user_errors=errors)

    @strawberry.mutation
    async def update_lead(self, info: Info, input: UpdateLeadInput) -> UpdateLeadPayload:
        record, errors = await _update(info, "Lead", input)
        return UpdateLeadPayload(lead=record, user_errors=errors)

    @strawberry.mutation
    async def create_campaign(
        self, info: Info, input: CreateCampaignInput
    ) -> CreateCampaignPayload:
        record, errors = await _create(info, "Campaign", input)
        return CreateCampaignPayload(campaign=record, user_errors=errors)

    @strawberry.mutation
    async def update_campaign(
        self, info: Info, input: UpdateCampaignInput
    ) -> UpdateCampaignPayload:
        record, errors = await _update(info, "Campaign", input)
        return UpdateCampaignPayload(campaign=record, user_errors=errors)

    @strawberry.mutation(description="Admin only.")
    async def create_product(self, info: Info, input: CreateProductInput) -> CreateProductPayload:
        record, errors = await _create(info, "Product", input)
        return CreateProductPayload(product=record, user_errors=errors)

    @strawberry.mutation(description="Admin only.")
    async def update_product(self, info: Info, input: UpdateProductInput) -> UpdateProductPayload:
        record, errors = await _update(info, "Product", input)
        return UpdateProductPayload(product=record, user_errors=errors)
