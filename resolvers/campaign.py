"""Campaign figures over the deals the viewer may see, in the base currency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select

from models import Campaign, Currency, Opportunity, SalesStage
from resolvers.kinds import owned
from resolvers.money import HUNDRED, cents
from resolvers.permissions import Viewer

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class CampaignStats:
    pipeline_amount: Decimal = ZERO
    won_amount: Decimal = ZERO


def deal_counts(viewer: Viewer, campaign_ids: Any) -> Any:
    """How many deals per campaign: a count alone reads only an index (migration 0015), so it
    is not one of the amounts' figures, which read every deal's stage, currency and amount."""
    return (
        select(Opportunity.campaign_id, func.count())
        .where(Opportunity.campaign_id.in_(campaign_ids), *owned(Opportunity, viewer))
        .group_by(Opportunity.campaign_id)
    )


def counts_of(rows: Sequence[Any]) -> dict[int, int]:
    return {cid: int(n) for cid, n in rows}


def campaign_stats(viewer: Viewer, campaign_ids: Any) -> Any:
    """Open pipeline and won amount per campaign: one grouped query."""
    amount = Opportunity.amount / Currency.rate
    return (
        select(
            Opportunity.campaign_id,
            func.sum(case((SalesStage.is_closed.is_(False), amount), else_=0)),
            func.sum(case((SalesStage.is_won.is_(True), amount), else_=0)),
        )
        .join(SalesStage, SalesStage.key == Opportunity.sales_stage)
        .join(Currency, Currency.code == Opportunity.currency)
        .where(Opportunity.campaign_id.in_(campaign_ids), *owned(Opportunity, viewer))
        .group_by(Opportunity.campaign_id)
    )


def stats_of(rows: Sequence[Any]) -> dict[int, CampaignStats]:
    return {
        cid: CampaignStats(cents(pipeline or 0), cents(won or 0)) for cid, pipeline, won in rows
    }


def roi(campaign: Campaign, stats: CampaignStats) -> Decimal | None:
    """Return on investment in percent: (won − actual cost) / actual cost × 100."""
    if not campaign.actual_cost:
        return None
    return cents((stats.won_amount - campaign.actual_cost) / campaign.actual_cost * HUNDRED)
