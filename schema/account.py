"""Accounts (Aziende) and their deals, contacts and quotes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from schema.common import RecordOrder, record_spec
from schema.context import Info
from schema.customization import Customizable
from schema.dealroom import DealRoomRecord
from schema.opportunity import (
    Opportunity,
    OpportunityFilter,
    OpportunityOrder,
    deal_spec,
)
from schema.reads import ListSpec, connection, node_id, to_one
from schema.relay import Connection, Node, order_pairs, rows_of
from schema.timeline import TimelineRecord
from schema.user import User

if TYPE_CHECKING:
    from schema.contact import Contact
    from schema.quote import Quote

Parent = strawberry.Parent[models.Account]


@strawberry.type(description="A customer company (Azienda).")
class Account(Node, Customizable, DealRoomRecord, TimelineRecord):
    is_type_of = rows_of(models.Account)
    id: strawberry.ID = node_id("Account")
    number: str
    name: str
    industry: str | None
    website: str | None
    phone: str | None
    email: str | None
    city: str | None
    country: str | None
    annual_revenue: Decimal | None
    employees: int | None
    description: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    assigned_to: User = to_one("User", "assigned_to_id")

    @connection(
        "Opportunity", Connection[Opportunity], models.Opportunity.account_id,
        description="The account's deals that the viewer may see.",
    )
    @staticmethod
    async def opportunities(
        root: Parent,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: OpportunityFilter | None = None,
        order_by: list[OpportunityOrder] | None = None,
    ) -> ListSpec:
        return await deal_spec(info, filter, order_by)

    @connection(
        "Contact", Connection[Annotated["Contact", strawberry.lazy("schema.contact")]],
        models.Contact.account_id,
    )
    @staticmethod
    async def contacts(
        root: Parent,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> ListSpec:
        return ListSpec(order=order_pairs(order_by))

    @connection(
        "Quote", Connection[Annotated["Quote", strawberry.lazy("schema.quote")]],
        models.Quote.account_id,
    )
    @staticmethod
    async def quotes(
        root: Parent,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> ListSpec:
        return ListSpec(order=order_pairs(order_by))


@strawberry.input
class AccountFilter:
    search: str | None = strawberry.field(default=None, description="Name, number or city.")
    assigned_to: list[strawberry.ID] | None = None
    industry: str | None = None


@strawberry.type
class AccountQuery:
    @connection("Account", Connection[Account])
    async def accounts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: AccountFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> ListSpec:
        return await record_spec(
            info, "Account", filter, order_by, ("industry", filter.industry if filter else None)
        )
