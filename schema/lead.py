"""Leads and what their conversion created."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import strawberry

import models
from schema.common import RecordOrder, record_spec
from schema.context import Info
from schema.customization import Customizable
from schema.dealroom import DealRoomRecord
from schema.reads import ListSpec, connection, node_id, to_one
from schema.relay import Connection, Node, rows_of
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

    campaign: Annotated[Campaign, strawberry.lazy("schema.campaign")] | None = to_one(
        "Campaign", "campaign_id"
    )

    assigned_to: User = to_one("User", "assigned_to_id")

    converted_account: Annotated[Account, strawberry.lazy("schema.account")] | None = to_one(
        "Account", "converted_account_id"
    )

    converted_contact: Annotated[Contact, strawberry.lazy("schema.contact")] | None = to_one(
        "Contact", "converted_contact_id"
    )

    converted_opportunity: (
        Annotated[Opportunity, strawberry.lazy("schema.opportunity")] | None
    ) = to_one("Opportunity", "converted_opportunity_id")


@strawberry.input
class LeadFilter:
    search: str | None = strawberry.field(default=None, description="Name, company or email.")
    assigned_to: list[strawberry.ID] | None = None
    status: str | None = None
    is_converted: bool | None = None


@strawberry.type
class LeadQuery:
    @connection("Lead", Connection[Lead])
    async def leads(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: LeadFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> ListSpec:
        return await record_spec(
            info, "Lead", filter, order_by,
            ("status", filter.status if filter else None),
            ("is_converted", filter.is_converted if filter else None),
        )
