"""Campaigns, their deals and their return."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

import models
from resolvers import campaign as rules
from schema.common import RecordOrder, list_filter, related, relation, root_list
from schema.context import Info
from schema.opportunity import Opportunity, OpportunityFilter, OpportunityOrder, deal_list
from schema.relay import Connection, Node, node_id, page_args, rows_of
from schema.user import User

Parent = strawberry.Parent[models.Campaign]


async def _stats(root: models.Campaign, info: Info) -> rules.CampaignStats:
    return await info.context.loaders.campaign_stats.load(root.id)


@strawberry.type(description="A marketing campaign; its figures count only deals you may see.")
class Campaign(Node):
    is_type_of = rows_of(models.Campaign)
    id: strawberry.ID = node_id("Campaign")
    number: str
    name: str
    type: str | None
    status: str | None
    expected_close_date: dt.date | None
    budget_cost: Decimal | None
    actual_cost: Decimal | None
    expected_revenue: Decimal | None
    description: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @strawberry.field
    @staticmethod
    async def assigned_to(root: Parent, info: Info) -> User:
        return await related(info, "User", root.assigned_to_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def opportunity_count(root: Parent, info: Info) -> int:
        return (await _stats(root, info)).opportunity_count

    @strawberry.field(description="Open deals' amounts, in the base currency.")
    @staticmethod
    async def pipeline_amount(root: Parent, info: Info) -> Decimal:
        return (await _stats(root, info)).pipeline_amount

    @strawberry.field(description="Won deals' amounts, in the base currency.")
    @staticmethod
    async def won_amount(root: Parent, info: Info) -> Decimal:
        return (await _stats(root, info)).won_amount

    @strawberry.field(
        description="(won amount − actual cost) / actual cost × 100; null without a cost."
    )
    @staticmethod
    async def roi(root: Parent, info: Info) -> Decimal | None:
        return rules.roi(root, await _stats(root, info))

    @strawberry.field
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
            info, "Opportunity", models.Opportunity.campaign_id, root.id,
            page_args(first, after, last, before), order, conditions, spec, extra_sort,
        )


@strawberry.input
class CampaignFilter:
    search: str | None = None
    assigned_to: list[strawberry.ID] | None = None
    status: str | None = None
    type: str | None = None


@strawberry.type
class CampaignQuery:
    @strawberry.field
    async def campaigns(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: CampaignFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> Connection[Campaign]:
        conditions = await list_filter(
            info, "Campaign", filter,
            ("status", filter.status if filter else None),
            ("type", filter.type if filter else None),
        )
        return await root_list(
            info, "Campaign", page_args(first, after, last, before), conditions, order_by
        )
