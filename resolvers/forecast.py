"""Forecasts and budget attainment, aggregated in the database.

Sums are exact on both databases: SQL adds up cents (and cents × basis points for weighted
amounts) per group and per currency; the few aggregate rows are then converted to the
report currency exactly (forecasts use rational arithmetic) and rounded half-up to cents once.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import ColumnElement, Integer, case, cast, extract, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Budget, Currency, Opportunity, SalesStage, User
from resolvers import opportunity
from resolvers.errors import RequestError
from resolvers.kinds import owned
from resolvers.money import cents
from resolvers.permissions import Viewer, subordinates

DIMENSIONS = ("PERIOD", "ASSIGNEE", "STAGE", "CAMPAIGN", "FORECAST_CATEGORY", "TYPE", "LEAD_SOURCE")
MEASURES = ("amount", "weighted", "open", "won", "lost")


@dataclass
class Figures:
    count: int = 0
    amount: Decimal = Decimal("0.00")
    weighted_amount: Decimal = Decimal("0.00")
    open_amount: Decimal = Decimal("0.00")
    won_amount: Decimal = Decimal("0.00")
    lost_amount: Decimal = Decimal("0.00")


@dataclass
class Bucket(Figures):
    period: str | None = None
    assigned_to_id: int | None = None
    stage: str | None = None
    campaign_id: int | None = None
    forecast_category: str | None = None
    type: str | None = None
    lead_source: str | None = None
    _raw: dict[str, Fraction] = field(default_factory=dict, repr=False)


@dataclass
class Forecast:
    currency: str
    buckets: list[Bucket]
    totals: Figures


def _effective_date() -> ColumnElement[dt.date]:
    """Open deals count when they are expected to close, closed ones when they closed."""
    return case(
        (SalesStage.is_closed.is_(True),
         func.coalesce(Opportunity.actual_close_date, Opportunity.expected_close_date)),
        else_=Opportunity.expected_close_date,
    )


def _exact(expr: Any, scale: int, dialect: str) -> Any:
    """`expr` × 10^scale as an exact number to sum: integers on SQLite (which would add
    floats), numeric on PostgreSQL."""
    scaled = expr * (10 ** scale)
    return cast(func.round(scaled), Integer) if dialect == "sqlite" else scaled


def _amount(dialect: str) -> Any:
    """The amount in cents."""
    return _exact(Opportunity.amount, 2, dialect)


def _weighted(dialect: str) -> Any:
    """amount × probability in cents × basis points (weighted amount × 10^6)."""
    return _amount(dialect) * _exact(Opportunity.probability, 2, dialect)


def _measures(dialect: str) -> dict[str, Any]:
    closed, won = SalesStage.is_closed.is_(True), SalesStage.is_won.is_(True)
    amount, weighted = _amount(dialect), _weighted(dialect)
    return {
        "amount": func.sum(amount),
        "weighted": func.sum(weighted),
        "open": func.sum(case((~closed, amount), else_=0)),
        "won": func.sum(case((won, amount), else_=0)),
        "lost": func.sum(case((closed & ~won, amount), else_=0)),
    }


SCALES = {"amount": 2, "weighted": 6, "open": 2, "won": 2, "lost": 2}


async def _rates(session: AsyncSession, report_currency: str) -> tuple[dict[str, Decimal], Decimal]:
    rates = {c.code: c.rate for c in (await session.scalars(select(Currency))).all()}
    if report_currency not in rates:
        raise RequestError(
            f"Unknown currency {report_currency!r}; known: {', '.join(sorted(rates))}."
        )
    return rates, rates[report_currency]


def _group_columns(group_by: Sequence[str]) -> dict[str, Any]:
    date = _effective_date()
    columns: dict[str, Any] = {}
    for dim in group_by:
        if dim == "PERIOD":
            columns["year"] = extract("year", date)
            columns["month"] = extract("month", date)
        elif dim == "ASSIGNEE":
            columns["assigned_to_id"] = Opportunity.assigned_to_id
        elif dim == "STAGE":
            columns["stage"] = Opportunity.sales_stage
        elif dim == "CAMPAIGN":
            columns["campaign_id"] = Opportunity.campaign_id
        elif dim == "FORECAST_CATEGORY":
            columns["forecast_category"] = SalesStage.forecast_category
        elif dim == "TYPE":
            columns["type"] = Opportunity.type
        elif dim == "LEAD_SOURCE":
            columns["lead_source"] = Opportunity.lead_source
    return columns


def period_key(year: int, month: int, unit: str) -> str:
    if unit == "YEAR":
        return f"{year}"
    if unit == "QUARTER":
        return f"{year}-Q{(month - 1) // 3 + 1}"
    return f"{year}-{month:02d}"


async def forecast(
    session: AsyncSession,
    viewer: Viewer,
    group_by: Sequence[str],
    period: str,
    filter: opportunity.OpportunityFilter | None,
    currency: str | None,
) -> Forecast:
    """One grouped query over the deals the viewer may see, matching `filter`."""
    report = (currency or await _base(session)).strip().upper()
    rates, report_rate = await _rates(session, report)
    dialect = session.get_bind().dialect.name
    groups = _group_columns(group_by)
    measures = _measures(dialect)
    stmt = (
        select(
            *[c.label(k) for k, c in groups.items()],
            Opportunity.currency.label("currency"),
            func.count().label("count"),
            *[m.label(k) for k, m in measures.items()],
        )
        .join(SalesStage, SalesStage.key == Opportunity.sales_stage)
        .where(
            *owned(Opportunity, viewer),
            *(await opportunity.conditions_for(session, filter)),
        )
        .group_by(*groups.values(), Opportunity.currency)
    )
    buckets: dict[tuple[Any, ...], Bucket] = {}
    totals = Bucket()
    for row in (await session.execute(stmt)).mappings():
        keys = {k: row[k] for k in groups if k not in ("year", "month")}
        if "year" in groups:
            keys["period"] = period_key(int(row["year"]), int(row["month"]), period)
        bucket = buckets.setdefault(tuple(sorted(keys.items())), Bucket(**keys))
        # exact: a rate quotient such as 0.85 / 1.10 has no finite decimal expansion
        factor = Fraction(report_rate) / Fraction(rates[row["currency"]])
        for target in (bucket, totals):
            target.count += int(row["count"])
            for name in MEASURES:
                value = _exact_sum(row[name], SCALES[name]) * factor
                target._raw[name] = target._raw.get(name, Fraction(0)) + value
    if list(group_by) == ["STAGE"]:
        await _every_active_stage(session, buckets)
    ordered = await _ordered(session, list(buckets.values()), group_by)
    for bucket in [*ordered, totals]:
        _round(bucket)
    return Forecast(currency=report, buckets=ordered, totals=_figures(totals))


def _exact_sum(value: Any, scale: int) -> Fraction:
    """An exact SQL sum (scaled by 10^scale) as a number."""
    return Fraction(Decimal(str(value or 0)).scaleb(-scale))


def _exact_cents(value: Fraction) -> Decimal:
    """Half-up (away from zero) to cents, from the exact value."""
    hundredths = math.floor(abs(value) * 100 + Fraction(1, 2))
    return Decimal(hundredths if value >= 0 else -hundredths).scaleb(-2)


def _round(bucket: Bucket) -> None:
    raw = bucket._raw
    bucket.amount = _exact_cents(raw.get("amount", Fraction(0)))
    bucket.weighted_amount = _exact_cents(raw.get("weighted", Fraction(0)))
    bucket.open_amount = _exact_cents(raw.get("open", Fraction(0)))
    bucket.won_amount = _exact_cents(raw.get("won", Fraction(0)))
    bucket.lost_amount = _exact_cents(raw.get("lost", Fraction(0)))


def _figures(bucket: Bucket) -> Figures:
    return Figures(
        bucket.count, bucket.amount, bucket.weighted_amount, bucket.open_amount,
        bucket.won_amount, bucket.lost_amount,
    )


async def _every_active_stage(
    session: AsyncSession, buckets: dict[tuple[Any, ...], Bucket]
) -> None:
    """A board's columns: one bucket per active stage, empty ones included."""
    present = {b.stage for b in buckets.values()}
    active = (await session.scalars(select(SalesStage.key).where(SalesStage.is_active))).all()
    for key in active:
        if key not in present:
            buckets[(("stage", key),)] = Bucket(stage=key)


async def _ordered(
    session: AsyncSession, buckets: list[Bucket], group_by: Sequence[str]
) -> list[Bucket]:
    """Buckets in the order of the grouping: period, stage position, names."""
    stages = {s.key: s.position for s in (await session.scalars(select(SalesStage))).all()}
    users: dict[int, str] = {}
    if "ASSIGNEE" in group_by:
        ids = {b.assigned_to_id for b in buckets if b.assigned_to_id is not None}
        rows = await session.execute(select(User.id, User.username).where(User.id.in_(ids)))
        users = {uid: name for uid, name in rows}
    categories = ("PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMITTED")

    def sort_key(b: Bucket) -> tuple[Any, ...]:
        parts: list[Any] = []
        for dim in group_by:
            value: Any = {
                "PERIOD": b.period,
                "ASSIGNEE": users.get(b.assigned_to_id or 0),
                "STAGE": stages.get(b.stage or "", 0),
                "CAMPAIGN": b.campaign_id,
                "FORECAST_CATEGORY": categories.index(b.forecast_category)
                if b.forecast_category in categories else None,
                "TYPE": b.type,
                "LEAD_SOURCE": b.lead_source,
            }[dim]
            parts.append((value is None, value if value is not None else 0))
        return tuple(parts)

    return sorted(buckets, key=sort_key)


# Budgets and attainment -----------------------------------------------------------------


def period_range(year: int, unit: str, number: int) -> tuple[dt.date, dt.date]:
    """First and last day of a month (1–12), quarter (1–4) or year (1)."""
    if unit == "MONTH":
        first_month, last_month = number, number
    elif unit == "QUARTER":
        first_month, last_month = 3 * number - 2, 3 * number
    else:
        first_month, last_month = 1, 12
    last_day = calendar.monthrange(year, last_month)[1]
    return dt.date(year, first_month, 1), dt.date(year, last_month, last_day)


def valid_period(year: int, unit: str, number: int) -> str | None:
    """Why the period is invalid, or None."""
    if not 1900 <= year <= 2999:
        return f"Year {year} is out of range (1900–2999)."
    limit = {"MONTH": 12, "QUARTER": 4, "YEAR": 1}[unit]
    if not 1 <= number <= limit:
        if unit == "YEAR":
            return f"For a year, number must be 1; got {number}."
        return f"A {unit.lower()} number must be between 1 and {limit}; got {number}."
    return None


@dataclass
class Attainment:
    target: Decimal | None
    closed_won: Decimal
    commit: Decimal
    best_case: Decimal
    pipeline: Decimal
    weighted_pipeline: Decimal
    best_band: Decimal
    forecast_band: Decimal
    worst_band: Decimal

    @property
    def gap(self) -> Decimal | None:
        return None if self.target is None else self.target - self.closed_won

    @property
    def attainment_percent(self) -> Decimal | None:
        if not self.target:
            return None
        return cents(self.closed_won / self.target * 100)


async def attainment(
    session: AsyncSession,
    viewer: Viewer,
    user_id: int,
    year: int,
    unit: str,
    number: int,
) -> Attainment | None:
    """A user's figures for a period, rolling up everyone below them; None when the
    viewer may not see that user's figures."""
    if not viewer.can_edit_owner(user_id):
        return None
    edges = (await session.execute(select(User.id, User.manager_id))).all()
    if all(uid != user_id for uid, _ in edges):
        return None  # no such user: as for one the viewer may not see
    team = sorted(subordinates(user_id, edges))
    start, end = period_range(year, unit, number)
    rates, _ = await _rates(session, await _base(session))
    dialect = session.get_bind().dialect.name
    closed, won = SalesStage.is_closed.is_(True), SalesStage.is_won.is_(True)
    amount, weighted = _amount(dialect), _weighted(dialect)
    due = (~closed) & Opportunity.expected_close_date.between(start, end)
    won_in_period = won & Opportunity.actual_close_date.between(start, end)
    # Every figure needs a deal due (expected) or closed (actually) in the period; the rest
    # add nothing, so the WHERE leaves them out and an owner-and-date index finds the others.
    in_period = or_(
        Opportunity.expected_close_date.between(start, end),
        Opportunity.actual_close_date.between(start, end),
    )

    def open_with(condition: Any) -> Any:
        return func.sum(case((due & condition, amount), else_=0))

    stmt = (
        select(
            Opportunity.currency,
            func.sum(case((won_in_period, amount), else_=0)).label("won"),
            open_with(SalesStage.forecast_category == "COMMIT").label("commit"),
            open_with(SalesStage.forecast_category == "BEST_CASE").label("best_case"),
            func.sum(case((due, amount), else_=0)).label("pipeline"),
            func.sum(case((due, weighted), else_=0)).label("weighted"),
            open_with(Opportunity.probability >= 70).label("band70"),
            open_with(Opportunity.probability >= 80).label("band80"),
            open_with(Opportunity.probability >= 90).label("band90"),
        )
        .join(SalesStage, SalesStage.key == Opportunity.sales_stage)
        .where(
            Opportunity.deleted_at.is_(None), Opportunity.assigned_to_id.in_(team), in_period
        )
        .group_by(Opportunity.currency)
    )
    sums: dict[str, Fraction] = {}
    for row in (await session.execute(stmt)).mappings():
        for name in ("won", "commit", "best_case", "pipeline", "weighted",
                     "band70", "band80", "band90"):
            scale = 6 if name == "weighted" else 2
            value = _exact_sum(row[name], scale) / Fraction(rates[row["currency"]])
            sums[name] = sums.get(name, Fraction(0)) + value

    def total(name: str) -> Decimal:
        return _exact_cents(sums.get(name, Fraction(0)))

    closed_won = total("won")
    commit = closed_won + total("commit")
    return Attainment(
        target=await _target(session, user_id, team, year, unit, number),
        closed_won=closed_won,
        commit=commit,
        best_case=commit + total("best_case"),
        pipeline=total("pipeline"),
        weighted_pipeline=total("weighted"),
        best_band=total("band70"),
        forecast_band=total("band80"),
        worst_band=total("band90"),
    )


async def _base(session: AsyncSession) -> str:
    code = await session.scalar(select(Currency.code).where(Currency.is_base.is_(True)))
    return code or "EUR"


async def _target(
    session: AsyncSession, user_id: int, team: list[int], year: int, unit: str, number: int
) -> Decimal | None:
    """The user's own target if set, else the sum of their team's."""
    where = [Budget.year == year, Budget.period == unit, Budget.number == number]
    own = await session.scalar(select(Budget.amount).where(Budget.user_id == user_id, *where))
    if own is not None:
        return Decimal(own)
    others = [uid for uid in team if uid != user_id]
    if not others:
        return None
    total = await session.scalar(
        select(func.sum(Budget.amount)).where(Budget.user_id.in_(others), *where)
    )
    return None if total is None else cents(total)
