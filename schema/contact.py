"""Contacts: people at customer companies."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from resolvers.ids import pk_of
from resolvers.loaders import DEAL_CONTACTS
from schema.common import RecordOrder, record_spec
from schema.context import Info
from schema.customization import Customizable
from schema.dealroom import DealRoomRecord
from schema.opportunity import Opportunity, OpportunityFilter, OpportunityOrder, deal_spec
from schema.reads import ListSpec, connection, edge_link, node_id, to_one
from schema.relay import Connection, Node, rows_of
from schema.user import User

if TYPE_CHECKING:
    from schema.account import Account

Parent = strawberry.Parent[models.Contact]


@strawberry.type(description="A deal the contact has a role in, with that role.")
class ContactOpportunityEdge:
    cursor: str
    node: Opportunity
    parent_id: strawberry.Private[int]  # the contact's

    role: str | None = edge_link(
        DEAL_CONTACTS, "contact_id", lambda link: None if link is None else link.role,
        reads=("role",), description="The contact's role in the deal (a contactRole key).",
    )
    is_primary: bool = edge_link(
        DEAL_CONTACTS, "contact_id", lambda link: link is not None and link.is_primary,
        reads=("is_primary",), description="Whether the contact is the deal's primary contact.",
    )


@strawberry.type(description="The deals a contact has a role in.")
class ContactOpportunityConnection(Connection[Opportunity]):
    parent_id: strawberry.Private[int]  # the contact's

    @strawberry.field
    def edges(self) -> list[ContactOpportunityEdge]:
        page = self.page
        return [
            ContactOpportunityEdge(cursor=c, node=n, parent_id=self.parent_id)
            for c, n in zip(page.cursors, page.nodes, strict=True)
        ]


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

    account: Annotated[Account, strawberry.lazy("schema.account")] | None = to_one(
        "Account", "account_id"
    )

    assigned_to: User = to_one("User", "assigned_to_id")

    @connection(
        "Opportunity", ContactOpportunityConnection, models.OpportunityContact.contact_id,
        of_parent=True,
        description="The live deals the contact has a role in that the viewer may see.",
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
        spec = await deal_spec(info, filter, order_by)
        link = models.OpportunityContact
        return replace(
            spec, conditions=[link.opportunity_id == models.Opportunity.id, *spec.conditions],
            spec=("contact", spec.spec),
        )


@strawberry.input
class ContactFilter:
    search: str | None = strawberry.field(default=None, description="Name, email or number.")
    assigned_to: list[strawberry.ID] | None = None
    account: strawberry.ID | None = None


@strawberry.type
class ContactQuery:
    @connection("Contact", Connection[Contact])
    async def contacts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: ContactFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> ListSpec:
        account = pk_of(filter.account, "Account") or -1 if filter and filter.account else None
        return await record_spec(info, "Contact", filter, order_by, ("account_id", account))
