"""Campaigns, their deals and their return."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

import models
from resolvers import campaign as rules
from schema.common import RecordOrder, record_spec
from schema.context import Info
from schema.opportunity import (
    Opportunity,
    OpportunityFilter,
    OpportunityOrder,
    deal_spec,
)
from schema.reads import Batched, ListSpec, computed, connection, node_id, to_one
from schema.relay import Connection, Node, rows_of
from schema.user import User

Parent = strawberry.Parent[models.Campaign]


# A campaign's figures over the deals the viewer may see.
FIGURES = Batched(rules.campaign_stats, rules.stats_of, rules.CampaignStats)
DEALS = Batched(rules.deal_counts, rules.counts_of, int)


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

    assigned_to: User = to_one("User", "assigned_to_id")

    opportunity_count: int = computed(lambda campaign, n: n, using=DEALS)
    pipeline_amount: Decimal = computed(
        lambda campaign, s: s.pipeline_amount, using=FIGURES,
        description="Open deals' amounts, in the base currency.",
    )
    won_amount: Decimal = computed(
        lambda campaign, s: s.won_amount, using=FIGURES,
        description="Won deals' amounts, in the base currency.",
    )
    roi: Decimal | None = computed(
        rules.roi, reads=("actual_cost",), using=FIGURES,
        description="(won amount − actual cost) / actual cost × 100; null without a cost.",
    )

    @connection("Opportunity", Connection[Opportunity], models.Opportunity.campaign_id)
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


@strawberry.input
class CampaignFilter:
    search: str | None = None
    assigned_to: list[strawberry.ID] | None = None
    status: str | None = None
    type: str | None = None


@strawberry.type
class CampaignQuery:
    @connection("Campaign", Connection[Campaign])
    async def campaigns(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: CampaignFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> ListSpec:
        return await record_spec(
            info, "Campaign", filter, order_by,
            ("status", filter.status if filter else None),
            ("type", filter.type if filter else None),
        )
