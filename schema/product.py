"""The product catalogue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

import models
from schema.common import RecordOrder, record_spec
from schema.context import Info
from schema.reads import ListSpec, connection, node_id
from schema.relay import Connection, Node, rows_of


@strawberry.type
class Product(Node):
    is_type_of = rows_of(models.Product)
    id: strawberry.ID = node_id("Product")
    number: str
    name: str
    code: str | None
    unit_price: Decimal
    tax_percent: Decimal
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@strawberry.input
class ProductFilter:
    search: str | None = strawberry.field(default=None, description="Name, code or number.")
    is_active: bool | None = None


@strawberry.type
class ProductQuery:
    @connection("Product", Connection[Product])
    async def products(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: ProductFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> ListSpec:
        return await record_spec(
            info, "Product", filter, order_by, ("is_active", filter.is_active if filter else None)
        )
