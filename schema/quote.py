"""Quotes and their product lines; totals are computed from the lines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from resolvers import quote as rules
from resolvers.ids import pk_of
from resolvers.loaders import LINES
from schema.common import RecordOrder, record_spec
from schema.context import Info
from schema.product import Product
from schema.reads import ListSpec, Reduced, children, computed, connection, node_id, to_one
from schema.relay import Connection, Node, rows_of

if TYPE_CHECKING:
    from schema.account import Account
    from schema.contact import Contact
    from schema.opportunity import Opportunity

Parent = strawberry.Parent[models.Quote]


# A quote's totals, from its lines.
TOTALS = Reduced(
    LINES, ("quantity", "list_price", "discount_percent", "tax_percent"), rules.totals
)


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

    opportunity: Annotated[Opportunity, strawberry.lazy("schema.opportunity")] | None = to_one(
        "Opportunity", "opportunity_id"
    )

    account: Annotated[Account, strawberry.lazy("schema.account")] | None = to_one(
        "Account", "account_id"
    )

    contact: Annotated[Contact, strawberry.lazy("schema.contact")] | None = to_one(
        "Contact", "contact_id"
    )

    lines: list[QuoteLine] = children(LINES)
    subtotal: Decimal = computed(
        lambda quote, t: t.subtotal, using=TOTALS, description="Σ round(quantity × listPrice, 2)."
    )
    discount_total: Decimal = computed(
        lambda quote, t: t.discount_total, using=TOTALS, description="subtotal − netTotal."
    )
    net_total: Decimal = computed(
        lambda quote, t: t.net_total, using=TOTALS, description="Σ line netTotal."
    )
    tax_total: Decimal = computed(
        lambda quote, t: t.tax_total, using=TOTALS,
        description="Σ round(line netTotal × taxPercent / 100, 2).",
    )
    grand_total: Decimal = computed(
        lambda quote, t: t.grand_total, using=TOTALS, description="netTotal + taxTotal."
    )


@strawberry.type
class QuoteLine:
    is_type_of = rows_of(models.QuoteLine)
    description: str | None
    quantity: Decimal
    list_price: Decimal
    discount_percent: Decimal
    tax_percent: Decimal

    net_total: Decimal = computed(
        rules.line_net_total, reads=("quantity", "list_price", "discount_percent"),
        description="round(quantity × listPrice × (1 − discountPercent/100), 2).",
    )

    product: Product | None = to_one("Product", "product_id")


@strawberry.input
class QuoteFilter:
    search: str | None = strawberry.field(default=None, description="Subject or number.")
    opportunity: strawberry.ID | None = None
    account: strawberry.ID | None = None
    stage: str | None = None


@strawberry.type
class QuoteQuery:
    @connection("Quote", Connection[Quote])
    async def quotes(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: QuoteFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> ListSpec:
        def ref(gid: strawberry.ID | None, type_name: str) -> int | None:
            return None if gid is None else (pk_of(gid, type_name) or -1)

        return await record_spec(
            info, "Quote", filter, order_by,
            ("opportunity_id", ref(filter.opportunity, "Opportunity") if filter else None),
            ("account_id", ref(filter.account, "Account") if filter else None),
            ("stage", filter.stage if filter else None),
        )
