"""Quote mutations: the synced quote's lines drive the deal's amount."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from resolvers import quote as rules
from resolvers.ids import to_global_id
from schema.context import Info
from schema.mutations.base import UserError, given, mutate, provided
from schema.quote import Quote

UNSET = strawberry.UNSET


@strawberry.input
class QuoteLineInput:
    product_id: strawberry.ID
    quantity: Decimal = strawberry.field(description="Greater than 0; up to 3 decimals.")
    list_price: Decimal | None = strawberry.field(
        default=UNSET, description="Defaults to the product's unit price."
    )
    discount_percent: Decimal | None = UNSET
    tax_percent: Decimal | None = strawberry.field(
        default=UNSET, description="Defaults to the product's tax."
    )
    description: str | None = UNSET

    def to_rules(self) -> rules.LineInput:
        return rules.LineInput(**provided(self))


@strawberry.input
class CreateQuoteInput:
    opportunity_id: strawberry.ID
    subject: str
    lines: list[QuoteLineInput]
    stage: str | None = strawberry.field(default=UNSET, description="A quoteStage key.")
    valid_until: dt.date | None = UNSET
    sync: bool | None = strawberry.field(
        default=UNSET,
        description="true: the deal's amount follows this quote; false: never; "
        "omitted: synced when the deal has no synced quote yet.",
    )


@strawberry.input
class UpdateQuoteInput:
    id: strawberry.ID
    subject: str | None = UNSET
    stage: str | None = UNSET
    valid_until: dt.date | None = UNSET
    lines: list[QuoteLineInput] | None = strawberry.field(
        default=UNSET, description="Replaces every line."
    )


@strawberry.input
class DeleteQuoteInput:
    id: strawberry.ID


@strawberry.input
class SyncQuoteInput:
    quote_id: strawberry.ID
    sync: bool = True


@strawberry.type
class QuotePayload:
    quote: Quote | None
    user_errors: list[UserError]


@strawberry.type
class CreateQuotePayload(QuotePayload):
    pass


@strawberry.type
class UpdateQuotePayload(QuotePayload):
    pass


@strawberry.type
class SyncQuotePayload(QuotePayload):
    pass


@strawberry.type
class DeleteQuotePayload:
    deleted_id: strawberry.ID | None
    user_errors: list[UserError]


def _data(input: CreateQuoteInput | UpdateQuoteInput) -> dict[str, object]:
    data = provided(input, "id")
    if data.get("lines") is not None:
        data["lines"] = [line.to_rules() for line in input.lines or []]
    return data


@strawberry.type
class QuoteMutation:
    @strawberry.mutation
    async def create_quote(self, info: Info, input: CreateQuoteInput) -> CreateQuotePayload:
        ctx = info.context
        quote, errors = await mutate(
            info, lambda: rules.create_quote(ctx.session, ctx.viewer, _data(input))
        )
        return CreateQuotePayload(quote=quote, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation
    async def update_quote(self, info: Info, input: UpdateQuoteInput) -> UpdateQuotePayload:
        ctx = info.context
        quote, errors = await mutate(
            info, lambda: rules.update_quote(ctx.session, ctx.viewer, input.id, _data(input))
        )
        return UpdateQuotePayload(quote=quote, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Soft-delete; a synced quote's deal keeps its amount.")
    async def delete_quote(self, info: Info, input: DeleteQuoteInput) -> DeleteQuotePayload:
        ctx = info.context
        quote, errors = await mutate(
            info, lambda: rules.delete_quote(ctx.session, ctx.viewer, input.id)
        )
        deleted = None if quote is None else strawberry.ID(to_global_id("Quote", quote.id))
        return DeleteQuotePayload(deleted_id=deleted, user_errors=errors)

    @strawberry.mutation(description="Make the quote drive its deal's amount, or stop it.")
    async def sync_quote(self, info: Info, input: SyncQuoteInput) -> SyncQuotePayload:
        ctx = info.context
        quote, errors = await mutate(
            info,
            lambda: rules.sync_quote(
                ctx.session, ctx.viewer, input.quote_id, given(input.sync) is not False
            ),
        )
        return SyncQuotePayload(quote=quote, user_errors=errors)  # type: ignore[arg-type]
