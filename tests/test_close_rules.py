"""Issue 13's close rules (API.md "Corrections to the lifecycle"): a close forces the
probability and clears probabilityIsManual, reopening takes the new stage's default, a
contradicting probability is refused; actualCloseDate can be given and corrected, is kept in
stage and field history, and the forecast follows it; migration 0011 repairs old rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import models
from server.migrate import alembic_config

DEAL = """
fragment Deal on Opportunity {
  probability probabilityIsManual actualCloseDate version salesStage { key }
  stageHistory { toStage { key } probability actualCloseDate }
  fieldHistory { field oldValue newValue }
}
"""
CREATE = """
mutation($input: CreateOpportunityInput!) {
  createOpportunity(input: $input) { opportunity { id ...Deal } userErrors { field code } }
}
""" + DEAL
CHANGE = """
mutation($input: ChangeOpportunityStageInput!) {
  changeOpportunityStage(input: $input) { opportunity { ...Deal } userErrors { field code } }
}
""" + DEAL
UPDATE = """
mutation($input: UpdateOpportunityInput!) {
  updateOpportunity(input: $input) { opportunity { ...Deal } userErrors { field code } }
}
""" + DEAL
FORECAST = """
query { forecast(groupBy: [PERIOD], period: QUARTER) { buckets { period count wonAmount } } }
"""

TODAY = dt.date.today()
CLOSE = TODAY + dt.timedelta(days=40)


def errors(payload: dict[str, Any]) -> list[tuple[list[str], str]]:
    return sorted((e["field"], e["code"]) for e in payload["userErrors"])


def quarter(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


async def create(client: Any, **fields: Any) -> dict[str, Any]:
    data = await client.data(CREATE, {"input": {
        "name": "Rinnovo", "expectedCloseDate": CLOSE.isoformat(), **fields,
    }})
    payload = data["createOpportunity"]
    assert payload["userErrors"] == []
    return payload["opportunity"]  # type: ignore[no-any-return]


async def change(client: Any, **fields: Any) -> dict[str, Any]:
    return (await client.data(CHANGE, {"input": fields}))["changeOpportunityStage"]  # type: ignore[no-any-return]


async def update(client: Any, **fields: Any) -> dict[str, Any]:
    return (await client.data(UPDATE, {"input": fields}))["updateOpportunity"]  # type: ignore[no-any-return]


# --- defect 1: a manual probability does not survive a close ---------------------------------


@pytest.mark.parametrize(("closing", "extra", "forced"), [
    ("CLOSED_WON", {}, "100.00"),
    ("CLOSED_LOST", {"lostReason": "Budget cut"}, "0.00"),
])
async def test_reopening_after_a_close_takes_the_new_stage_default(
    team, client_for, closing, extra, forced
):
    # given: a deal with a manual probability
    client = await client_for(team["rep"])
    opp = await create(client, salesStage="PROPOSAL_PRICE_QUOTE", probability="55")
    assert (opp["probability"], opp["probabilityIsManual"]) == ("55.00", True)

    # when
    closed = await change(client, id=opp["id"], stage=closing, **extra)
    reopened = await change(client, id=opp["id"], stage="NEGOTIATION_REVIEW")

    # then
    assert closed["opportunity"]["probability"] == forced
    assert closed["opportunity"]["probabilityIsManual"] is False
    deal = reopened["opportunity"]
    assert (deal["probability"], deal["probabilityIsManual"], deal["actualCloseDate"]) == (
        "80.00", False, None,
    )


async def test_reopening_with_a_probability_keeps_that_one_as_manual(team, client_for):
    # given
    client = await client_for(team["rep"])
    opp = await create(client, salesStage="PROPOSAL_PRICE_QUOTE", probability="55")
    await change(client, id=opp["id"], stage="CLOSED_WON")

    # when
    reopened = await change(client, id=opp["id"], stage="NEGOTIATION_REVIEW", probability="70")

    # then
    deal = reopened["opportunity"]
    assert (deal["probability"], deal["probabilityIsManual"]) == ("70.00", True)


async def test_a_contradicting_probability_on_a_close_is_refused_on_every_path(
    team, client_for, db
):
    # given
    client = await client_for(team["rep"])
    opp = await create(client, salesStage="QUALIFICATION")

    # when
    by_change = await change(client, id=opp["id"], stage="CLOSED_WON", probability="90")
    by_lost = await change(
        client, id=opp["id"], stage="CLOSED_LOST", lostReason="Rival", probability="5"
    )
    by_update = await update(client, id=opp["id"], salesStage="CLOSED_WON", probability="40")
    created = await client.data(CREATE, {"input": {
        "name": "Done", "expectedCloseDate": CLOSE.isoformat(), "salesStage": "CLOSED_WON",
        "probability": "50",
    }})

    # then: refused, and nothing changed (the deal is still at version 1, open)
    for payload in (by_change, by_lost, by_update, created["createOpportunity"]):
        assert payload["opportunity"] is None
        assert errors(payload) == [(["input", "probability"], "INVALID")]
    row = await db.get(models.Opportunity, await _pk(db, opp["id"]))
    assert row is not None
    assert (row.version, row.sales_stage, row.probability) == (1, "QUALIFICATION", Decimal("20"))


async def test_a_closed_deal_keeps_its_forced_probability(team, client_for):
    # given: a won deal
    client = await client_for(team["rep"])
    opp = await create(client, salesStage="QUALIFICATION")
    await change(client, id=opp["id"], stage="CLOSED_WON")

    # when
    other = await update(client, id=opp["id"], probability="60")
    manual = await update(client, id=opp["id"], probabilityIsManual=True)
    same = await update(client, id=opp["id"], probability="100")

    # then
    assert errors(other) == [(["input", "probability"], "INVALID")]
    assert errors(manual) == [(["input", "probabilityIsManual"], "INVALID")]
    assert same["userErrors"] == []
    assert (same["opportunity"]["probability"], same["opportunity"]["probabilityIsManual"]) == (
        "100.00", False,
    )


# --- defect 2: the actual close date can be given and corrected ------------------------------


async def test_a_close_takes_the_given_actual_close_date_into_stage_history_and_forecast(
    team, client_for
):
    # given: a deal won 100 days ago, in an earlier quarter than today's
    client = await client_for(team["rep"])
    won_on = TODAY - dt.timedelta(days=100)
    opp = await create(client, salesStage="NEGOTIATION_REVIEW", amount="500")

    # when
    closed = await change(
        client, id=opp["id"], stage="CLOSED_WON", actualCloseDate=won_on.isoformat()
    )
    forecast = await client.data(FORECAST)

    # then
    deal = closed["opportunity"]
    assert deal["actualCloseDate"] == won_on.isoformat()
    assert deal["stageHistory"][0] == {
        "toStage": {"key": "CLOSED_WON"}, "probability": "100.00",
        "actualCloseDate": won_on.isoformat(),
    }
    assert deal["stageHistory"][1]["actualCloseDate"] is None
    buckets = {b["period"]: b for b in forecast["forecast"]["buckets"]}
    assert buckets[quarter(won_on)]["wonAmount"] == "500.00"


async def test_closing_without_a_date_stamps_today(team, client_for):
    client = await client_for(team["rep"])
    opp = await create(client, salesStage="QUALIFICATION")

    closed = await change(client, id=opp["id"], stage="CLOSED_LOST", lostReason="Rival")

    assert closed["opportunity"]["actualCloseDate"] == TODAY.isoformat()
    assert closed["opportunity"]["stageHistory"][0]["actualCloseDate"] == TODAY.isoformat()


async def test_correcting_the_actual_close_date_of_a_closed_deal(team, client_for):
    # given: a deal won today
    client = await client_for(team["rep"])
    opp = await create(client, salesStage="QUALIFICATION")
    await change(client, id=opp["id"], stage="CLOSED_WON")
    earlier = TODAY - dt.timedelta(days=20)

    # when: corrected by update, then by a stage change to the same stage
    corrected = await update(client, id=opp["id"], actualCloseDate=earlier.isoformat())
    again = await change(
        client, id=opp["id"], stage="CLOSED_WON",
        actualCloseDate=(earlier - dt.timedelta(days=1)).isoformat(),
    )

    # then: no new StageChange, a field change each time, version grows
    deal = corrected["opportunity"]
    assert deal["actualCloseDate"] == earlier.isoformat()
    assert len(deal["stageHistory"]) == 2
    assert deal["fieldHistory"][0] == {
        "field": "actualCloseDate", "oldValue": TODAY.isoformat(),
        "newValue": earlier.isoformat(),
    }
    final = again["opportunity"]
    assert final["actualCloseDate"] == (earlier - dt.timedelta(days=1)).isoformat()
    assert len(final["stageHistory"]) == 2
    assert final["version"] == deal["version"] + 1


async def test_actual_close_date_refusals(team, client_for, db):
    # given: an open deal and a won one
    client = await client_for(team["rep"])
    open_deal = await create(client, salesStage="QUALIFICATION")
    won = await create(client, salesStage="QUALIFICATION")
    await change(client, id=won["id"], stage="CLOSED_WON")
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()

    # when
    on_open = await update(client, id=open_deal["id"], actualCloseDate=TODAY.isoformat())
    reopen_dated = await change(
        client, id=won["id"], stage="QUALIFICATION", actualCloseDate=TODAY.isoformat()
    )
    future_close = await change(
        client, id=open_deal["id"], stage="CLOSED_WON", actualCloseDate=tomorrow
    )
    future_fix = await update(client, id=won["id"], actualCloseDate=tomorrow)
    cleared = await update(client, id=won["id"], actualCloseDate=None)

    # then
    field = ["input", "actualCloseDate"]
    assert errors(on_open) == [(field, "INVALID")]
    assert errors(reopen_dated) == [(field, "INVALID")]
    assert errors(future_close) == [(field, "INVALID")]
    assert errors(future_fix) == [(field, "INVALID")]
    assert errors(cleared) == [(field, "REQUIRED")]
    rows = {
        r.id: r for r in (await db.scalars(select(models.Opportunity))).all()
    }
    assert {(r.sales_stage, r.actual_close_date, r.version) for r in rows.values()} == {
        ("QUALIFICATION", None, 1), ("CLOSED_WON", TODAY, 2),
    }


async def _pk(db: Any, global_id: str) -> int:
    from resolvers.ids import pk_of

    await db.commit()
    pk = pk_of(global_id, "Opportunity")
    assert pk is not None
    return pk


# --- migration 0011 repairs the rows the old rule left ---------------------------------------


@pytest.fixture
async def scratch_url(database_url: str, tmp_path: Any) -> AsyncIterator[str]:
    """An empty database of the suite's kind, for migrating step by step."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
        return
    url = make_url(database_url)
    name = f"{url.database}_scratch_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.mark.no_database
async def test_migration_0011_repairs_reopened_deals_and_closed_flags(scratch_url):
    # given: a database at 0010 with the rows the old rule produced
    config = alembic_config(scratch_url)
    await asyncio.to_thread(command.upgrade, config, "0010")
    engine = create_async_engine(scratch_url)
    now = dt.datetime.now(dt.UTC)
    opp = models.Opportunity.__table__
    changes = models.StageChange.__table__
    async with engine.begin() as connection:
        user_id = (await connection.execute(
            insert(models.User.__table__).values(
                username="rep", full_name="Rep", email="rep@example.com", role="SALES_REP",
                is_active=True, created_at=now,
            ).returning(models.User.__table__.c.id)
        )).scalar_one()

        async def deal(number: str, stage: str, probability: str, reopened: bool) -> int:
            pk = (await connection.execute(insert(opp).values(
                number=number, name=number, amount=Decimal("10"), currency="EUR",
                expected_close_date=CLOSE, sales_stage=stage, probability=Decimal(probability),
                probability_is_manual=True, amount_source="MANUAL", version=3,
                assigned_to_id=user_id, created_by_id=user_id, custom_fields={},
                created_at=now, updated_at=now, stage_changed_at=now,
            ).returning(opp.c.id))).scalar_one()
            moves = [(None, "PROSPECTING"), ("PROSPECTING", "CLOSED_WON")]
            if reopened:
                moves.append(("CLOSED_WON", stage))
            for from_stage, to_stage in moves:
                await connection.execute(insert(changes).values(
                    opportunity_id=pk, from_stage=from_stage, to_stage=to_stage,
                    amount=Decimal("10"), probability=Decimal(probability),
                    expected_close_date=CLOSE, changed_by_id=user_id, changed_at=now,
                ))
            return pk

        reopened = await deal("POT1", "NEGOTIATION_REVIEW", "100", reopened=True)
        chosen = await deal("POT2", "PROSPECTING", "100", reopened=False)  # a person's 100
        closed = await deal("POT3", "CLOSED_WON", "100", reopened=False)
        kept = await deal("POT4", "NEGOTIATION_REVIEW", "55", reopened=True)

    # when
    await asyncio.to_thread(command.upgrade, config, "head")

    # then
    async with engine.connect() as connection:
        rows = {
            r.id: (r.probability, r.probability_is_manual, r.version)
            for r in await connection.execute(select(opp))
        }
        closes = [
            r.actual_close_date for r in await connection.execute(
                select(changes).where(changes.c.to_stage == "CLOSED_WON")
            )
        ]
    await engine.dispose()
    assert rows[reopened] == (Decimal("80.00"), False, 4)
    assert rows[chosen] == (Decimal("100.00"), True, 3)
    assert rows[closed] == (Decimal("100.00"), False, 3)
    assert rows[kept] == (Decimal("55.00"), True, 3)
    assert closes and all(d == now.date() for d in closes)
