"""Contacts: people at customer companies."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from resolvers.ids import pk_of
from schema.common import RecordOrder, list_filter, related, root_list
from schema.context import Info
from schema.customization import Customizable
from schema.dealroom import DealRoomRecord
from schema.relay import Connection, Node, node_id, page_args, rows_of
from schema.user import User

if TYPE_CHECKING:
    from schema.account import Account

Parent = strawberry.Parent[models.Contact]


@strawberry.type
class Contact(Node, Customizable, DealRoomRecord):
    is_type_of = rows_of(models.Contact)
    id: strawberry.ID = node_id("Contact")
    number: str
    first_name: str | None
    last_name: str
    email: str | None
    phone: str | None
    title: str | None
    lead_source: str | None
    description: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @strawberry.field
    @staticmethod
    async def account(
        root: Parent, info: Info
    ) -> Annotated[Account, strawberry.lazy("schema.account")] | None:
        return await related(info, "Account", root.account_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def assigned_to(root: Parent, info: Info) -> User:
        return await related(info, "User", root.assigned_to_id)  # type: ignore[no-any-return]


@strawberry.input
class ContactFilter:
    search: str | None = strawberry.field(default=None, description="Name, email or number.")
    assigned_to: list[strawberry.ID] | None = None
    account: strawberry.ID | None = None


@strawberry.type
class ContactQuery:
    @strawberry.field
    async def contacts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: ContactFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> Connection[Contact]:
        account = pk_of(filter.account, "Account") or -1 if filter and filter.account else None
        conditions = list_filter("Contact", filter, ("account_id", account))
        return await root_list(
            info, "Contact", page_args(first, after, last, before), conditions, order_by
        )
