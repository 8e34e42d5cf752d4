"""convertLead (API.md "Rules that clients rely on" → Lead conversion).

A lead becomes an account (created, or an existing visible one with the same name reused), a
contact and optionally a deal, in one transaction; the lead is kept, marked converted and
points at what was created. A converted lead answers ALREADY_CONVERTED, also when two
conversions race, and a refused conversion leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import models
from models.base import utcnow
from resolvers import lead as lead_rules
from resolvers.ids import pk_of, to_global_id

CONVERT_LEAD = """
mutation ConvertLead($input: ConvertLeadInput!) {
  convertLead(input: $input) {
    lead {
      id number isConverted convertedAt
      convertedAccount { id }
      convertedContact { id }
      convertedOpportunity { id }
    }
    account { id number name industry description assignedTo { username } }
    contact {
      id number firstName lastName email phone title leadSource description
      account { id }
      assignedTo { username }
    }
    opportunity {
      id number name amount expectedCloseDate leadSource description
      salesStage { key }
      probability
      account { id }
      contact { id }
      contacts { contact { id } isPrimary role }
      campaign { name }
      assignedTo { username }
      createdBy { username }
    }
    userErrors { field code message }
  }
}
"""

UPDATE_LEAD = """
mutation UpdateLead($input: UpdateLeadInput!) {
  updateLead(input: $input) {
    lead { lastName }
    userErrors { field code }
  }
}
"""

CLOSE = "2027-06-30"


def gid(type_name: str, pk: int) -> str:
    return to_global_id(type_name, pk)


def errors_of(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


class Store:
    """Reads the database in a fresh session each time (what the server really committed)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def count(self, model: Any) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    async def counts(self) -> tuple[int, int, int]:
        """(accounts, contacts, opportunities)."""
        return (
            await self.count(models.Account), await self.count(models.Contact),
            await self.count(models.Opportunity),
        )

    async def get(self, model: Any, pk: Any) -> Any:
        async with self.sessions() as session:
            return await session.get(model, pk)

    async def lead_state(self, pk: int) -> tuple[Any, ...]:
        lead = await self.get(models.Lead, pk)
        return (
            lead.is_converted, lead.converted_at, lead.converted_account_id,
            lead.converted_contact_id, lead.converted_opportunity_id, lead.updated_at,
        )


NOT_CONVERTED = (False, None, None, None, None)


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession]) -> Store:
    return Store(sessions)


@pytest.fixture
async def lead(team: dict[str, models.User], factory: Any, db: AsyncSession) -> models.Lead:
    """rep's lead with every field that conversion maps, from a campaign."""
    campaign = await factory.campaign(team["admin"], "Spring Expo")
    record = await factory.lead(
        team["rep"], "Bianchi", first_name="Giulia", company="Bianchi S.r.l.",
        email="giulia@bianchi.example", phone="+39 02 1234", title="CFO", industry="RETAIL",
        lead_source="TRADE_SHOW", status="QUALIFIED", campaign_id=campaign.id,
        description="Met at the expo",
    )
    await db.commit()
    return record  # type: ignore[no-any-return]


def opportunity_input(**extra: Any) -> dict[str, Any]:
    return {"expectedCloseDate": CLOSE, "salesStage": "QUALIFICATION", **extra}


async def convert(client: Any, **input: Any) -> dict[str, Any]:
    data = await client.data(CONVERT_LEAD, {"input": input})
    return data["convertLead"]  # type: ignore[no-any-return]


# --- what is created ----------------------------------------------------------------------


async def test_conversion_creates_account_contact_and_deal_with_the_leads_fields(
    team, lead, client_for, store
):
    # given
    client = await client_for(team["manager"])

    # when
    payload = await convert(
        client, leadId=gid("Lead", lead.id), assignedToId=gid("User", team["rep"].id),
        opportunity=opportunity_input(name="Bianchi POS", amount="12500.5"),
    )

    # then
    assert payload["userErrors"] == []
    account, contact, deal = payload["account"], payload["contact"], payload["opportunity"]
    assert account == {
        "id": account["id"], "number": "ACC1", "name": "Bianchi S.r.l.", "industry": "RETAIL",
        "description": "Met at the expo", "assignedTo": {"username": "rep"},
    }
    assert contact == {
        "id": contact["id"], "number": "CON1", "firstName": "Giulia", "lastName": "Bianchi",
        "email": "giulia@bianchi.example", "phone": "+39 02 1234", "title": "CFO",
        "leadSource": "TRADE_SHOW", "description": "Met at the expo",
        "account": {"id": account["id"]}, "assignedTo": {"username": "rep"},
    }
    assert deal == {
        "id": deal["id"], "number": "POT1", "name": "Bianchi POS", "amount": "12500.50",
        "expectedCloseDate": CLOSE, "leadSource": "TRADE_SHOW",
        "description": "Met at the expo", "salesStage": {"key": "QUALIFICATION"},
        "probability": "20.00", "account": {"id": account["id"]},
        "contact": {"id": contact["id"]},
        "contacts": [{"contact": {"id": contact["id"]}, "isPrimary": True, "role": None}],
        "campaign": {"name": "Spring Expo"}, "assignedTo": {"username": "rep"},
        "createdBy": {"username": "manager"},
    }
    converted = payload["lead"]
    assert converted["id"] == gid("Lead", lead.id)
    assert converted["number"] == lead.number
    assert converted["isConverted"] is True
    assert converted["convertedAt"] is not None
    assert converted["convertedAccount"] == {"id": account["id"]}
    assert converted["convertedContact"] == {"id": contact["id"]}
    assert converted["convertedOpportunity"] == {"id": deal["id"]}
    assert await store.counts() == (1, 1, 1)
    assert await store.count(models.Lead) == 1
    kept = await store.get(models.Lead, lead.id)
    assert (kept.is_converted, kept.converted_account_id, kept.converted_contact_id,
            kept.converted_opportunity_id) == (
        True, pk_of(account["id"], "Account"), pk_of(contact["id"], "Contact"),
        pk_of(deal["id"], "Opportunity"),
    )
    assert await store.count(models.StageChange) == 1


async def test_defaults_the_deal_name_to_the_company_and_the_owner_to_the_caller(
    team, lead, client_for, store
):
    # given
    client = await client_for(team["rep"])

    # when
    payload = await convert(
        client, leadId=gid("Lead", lead.id), opportunity=opportunity_input(name="   "),
    )

    # then
    assert payload["userErrors"] == []
    assert payload["opportunity"]["name"] == "Bianchi S.r.l."
    assert payload["opportunity"]["amount"] == "0.00"
    assert payload["opportunity"]["assignedTo"] == {"username": "rep"}
    assert payload["account"]["assignedTo"] == {"username": "rep"}
    assert payload["contact"]["assignedTo"] == {"username": "rep"}


async def test_without_an_opportunity_input_no_deal_is_created(team, lead, client_for, store):
    # given
    client = await client_for(team["rep"])

    # when
    payload = await convert(client, leadId=gid("Lead", lead.id))

    # then
    assert payload["userErrors"] == []
    assert payload["opportunity"] is None
    assert payload["lead"]["convertedOpportunity"] is None
    assert payload["lead"]["convertedContact"] == {"id": payload["contact"]["id"]}
    assert await store.counts() == (1, 1, 0)


async def test_create_contact_false_creates_no_contact_and_the_deal_has_none(
    team, lead, client_for, store
):
    # given
    client = await client_for(team["rep"])

    # when
    payload = await convert(
        client, leadId=gid("Lead", lead.id), createContact=False,
        opportunity=opportunity_input(),
    )

    # then
    assert payload["userErrors"] == []
    assert payload["contact"] is None
    assert payload["lead"]["convertedContact"] is None
    assert payload["opportunity"]["contact"] is None
    assert payload["opportunity"]["contacts"] == []
    assert payload["opportunity"]["account"] == {"id": payload["account"]["id"]}
    assert await store.counts() == (1, 0, 1)


async def test_the_account_input_overrides_name_and_industry(team, lead, client_for, store):
    # given
    client = await client_for(team["rep"])

    # when
    payload = await convert(
        client, leadId=gid("Lead", lead.id),
        account={"name": "Bianchi Group", "industry": "FINANCE"},
        opportunity=opportunity_input(),
    )

    # then
    assert payload["userErrors"] == []
    assert (payload["account"]["name"], payload["account"]["industry"]) == (
        "Bianchi Group", "FINANCE"
    )
    # The deal's name still defaults to the lead's company.
    assert payload["opportunity"]["name"] == "Bianchi S.r.l."


async def test_an_existing_account_given_by_id_is_used(team, lead, factory, db, client_for, store):
    # given
    existing = await factory.account(team["rep"], "Holding SpA", industry="BANKING")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    payload = await convert(
        client, leadId=gid("Lead", lead.id), accountId=gid("Account", existing.id),
        opportunity=opportunity_input(),
    )

    # then
    assert payload["userErrors"] == []
    assert payload["account"]["id"] == gid("Account", existing.id)
    assert payload["account"]["name"] == "Holding SpA"
    assert payload["contact"]["account"] == {"id": gid("Account", existing.id)}
    assert payload["opportunity"]["account"] == {"id": gid("Account", existing.id)}
    assert payload["lead"]["convertedAccount"] == {"id": gid("Account", existing.id)}
    assert await store.counts() == (1, 1, 1)


# --- reusing an account by name -----------------------------------------------------------


async def test_reuses_the_oldest_visible_not_deleted_account_with_the_same_name(
    team, factory, db, client_for, store
):
    # given
    base = utcnow() - dt.timedelta(days=10)
    invisible = await factory.account(team["other_rep"], "BIANCHI SRL", created_at=base)
    deleted = await factory.account(
        team["rep"], "bianchi srl", created_at=base + dt.timedelta(days=1), deleted_at=utcnow()
    )
    oldest = await factory.account(
        team["rep2"], "Bianchi Srl", created_at=base + dt.timedelta(days=2),
        description="Since 1990",
    )
    newer = await factory.account(
        team["rep"], "BIANCHI srl", created_at=base + dt.timedelta(days=3)
    )
    other_name = await factory.account(team["rep"], "Bianchi Srl.", created_at=base)
    lead = await factory.lead(team["rep"], company="bianchi SRL", description="From the web")
    await db.commit()
    client = await client_for(team["manager"])

    # when
    payload = await convert(client, leadId=gid("Lead", lead.id), opportunity=opportunity_input())

    # then
    assert payload["userErrors"] == []
    reused = gid("Account", oldest.id)
    assert payload["account"]["id"] == reused
    assert payload["account"]["name"] == "Bianchi Srl"
    assert payload["account"]["description"] == "Since 1990"
    assert payload["contact"]["account"] == {"id": reused}
    assert payload["opportunity"]["account"] == {"id": reused}
    assert payload["lead"]["convertedAccount"] == {"id": reused}
    assert await store.count(models.Account) == 5
    assert {invisible.id, deleted.id, newer.id, other_name.id}.isdisjoint(
        {pk_of(payload["account"]["id"], "Account")}
    )


async def test_an_account_the_caller_may_not_see_is_not_reused(
    team, factory, db, client_for, store
):
    # given
    theirs = await factory.account(team["other_rep"], "Bianchi S.r.l.")
    lead = await factory.lead(team["rep"], company="Bianchi S.r.l.")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    payload = await convert(client, leadId=gid("Lead", lead.id))

    # then
    assert payload["userErrors"] == []
    assert payload["account"]["id"] != gid("Account", theirs.id)
    assert payload["account"]["assignedTo"] == {"username": "rep"}
    assert await store.count(models.Account) == 2


# --- refusals -----------------------------------------------------------------------------


async def test_an_invalid_opportunity_stage_leaves_nothing_behind(team, lead, client_for, store):
    # given
    client = await client_for(team["rep"])
    before = await store.lead_state(lead.id)

    # when
    payload = await convert(
        client, leadId=gid("Lead", lead.id),
        opportunity=opportunity_input(salesStage="WON_ALREADY", amount="-5"),
    )

    # then
    assert payload["lead"] is None
    assert payload["account"] is None
    assert payload["contact"] is None
    assert payload["opportunity"] is None
    assert errors_of(payload) == [
        (["input", "opportunity", "salesStage"], "INVALID"),
        (["input", "opportunity", "amount"], "OUT_OF_RANGE"),
    ]
    assert await store.counts() == (0, 0, 0)
    assert await store.count(models.OpportunityContact) == 0
    assert await store.count(models.StageChange) == 0
    assert await store.lead_state(lead.id) == before
    assert before[:5] == NOT_CONVERTED


async def test_a_refused_conversion_uses_up_no_numbers(team, lead, client_for, store):
    # given
    client = await client_for(team["rep"])
    await convert(client, leadId=gid("Lead", lead.id),
                  opportunity=opportunity_input(salesStage="NOPE"))

    # when
    payload = await convert(client, leadId=gid("Lead", lead.id), opportunity=opportunity_input())

    # then
    assert payload["userErrors"] == []
    assert payload["account"]["number"] == "ACC1"
    assert payload["contact"]["number"] == "CON1"
    assert payload["opportunity"]["number"] == "POT1"


async def test_a_converted_lead_answers_already_converted(team, lead, client_for, store):
    # given
    client = await client_for(team["rep"])
    await convert(client, leadId=gid("Lead", lead.id), opportunity=opportunity_input())
    before = await store.lead_state(lead.id)

    # when
    payload = await convert(client, leadId=gid("Lead", lead.id), opportunity=opportunity_input())

    # then
    assert payload["lead"] is None
    assert payload["opportunity"] is None
    assert errors_of(payload) == [(["input", "leadId"], "ALREADY_CONVERTED")]
    assert payload["userErrors"][0]["message"] == f"Lead {lead.number} was already converted."
    assert await store.counts() == (1, 1, 1)
    assert await store.lead_state(lead.id) == before


async def test_a_converted_lead_can_no_longer_be_edited(team, lead, client_for, store):
    # given
    client = await client_for(team["rep"])
    await convert(client, leadId=gid("Lead", lead.id))

    # when
    data = await client.data(UPDATE_LEAD, {"input": {"id": gid("Lead", lead.id), "lastName": "X"}})

    # then
    assert data["updateLead"] == {
        "lead": None, "userErrors": [{"field": ["input", "id"], "code": "ALREADY_CONVERTED"}],
    }
    assert (await store.get(models.Lead, lead.id)).last_name == "Bianchi"


@pytest.mark.parametrize("who", ["rep2", "other_rep", "other_manager"])
async def test_a_lead_the_caller_may_not_see_answers_not_found(
    who, team, lead, client_for, store
):
    # given
    client = await client_for(team[who])
    lead_id = gid("Lead", lead.id)

    # when
    payload = await convert(client, leadId=lead_id, opportunity=opportunity_input())

    # then
    assert payload["lead"] is None
    assert payload["userErrors"] == [
        {"field": ["input", "leadId"], "code": "NOT_FOUND",
         "message": f"No lead with id {lead_id!r}."},
    ]
    assert await store.counts() == (0, 0, 0)
    assert (await store.lead_state(lead.id))[:5] == NOT_CONVERTED


async def test_an_unknown_or_deleted_lead_answers_not_found(
    team, factory, db, client_for, store
):
    # given
    account = await factory.account(team["rep"], "Acme")
    deleted = await factory.lead(team["rep"], deleted_at=utcnow())
    await db.commit()
    client = await client_for(team["admin"])

    # when
    payloads = [
        await convert(client, leadId=lead_id, opportunity=opportunity_input())
        for lead_id in (gid("Lead", 4242), gid("Account", account.id), gid("Lead", deleted.id))
    ]

    # then
    assert [errors_of(p) for p in payloads] == [[(["input", "leadId"], "NOT_FOUND")]] * 3
    assert await store.counts() == (1, 0, 0)
    assert (await store.lead_state(deleted.id))[:5] == NOT_CONVERTED


async def test_refusals_of_the_input_are_reported_together_and_change_nothing(
    team, lead, factory, db, client_for, store
):
    # given
    theirs = await factory.account(team["other_rep"], "Elsewhere")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    payload = await convert(
        client, leadId=gid("Lead", lead.id), assignedToId=gid("User", team["other_rep"].id),
        accountId=gid("Account", theirs.id), opportunity=opportunity_input(),
    )

    # then
    assert payload["account"] is None
    assert errors_of(payload) == [
        (["input", "assignedToId"], "PERMISSION_DENIED"),
        (["input", "accountId"], "NOT_FOUND"),
    ]
    assert await store.counts() == (1, 0, 0)
    assert (await store.lead_state(lead.id))[:5] == NOT_CONVERTED


async def test_a_conversion_must_result_in_an_account_or_a_contact(
    team, lead, client_for, store
):
    # given
    client = await client_for(team["rep"])

    # when
    payload = await convert(
        client, leadId=gid("Lead", lead.id), createAccount=False, createContact=False,
        opportunity=opportunity_input(),
    )

    # then
    assert errors_of(payload) == [(["input", "createContact"], "INVALID")]
    assert await store.counts() == (0, 0, 0)
    assert (await store.lead_state(lead.id))[:5] == NOT_CONVERTED


async def test_an_invalid_account_industry_is_refused_with_its_path(
    team, lead, client_for, store
):
    # given
    client = await client_for(team["rep"])

    # when
    payload = await convert(
        client, leadId=gid("Lead", lead.id), account={"name": "New Co", "industry": "BAKERY"},
        opportunity=opportunity_input(),
    )

    # then
    assert errors_of(payload) == [(["input", "account", "industry"], "INVALID")]
    assert await store.counts() == (0, 0, 0)
    assert (await store.lead_state(lead.id))[:5] == NOT_CONVERTED


# --- racing conversions -------------------------------------------------------------------


async def test_of_two_simultaneous_conversions_exactly_one_succeeds(
    team, lead, client_for, store, monkeypatch
):
    # given
    reusable_account = lead_rules._reusable_account

    async def slow_reusable_account(*args: Any) -> Any:
        # Widen the window between reading the lead and marking it converted, so that
        # without a guard both requests would get through.
        await asyncio.sleep(0.2)
        return await reusable_account(*args)

    monkeypatch.setattr(lead_rules, "_reusable_account", slow_reusable_account)
    first = await client_for(team["rep"])
    second = await client_for(team["manager"])
    variables = {"input": {"leadId": gid("Lead", lead.id), "opportunity": opportunity_input()}}

    # when
    bodies = await asyncio.gather(
        first.query(CONVERT_LEAD, variables), second.query(CONVERT_LEAD, variables)
    )

    # then
    assert all("errors" not in body for body in bodies), bodies
    payloads = [body["data"]["convertLead"] for body in bodies]
    succeeded = [p for p in payloads if p["userErrors"] == []]
    refused = [p for p in payloads if p["userErrors"]]
    assert len(succeeded) == 1, payloads
    assert len(refused) == 1, payloads
    assert errors_of(refused[0]) == [(["input", "leadId"], "ALREADY_CONVERTED")]
    assert refused[0]["account"] is None
    assert await store.counts() == (1, 1, 1)
    kept = await store.get(models.Lead, lead.id)
    won = succeeded[0]
    assert (kept.converted_account_id, kept.converted_contact_id,
            kept.converted_opportunity_id) == (
        pk_of(won["account"]["id"], "Account"), pk_of(won["contact"]["id"], "Contact"),
        pk_of(won["opportunity"]["id"], "Opportunity"),
    )
    assert won["opportunity"]["amount"] == "0.00"
    assert Decimal(won["opportunity"]["probability"]) == Decimal("20")
