"""Campaign figures over the deals the viewer may see, in the base currency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, Currency, Opportunity, SalesStage
from resolvers.kinds import owned
from resolvers.money import HUNDRED, cents
from resolvers.permissions import Viewer

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class CampaignStats:
    pipeline_amount: Decimal = ZERO
    won_amount: Decimal = ZERO


async def deal_counts(
    session: AsyncSession, viewer: Viewer, campaign_ids: Sequence[int]
) -> dict[int, int]:
    """How many deals per campaign: a count alone reads only an index (migration 0015), so it
    is not one of the amounts' figures, which read every deal's stage, currency and amount."""
    stmt = (
        select(Opportunity.campaign_id, func.count())
        .where(Opportunity.campaign_id.in_(campaign_ids), *owned(Opportunity, viewer))
        .group_by(Opportunity.campaign_id)
    )
    return {cid: int(n) for cid, n in await session.execute(stmt) if cid is not None}


async def campaign_stats(
    session: AsyncSession, viewer: Viewer, campaign_ids: Sequence[int]
) -> dict[int, CampaignStats]:
    """Open pipeline and won amount per campaign: one grouped query."""
    amount = Opportunity.amount / Currency.rate
    stmt = (
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
    return {
        cid: CampaignStats(cents(pipeline or 0), cents(won or 0))
        for cid, pipeline, won in await session.execute(stmt)
    }


def roi(campaign: Campaign, stats: CampaignStats) -> Decimal | None:
    """Return on investment in percent: (won − actual cost) / actual cost × 100."""
    if not campaign.actual_cost:
        return None
    return cents((stats.won_amount - campaign.actual_cost) / campaign.actual_cost * HUNDRED)
