"""Leads and what their conversion created."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from schema.common import RecordOrder, list_filter, related, root_list
from schema.context import Info
from schema.customization import Customizable
from schema.dealroom import DealRoomRecord
from schema.relay import Connection, Node, node_id, page_args, rows_of
from schema.timeline import TimelineRecord
from schema.user import User

if TYPE_CHECKING:
    from schema.account import Account
    from schema.campaign import Campaign
    from schema.contact import Contact
    from schema.opportunity import Opportunity

Parent = strawberry.Parent[models.Lead]


@strawberry.type
class Lead(Node, Customizable, DealRoomRecord, TimelineRecord):
    is_type_of = rows_of(models.Lead)
    id: strawberry.ID = node_id("Lead")
    number: str
    first_name: str | None
    last_name: str
    company: str
    email: str | None
    phone: str | None
    title: str | None
    industry: str | None
    lead_source: str | None
    status: str | None
    description: str | None
    is_converted: bool
    converted_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @strawberry.field
    @staticmethod
    async def campaign(
        root: Parent, info: Info
    ) -> Annotated[Campaign, strawberry.lazy("schema.campaign")] | None:
        return await related(info, "Campaign", root.campaign_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def assigned_to(root: Parent, info: Info) -> User:
        return await related(info, "User", root.assigned_to_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def converted_account(
        root: Parent, info: Info
    ) -> Annotated[Account, strawberry.lazy("schema.account")] | None:
        return await related(info, "Account", root.converted_account_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def converted_contact(
        root: Parent, info: Info
    ) -> Annotated[Contact, strawberry.lazy("schema.contact")] | None:
        return await related(info, "Contact", root.converted_contact_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def converted_opportunity(
        root: Parent, info: Info
    ) -> Annotated[Opportunity, strawberry.lazy("schema.opportunity")] | None:
        return await related(  # type: ignore[no-any-return]
            info, "Opportunity", root.converted_opportunity_id
        )


@strawberry.input
class LeadFilter:
    search: str | None = strawberry.field(default=None, description="Name, company or email.")
    assigned_to: list[strawberry.ID] | None = None
    status: str | None = None
    is_converted: bool | None = None


@strawberry.type
class LeadQuery:
    @strawberry.field
    async def leads(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: LeadFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> Connection[Lead]:
        conditions = await list_filter(
            info, "Lead", filter,
            ("status", filter.status if filter else None),
            ("is_converted", filter.is_converted if filter else None),
        )
        return await root_list(
            info, "Lead", page_args(first, after, last, before), conditions, order_by
        )
