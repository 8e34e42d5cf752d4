"""Accounts (Aziende) and their deals, contacts and quotes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from schema.common import RecordOrder, list_filter, related, relation, root_list
from schema.context import Info
from schema.customization import Customizable
from schema.dealroom import DealRoomRecord
from schema.opportunity import Opportunity, OpportunityFilter, OpportunityOrder, deal_list
from schema.relay import Connection, Node, node_id, order_pairs, page_args, rows_of
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

    @strawberry.field
    @staticmethod
    async def assigned_to(root: Parent, info: Info) -> User:
        return await related(info, "User", root.assigned_to_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The account's deals that the viewer may see.")
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
    ) -> Connection[Opportunity]:
        conditions, order, extra_sort, spec = await deal_list(
            info.context.session, filter, order_by
        )
        return await relation(
            info, "Opportunity", models.Opportunity.account_id, root.id,
            page_args(first, after, last, before), order, conditions, spec, extra_sort,
        )

    @strawberry.field
    @staticmethod
    async def contacts(
        root: Parent,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> Connection[Annotated[Contact, strawberry.lazy("schema.contact")]]:
        return await relation(
            info, "Contact", models.Contact.account_id, root.id,
            page_args(first, after, last, before), order_pairs(order_by),
        )

    @strawberry.field
    @staticmethod
    async def quotes(
        root: Parent,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> Connection[Annotated[Quote, strawberry.lazy("schema.quote")]]:
        return await relation(
            info, "Quote", models.Quote.account_id, root.id,
            page_args(first, after, last, before), order_pairs(order_by),
        )


@strawberry.input
class AccountFilter:
    search: str | None = strawberry.field(default=None, description="Name, number or city.")
    assigned_to: list[strawberry.ID] | None = None
    industry: str | None = None


@strawberry.type
class AccountQuery:
    @strawberry.field
    async def accounts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: AccountFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> Connection[Account]:
        conditions = await list_filter(
            info, "Account", filter, ("industry", filter.industry if filter else None)
        )
        return await root_list(
            info, "Account", page_args(first, after, last, before), conditions, order_by
        )
