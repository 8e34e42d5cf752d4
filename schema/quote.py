"""Quotes and their product lines; totals are computed from the lines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from resolvers import quote as rules
from resolvers.ids import pk_of
from schema.common import RecordOrder, list_filter, related, root_list
from schema.context import Info
from schema.product import Product
from schema.relay import Connection, Node, node_id, page_args, rows_of

if TYPE_CHECKING:
    from schema.account import Account
    from schema.contact import Contact
    from schema.opportunity import Opportunity

Parent = strawberry.Parent[models.Quote]


async def _totals(root: models.Quote, info: Info) -> rules.QuoteTotals:
    return rules.totals(await info.context.loaders.lines.load(root.id))


@strawberry.type
class Quote(Node):
    is_type_of = rows_of(models.Quote)
    id: strawberry.ID = node_id("Quote")
    number: str
    subject: str
    stage: str
    valid_until: dt.date | None
    is_synced: bool
    created_at: dt.datetime
    updated_at: dt.datetime

    @strawberry.field
    @staticmethod
    async def opportunity(
        root: Parent, info: Info
    ) -> Annotated[Opportunity, strawberry.lazy("schema.opportunity")] | None:
        return await related(info, "Opportunity", root.opportunity_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def account(
        root: Parent, info: Info
    ) -> Annotated[Account, strawberry.lazy("schema.account")] | None:
        return await related(info, "Account", root.account_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def contact(
        root: Parent, info: Info
    ) -> Annotated[Contact, strawberry.lazy("schema.contact")] | None:
        return await related(info, "Contact", root.contact_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def lines(root: Parent, info: Info) -> list[QuoteLine]:
        return await info.context.loaders.lines.load(root.id)  # type: ignore[return-value]

    @strawberry.field(description="Σ round(quantity × listPrice, 2).")
    @staticmethod
    async def subtotal(root: Parent, info: Info) -> Decimal:
        return (await _totals(root, info)).subtotal

    @strawberry.field(description="subtotal − netTotal.")
    @staticmethod
    async def discount_total(root: Parent, info: Info) -> Decimal:
        return (await _totals(root, info)).discount_total

    @strawberry.field(description="Σ line netTotal.")
    @staticmethod
    async def net_total(root: Parent, info: Info) -> Decimal:
        return (await _totals(root, info)).net_total

    @strawberry.field(description="Σ round(line netTotal × taxPercent / 100, 2).")
    @staticmethod
    async def tax_total(root: Parent, info: Info) -> Decimal:
        return (await _totals(root, info)).tax_total

    @strawberry.field(description="netTotal + taxTotal.")
    @staticmethod
    async def grand_total(root: Parent, info: Info) -> Decimal:
        return (await _totals(root, info)).grand_total


@strawberry.type
class QuoteLine:
    description: str | None
    quantity: Decimal
    list_price: Decimal
    discount_percent: Decimal
    tax_percent: Decimal

    @strawberry.field(description="round(quantity × listPrice × (1 − discountPercent/100), 2).")
    @staticmethod
    def net_total(root: strawberry.Parent[models.QuoteLine]) -> Decimal:
        return rules.line_net_total(root)

    @strawberry.field
    @staticmethod
    async def product(root: strawberry.Parent[models.QuoteLine], info: Info) -> Product | None:
        return await related(info, "Product", root.product_id)  # type: ignore[no-any-return]


@strawberry.input
class QuoteFilter:
    search: str | None = strawberry.field(default=None, description="Subject or number.")
    opportunity: strawberry.ID | None = None
    account: strawberry.ID | None = None
    stage: str | None = None


@strawberry.type
class QuoteQuery:
    @strawberry.field
    async def quotes(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: QuoteFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> Connection[Quote]:
        def ref(gid: strawberry.ID | None, type_name: str) -> int | None:
            return None if gid is None else (pk_of(gid, type_name) or -1)

        conditions = await list_filter(
            info, "Quote", filter,
            ("opportunity_id", ref(filter.opportunity, "Opportunity") if filter else None),
            ("account_id", ref(filter.account, "Account") if filter else None),
            ("stage", filter.stage if filter else None),
        )
        return await root_list(
            info, "Quote", page_args(first, after, last, before), conditions, order_by
        )
