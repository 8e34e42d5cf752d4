"""Opportunities: the list (filters, ordering, paging, visibility) and computed fields."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, select

from models import Opportunity, SalesStage
from resolvers.dates import local_date, today
from resolvers.ids import pk_of
from resolvers.permissions import Viewer, readable
from resolvers.text import contains

ORDER_FIELDS: dict[str, Any] = {
    "NAME": Opportunity.name,
    "AMOUNT": Opportunity.amount,
    "EXPECTED_CLOSE_DATE": Opportunity.expected_close_date,
    "PROBABILITY": Opportunity.probability,
    # Same order as amount × probability / 100, without a division in SQL.
    "WEIGHTED_AMOUNT": Opportunity.amount * Opportunity.probability,
    "CREATED_AT": Opportunity.created_at,
    "UPDATED_AT": Opportunity.updated_at,
}


@dataclass(frozen=True)
class OpportunityFilter:
    """The contract's OpportunityFilter; every given field must hold (AND)."""

    stage: tuple[str, ...] | None = None
    assigned_to: tuple[str, ...] | None = None
    account: str | None = None
    campaign: str | None = None
    expected_close_date_from: dt.date | None = None
    expected_close_date_to: dt.date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    type: str | None = None
    lead_source: str | None = None
    forecast_category: tuple[str, ...] | None = None
    is_closed: bool | None = None
    is_won: bool | None = None
    search: str | None = None


def _ids(global_ids: tuple[str, ...], type_name: str) -> list[int]:
    return [pk for g in global_ids if (pk := pk_of(g, type_name)) is not None]


def _stages_where(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return Opportunity.sales_stage.in_(select(SalesStage.key).where(condition))


def filter_conditions(f: OpportunityFilter | None) -> list[ColumnElement[bool]]:
    """SQL conditions for a filter (visibility and the recycle bin are added separately)."""
    if f is None:
        return []
    c: list[ColumnElement[bool]] = []
    if f.stage is not None:
        c.append(Opportunity.sales_stage.in_(f.stage))
    if f.assigned_to is not None:
        c.append(Opportunity.assigned_to_id.in_(_ids(f.assigned_to, "User")))
    if f.account is not None:
        c.append(Opportunity.account_id == (pk_of(f.account, "Account") or -1))
    if f.campaign is not None:
        c.append(Opportunity.campaign_id == (pk_of(f.campaign, "Campaign") or -1))
    if f.expected_close_date_from is not None:
        c.append(Opportunity.expected_close_date >= f.expected_close_date_from)
    if f.expected_close_date_to is not None:
        c.append(Opportunity.expected_close_date <= f.expected_close_date_to)
    if f.amount_min is not None:
        c.append(Opportunity.amount >= f.amount_min)
    if f.amount_max is not None:
        c.append(Opportunity.amount <= f.amount_max)
    if f.type is not None:
        c.append(Opportunity.type == f.type)
    if f.lead_source is not None:
        c.append(Opportunity.lead_source == f.lead_source)
    if f.forecast_category is not None:
        c.append(_stages_where(SalesStage.forecast_category.in_(f.forecast_category)))
    if f.is_closed is not None:
        c.append(_stages_where(SalesStage.is_closed.is_(f.is_closed)))
    if f.is_won is not None:
        c.append(_stages_where(SalesStage.is_won.is_(f.is_won)))
    if f.search:
        c.append(contains(f.search, Opportunity.name, Opportunity.number))
    return c


def visible_conditions(viewer: Viewer) -> list[ColumnElement[bool]]:
    return [Opportunity.deleted_at.is_(None), readable(Opportunity.assigned_to_id, viewer)]


# Computed on demand ---------------------------------------------------------------


def days_to_close(opp: Opportunity, stage: SalesStage) -> int | None:
    """Days until the expected close date (negative when overdue); None once closed."""
    return None if stage.is_closed else (opp.expected_close_date - today()).days


def is_overdue(opp: Opportunity, stage: SalesStage) -> bool:
    return not stage.is_closed and opp.expected_close_date < today()


def age_days(opp: Opportunity) -> int:
    return (today() - local_date(opp.created_at)).days


def days_in_stage(opp: Opportunity) -> int:
    return (today() - local_date(opp.stage_changed_at)).days
