"""Opportunity writes (API.md "Mutations" and "Rules that clients rely on").

Create and update with their validation (every problem at once, with a path and a code),
optimistic concurrency, permissions that follow visibility, the recycle bin, the account and
contact links, and the bookkeeping every mutation does (version, updatedAt, createdBy).
Stage rules live in test_stage_changes.py.

Every refusal is checked twice: the userErrors, and a fresh read of the database showing that
nothing changed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import models
from resolvers.ids import to_global_id
from tests.conftest import GraphQLClient

DEAL_FIELDS = """
fragment DealFields on Opportunity {
  id number name amount currency expectedCloseDate actualCloseDate type nextStep leadSource
  probability probabilityIsManual weightedAmount lostReason description amountSource
  version createdAt updatedAt
  salesStage { key }
  assignedTo { username }
  createdBy { username }
  account { name }
  campaign { name }
  contact { lastName }
  contacts { role isPrimary contact { lastName } }
  quotes { subject }
  stageHistory {
    fromStage { key } toStage { key } amount probability expectedCloseDate note
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

DELETE = """
mutation Delete($input: DeleteOpportunityInput!) {
  deleteOpportunity(input: $input) {
    deletedId
    userErrors { field message code }
  }
}
"""

RESTORE = """
mutation Restore($input: RestoreOpportunityInput!) {
  restoreOpportunity(input: $input) {
    opportunity { ...DealFields }
    userErrors { field message code }
  }
}
""" + DEAL_FIELDS

LINK_ACCOUNT = """
mutation LinkAccount($input: LinkOpportunityToAccountInput!) {
  linkOpportunityToAccount(input: $input) {
    opportunity { ...DealFields }
    userErrors { field message code }
  }
}
""" + DEAL_FIELDS

ADD_CONTACT = """
mutation AddContact($input: AddOpportunityContactInput!) {
  addOpportunityContact(input: $input) {
    opportunity { ...DealFields }
    userErrors { field message code }
  }
}
""" + DEAL_FIELDS

REMOVE_CONTACT = """
mutation RemoveContact($input: RemoveOpportunityContactInput!) {
  removeOpportunityContact(input: $input) {
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

NODES = """
query Nodes($ids: [ID!]!) {
  nodes(ids: $ids) { id }
}
"""

EVERYWHERE = """
query Everywhere($account: ID!, $campaign: ID!) {
  opportunities(first: 50) { totalCount nodes { name } }
  quotes(first: 50) { totalCount nodes { subject } }
  leads(first: 50) { nodes { lastName convertedOpportunity { name } } }
  account: node(id: $account) {
    ... on Account { opportunities(first: 50) { totalCount nodes { name } } }
  }
  campaign: node(id: $campaign) {
    ... on Campaign {
      opportunityCount pipelineAmount wonAmount
      opportunities(first: 50) { totalCount nodes { name } }
    }
  }
}
"""

TODAY = dt.date.today()
CLOSE = TODAY + dt.timedelta(days=60)
PAST = dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
MISSING_DEAL = to_global_id("Opportunity", 987654)


def gid(record: Any) -> str:
    return to_global_id(type(record).__name__, record.id)


def problems(payload: dict[str, Any]) -> list[tuple[list[str], str]]:
    """(field path, code) of every userError, sorted."""
    return sorted((e["field"], e["code"]) for e in payload["userErrors"])


async def snapshot(db: AsyncSession, opp_id: int) -> dict[str, Any]:
    """A fresh read of everything a write may touch on one deal."""
    await db.commit()  # end the arranging transaction: see what others committed since
    table = models.Opportunity.__table__
    row = (await db.execute(select(table).where(table.c.id == opp_id))).mappings().one()
    history = (
        await db.execute(
            select(models.StageChange.to_stage, models.StageChange.note)
            .where(models.StageChange.opportunity_id == opp_id)
            .order_by(models.StageChange.id)
        )
    ).all()
    contacts = (
        await db.execute(
            select(
                models.OpportunityContact.contact_id,
                models.OpportunityContact.role,
                models.OpportunityContact.is_primary,
            )
            .where(models.OpportunityContact.opportunity_id == opp_id)
            .order_by(models.OpportunityContact.contact_id)
        )
    ).all()
    await db.commit()
    return {"row": dict(row), "history": list(history), "contacts": list(contacts)}


async def counts(db: AsyncSession) -> dict[str, Any]:
    """How many deals, stage changes and contact links exist, and the next deal number."""
    await db.commit()
    result = {
        "opportunities": await db.scalar(select(func.count()).select_from(models.Opportunity)),
        "stage_changes": await db.scalar(select(func.count()).select_from(models.StageChange)),
        "links": await db.scalar(select(func.count()).select_from(models.OpportunityContact)),
        "next_number": await db.scalar(
            select(models.NumberSequence.next_value).where(models.NumberSequence.prefix == "POT")
        ),
    }
    await db.commit()
    return result


async def deactivate(db: AsyncSession, picklist: str, key: str) -> None:
    await db.execute(
        update(models.PicklistValue)
        .where(models.PicklistValue.picklist == picklist, models.PicklistValue.key == key)
        .values(is_active=False)
    )
    await db.commit()


@pytest.fixture
async def deal(team, factory, db) -> models.Opportunity:
    """rep's deal in QUALIFICATION, created and last changed long ago."""
    opp = await factory.opportunity(
        team["rep"], name="Rep deal", stage="QUALIFICATION", amount="1000.00",
        close=CLOSE, next_step="Call back", created_at=PAST, updated_at=PAST,
    )
    await db.commit()
    return opp


# --- create ------------------------------------------------------------------------------


async def test_create_with_the_required_fields_fills_in_the_defaults(team, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        CREATE,
        {"input": {"name": "First deal", "expectedCloseDate": CLOSE.isoformat(),
                   "salesStage": "QUALIFICATION"}},
    )

    # then
    payload = data["createOpportunity"]
    assert payload["userErrors"] == []
    opp = payload["opportunity"]
    assert {k: v for k, v in opp.items() if k not in ("id", "createdAt", "updatedAt")} == {
        "number": "POT1", "name": "First deal", "amount": "0.00", "currency": "EUR",
        "expectedCloseDate": CLOSE.isoformat(), "actualCloseDate": None, "type": None,
        "nextStep": None, "leadSource": None, "probability": "20.00",
        "probabilityIsManual": False, "weightedAmount": "0.00", "lostReason": None,
        "description": None, "amountSource": "MANUAL", "version": 1,
        "salesStage": {"key": "QUALIFICATION"}, "assignedTo": {"username": "rep"},
        "createdBy": {"username": "rep"}, "account": None, "campaign": None, "contact": None,
        "contacts": [], "quotes": [],
        "stageHistory": [
            {"fromStage": None, "toStage": {"key": "QUALIFICATION"}, "amount": "0.00",
             "probability": "20.00", "expectedCloseDate": CLOSE.isoformat(), "note": None,
             "changedBy": {"username": "rep"}},
        ],
    }
    created = dt.datetime.fromisoformat(opp["createdAt"])
    assert dt.timedelta(0) <= dt.datetime.now(dt.UTC) - created < dt.timedelta(minutes=5)
    assert dt.timedelta(0) <= dt.datetime.fromisoformat(opp["updatedAt"]) - created < (
        dt.timedelta(seconds=5)
    )
    fetched = (await client.data(DEAL, {"id": opp["id"]}))["node"]
    assert fetched == opp


async def test_create_with_every_field(team, factory, db, client_for):
    # given
    db.add(models.Currency(code="USD", rate=Decimal("1.10")))
    account = await factory.account(team["rep"], name="Acme")
    contact = await factory.contact(team["rep"], last_name="Rossi")
    campaign = await factory.campaign(team["admin"], name="Spring Expo")
    client = await client_for(team["manager"])

    # when
    data = await client.data(
        CREATE,
        {"input": {
            "name": "  Big deal  ", "expectedCloseDate": CLOSE.isoformat(),
            "salesStage": "NEEDS_ANALYSIS", "amount": 1234.5, "currency": "usd",
            "accountId": gid(account), "contactId": gid(contact), "campaignId": gid(campaign),
            "assignedToId": gid(team["rep"]), "type": "NEW_BUSINESS",
            "nextStep": "Send the offer", "leadSource": "TRADE_SHOW", "probability": "35",
            "description": "Three sites",
        }},
    )

    # then
    payload = data["createOpportunity"]
    assert payload["userErrors"] == []
    opp = payload["opportunity"]
    assert {k: v for k, v in opp.items() if k not in ("id", "createdAt", "updatedAt")} == {
        "number": "POT1", "name": "Big deal", "amount": "1234.50", "currency": "USD",
        "expectedCloseDate": CLOSE.isoformat(), "actualCloseDate": None,
        "type": "NEW_BUSINESS", "nextStep": "Send the offer", "leadSource": "TRADE_SHOW",
        "probability": "35.00", "probabilityIsManual": True, "weightedAmount": "432.08",
        "lostReason": None, "description": "Three sites", "amountSource": "MANUAL",
        "version": 1, "salesStage": {"key": "NEEDS_ANALYSIS"},
        "assignedTo": {"username": "rep"}, "createdBy": {"username": "manager"},
        "account": {"name": "Acme"}, "campaign": {"name": "Spring Expo"},
        "contact": {"lastName": "Rossi"},
        "contacts": [{"role": None, "isPrimary": True, "contact": {"lastName": "Rossi"}}],
        "quotes": [],
        "stageHistory": [
            {"fromStage": None, "toStage": {"key": "NEEDS_ANALYSIS"}, "amount": "1234.50",
             "probability": "35.00", "expectedCloseDate": CLOSE.isoformat(), "note": None,
             "changedBy": {"username": "manager"}},
        ],
    }
    # the assignee, a rep, sees the deal the manager made for them
    rep = await client_for(team["rep"])
    assert (await rep.data(DEAL, {"id": opp["id"]}))["node"]["name"] == "Big deal"


async def test_numbers_increase_and_a_refused_create_takes_none(team, client_for):
    # given
    client = await client_for(team["rep"])
    valid = {"expectedCloseDate": CLOSE.isoformat(), "salesStage": "PROSPECTING"}

    # when
    first = await client.data(CREATE, {"input": {**valid, "name": "One"}})
    refused = await client.data(CREATE, {"input": {**valid, "name": " "}})
    second = await client.data(CREATE, {"input": {**valid, "name": "Two"}})

    # then
    assert first["createOpportunity"]["opportunity"]["number"] == "POT1"
    assert refused["createOpportunity"]["opportunity"] is None
    assert second["createOpportunity"]["opportunity"]["number"] == "POT2"


async def test_concurrent_creates_never_share_a_number(team, db, app, factory):
    # given
    clients = [GraphQLClient(app, await factory.token(team[u])) for u in ("rep", "rep2", "manager")]
    await db.commit()
    valid = {"expectedCloseDate": CLOSE.isoformat(), "salesStage": "PROSPECTING"}

    # when
    results = await asyncio.gather(
        *(c.data(CREATE, {"input": {**valid, "name": f"Deal {i}"}}) for i, c in enumerate(clients))
    )

    # then
    numbers = sorted(r["createOpportunity"]["opportunity"]["number"] for r in results)
    assert numbers == ["POT1", "POT2", "POT3"]
    assert (await counts(db))["next_number"] == 4


async def test_create_reports_every_problem_at_once_and_creates_nothing(
    team, factory, db, client_for
):
    # given
    hidden_account = await factory.account(team["other_rep"], name="Hidden")
    await deactivate(db, "leadSource", "COLD_CALL")
    client = await client_for(team["rep"])
    before = await counts(db)

    # when
    data = await client.data(
        CREATE,
        {"input": {
            "name": "   ", "expectedCloseDate": CLOSE.isoformat(), "salesStage": "\t",
            "amount": "-0.01", "currency": "XYZ", "accountId": gid(hidden_account),
            "contactId": to_global_id("Contact", 4242), "campaignId": "not-an-id",
            "assignedToId": gid(team["rep2"]), "type": "BIG_BUSINESS",
            "leadSource": "COLD_CALL", "nextStep": "x" * 256, "description": "d" * 10_001,
            "probability": "100.01", "lostReason": "l" * 2_001,
        }},
    )

    # then
    payload = data["createOpportunity"]
    assert payload["opportunity"] is None
    assert problems(payload) == sorted([
        (["input", "name"], "REQUIRED"),
        (["input", "salesStage"], "REQUIRED"),
        (["input", "amount"], "OUT_OF_RANGE"),
        (["input", "currency"], "INVALID"),
        (["input", "accountId"], "NOT_FOUND"),
        (["input", "contactId"], "NOT_FOUND"),
        (["input", "campaignId"], "NOT_FOUND"),
        (["input", "assignedToId"], "PERMISSION_DENIED"),
        (["input", "type"], "INVALID"),
        (["input", "leadSource"], "INACTIVE"),
        (["input", "nextStep"], "TOO_LONG"),
        (["input", "description"], "TOO_LONG"),
        (["input", "probability"], "OUT_OF_RANGE"),
        (["input", "lostReason"], "TOO_LONG"),
    ])
    assert all(e["message"].strip() for e in payload["userErrors"])
    assert await counts(db) == before


@pytest.mark.parametrize(
    ("extra", "field", "code"),
    [
        ({"name": "\n  "}, "name", "REQUIRED"),
        ({"name": "n" * 256}, "name", "TOO_LONG"),
        ({"salesStage": "WON"}, "salesStage", "INVALID"),
        ({"salesStage": "CLOSED_LOST"}, "lostReason", "REQUIRED"),
        ({"salesStage": "CLOSED_LOST", "lostReason": "  "}, "lostReason", "REQUIRED"),
        ({"amount": "-1"}, "amount", "OUT_OF_RANGE"),
        ({"amount": "1.005"}, "amount", "INVALID"),
        ({"amount": "10000000000000000.00"}, "amount", "OUT_OF_RANGE"),
        ({"probability": "-0.5"}, "probability", "OUT_OF_RANGE"),
        ({"probability": 101}, "probability", "OUT_OF_RANGE"),
        ({"currency": "EURO"}, "currency", "INVALID"),
        ({"type": "existing business"}, "type", "INVALID"),
        ({"leadSource": "RADIO"}, "leadSource", "INVALID"),
        ({"nextStep": "s" * 256}, "nextStep", "TOO_LONG"),
        ({"accountId": to_global_id("Account", 99)}, "accountId", "NOT_FOUND"),
        ({"campaignId": to_global_id("Account", 1)}, "campaignId", "NOT_FOUND"),
        ({"assignedToId": to_global_id("User", 9999)}, "assignedToId", "NOT_FOUND"),
    ],
)
async def test_create_refuses_one_bad_field(extra, field, code, team, db, client_for):
    # given
    client = await client_for(team["rep"])
    before = await counts(db)
    valid = {"name": "Deal", "expectedCloseDate": CLOSE.isoformat(), "salesStage": "PROSPECTING"}

    # when
    data = await client.data(CREATE, {"input": {**valid, **extra}})

    # then
    payload = data["createOpportunity"]
    assert payload["opportunity"] is None
    assert problems(payload) == [(["input", field], code)]
    assert await counts(db) == before


async def test_create_accepts_the_boundaries(team, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    low = await client.data(
        CREATE,
        {"input": {"name": "n" * 255, "expectedCloseDate": CLOSE.isoformat(),
                   "salesStage": "PROSPECTING", "amount": "0", "probability": "0"}},
    )
    high = await client.data(
        CREATE,
        {"input": {"name": "High", "expectedCloseDate": CLOSE.isoformat(),
                   "salesStage": "PROSPECTING", "amount": "9999999999999999.99",
                   "probability": 100, "nextStep": "s" * 255}},
    )

    # then
    low_opp = low["createOpportunity"]["opportunity"]
    assert low["createOpportunity"]["userErrors"] == []
    assert (low_opp["name"], low_opp["amount"], low_opp["probability"]) == (
        "n" * 255, "0.00", "0.00",
    )
    high_opp = high["createOpportunity"]["opportunity"]
    assert high["createOpportunity"]["userErrors"] == []
    assert (high_opp["amount"], high_opp["probability"], high_opp["weightedAmount"]) == (
        "9999999999999999.99", "100.00", "9999999999999999.99",
    )


async def test_create_refuses_inactive_stage_type_and_lead_source(team, db, client_for):
    # given
    await db.execute(
        update(models.SalesStage)
        .where(models.SalesStage.key == "NEEDS_ANALYSIS")
        .values(is_active=False)
    )
    await deactivate(db, "opportunityType", "NEW_BUSINESS")
    await deactivate(db, "leadSource", "WEB_SITE")
    client = await client_for(team["rep"])
    before = await counts(db)

    # when
    data = await client.data(
        CREATE,
        {"input": {"name": "Deal", "expectedCloseDate": CLOSE.isoformat(),
                   "salesStage": "NEEDS_ANALYSIS", "type": "NEW_BUSINESS",
                   "leadSource": "WEB_SITE"}},
    )

    # then
    assert problems(data["createOpportunity"]) == [
        (["input", "leadSource"], "INACTIVE"),
        (["input", "salesStage"], "INACTIVE"),
        (["input", "type"], "INACTIVE"),
    ]
    assert await counts(db) == before


async def test_create_refuses_records_the_caller_may_not_see(team, factory, db, client_for):
    # given
    account = await factory.account(team["other_rep"], name="Theirs")
    contact = await factory.contact(team["other_rep"], last_name="Theirs")
    deleted_campaign = await factory.campaign(
        team["admin"], name="Gone", deleted_at=dt.datetime.now(dt.UTC)
    )
    client = await client_for(team["rep"])
    before = await counts(db)

    # when
    data = await client.data(
        CREATE,
        {"input": {"name": "Deal", "expectedCloseDate": CLOSE.isoformat(),
                   "salesStage": "PROSPECTING", "accountId": gid(account),
                   "contactId": gid(contact), "campaignId": gid(deleted_campaign)}},
    )
    nonexistent = await client.data(
        CREATE,
        {"input": {"name": "Deal", "expectedCloseDate": CLOSE.isoformat(),
                   "salesStage": "PROSPECTING", "accountId": to_global_id("Account", 777)}},
    )

    # then
    errors = {tuple(e["field"]): e for e in data["createOpportunity"]["userErrors"]}
    assert {k: e["code"] for k, e in errors.items()} == {
        ("input", "accountId"): "NOT_FOUND",
        ("input", "contactId"): "NOT_FOUND",
        ("input", "campaignId"): "NOT_FOUND",
    }
    # a record the caller may not see reads exactly like one that does not exist
    [missing] = nonexistent["createOpportunity"]["userErrors"]
    assert errors[("input", "accountId")]["message"].replace(gid(account), "<id>") == (
        missing["message"].replace(to_global_id("Account", 777), "<id>")
    )
    assert await counts(db) == before


async def test_create_refuses_an_inactive_assignee_and_one_outside_the_team(
    team, factory, db, client_for
):
    # given
    retired = await factory.user("retired", "SALES_REP", team["manager"])
    retired.is_active = False
    await db.commit()
    manager = await client_for(team["manager"])
    before = await counts(db)
    valid = {"name": "Deal", "expectedCloseDate": CLOSE.isoformat(), "salesStage": "PROSPECTING"}

    # when
    inactive = await manager.data(CREATE, {"input": {**valid, "assignedToId": gid(retired)}})
    outside = await manager.data(
        CREATE, {"input": {**valid, "assignedToId": gid(team["other_rep"])}}
    )

    # then
    assert problems(inactive["createOpportunity"]) == [(["input", "assignedToId"], "INACTIVE")]
    assert problems(outside["createOpportunity"]) == [
        (["input", "assignedToId"], "PERMISSION_DENIED")
    ]
    assert await counts(db) == before


async def test_an_impossible_date_is_a_malformed_request_that_creates_nothing(
    team, db, client_for
):
    # given
    client = await client_for(team["rep"])
    before = await counts(db)

    # when
    body = await client.query(
        CREATE,
        {"input": {"name": "Deal", "expectedCloseDate": "2027-02-30",
                   "salesStage": "PROSPECTING"}},
    )

    # then
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert await counts(db) == before


# --- update ------------------------------------------------------------------------------


async def test_update_changes_only_the_given_fields(team, deal, db, client_for):
    # given
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(
        UPDATE,
        {"input": {"id": gid(deal), "name": " Renamed ", "amount": "2500.5",
                   "expectedCloseDate": "2031-12-31", "leadSource": "PARTNER"}},
    )

    # then
    payload = data["updateOpportunity"]
    assert payload["userErrors"] == []
    opp = payload["opportunity"]
    assert (opp["name"], opp["amount"], opp["expectedCloseDate"], opp["leadSource"]) == (
        "Renamed", "2500.50", "2031-12-31", "PARTNER",
    )
    assert (opp["nextStep"], opp["currency"], opp["probability"], opp["version"]) == (
        "Call back", "EUR", "20.00", 2,
    )
    after = await snapshot(db, deal.id)
    changed = {k for k in after["row"] if after["row"][k] != before["row"][k]}
    assert changed == {
        "name", "amount", "expected_close_date", "lead_source", "version", "updated_at",
    }
    assert after["history"] == before["history"]


async def test_update_clears_optional_fields_with_null(team, factory, db, client_for):
    # given
    account = await factory.account(team["rep"], name="Acme")
    campaign = await factory.campaign(team["rep"], name="Expo")
    opp = await factory.opportunity(
        team["rep"], account_id=account.id, campaign_id=campaign.id, type="NEW_BUSINESS",
        lead_source="PARTNER", next_step="Call", description="Notes",
    )
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        UPDATE,
        {"input": {"id": gid(opp), "accountId": None, "campaignId": None, "type": None,
                   "leadSource": None, "nextStep": None, "description": "   "}},
    )

    # then
    payload = data["updateOpportunity"]
    assert payload["userErrors"] == []
    got = payload["opportunity"]
    assert [got[k] for k in ("account", "campaign", "type", "leadSource", "nextStep",
                             "description", "version")] == [None] * 6 + [2]


async def test_update_reports_every_problem_at_once_and_changes_nothing(
    team, factory, deal, db, client_for
):
    # given
    hidden_account = await factory.account(team["other_rep"], name="Hidden")
    await deactivate(db, "leadSource", "COLD_CALL")
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(
        UPDATE,
        {"input": {
            "id": gid(deal), "expectedVersion": 1, "name": " ", "expectedCloseDate": None,
            "salesStage": "NOPE", "amount": None, "accountId": gid(hidden_account),
            "assignedToId": None, "type": "X", "leadSource": "COLD_CALL",
            "nextStep": "n" * 256, "description": "d" * 10_001, "probability": "-3",
            "lostReason": "l" * 2_001,
        }},
    )

    # then
    payload = data["updateOpportunity"]
    assert payload["opportunity"] is None
    assert problems(payload) == sorted([
        (["input", "name"], "REQUIRED"),
        (["input", "expectedCloseDate"], "REQUIRED"),
        (["input", "salesStage"], "INVALID"),
        (["input", "amount"], "REQUIRED"),
        (["input", "accountId"], "NOT_FOUND"),
        (["input", "assignedToId"], "REQUIRED"),
        (["input", "type"], "INVALID"),
        (["input", "leadSource"], "INACTIVE"),
        (["input", "nextStep"], "TOO_LONG"),
        (["input", "description"], "TOO_LONG"),
        (["input", "probability"], "OUT_OF_RANGE"),
        (["input", "lostReason"], "TOO_LONG"),
    ])
    assert await snapshot(db, deal.id) == before


@pytest.mark.parametrize(
    ("extra", "field", "code"),
    [
        ({"currency": "XYZ"}, "currency", "INVALID"),
        ({"currency": " "}, "currency", "REQUIRED"),
        ({"currency": None}, "currency", "REQUIRED"),
        ({"salesStage": None}, "salesStage", "REQUIRED"),
        ({"salesStage": "  "}, "salesStage", "REQUIRED"),
        ({"amount": "-5"}, "amount", "OUT_OF_RANGE"),
        ({"probability": "100.5"}, "probability", "OUT_OF_RANGE"),
        ({"probability": "12.345"}, "probability", "INVALID"),
        ({"probability": "50", "probabilityIsManual": False}, "probabilityIsManual", "INVALID"),
        ({"contactId": to_global_id("Contact", 555)}, "contactId", "NOT_FOUND"),
        ({"campaignId": to_global_id("Campaign", 555)}, "campaignId", "NOT_FOUND"),
    ],
)
async def test_update_refuses_one_bad_field(extra, field, code, team, deal, db, client_for):
    # given
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(UPDATE, {"input": {"id": gid(deal), **extra}})

    # then
    payload = data["updateOpportunity"]
    assert payload["opportunity"] is None
    assert problems(payload) == [(["input", field], code)]
    assert await snapshot(db, deal.id) == before


async def test_update_refuses_a_hand_set_amount_when_a_quote_drives_it(
    team, factory, db, client_for
):
    # given
    opp = await factory.opportunity(team["rep"], amount="900.00", amount_source="QUOTE")
    await db.commit()
    client = await client_for(team["rep"])
    before = await snapshot(db, opp.id)

    # when
    data = await client.data(UPDATE, {"input": {"id": gid(opp), "amount": "1.00"}})

    # then
    assert problems(data["updateOpportunity"]) == [(["input", "amount"], "AMOUNT_FROM_QUOTE")]
    assert await snapshot(db, opp.id) == before


async def test_update_sets_and_clears_the_primary_contact(team, factory, deal, db, client_for):
    # given
    first = await factory.contact(team["rep"], last_name="First")
    second = await factory.contact(team["rep"], last_name="Second")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    set_first = await client.data(UPDATE, {"input": {"id": gid(deal), "contactId": gid(first)}})
    set_second = await client.data(
        UPDATE, {"input": {"id": gid(deal), "contactId": gid(second)}}
    )
    cleared = await client.data(UPDATE, {"input": {"id": gid(deal), "contactId": None}})

    # then
    opp = set_first["updateOpportunity"]["opportunity"]
    assert (opp["contact"], opp["version"]) == ({"lastName": "First"}, 2)
    opp = set_second["updateOpportunity"]["opportunity"]
    assert (opp["contact"], opp["version"]) == ({"lastName": "Second"}, 3)
    assert opp["contacts"] == [
        {"role": None, "isPrimary": True, "contact": {"lastName": "Second"}},
        {"role": None, "isPrimary": False, "contact": {"lastName": "First"}},
    ]
    opp = cleared["updateOpportunity"]["opportunity"]
    assert (opp["contact"], opp["version"]) == (None, 4)
    assert sorted(c["isPrimary"] for c in opp["contacts"]) == [False, False]


async def test_an_update_with_an_unchanged_contact_still_counts_its_other_changes(
    team, factory, deal, db, client_for
):
    # given
    contact = await factory.contact(team["rep"], last_name="Primary")
    db.add(models.OpportunityContact(
        opportunity_id=deal.id, contact_id=contact.id, is_primary=True
    ))
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        UPDATE, {"input": {"id": gid(deal), "name": "Renamed", "contactId": gid(contact)}}
    )

    # then
    opp = data["updateOpportunity"]["opportunity"]
    assert (opp["name"], opp["contact"], opp["version"]) == (
        "Renamed", {"lastName": "Primary"}, 2,
    )
    row = (await snapshot(db, deal.id))["row"]
    assert (row["name"], row["version"]) == ("Renamed", 2)
    assert row["updated_at"] > PAST


async def test_an_update_that_changes_nothing_keeps_the_version(team, deal, db, client_for):
    # given
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(
        UPDATE,
        {"input": {"id": gid(deal), "name": "Rep deal", "amount": "1000", "nextStep": "Call back",
                   "salesStage": "QUALIFICATION"}},
    )

    # then
    payload = data["updateOpportunity"]
    assert payload["userErrors"] == []
    assert payload["opportunity"]["version"] == 1
    assert await snapshot(db, deal.id) == before


async def test_a_manager_reassigns_within_the_team_but_a_rep_may_not(
    team, deal, db, client_for
):
    # given
    rep = await client_for(team["rep"])
    manager = await client_for(team["manager"])
    before = await snapshot(db, deal.id)

    # when
    refused = await rep.data(
        UPDATE, {"input": {"id": gid(deal), "assignedToId": gid(team["rep2"])}}
    )
    unchanged = await snapshot(db, deal.id)
    moved = await manager.data(
        UPDATE, {"input": {"id": gid(deal), "assignedToId": gid(team["rep2"])}}
    )

    # then
    assert problems(refused["updateOpportunity"]) == [
        (["input", "assignedToId"], "PERMISSION_DENIED")
    ]
    assert unchanged == before
    opp = moved["updateOpportunity"]["opportunity"]
    assert (opp["assignedTo"], opp["createdBy"], opp["version"]) == (
        {"username": "rep2"}, {"username": "rep"}, 2,
    )
    # the deal has left rep's book
    assert (await rep.data(DEAL, {"id": gid(deal)}))["node"] is None


# --- optimistic concurrency -------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "name", "extra"),
    [
        (UPDATE, "updateOpportunity", {"name": "Mine"}),
        (CHANGE_STAGE, "changeOpportunityStage", {"stage": "NEGOTIATION_REVIEW"}),
        (DELETE, "deleteOpportunity", {}),
    ],
)
async def test_a_stale_expected_version_is_a_conflict_that_changes_nothing(
    query, name, extra, team, deal, db, client_for
):
    # given: someone else changed the deal since it was read at version 1
    await db.execute(
        update(models.Opportunity).where(models.Opportunity.id == deal.id).values(version=2)
    )
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    stale = await client.data(query, {"input": {"id": gid(deal), "expectedVersion": 1, **extra}})
    current = await client.data(
        query, {"input": {"id": gid(deal), "expectedVersion": 2, **extra}}
    )

    # then
    assert problems(stale[name]) == [(["input", "expectedVersion"], "VERSION_CONFLICT")]
    assert current[name]["userErrors"] == []
    after = await snapshot(db, deal.id)
    assert after["row"]["version"] == 3
    assert before["row"]["version"] == 2


async def test_a_stale_version_in_a_refused_update_changes_nothing(team, deal, db, client_for):
    # given
    client = await client_for(team["rep"])
    await client.data(UPDATE, {"input": {"id": gid(deal), "name": "Second"}})
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(
        UPDATE, {"input": {"id": gid(deal), "expectedVersion": 1, "name": "Lost write",
                           "salesStage": "CLOSED_WON"}},
    )

    # then
    assert problems(data["updateOpportunity"]) == [
        (["input", "expectedVersion"], "VERSION_CONFLICT")
    ]
    after = await snapshot(db, deal.id)
    assert after == before
    assert (after["row"]["name"], after["row"]["version"], len(after["history"])) == (
        "Second", 2, 1,
    )


async def test_two_concurrent_updates_with_the_same_version_one_wins(
    team, deal, db, app, factory
):
    # given: two sessions of the same user, both having read version 1
    first = GraphQLClient(app, await factory.token(team["rep"]))
    second = GraphQLClient(app, await factory.token(team["rep"]))
    await db.commit()

    # when
    results = await asyncio.gather(
        first.data(UPDATE, {"input": {"id": gid(deal), "expectedVersion": 1, "name": "A"}}),
        second.data(UPDATE, {"input": {"id": gid(deal), "expectedVersion": 1, "name": "B"}}),
    )

    # then
    payloads = [r["updateOpportunity"] for r in results]
    winners = [p for p in payloads if not p["userErrors"]]
    losers = [p for p in payloads if p["userErrors"]]
    assert len(winners) == 1
    assert len(losers) == 1
    assert problems(losers[0]) == [(["input", "expectedVersion"], "VERSION_CONFLICT")]
    assert losers[0]["opportunity"] is None
    assert winners[0]["opportunity"]["version"] == 2
    after = await snapshot(db, deal.id)
    assert (after["row"]["name"], after["row"]["version"]) == (
        winners[0]["opportunity"]["name"], 2,
    )


async def test_two_concurrent_updates_without_a_version_both_apply(
    team, deal, db, app, factory
):
    # given
    first = GraphQLClient(app, await factory.token(team["rep"]))
    second = GraphQLClient(app, await factory.token(team["manager"]))
    await db.commit()

    # when
    results = await asyncio.gather(
        first.data(UPDATE, {"input": {"id": gid(deal), "name": "Renamed"}}),
        second.data(UPDATE, {"input": {"id": gid(deal), "nextStep": "Visit"}}),
    )

    # then
    assert [r["updateOpportunity"]["userErrors"] for r in results] == [[], []]
    assert sorted(r["updateOpportunity"]["opportunity"]["version"] for r in results) == [2, 3]
    after = await snapshot(db, deal.id)
    assert (after["row"]["name"], after["row"]["next_step"], after["row"]["version"]) == (
        "Renamed", "Visit", 3,
    )


async def test_concurrent_stage_changes_record_every_change(team, deal, db, app, factory):
    # given
    first = GraphQLClient(app, await factory.token(team["rep"]))
    second = GraphQLClient(app, await factory.token(team["manager"]))
    await db.commit()

    # when
    results = await asyncio.gather(
        first.data(CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "NEEDS_ANALYSIS"}}),
        second.data(CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "VALUE_PROPOSITION"}}),
    )

    # then
    assert [r["changeOpportunityStage"]["userErrors"] for r in results] == [[], []]
    after = await snapshot(db, deal.id)
    assert after["row"]["version"] == 3
    assert len(after["history"]) == 3
    assert after["row"]["sales_stage"] == after["history"][-1].to_stage


# --- permissions --------------------------------------------------------------------------


def _mutations(contact: str, account: str) -> dict[str, tuple[str, str, Callable[[str], Any]]]:
    """Each deal mutation: (query, payload name, input for a deal id)."""
    return {
        "update": (UPDATE, "updateOpportunity", lambda d: {"id": d, "name": "Mine"}),
        "changeStage": (
            CHANGE_STAGE, "changeOpportunityStage", lambda d: {"id": d, "stage": "CLOSED_WON"},
        ),
        "delete": (DELETE, "deleteOpportunity", lambda d: {"id": d}),
        "link": (
            LINK_ACCOUNT, "linkOpportunityToAccount",
            lambda d: {"opportunityId": d, "accountId": account},
        ),
        "addContact": (
            ADD_CONTACT, "addOpportunityContact",
            lambda d: {"opportunityId": d, "contactId": contact, "isPrimary": True},
        ),
        "removeContact": (
            REMOVE_CONTACT, "removeOpportunityContact",
            lambda d: {"opportunityId": d, "contactId": contact},
        ),
    }


MUTATION_NAMES = ["update", "changeStage", "delete", "link", "addContact", "removeContact"]
ID_FIELD = {"update": "id", "changeStage": "id", "delete": "id"}


@pytest.mark.parametrize("mutation", MUTATION_NAMES)
async def test_a_deal_the_caller_may_not_see_answers_exactly_like_a_missing_one(
    mutation, team, factory, db, client_for
):
    # given
    theirs = await factory.opportunity(team["other_rep"], name="Theirs")
    own_contact = await factory.contact(team["rep"], last_name="Mine")
    own_account = await factory.account(team["rep"], name="Mine")
    their_contact = await factory.contact(team["other_rep"], last_name="Theirs")
    db.add(models.OpportunityContact(opportunity_id=theirs.id, contact_id=own_contact.id))
    db.add(models.OpportunityContact(opportunity_id=theirs.id, contact_id=their_contact.id))
    await db.commit()
    query, name, make_input = _mutations(gid(own_contact), gid(own_account))[mutation]
    client = await client_for(team["rep"])
    before = await snapshot(db, theirs.id)

    # when
    hidden = await client.data(query, {"input": make_input(gid(theirs))})
    missing = await client.data(query, {"input": make_input(MISSING_DEAL)})

    # then
    field = ID_FIELD.get(mutation, "opportunityId")
    assert problems(hidden[name]) == [(["input", field], "NOT_FOUND")]
    [hidden_error] = hidden[name]["userErrors"]
    [missing_error] = missing[name]["userErrors"]
    assert {**hidden_error, "message": hidden_error["message"].replace(gid(theirs), "<id>")} == {
        **missing_error, "message": missing_error["message"].replace(MISSING_DEAL, "<id>"),
    }
    assert {k: v for k, v in hidden[name].items() if k != "userErrors"} == {
        k: v for k, v in missing[name].items() if k != "userErrors"
    }
    assert await snapshot(db, theirs.id) == before


@pytest.mark.parametrize(
    "deal_id", [to_global_id("Account", 1), to_global_id("Opportunity", 0), "not-an-id", ""],
)
async def test_an_id_that_names_no_deal_answers_not_found(deal_id, team, deal, db, client_for):
    # given
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(UPDATE, {"input": {"id": deal_id, "name": "Mine"}})

    # then
    assert problems(data["updateOpportunity"]) == [(["input", "id"], "NOT_FOUND")]
    assert await snapshot(db, deal.id) == before


async def test_restore_of_a_deal_the_caller_may_not_see_answers_like_a_missing_one(
    team, factory, db, client_for
):
    # given
    theirs = await factory.opportunity(
        team["other_rep"], name="Theirs", deleted_at=dt.datetime.now(dt.UTC)
    )
    await db.commit()
    client = await client_for(team["rep"])
    before = await snapshot(db, theirs.id)

    # when
    hidden = await client.data(RESTORE, {"input": {"id": gid(theirs)}})
    missing = await client.data(RESTORE, {"input": {"id": MISSING_DEAL}})

    # then
    assert problems(hidden["restoreOpportunity"]) == [(["input", "id"], "NOT_FOUND")]
    [hidden_error] = hidden["restoreOpportunity"]["userErrors"]
    [missing_error] = missing["restoreOpportunity"]["userErrors"]
    assert hidden_error["message"].replace(gid(theirs), "<id>") == (
        missing_error["message"].replace(MISSING_DEAL, "<id>")
    )
    assert await snapshot(db, theirs.id) == before


@pytest.mark.parametrize("mutation", MUTATION_NAMES)
async def test_under_public_sharing_a_rep_reads_another_deal_but_may_not_change_it(
    mutation, team, factory, db, public_app
):
    # given
    theirs = await factory.opportunity(team["other_rep"], name="Theirs")
    contact = await factory.contact(team["rep"], last_name="Mine")
    account = await factory.account(team["rep"], name="Mine")
    db.add(models.OpportunityContact(opportunity_id=theirs.id, contact_id=contact.id))
    client = GraphQLClient(public_app, await factory.token(team["rep"]))
    await db.commit()
    query, name, make_input = _mutations(gid(contact), gid(account))[mutation]
    before = await snapshot(db, theirs.id)

    # when
    read = await client.data(DEAL, {"id": gid(theirs)})
    data = await client.data(query, {"input": make_input(gid(theirs))})

    # then
    assert read["node"]["name"] == "Theirs"
    field = ID_FIELD.get(mutation, "opportunityId")
    assert problems(data[name]) == [(["input", field], "PERMISSION_DENIED")]
    assert await snapshot(db, theirs.id) == before


async def test_under_public_sharing_the_team_still_edits(team, deal, db, factory, public_app):
    # given
    client = GraphQLClient(public_app, await factory.token(team["manager"]))
    await db.commit()

    # when
    data = await client.data(UPDATE, {"input": {"id": gid(deal), "name": "Managed"}})

    # then
    assert data["updateOpportunity"]["userErrors"] == []
    assert data["updateOpportunity"]["opportunity"]["name"] == "Managed"


# --- recycle bin -------------------------------------------------------------------------


@pytest.fixture
async def furnished(team, factory, db) -> dict[str, Any]:
    """rep's deal with an account, a campaign, a quote, two contacts and a stage history."""
    account = await factory.account(team["rep"], name="Acme")
    campaign = await factory.campaign(team["rep"], name="Expo")
    opp = await factory.opportunity(
        team["rep"], name="Furnished", stage="PROSPECTING", amount="500.00", close=CLOSE,
        account_id=account.id, campaign_id=campaign.id, created_at=PAST, updated_at=PAST,
    )
    db.add(models.StageChange(
        opportunity_id=opp.id, from_stage="PROSPECTING", to_stage="QUALIFICATION",
        amount=Decimal("500.00"), probability=Decimal("20.00"), expected_close_date=CLOSE,
        changed_by_id=team["rep"].id, note="moved on",
    ))
    opp.sales_stage, opp.probability = "QUALIFICATION", Decimal("20.00")
    primary = await factory.contact(team["rep"], last_name="Primary")
    other = await factory.contact(team["rep"], last_name="Other")
    db.add(models.OpportunityContact(
        opportunity_id=opp.id, contact_id=primary.id, role="MANAGER", is_primary=True
    ))
    db.add(models.OpportunityContact(
        opportunity_id=opp.id, contact_id=other.id, role="CONSULTANT", is_primary=False
    ))
    product = await factory.product()
    await factory.quote(opp, [(product, "5", "100.00", "0", "0")], "Offer 1")
    await factory.lead(
        team["rep"], last_name="Converted", is_converted=True, converted_opportunity_id=opp.id
    )
    await db.commit()
    return {"opp": opp, "account": account, "campaign": campaign, "primary": primary}


async def test_delete_moves_the_deal_out_of_every_list_relation_and_aggregate(
    team, furnished, db, client_for
):
    # given
    opp = furnished["opp"]
    client = await client_for(team["rep"])
    where = {"account": gid(furnished["account"]), "campaign": gid(furnished["campaign"])}
    shown = await client.data(EVERYWHERE, where)

    # when
    data = await client.data(DELETE, {"input": {"id": gid(opp), "expectedVersion": 1}})

    # then
    assert data["deleteOpportunity"] == {"deletedId": gid(opp), "userErrors": []}
    assert shown["opportunities"]["totalCount"] == 1
    assert shown["campaign"]["opportunityCount"] == 1
    assert shown["leads"]["nodes"][0]["convertedOpportunity"] == {"name": "Furnished"}
    hidden = await client.data(EVERYWHERE, where)
    assert hidden == {
        "opportunities": {"totalCount": 0, "nodes": []},
        "quotes": {"totalCount": 0, "nodes": []},
        "leads": {"nodes": [{"lastName": "Converted", "convertedOpportunity": None}]},
        "account": {"opportunities": {"totalCount": 0, "nodes": []}},
        "campaign": {
            "opportunityCount": 0, "pipelineAmount": "0.00", "wonAmount": "0.00",
            "opportunities": {"totalCount": 0, "nodes": []},
        },
    }
    assert (await client.data(DEAL, {"id": gid(opp)}))["node"] is None
    assert (await client.data(NODES, {"ids": [gid(opp)]}))["nodes"] == [None]
    admin = await client_for(team["admin"])
    assert (await admin.data(DEAL, {"id": gid(opp)}))["node"] is None
    row = (await snapshot(db, opp.id))["row"]
    assert row["deleted_at"] is not None
    assert row["version"] == 2


async def test_a_deleted_deal_can_no_longer_be_changed(team, furnished, db, client_for):
    # given
    opp = furnished["opp"]
    await db.execute(
        update(models.Opportunity)
        .where(models.Opportunity.id == opp.id)
        .values(deleted_at=dt.datetime.now(dt.UTC))
    )
    client = await client_for(team["rep"])
    before = await snapshot(db, opp.id)

    # when
    results = {
        name: (await client.data(query, {"input": make_input(gid(opp))}))[name]
        for query, name, make_input in _mutations(
            gid(furnished["primary"]), gid(furnished["account"])
        ).values()
    }

    # then
    assert {name: problems(payload) for name, payload in results.items()} == {
        "updateOpportunity": [(["input", "id"], "NOT_FOUND")],
        "changeOpportunityStage": [(["input", "id"], "NOT_FOUND")],
        "deleteOpportunity": [(["input", "id"], "NOT_FOUND")],
        "linkOpportunityToAccount": [(["input", "opportunityId"], "NOT_FOUND")],
        "addOpportunityContact": [(["input", "opportunityId"], "NOT_FOUND")],
        "removeOpportunityContact": [(["input", "opportunityId"], "NOT_FOUND")],
    }
    assert await snapshot(db, opp.id) == before


async def test_restore_brings_the_deal_back_intact(team, furnished, db, client_for):
    # given
    opp = furnished["opp"]
    client = await client_for(team["rep"])
    where = {"account": gid(furnished["account"]), "campaign": gid(furnished["campaign"])}
    shown_before = await client.data(EVERYWHERE, where)
    deal_before = (await client.data(DEAL, {"id": gid(opp)}))["node"]
    await client.data(DELETE, {"input": {"id": gid(opp)}})
    deleted = await snapshot(db, opp.id)

    # when
    data = await client.data(RESTORE, {"input": {"id": gid(opp)}})

    # then
    payload = data["restoreOpportunity"]
    assert payload["userErrors"] == []
    restored = payload["opportunity"]
    assert restored["version"] == 3
    ignore = ("version", "updatedAt")
    assert {k: v for k, v in restored.items() if k not in ignore} == {
        k: v for k, v in deal_before.items() if k not in ignore
    }
    assert [q["subject"] for q in restored["quotes"]] == ["Offer 1"]
    assert restored["contacts"] == [
        {"role": "MANAGER", "isPrimary": True, "contact": {"lastName": "Primary"}},
        {"role": "CONSULTANT", "isPrimary": False, "contact": {"lastName": "Other"}},
    ]
    assert [h["note"] for h in restored["stageHistory"]] == ["moved on", None]
    assert await client.data(EVERYWHERE, where) == shown_before
    after = await snapshot(db, opp.id)
    assert after["row"]["deleted_at"] is None
    assert (after["history"], after["contacts"]) == (deleted["history"], deleted["contacts"])


async def test_restore_answers_not_found_for_a_deal_that_is_not_in_the_bin(
    team, deal, db, client_for
):
    # given
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(RESTORE, {"input": {"id": gid(deal)}})

    # then
    assert problems(data["restoreOpportunity"]) == [(["input", "id"], "NOT_FOUND")]
    assert await snapshot(db, deal.id) == before


# --- account and contacts -------------------------------------------------------------


async def test_link_opportunity_to_account(team, factory, deal, db, client_for):
    # given
    account = await factory.account(team["rep"], name="Acme")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        LINK_ACCOUNT, {"input": {"opportunityId": gid(deal), "accountId": gid(account)}}
    )

    # then
    payload = data["linkOpportunityToAccount"]
    assert payload["userErrors"] == []
    assert (payload["opportunity"]["account"], payload["opportunity"]["version"]) == (
        {"name": "Acme"}, 2,
    )
    everywhere = await client.data(
        EVERYWHERE, {"account": gid(account), "campaign": to_global_id("Campaign", 1)}
    )
    assert everywhere["account"]["opportunities"] == {
        "totalCount": 1, "nodes": [{"name": "Rep deal"}],
    }


@pytest.mark.parametrize("owner", ["other_rep", None])
async def test_link_refuses_an_account_the_caller_may_not_see(
    owner, team, factory, deal, db, client_for
):
    # given
    account_id = (
        gid(await factory.account(team[owner], name="Theirs")) if owner
        else to_global_id("Account", 31337)
    )
    await db.commit()
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(
        LINK_ACCOUNT, {"input": {"opportunityId": gid(deal), "accountId": account_id}}
    )

    # then
    assert problems(data["linkOpportunityToAccount"]) == [(["input", "accountId"], "NOT_FOUND")]
    assert await snapshot(db, deal.id) == before


async def test_contacts_take_a_role_and_there_is_one_primary(
    team, factory, deal, db, client_for
):
    # given
    first = await factory.contact(team["rep"], last_name="First")
    second = await factory.contact(team["rep"], last_name="Second")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    added = await client.data(
        ADD_CONTACT,
        {"input": {"opportunityId": gid(deal), "contactId": gid(first), "role": "MANAGER",
                   "isPrimary": True}},
    )
    second_added = await client.data(
        ADD_CONTACT,
        {"input": {"opportunityId": gid(deal), "contactId": gid(second),
                   "role": "PURCHASE_AGENT"}},
    )
    promoted = await client.data(
        ADD_CONTACT,
        {"input": {"opportunityId": gid(deal), "contactId": gid(second),
                   "role": "SPONSOR_MANAGER", "isPrimary": True}},
    )

    # then
    opp = added["addOpportunityContact"]["opportunity"]
    assert (opp["contact"], opp["version"]) == ({"lastName": "First"}, 2)
    assert opp["contacts"] == [
        {"role": "MANAGER", "isPrimary": True, "contact": {"lastName": "First"}},
    ]
    opp = second_added["addOpportunityContact"]["opportunity"]
    assert (opp["contact"], opp["version"]) == ({"lastName": "First"}, 3)
    opp = promoted["addOpportunityContact"]["opportunity"]
    assert (opp["contact"], opp["version"]) == ({"lastName": "Second"}, 4)
    assert opp["contacts"] == [
        {"role": "SPONSOR_MANAGER", "isPrimary": True, "contact": {"lastName": "Second"}},
        {"role": "MANAGER", "isPrimary": False, "contact": {"lastName": "First"}},
    ]
    links = (await snapshot(db, deal.id))["contacts"]
    assert sorted((row.role, row.is_primary) for row in links) == [
        ("MANAGER", False), ("SPONSOR_MANAGER", True),
    ]


async def test_two_concurrent_primary_contacts_leave_one_primary(team, factory, deal, db, app):
    # given
    first = await factory.contact(team["rep"], last_name="First")
    second = await factory.contact(team["rep"], last_name="Second")
    clients = [
        GraphQLClient(app, await factory.token(team["rep"])),
        GraphQLClient(app, await factory.token(team["manager"])),
    ]
    await db.commit()

    # when
    results = await asyncio.gather(
        *(
            client.data(
                ADD_CONTACT,
                {"input": {"opportunityId": gid(deal), "contactId": gid(contact),
                           "role": "MANAGER", "isPrimary": True}},
            )
            for client, contact in zip(clients, (first, second), strict=True)
        )
    )

    # then
    assert [r["addOpportunityContact"]["userErrors"] for r in results] == [[], []]
    after = await snapshot(db, deal.id)
    assert sorted(row.is_primary for row in after["contacts"]) == [False, True]
    assert after["row"]["version"] == 3


async def test_a_contact_stops_being_primary_with_is_primary_false(
    team, factory, deal, db, client_for
):
    # given
    contact = await factory.contact(team["rep"], last_name="Only")
    db.add(models.OpportunityContact(
        opportunity_id=deal.id, contact_id=contact.id, role="MANAGER", is_primary=True
    ))
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        ADD_CONTACT,
        {"input": {"opportunityId": gid(deal), "contactId": gid(contact), "role": "MANAGER",
                   "isPrimary": False}},
    )

    # then
    opp = data["addOpportunityContact"]["opportunity"]
    assert (opp["contact"], opp["version"]) == (None, 2)
    assert opp["contacts"] == [
        {"role": "MANAGER", "isPrimary": False, "contact": {"lastName": "Only"}},
    ]


async def test_promoting_a_contact_without_a_role_keeps_its_role(
    team, factory, deal, db, client_for
):
    # given
    contact = await factory.contact(team["rep"], last_name="Kept")
    db.add(models.OpportunityContact(
        opportunity_id=deal.id, contact_id=contact.id, role="CONSULTANT", is_primary=False
    ))
    await db.commit()
    client = await client_for(team["rep"])

    # when: the role is left out, only isPrimary changes
    data = await client.data(
        ADD_CONTACT,
        {"input": {"opportunityId": gid(deal), "contactId": gid(contact), "isPrimary": True}},
    )
    cleared = await client.data(
        ADD_CONTACT,
        {"input": {"opportunityId": gid(deal), "contactId": gid(contact), "role": None}},
    )

    # then: an omitted role stays, an explicit null clears it
    opp = data["addOpportunityContact"]["opportunity"]
    assert opp["contacts"] == [
        {"role": "CONSULTANT", "isPrimary": True, "contact": {"lastName": "Kept"}},
    ]
    opp = cleared["addOpportunityContact"]["opportunity"]
    assert opp["contacts"] == [
        {"role": None, "isPrimary": True, "contact": {"lastName": "Kept"}},
    ]


@pytest.mark.parametrize(
    ("role", "contact_owner", "expected"),
    [
        ("CEO", "rep", [(["input", "role"], "INVALID")]),
        ("EXAMINER", "rep", [(["input", "role"], "INACTIVE")]),
        ("MANAGER", "other_rep", [(["input", "contactId"], "NOT_FOUND")]),
        ("CEO", "other_rep", [
            (["input", "contactId"], "NOT_FOUND"), (["input", "role"], "INVALID"),
        ]),
    ],
)
async def test_add_contact_refuses_bad_roles_and_hidden_contacts(
    role, contact_owner, expected, team, factory, deal, db, client_for
):
    # given
    await deactivate(db, "contactRole", "EXAMINER")
    contact = await factory.contact(team[contact_owner], last_name="Someone")
    await db.commit()
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(
        ADD_CONTACT,
        {"input": {"opportunityId": gid(deal), "contactId": gid(contact), "role": role,
                   "isPrimary": True}},
    )

    # then
    assert problems(data["addOpportunityContact"]) == expected
    assert await snapshot(db, deal.id) == before


async def test_remove_contact(team, factory, deal, db, client_for):
    # given
    primary = await factory.contact(team["rep"], last_name="Primary")
    other = await factory.contact(team["rep"], last_name="Other")
    db.add(models.OpportunityContact(
        opportunity_id=deal.id, contact_id=primary.id, role="MANAGER", is_primary=True
    ))
    db.add(models.OpportunityContact(opportunity_id=deal.id, contact_id=other.id))
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        REMOVE_CONTACT, {"input": {"opportunityId": gid(deal), "contactId": gid(primary)}}
    )

    # then: the remaining contact becomes the primary one
    opp = data["removeOpportunityContact"]["opportunity"]
    assert data["removeOpportunityContact"]["userErrors"] == []
    assert (opp["contact"], opp["version"]) == ({"lastName": "Other"}, 2)
    assert opp["contacts"] == [{"role": None, "isPrimary": True, "contact": {"lastName": "Other"}}]
    # the contact itself is kept
    assert (await snapshot(db, deal.id))["contacts"] == [(other.id, None, True)]
    contacts = await db.scalar(
        select(func.count()).select_from(models.Contact).where(models.Contact.id == primary.id)
    )
    assert contacts == 1


async def linked(db: AsyncSession, deal: Any, owner: Any, names: list[str]) -> list[Any]:
    """Contacts linked to the deal in this order, an hour apart (the first one primary), with
    ids in the reverse order: the link's age, not the contact's id, says which is older."""
    contacts = [models.Contact(number=f"CONX{n}", last_name=n, assigned_to_id=owner.id,
                               created_by_id=owner.id) for n in reversed(names)]
    db.add_all(contacts)
    await db.flush()
    contacts.reverse()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    db.add_all(
        models.OpportunityContact(opportunity_id=deal.id, contact_id=c.id, is_primary=i == 0,
                                  created_at=start + dt.timedelta(hours=i))
        for i, c in enumerate(contacts)
    )
    await db.commit()
    return contacts


async def test_removing_the_primary_contact_makes_the_oldest_remaining_link_primary(
    team, deal, db, client_for
):
    # given: First (primary), then Second, then Third; Third has the lowest contact id
    first, second, third = await linked(db, deal, team["rep"], ["First", "Second", "Third"])
    assert third.id < second.id < first.id
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        REMOVE_CONTACT, {"input": {"opportunityId": gid(deal), "contactId": gid(first)}}
    )

    # then
    opp = data["removeOpportunityContact"]["opportunity"]
    assert data["removeOpportunityContact"]["userErrors"] == []
    assert opp["contact"] == {"lastName": "Second"}
    assert (await snapshot(db, deal.id))["contacts"] == [(third.id, None, False),
                                                         (second.id, None, True)]


async def test_removing_another_contact_or_the_last_one_leaves_the_primary_as_it_is(
    team, deal, db, client_for
):
    # given
    first, second = await linked(db, deal, team["rep"], ["First", "Second"])
    client = await client_for(team["rep"])

    # when
    kept = await client.data(
        REMOVE_CONTACT, {"input": {"opportunityId": gid(deal), "contactId": gid(second)}}
    )
    emptied = await client.data(
        REMOVE_CONTACT, {"input": {"opportunityId": gid(deal), "contactId": gid(first)}}
    )

    # then
    assert kept["removeOpportunityContact"]["opportunity"]["contact"] == {"lastName": "First"}
    assert emptied["removeOpportunityContact"]["userErrors"] == []
    assert emptied["removeOpportunityContact"]["opportunity"]["contacts"] == []
    assert (await snapshot(db, deal.id))["contacts"] == []


async def test_remove_contact_refuses_one_that_is_not_linked(
    team, factory, deal, db, client_for
):
    # given
    contact = await factory.contact(team["rep"], last_name="Stranger")
    await db.commit()
    client = await client_for(team["rep"])
    before = await snapshot(db, deal.id)

    # when
    data = await client.data(
        REMOVE_CONTACT, {"input": {"opportunityId": gid(deal), "contactId": gid(contact)}}
    )

    # then
    assert problems(data["removeOpportunityContact"]) == [(["input", "contactId"], "NOT_FOUND")]
    assert await snapshot(db, deal.id) == before


# --- what every mutation does -----------------------------------------------------------


async def _update(f: dict[str, Any], factory: Any) -> tuple[str, dict[str, Any], str]:
    return UPDATE, {"id": gid(f["opp"]), "description": "New notes"}, "updateOpportunity"


async def _change_stage(f: dict[str, Any], factory: Any) -> tuple[str, dict[str, Any], str]:
    return CHANGE_STAGE, {"id": gid(f["opp"]), "stage": "PROPOSAL_PRICE_QUOTE"}, (
        "changeOpportunityStage"
    )


async def _same_stage_probability(
    f: dict[str, Any], factory: Any
) -> tuple[str, dict[str, Any], str]:
    return CHANGE_STAGE, {"id": gid(f["opp"]), "stage": "QUALIFICATION", "probability": "33"}, (
        "changeOpportunityStage"
    )


async def _link(f: dict[str, Any], factory: Any) -> tuple[str, dict[str, Any], str]:
    account = await factory.account(f["rep"], name="Other account")
    return LINK_ACCOUNT, {"opportunityId": gid(f["opp"]), "accountId": gid(account)}, (
        "linkOpportunityToAccount"
    )


async def _add_contact(f: dict[str, Any], factory: Any) -> tuple[str, dict[str, Any], str]:
    contact = await factory.contact(f["rep"], last_name="New")
    return ADD_CONTACT, {"opportunityId": gid(f["opp"]), "contactId": gid(contact)}, (
        "addOpportunityContact"
    )


async def _remove_contact(f: dict[str, Any], factory: Any) -> tuple[str, dict[str, Any], str]:
    return REMOVE_CONTACT, {"opportunityId": gid(f["opp"]), "contactId": gid(f["primary"])}, (
        "removeOpportunityContact"
    )


async def _delete(f: dict[str, Any], factory: Any) -> tuple[str, dict[str, Any], str]:
    return DELETE, {"id": gid(f["opp"])}, "deleteOpportunity"


async def _restore(f: dict[str, Any], factory: Any) -> tuple[str, dict[str, Any], str]:
    f["opp"].deleted_at = dt.datetime.now(dt.UTC)
    return RESTORE, {"id": gid(f["opp"])}, "restoreOpportunity"


@pytest.mark.parametrize(
    "arrange",
    [_update, _change_stage, _same_stage_probability, _link, _add_contact, _remove_contact,
     _delete, _restore],
)
async def test_every_mutation_counts_a_version_and_keeps_the_creation_facts(
    arrange, team, furnished, factory, db, client_for
):
    # given: rep's deal, changed by their manager
    query, mutation_input, name = await arrange({**furnished, "rep": team["rep"]}, factory)
    await db.commit()
    client = await client_for(team["manager"])
    before = await snapshot(db, furnished["opp"].id)

    # when
    data = await client.data(query, {"input": mutation_input})

    # then
    assert data[name]["userErrors"] == []
    after = await snapshot(db, furnished["opp"].id)
    assert after["row"]["version"] == before["row"]["version"] + 1 == 2
    assert after["row"]["updated_at"] > before["row"]["updated_at"]
    assert after["row"]["updated_at"] > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    assert (after["row"]["created_at"], after["row"]["created_by_id"]) == (
        PAST, team["rep"].id,
    )
    if "opportunity" in data[name]:
        opp = data[name]["opportunity"]
        assert opp["version"] == 2
        assert opp["createdBy"] == {"username": "rep"}
        assert dt.datetime.fromisoformat(opp["createdAt"]) == PAST
        assert dt.datetime.fromisoformat(opp["updatedAt"]) == after["row"]["updated_at"]
