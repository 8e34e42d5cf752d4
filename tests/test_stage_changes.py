"""Sales stage changes (API.md "Rules that clients rely on": Probability, Stage changes).

changeOpportunityStage and updateOpportunity (when it changes salesStage) go through the same
rule: one StageChange per real change, probability following the stage unless given or
manual, won/lost closing the deal, reopening clearing actualCloseDate, and the same stage
being a no-op. daysInStage counts from the last change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

import models
from resolvers.ids import to_global_id

DEAL_FIELDS = """
fragment DealFields on Opportunity {
  name amount expectedCloseDate actualCloseDate probability probabilityIsManual
  weightedAmount lostReason isClosed isWon forecastCategory daysInStage daysToClose
  version updatedAt
  salesStage { key }
  stageHistory {
    fromStage { key } toStage { key } amount probability expectedCloseDate note changedAt
    changedBy { username }
  }
}
"""

CREATE = """
mutation Create($input: CreateOpportunityInput!) {
  createOpportunity(input: $input) {
    opportunity { ...DealFields }
    userErrors { field message code }
  }
}
""" + DEAL_FIELDS

UPDATE = """
mutation Update($input: UpdateOpportunityInput!) {
  updateOpportunity(input: $input) {
    opportunity { ...DealFields }
    userErrors { field message code }
  }
}
""" + DEAL_FIELDS

CHANGE_STAGE = """
mutation ChangeStage($input: ChangeOpportunityStageInput!) {
  changeOpportunityStage(input: $input) {
    opportunity { ...DealFields }
    userErrors { field message code }
  }
}
""" + DEAL_FIELDS

DEAL = """
query Deal($id: ID!) {
  node(id: $id) { ...DealFields }
}
""" + DEAL_FIELDS

TODAY = dt.date.today()
CLOSE = TODAY + dt.timedelta(days=45)


def long_ago() -> dt.datetime:
    """Five days ago, read when a test arranges its data (not when the module was imported:
    a run may cross midnight)."""
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=5)


def gid(record: Any) -> str:
    return to_global_id(type(record).__name__, record.id)


def problems(payload: dict[str, Any]) -> list[tuple[list[str], str]]:
    return sorted((e["field"], e["code"]) for e in payload["userErrors"])


def history(opp: dict[str, Any]) -> list[tuple[str | None, str, str, str, str | None, str]]:
    """(from, to, amount, probability, note, who) of each StageChange, newest first."""
    return [
        (
            h["fromStage"]["key"] if h["fromStage"] else None, h["toStage"]["key"], h["amount"],
            h["probability"], h["note"], h["changedBy"]["username"],
        )
        for h in opp["stageHistory"]
    ]


async def snapshot(db: AsyncSession, opp_id: int) -> dict[str, Any]:
    """A fresh read of the deal's row and its stage history."""
    await db.commit()
    table = models.Opportunity.__table__
    row = (await db.execute(select(table).where(table.c.id == opp_id))).mappings().one()
    changes = models.StageChange.__table__
    rows = (
        await db.execute(
            select(changes).where(changes.c.opportunity_id == opp_id).order_by(changes.c.id)
        )
    ).mappings().all()
    await db.commit()
    return {"row": dict(row), "history": [dict(r) for r in rows]}


@pytest.fixture
async def deal(team, factory, db) -> models.Opportunity:
    """rep's deal: QUALIFICATION since five days ago, 1000.00, no manual probability."""
    opp = await factory.opportunity(
        team["rep"], name="Deal", stage="QUALIFICATION", amount="1000.00", close=CLOSE,
        stage_changed_at=long_ago(),
    )
    await db.commit()
    return opp


# --- changeOpportunityStage ---------------------------------------------------------------


async def test_a_stage_change_records_who_when_and_the_figures(team, deal, db, client_for):
    # given
    client = await client_for(team["manager"])
    before = (await client.data(DEAL, {"id": gid(deal)}))["node"]
    started = dt.datetime.now(dt.UTC)

    # when
    data = await client.data(
        CHANGE_STAGE,
        {"input": {"id": gid(deal), "stage": "PERCEPTION_ANALYSIS", "note": "Demo went well",
                   "expectedVersion": 1}},
    )

    # then
    payload = data["changeOpportunityStage"]
    assert payload["userErrors"] == []
    opp = payload["opportunity"]
    assert before["daysInStage"] == 5
    assert (opp["salesStage"], opp["probability"], opp["probabilityIsManual"]) == (
        {"key": "PERCEPTION_ANALYSIS"}, "50.00", False,
    )
    assert (opp["forecastCategory"], opp["weightedAmount"], opp["daysInStage"]) == (
        "BEST_CASE", "500.00", 0,
    )
    assert (opp["actualCloseDate"], opp["isClosed"], opp["version"]) == (None, False, 2)
    assert history(opp) == [
        ("QUALIFICATION", "PERCEPTION_ANALYSIS", "1000.00", "50.00", "Demo went well",
         "manager"),
        (None, "QUALIFICATION", "1000.00", "20.00", None, "rep"),
    ]
    newest = opp["stageHistory"][0]
    assert newest["expectedCloseDate"] == CLOSE.isoformat()
    changed_at = dt.datetime.fromisoformat(newest["changedAt"])
    assert started <= changed_at <= dt.datetime.now(dt.UTC)
    assert len((await snapshot(db, deal.id))["history"]) == 2


async def test_each_change_appends_one_entry_newest_first(team, deal, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    for stage in ("NEEDS_ANALYSIS", "VALUE_PROPOSITION", "NEEDS_ANALYSIS"):
        await client.data(CHANGE_STAGE, {"input": {"id": gid(deal), "stage": stage}})
    opp = (await client.data(DEAL, {"id": gid(deal)}))["node"]

    # then
    assert [(f, t, p) for f, t, _, p, _, _ in history(opp)] == [
        ("VALUE_PROPOSITION", "NEEDS_ANALYSIS", "25.00"),
        ("NEEDS_ANALYSIS", "VALUE_PROPOSITION", "30.00"),
        ("QUALIFICATION", "NEEDS_ANALYSIS", "25.00"),
        (None, "QUALIFICATION", "20.00"),
    ]
    assert opp["version"] == 4


async def test_a_given_probability_sticks_until_made_automatic_again(
    team, deal, db, client_for
):
    # given
    client = await client_for(team["rep"])

    # when
    given = await client.data(
        CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "NEEDS_ANALYSIS", "probability": 42}}
    )
    moved = await client.data(
        CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "NEGOTIATION_REVIEW"}}
    )
    automatic = await client.data(
        UPDATE, {"input": {"id": gid(deal), "probabilityIsManual": False}}
    )
    moved_again = await client.data(
        CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "VALUE_PROPOSITION"}}
    )

    # then
    opp = given["changeOpportunityStage"]["opportunity"]
    assert (opp["probability"], opp["probabilityIsManual"]) == ("42.00", True)
    assert history(opp)[0][3] == "42.00"
    opp = moved["changeOpportunityStage"]["opportunity"]
    assert (opp["probability"], opp["probabilityIsManual"], history(opp)[0][3]) == (
        "42.00", True, "42.00",
    )
    opp = automatic["updateOpportunity"]["opportunity"]
    assert (opp["probability"], opp["probabilityIsManual"], len(opp["stageHistory"])) == (
        "80.00", False, 3,
    )
    opp = moved_again["changeOpportunityStage"]["opportunity"]
    assert (opp["probability"], opp["probabilityIsManual"], opp["version"]) == (
        "30.00", False, 5,
    )


async def test_a_manual_flag_keeps_the_probability_on_a_stage_change(
    team, factory, db, client_for
):
    # given
    opp_row = await factory.opportunity(
        team["rep"], stage="QUALIFICATION", probability="55", probability_is_manual=True
    )
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        CHANGE_STAGE, {"input": {"id": gid(opp_row), "stage": "ID_DECISION_MAKERS"}}
    )

    # then
    opp = data["changeOpportunityStage"]["opportunity"]
    assert (opp["probability"], opp["probabilityIsManual"]) == ("55.00", True)


async def test_won_forces_100_and_closes_today_whatever_the_flag(team, factory, db, client_for):
    # given
    opp_row = await factory.opportunity(
        team["rep"], stage="NEGOTIATION_REVIEW", probability="55", probability_is_manual=True,
        close=CLOSE,
    )
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        CHANGE_STAGE,
        {"input": {"id": gid(opp_row), "stage": "CLOSED_WON"}},
    )

    # then
    opp = data["changeOpportunityStage"]["opportunity"]
    assert (opp["probability"], opp["actualCloseDate"], opp["isClosed"], opp["isWon"]) == (
        "100.00", dt.date.today().isoformat(), True, True,
    )
    assert opp["probabilityIsManual"] is False
    assert (opp["forecastCategory"], opp["weightedAmount"], opp["daysToClose"]) == (
        "CLOSED", "1000.00", None,
    )
    assert history(opp)[0] == (
        "NEGOTIATION_REVIEW", "CLOSED_WON", "1000.00", "100.00", None, "rep",
    )


async def test_lost_requires_a_reason_and_changes_nothing_without_one(
    team, deal, db, client_for
):
    # given
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    missing = await client.data(CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "CLOSED_LOST"}})
    blank = await client.data(
        CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "CLOSED_LOST", "lostReason": "  "}}
    )

    # then
    for data in (missing, blank):
        payload = data["changeOpportunityStage"]
        assert payload["opportunity"] is None
        assert problems(payload) == [(["input", "lostReason"], "REQUIRED")]
    assert await snapshot(db, deal.id) == before


async def test_lost_forces_0_closes_today_and_keeps_the_reason(team, deal, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        CHANGE_STAGE,
        {"input": {"id": gid(deal), "stage": "CLOSED_LOST", "lostReason": " Went with a rival ",
                   "probability": 0, "note": "Price"}},
    )

    # then
    opp = data["changeOpportunityStage"]["opportunity"]
    assert (opp["probability"], opp["actualCloseDate"], opp["lostReason"]) == (
        "0.00", dt.date.today().isoformat(), "Went with a rival",
    )
    assert (opp["isClosed"], opp["isWon"], opp["forecastCategory"], opp["weightedAmount"]) == (
        True, False, "OMITTED", "0.00",
    )
    assert history(opp)[0] == ("QUALIFICATION", "CLOSED_LOST", "1000.00", "0.00", "Price", "rep")


async def test_reopening_clears_the_close_date(team, factory, db, client_for):
    # given
    opp_row = await factory.opportunity(
        team["rep"], stage="CLOSED_LOST", probability="0", lost_reason="Budget cut",
        actual_close_date=TODAY - dt.timedelta(days=10),
    )
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(CHANGE_STAGE, {"input": {"id": gid(opp_row), "stage": "PROSPECTING"}})

    # then
    opp = data["changeOpportunityStage"]["opportunity"]
    assert (opp["actualCloseDate"], opp["probability"], opp["isClosed"]) == (
        None, "10.00", False,
    )
    assert opp["lostReason"] is None
    assert history(opp)[0][:4] == ("CLOSED_LOST", "PROSPECTING", "1000.00", "10.00")


async def test_lost_to_won_closes_today_at_100(team, factory, db, client_for):
    # given
    opp_row = await factory.opportunity(
        team["rep"], stage="CLOSED_LOST", probability="0", lost_reason="Budget cut",
        actual_close_date=TODAY - dt.timedelta(days=10),
    )
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(CHANGE_STAGE, {"input": {"id": gid(opp_row), "stage": "CLOSED_WON"}})

    # then
    opp = data["changeOpportunityStage"]["opportunity"]
    assert (opp["actualCloseDate"], opp["probability"], opp["isWon"]) == (
        dt.date.today().isoformat(), "100.00", True,
    )
    assert opp["lostReason"] is None  # a won deal has no reason for being lost


async def test_the_same_stage_is_a_no_op(team, deal, db, client_for):
    # given
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(
        CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "QUALIFICATION", "note": "again"}}
    )

    # then
    payload = data["changeOpportunityStage"]
    assert payload["userErrors"] == []
    opp = payload["opportunity"]
    assert (opp["version"], opp["daysInStage"], len(opp["stageHistory"])) == (1, 5, 1)
    assert await snapshot(db, deal.id) == before


async def test_the_same_stage_with_a_probability_applies_it_without_a_stage_change(
    team, deal, db, client_for
):
    # given
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(
        CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "QUALIFICATION", "probability": "33.5"}}
    )

    # then
    opp = data["changeOpportunityStage"]["opportunity"]
    assert (opp["probability"], opp["probabilityIsManual"], opp["version"]) == (
        "33.50", True, 2,
    )
    assert (opp["daysInStage"], len(opp["stageHistory"])) == (5, 1)
    after = await snapshot(db, deal.id)
    assert after["history"] == before["history"]
    assert after["row"]["stage_changed_at"] == before["row"]["stage_changed_at"]


async def test_staying_lost_needs_no_new_reason(team, factory, db, client_for):
    # given
    opp_row = await factory.opportunity(
        team["rep"], stage="CLOSED_LOST", probability="0", lost_reason="Budget cut",
        actual_close_date=TODAY - dt.timedelta(days=10),
    )
    await db.commit()
    client = await client_for(team["rep"])
    before = await snapshot(db, opp_row.id)

    # when
    data = await client.data(CHANGE_STAGE, {"input": {"id": gid(opp_row), "stage": "CLOSED_LOST"}})

    # then
    assert data["changeOpportunityStage"]["userErrors"] == []
    assert await snapshot(db, opp_row.id) == before


async def test_a_refused_stage_change_reports_every_problem_and_changes_nothing(
    team, deal, db, client_for
):
    # given
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(
        CHANGE_STAGE,
        {"input": {"id": gid(deal), "stage": "SIGNED", "probability": "120",
                   "note": "n" * 2_001, "lostReason": "r" * 2_001}},
    )

    # then
    assert problems(data["changeOpportunityStage"]) == [
        (["input", "lostReason"], "TOO_LONG"),
        (["input", "note"], "TOO_LONG"),
        (["input", "probability"], "OUT_OF_RANGE"),
        (["input", "stage"], "INVALID"),
    ]
    assert await snapshot(db, deal.id) == before


@pytest.mark.parametrize(
    ("stage", "code"), [("", "REQUIRED"), ("   ", "REQUIRED"), ("closed_won", "INVALID"),
                        ("NEEDS_ANALYSIS", "INACTIVE")],
)
async def test_change_stage_refuses_a_blank_unknown_or_inactive_stage(
    stage, code, team, deal, db, client_for
):
    # given
    await db.execute(
        update(models.SalesStage)
        .where(models.SalesStage.key == "NEEDS_ANALYSIS")
        .values(is_active=False)
    )
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(CHANGE_STAGE, {"input": {"id": gid(deal), "stage": stage}})

    # then
    assert problems(data["changeOpportunityStage"]) == [(["input", "stage"], code)]
    assert await snapshot(db, deal.id) == before


# --- updateOpportunity changing the stage ---------------------------------------------------


async def test_update_that_changes_the_stage_records_one_change_with_the_new_figures(
    team, deal, db, client_for
):
    # given
    client = await client_for(team["rep"])
    new_close = CLOSE + dt.timedelta(days=10)

    # when
    data = await client.data(
        UPDATE,
        {"input": {"id": gid(deal), "salesStage": "PROPOSAL_PRICE_QUOTE", "amount": "2000",
                   "expectedCloseDate": new_close.isoformat(), "name": "Bigger"}},
    )

    # then
    opp = data["updateOpportunity"]["opportunity"]
    assert (opp["salesStage"], opp["probability"], opp["version"], opp["daysInStage"]) == (
        {"key": "PROPOSAL_PRICE_QUOTE"}, "65.00", 2, 0,
    )
    assert history(opp) == [
        ("QUALIFICATION", "PROPOSAL_PRICE_QUOTE", "2000.00", "65.00", None, "rep"),
        (None, "QUALIFICATION", "1000.00", "20.00", None, "rep"),
    ]
    assert opp["stageHistory"][0]["expectedCloseDate"] == new_close.isoformat()
    assert len((await snapshot(db, deal.id))["history"]) == 2


async def test_update_with_the_same_stage_records_no_change(team, deal, db, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        UPDATE,
        {"input": {"id": gid(deal), "salesStage": "QUALIFICATION", "nextStep": "Meet",
                   "probability": "22"}},
    )

    # then
    opp = data["updateOpportunity"]["opportunity"]
    assert (opp["probability"], opp["probabilityIsManual"], opp["version"]) == (
        "22.00", True, 2,
    )
    assert (len(opp["stageHistory"]), opp["daysInStage"]) == (1, 5)


async def test_update_to_lost_requires_a_reason(team, deal, db, client_for):
    # given
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    refused = await client.data(
        UPDATE, {"input": {"id": gid(deal), "salesStage": "CLOSED_LOST", "name": "Gone"}}
    )
    unchanged = await snapshot(db, deal.id)
    accepted = await client.data(
        UPDATE,
        {"input": {"id": gid(deal), "salesStage": "CLOSED_LOST", "lostReason": "No budget"}},
    )

    # then
    assert problems(refused["updateOpportunity"]) == [(["input", "lostReason"], "REQUIRED")]
    assert unchanged == before
    opp = accepted["updateOpportunity"]["opportunity"]
    assert (opp["probability"], opp["actualCloseDate"], opp["lostReason"], opp["version"]) == (
        "0.00", dt.date.today().isoformat(), "No budget", 2,
    )
    assert history(opp)[0][:4] == ("QUALIFICATION", "CLOSED_LOST", "1000.00", "0.00")


async def test_update_to_won_refuses_a_different_probability_and_changes_nothing(
    team, deal, db, client_for
):
    # given
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    refused = await client.data(
        UPDATE, {"input": {"id": gid(deal), "salesStage": "CLOSED_WON", "probability": "40"}}
    )
    after_refusal = await snapshot(db, deal.id)
    same = await client.data(
        UPDATE, {"input": {"id": gid(deal), "salesStage": "CLOSED_WON", "probability": "100"}}
    )

    # then
    payload = refused["updateOpportunity"]
    assert payload["opportunity"] is None
    assert problems(payload) == [(["input", "probability"], "INVALID")]
    assert after_refusal == before
    opp = same["updateOpportunity"]["opportunity"]
    assert (opp["probability"], opp["probabilityIsManual"], opp["actualCloseDate"]) == (
        "100.00", False, dt.date.today().isoformat(),
    )
    assert len(opp["stageHistory"]) == 2


async def test_create_in_a_closed_stage(team, client_for):
    # given
    client = await client_for(team["rep"])
    base = {"name": "Done", "expectedCloseDate": CLOSE.isoformat()}

    # when
    won = await client.data(
        CREATE, {"input": {**base, "salesStage": "CLOSED_WON", "probability": "100"}}
    )
    lost = await client.data(
        CREATE, {"input": {**base, "salesStage": "CLOSED_LOST", "lostReason": "Too late"}}
    )

    # then
    opp = won["createOpportunity"]["opportunity"]
    assert (opp["probability"], opp["actualCloseDate"], opp["isWon"]) == (
        "100.00", dt.date.today().isoformat(), True,
    )
    assert history(opp) == [(None, "CLOSED_WON", "0.00", "100.00", None, "rep")]
    opp = lost["createOpportunity"]["opportunity"]
    assert (opp["probability"], opp["actualCloseDate"], opp["lostReason"]) == (
        "0.00", dt.date.today().isoformat(), "Too late",
    )
    assert history(opp) == [(None, "CLOSED_LOST", "0.00", "0.00", None, "rep")]


# --- daysInStage ----------------------------------------------------------------------------


async def test_days_in_stage_counts_from_the_last_stage_change(team, deal, db, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    other_edit = await client.data(UPDATE, {"input": {"id": gid(deal), "name": "Renamed"}})
    changed = await client.data(CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "CLOSED_WON"}})

    # then
    assert other_edit["updateOpportunity"]["opportunity"]["daysInStage"] == 5
    assert changed["changeOpportunityStage"]["opportunity"]["daysInStage"] == 0
    after = await snapshot(db, deal.id)
    assert after["row"]["stage_changed_at"] == after["history"][-1]["changed_at"]
