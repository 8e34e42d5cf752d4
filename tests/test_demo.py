"""The demo data generator: deterministic, complete, and consistent with the contract's rules."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from demo.data import DemoResult, generate
from models import (
    Account,
    Campaign,
    Contact,
    Currency,
    Lead,
    NumberSequence,
    Opportunity,
    OpportunityContact,
    Product,
    Quote,
    QuoteLine,
    SalesStage,
    StageChange,
    User,
)
from resolvers.money import HUNDRED, cents
from server.db import create_engine
from server.migrate import upgrade
from server.settings import Settings

# Each test builds its own SQLite files; the shared test database is not involved.
pytestmark = pytest.mark.no_database

N = 300
SEED = 7

NUMBERED: dict[str, Any] = {
    "POT": Opportunity, "ACC": Account, "CON": Contact, "LEA": Lead, "CAM": Campaign,
    "QUO": Quote, "PRO": Product,
}


async def _fresh_engine(path: Path) -> AsyncEngine:
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(upgrade, url)
    return create_engine(Settings(database_url=url))


async def _rows(engine: AsyncEngine, model: Any) -> list[tuple[Any, ...]]:
    columns = list(model.__table__.columns)
    keys = list(model.__table__.primary_key.columns)
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(select(*columns).order_by(*keys))]


@pytest.fixture(scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[
    tuple[AsyncEngine, DemoResult, list[int]]
]:
    engine = await _fresh_engine(tmp_path_factory.mktemp("demo") / "demo.db")
    reported: list[int] = []
    result = await generate(engine, N, SEED, progress=reported.append)
    yield engine, result, reported
    await engine.dispose()


async def test_same_seed_gives_the_same_data(tmp_path: Path) -> None:
    first = await _fresh_engine(tmp_path / "first.db")
    second = await _fresh_engine(tmp_path / "second.db")
    other = await _fresh_engine(tmp_path / "other.db")
    try:
        a = await generate(first, N, SEED)
        b = await generate(second, N, SEED)
        await generate(other, N, SEED + 1)
        assert a == b
        for model in (Opportunity, StageChange, Quote, QuoteLine, OpportunityContact, Account,
                      Contact, Lead, Campaign, Product, User, NumberSequence, Currency):
            assert await _rows(first, model) == await _rows(second, model), model.__name__
        assert await _rows(first, Opportunity) != await _rows(other, Opportunity)
    finally:
        for engine in (first, second, other):
            await engine.dispose()


async def test_counts_and_progress(demo: tuple[AsyncEngine, DemoResult, list[int]]) -> None:
    engine, result, reported = demo
    assert reported and reported[-1] == N
    assert result.admin_username == "admin"
    assert result.opportunities == N
    assert (result.accounts, result.leads, result.campaigns, result.products) == (30, 60, 5, 40)
    assert len(await _rows(engine, Opportunity)) == N
    assert len(await _rows(engine, QuoteLine)) == result.quote_lines
    assert result.quotes > 0.25 * N and result.quote_lines >= result.quotes


async def test_every_stage_is_used(demo: tuple[AsyncEngine, DemoResult, list[int]]) -> None:
    engine, _, _ = demo
    async with engine.connect() as conn:
        stages = {k: (closed, won) for k, closed, won in await conn.execute(
            select(SalesStage.key, SalesStage.is_closed, SalesStage.is_won))}
        rows = (await conn.execute(select(
            Opportunity.id, Opportunity.sales_stage, Opportunity.probability,
            Opportunity.actual_close_date, Opportunity.lost_reason, Opportunity.currency,
            Opportunity.account_id, Opportunity.version, Opportunity.custom_fields,
        ))).all()
        history = Counter(r for (r,) in await conn.execute(select(StageChange.opportunity_id)))
        probabilities = {k: p for k, p in await conn.execute(
            select(SalesStage.key, SalesStage.probability))}
    per_stage = Counter(r.sales_stage for r in rows)
    assert set(per_stage) == set(stages)
    assert per_stage["CLOSED_WON"] >= 0.05 * N and per_stage["CLOSED_LOST"] >= 0.05 * N
    today = dt.date.today()
    for r in rows:
        closed, won = stages[r.sales_stage]
        assert r.probability == probabilities[r.sales_stage]
        assert r.version == 1 and r.custom_fields == {}
        assert history[r.id] == (2 if closed else 1)
        if closed:
            assert r.actual_close_date is not None and r.actual_close_date <= today
        else:
            assert r.actual_close_date is None
        assert (r.lost_reason is not None) == (closed and not won)
    assert {r.currency for r in rows} >= {"EUR", "USD", "GBP"}
    assert sum(r.account_id is not None for r in rows) > 0.85 * N


async def test_synced_quote_drives_the_amount(
    demo: tuple[AsyncEngine, DemoResult, list[int]],
) -> None:
    engine, _, _ = demo
    async with engine.connect() as conn:
        deals = {r.id: r for r in await conn.execute(select(
            Opportunity.id, Opportunity.amount, Opportunity.amount_source, Opportunity.account_id))}
        quotes = (await conn.execute(select(
            Quote.id, Quote.opportunity_id, Quote.is_synced, Quote.account_id))).all()
        lines = (await conn.execute(select(
            QuoteLine.quote_id, QuoteLine.quantity, QuoteLine.list_price,
            QuoteLine.discount_percent))).all()
    net: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    line_count: Counter[int] = Counter()
    for line in lines:
        net[line.quote_id] += cents(
            line.quantity * line.list_price * (1 - line.discount_percent / HUNDRED)
        )
        line_count[line.quote_id] += 1
    synced: dict[int, int] = {}
    per_deal: Counter[int] = Counter()
    for quote in quotes:
        assert 1 <= line_count[quote.id] <= 5
        assert quote.account_id == deals[quote.opportunity_id].account_id
        per_deal[quote.opportunity_id] += 1
        if quote.is_synced:
            assert quote.opportunity_id not in synced
            synced[quote.opportunity_id] = quote.id
    assert max(per_deal.values()) <= 2
    quoted = [d for d in deals.values() if d.amount_source == "QUOTE"]
    assert 0.25 * N < len(quoted) < 0.55 * N
    for deal in deals.values():
        if deal.amount_source == "QUOTE":
            assert deal.amount == net[synced[deal.id]], deal.id
        else:
            assert deal.amount_source == "MANUAL" and deal.id not in per_deal


async def test_numbers_and_sequences_advance(
    demo: tuple[AsyncEngine, DemoResult, list[int]],
) -> None:
    engine, _, _ = demo
    async with engine.connect() as conn:
        sequences = {p: v for p, v in await conn.execute(
            select(NumberSequence.prefix, NumberSequence.next_value))}
        for prefix, model in NUMBERED.items():
            numbers = (await conn.scalars(select(model.number))).all()
            values = sorted(int(re.fullmatch(rf"{prefix}(\d+)", n)[1]) for n in numbers)  # type: ignore[index]
            assert values == list(range(1, len(values) + 1)), prefix
            assert sequences[prefix] > values[-1], prefix
        codes = (await conn.scalars(select(Product.code).order_by(Product.id))).all()
        assert codes[:2] == ["PRD-0001", "PRD-0002"]


async def test_users_form_a_hierarchy(demo: tuple[AsyncEngine, DemoResult, list[int]]) -> None:
    engine, result, _ = demo
    async with engine.connect() as conn:
        users = {u.username: u for u in await conn.execute(
            select(User.id, User.username, User.role, User.manager_id, User.email,
                   User.full_name))}
        owners = set((await conn.scalars(select(Opportunity.assigned_to_id).distinct())).all())
        opp_contacts = (await conn.execute(select(
            OpportunityContact.opportunity_id, OpportunityContact.contact_id,
            OpportunityContact.is_primary, Contact.account_id, Opportunity.account_id,
        ).join(Contact, Contact.id == OpportunityContact.contact_id)
         .join(Opportunity, Opportunity.id == OpportunityContact.opportunity_id))).all()
    assert users["admin"].role == "ADMIN" and result.admin_id == users["admin"].id
    managers = {users[m].id for m in ("manager1", "manager2")}
    assert all(users[m].role == "MANAGER" and users[m].manager_id is None
               for m in ("manager1", "manager2"))
    reps = [u for u in users.values() if u.role == "SALES_REP"]
    assert sorted(u.username for u in reps) == ["rep1", "rep2", "rep3", "rep4"]
    assert all(u.manager_id in managers for u in reps)
    assert all(u.email == f"{u.username}@example.com" and " " in u.full_name
               for u in users.values())
    assert owners <= {u.id for u in reps}
    primaries = Counter(c.opportunity_id for c in opp_contacts if c.is_primary)
    assert primaries and max(primaries.values()) == 1
    assert all(c.account_id == c[4] for c in opp_contacts)


async def test_running_twice_reuses_users_and_continues_numbers(tmp_path: Path) -> None:
    engine = await _fresh_engine(tmp_path / "twice.db")
    try:
        first = await generate(engine, 40, 1)
        second = await generate(engine, 40, 2)
        assert first.users == 7 and second.users == 0
        assert first.currencies == 2 and second.currencies == 0
        async with engine.connect() as conn:
            numbers = (await conn.scalars(select(Opportunity.number))).all()
            next_pot = await conn.scalar(
                select(NumberSequence.next_value).where(NumberSequence.prefix == "POT"))
        assert len(set(numbers)) == 80 and next_pot == 81
    finally:
        await engine.dispose()
