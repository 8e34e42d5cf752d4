"""create*/update* for accounts, contacts, leads, campaigns and products (API.md "Mutations").

Each answers a payload with the object and userErrors; validation reports every problem at
once with a path into the input and a code; a refused mutation changes nothing. A rep edits
only what they may edit and a record they may not see answers NOT_FOUND; products are
admin-only (a top-level FORBIDDEN error for anyone else).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import models
from resolvers.ids import pk_of, to_global_id
from tests.conftest import GraphQLClient

ACCOUNT_FIELDS = """
  id number name industry website phone email city country annualRevenue employees
  description assignedTo { username }
"""
CONTACT_FIELDS = """
  id number firstName lastName email phone title leadSource description account { name }
  assignedTo { username }
"""
LEAD_FIELDS = """
  id number firstName lastName company email phone title industry leadSource status
  description isConverted campaign { name } assignedTo { username }
"""
CAMPAIGN_FIELDS = """
  id number name type status expectedCloseDate budgetCost actualCost expectedRevenue
  description assignedTo { username }
"""
PRODUCT_FIELDS = "id number name code unitPrice taxPercent isActive"


def mutation(name: str, input_type: str, payload_field: str, fields: str) -> str:
    return f"""
mutation {name[0].upper() + name[1:]}($input: {input_type}!) {{
  {name}(input: $input) {{
    {payload_field} {{ {fields} }}
    userErrors {{ field code message }}
  }}
}}
"""


CREATE_ACCOUNT = mutation("createAccount", "CreateAccountInput", "account", ACCOUNT_FIELDS)
UPDATE_ACCOUNT = mutation("updateAccount", "UpdateAccountInput", "account", ACCOUNT_FIELDS)
CREATE_CONTACT = mutation("createContact", "CreateContactInput", "contact", CONTACT_FIELDS)
UPDATE_CONTACT = mutation("updateContact", "UpdateContactInput", "contact", CONTACT_FIELDS)
CREATE_LEAD = mutation("createLead", "CreateLeadInput", "lead", LEAD_FIELDS)
UPDATE_LEAD = mutation("updateLead", "UpdateLeadInput", "lead", LEAD_FIELDS)
CREATE_CAMPAIGN = mutation("createCampaign", "CreateCampaignInput", "campaign", CAMPAIGN_FIELDS)
UPDATE_CAMPAIGN = mutation("updateCampaign", "UpdateCampaignInput", "campaign", CAMPAIGN_FIELDS)
CREATE_PRODUCT = mutation("createProduct", "CreateProductInput", "product", PRODUCT_FIELDS)
UPDATE_PRODUCT = mutation("updateProduct", "UpdateProductInput", "product", PRODUCT_FIELDS)


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

    async def row(self, model: Any, pk: int) -> dict[str, Any]:
        """Every column of one row."""
        async with self.sessions() as session:
            record = await session.get(model, pk)
            assert record is not None
            return {c.key: getattr(record, c.key) for c in model.__table__.columns}


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession]) -> Store:
    return Store(sessions)


# --- accounts -----------------------------------------------------------------------------


async def test_create_account_stores_every_field_and_defaults_the_owner_to_the_caller(
    team, client_for, store
):
    # given
    client = await client_for(team["rep"])
    input = {
        "name": "  Acme SpA ", "industry": "MANUFACTURING", "website": "acme.example",
        "phone": "+39 02 555", "email": "info@acme.example", "city": "Milano",
        "country": "Italy", "annualRevenue": 1250000.5, "employees": 120,
        "description": "Key account",
    }

    # when
    data = await client.data(CREATE_ACCOUNT, {"input": input})

    # then
    payload = data["createAccount"]
    assert payload["userErrors"] == []
    account = payload["account"]
    assert account == {
        "id": account["id"], "number": "ACC1", "name": "Acme SpA", "industry": "MANUFACTURING",
        "website": "acme.example", "phone": "+39 02 555", "email": "info@acme.example",
        "city": "Milano", "country": "Italy", "annualRevenue": "1250000.50", "employees": 120,
        "description": "Key account", "assignedTo": {"username": "rep"},
    }
    row = await store.row(models.Account, pk_of(account["id"], "Account"))
    assert (row["assigned_to_id"], row["created_by_id"]) == (team["rep"].id, team["rep"].id)
    assert row["annual_revenue"] == Decimal("1250000.50")


async def test_create_account_with_a_null_owner_defaults_to_the_caller(team, client_for):
    # given
    client = await client_for(team["manager"])

    # when
    data = await client.data(CREATE_ACCOUNT, {"input": {"name": "Acme", "assignedToId": None}})

    # then
    assert data["createAccount"]["userErrors"] == []
    assert data["createAccount"]["account"]["assignedTo"] == {"username": "manager"}


async def test_a_manager_may_create_an_account_for_a_member_of_their_team(team, client_for):
    # given
    client = await client_for(team["manager"])

    # when
    data = await client.data(
        CREATE_ACCOUNT, {"input": {"name": "Acme", "assignedToId": gid("User", team["rep2"].id)}}
    )

    # then
    assert data["createAccount"]["userErrors"] == []
    assert data["createAccount"]["account"]["assignedTo"] == {"username": "rep2"}


async def test_create_account_reports_every_problem_at_once_and_creates_nothing(
    team, client_for, store
):
    # given
    client = await client_for(team["rep"])
    input = {
        "name": "   ", "industry": "BAKERY", "website": "not a site", "email": "nobody",
        "annualRevenue": "10.005", "employees": -1, "city": "x" * 129,
        "assignedToId": gid("User", team["other_rep"].id),
    }

    # when
    data = await client.data(CREATE_ACCOUNT, {"input": input})

    # then
    payload = data["createAccount"]
    assert payload["account"] is None
    assert errors_of(payload) == [
        (["input", "name"], "REQUIRED"),
        (["input", "industry"], "INVALID"),
        (["input", "website"], "INVALID"),
        (["input", "email"], "INVALID"),
        (["input", "city"], "TOO_LONG"),
        (["input", "annualRevenue"], "INVALID"),
        (["input", "employees"], "OUT_OF_RANGE"),
        (["input", "assignedToId"], "PERMISSION_DENIED"),
    ]
    messages = {tuple(e["field"]): e["message"] for e in payload["userErrors"]}
    assert messages[("input", "name")] == "Name is required."
    assert messages[("input", "email")] == "'nobody' is not an email address."
    assert await store.count(models.Account) == 0


async def test_a_refused_create_uses_up_no_number(team, client_for):
    # given
    client = await client_for(team["rep"])
    await client.data(CREATE_ACCOUNT, {"input": {"name": ""}})

    # when
    data = await client.data(CREATE_ACCOUNT, {"input": {"name": "Acme"}})

    # then
    assert data["createAccount"]["account"]["number"] == "ACC1"


async def test_update_account_changes_only_the_given_fields_and_clears_with_null(
    team, factory, db, client_for, store
):
    # given
    account = await factory.account(
        team["rep"], "Acme", industry="RETAIL", city="Milano", phone="02 1", employees=10
    )
    await db.commit()
    before = await store.row(models.Account, account.id)
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        UPDATE_ACCOUNT,
        {"input": {"id": gid("Account", account.id), "city": "Torino", "industry": None,
                   "phone": "  "}},
    )

    # then
    payload = data["updateAccount"]
    assert payload["userErrors"] == []
    assert (payload["account"]["name"], payload["account"]["city"]) == ("Acme", "Torino")
    assert (payload["account"]["industry"], payload["account"]["phone"]) == (None, None)
    assert payload["account"]["employees"] == 10
    after = await store.row(models.Account, account.id)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"city", "industry", "phone", "updated_at"}
    assert after["updated_at"] > before["updated_at"]


async def test_a_refused_account_update_changes_nothing(team, factory, db, client_for, store):
    # given
    account = await factory.account(team["rep"], "Acme", city="Milano")
    await db.commit()
    before = await store.row(models.Account, account.id)
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        UPDATE_ACCOUNT,
        {"input": {"id": gid("Account", account.id), "name": " ", "city": "Torino",
                   "website": "bad site", "assignedToId": None}},
    )

    # then
    payload = data["updateAccount"]
    assert payload["account"] is None
    assert errors_of(payload) == [
        (["input", "name"], "REQUIRED"),
        (["input", "website"], "INVALID"),
        (["input", "assignedToId"], "REQUIRED"),
    ]
    assert await store.row(models.Account, account.id) == before


@pytest.mark.parametrize("who", ["rep2", "other_rep", "other_manager"])
async def test_an_account_the_caller_may_not_see_answers_not_found(
    who, team, factory, db, client_for, store
):
    # given
    account = await factory.account(team["rep"], "Acme")
    await db.commit()
    before = await store.row(models.Account, account.id)
    client = await client_for(team[who])
    account_id = gid("Account", account.id)

    # when
    data = await client.data(UPDATE_ACCOUNT, {"input": {"id": account_id, "name": "Mine"}})

    # then
    assert data["updateAccount"] == {
        "account": None,
        "userErrors": [{"field": ["input", "id"], "code": "NOT_FOUND",
                        "message": f"No account with id {account_id!r}."}],
    }
    assert await store.row(models.Account, account.id) == before


async def test_not_found_is_the_same_for_a_missing_and_a_hidden_account(
    team, factory, db, client_for
):
    # given
    hidden = await factory.account(team["other_rep"], "Hidden")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    answers = [
        await client.data(UPDATE_ACCOUNT, {"input": {"id": account_id, "city": "X"}})
        for account_id in (gid("Account", hidden.id), gid("Account", hidden.id + 1000))
    ]

    # then
    assert [errors_of(a["updateAccount"]) for a in answers] == [
        [(["input", "id"], "NOT_FOUND")], [(["input", "id"], "NOT_FOUND")],
    ]


async def test_a_manager_updates_and_reassigns_the_accounts_of_their_team(
    team, factory, db, client_for, store
):
    # given
    account = await factory.account(team["rep"], "Acme")
    await db.commit()
    client = await client_for(team["manager"])

    # when
    data = await client.data(
        UPDATE_ACCOUNT,
        {"input": {"id": gid("Account", account.id), "name": "Acme Group",
                   "assignedToId": gid("User", team["rep2"].id)}},
    )

    # then
    assert data["updateAccount"]["userErrors"] == []
    assert data["updateAccount"]["account"]["assignedTo"] == {"username": "rep2"}
    row = await store.row(models.Account, account.id)
    assert (row["name"], row["assigned_to_id"]) == ("Acme Group", team["rep2"].id)


async def test_a_rep_may_not_hand_their_account_to_someone_else(
    team, factory, db, client_for, store
):
    # given
    account = await factory.account(team["rep"], "Acme")
    await db.commit()
    before = await store.row(models.Account, account.id)
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        UPDATE_ACCOUNT,
        {"input": {"id": gid("Account", account.id), "assignedToId": gid("User", team["rep2"].id)}},
    )

    # then
    assert errors_of(data["updateAccount"]) == [(["input", "assignedToId"], "PERMISSION_DENIED")]
    assert await store.row(models.Account, account.id) == before


async def test_under_public_sharing_a_rep_reads_but_may_not_edit_someone_elses_records(
    team, factory, db, public_app, store
):
    # given
    account = await factory.account(team["other_rep"], "Acme")
    contact = await factory.contact(team["other_rep"], "Rossi")
    lead = await factory.lead(team["other_rep"], "Bianchi")
    await db.commit()
    rows = [
        await store.row(models.Account, account.id),
        await store.row(models.Contact, contact.id),
        await store.row(models.Lead, lead.id),
    ]
    client = GraphQLClient(public_app, await factory.token(team["rep"]))
    await db.commit()

    # when
    answers = [
        (await client.data(UPDATE_ACCOUNT, {"input": {"id": gid("Account", account.id),
                                                       "name": "Mine"}}))["updateAccount"],
        (await client.data(UPDATE_CONTACT, {"input": {"id": gid("Contact", contact.id),
                                                       "lastName": "Mine"}}))["updateContact"],
        (await client.data(UPDATE_LEAD, {"input": {"id": gid("Lead", lead.id),
                                                    "lastName": "Mine"}}))["updateLead"],
    ]

    # then
    assert [errors_of(a) for a in answers] == [[(["input", "id"], "PERMISSION_DENIED")]] * 3
    assert [
        await store.row(models.Account, account.id),
        await store.row(models.Contact, contact.id),
        await store.row(models.Lead, lead.id),
    ] == rows


# --- contacts -----------------------------------------------------------------------------


async def test_create_contact_links_a_visible_account(team, factory, db, client_for, store):
    # given
    account = await factory.account(team["rep"], "Acme")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        CREATE_CONTACT,
        {"input": {"lastName": "Rossi", "firstName": "Mario", "email": "mario@acme.example",
                   "phone": "333", "title": "CTO", "leadSource": "WEB_SITE",
                   "accountId": gid("Account", account.id), "description": "Met online"}},
    )

    # then
    contact = data["createContact"]["contact"]
    assert data["createContact"]["userErrors"] == []
    assert contact == {
        "id": contact["id"], "number": "CON1", "firstName": "Mario", "lastName": "Rossi",
        "email": "mario@acme.example", "phone": "333", "title": "CTO", "leadSource": "WEB_SITE",
        "description": "Met online", "account": {"name": "Acme"},
        "assignedTo": {"username": "rep"},
    }
    row = await store.row(models.Contact, pk_of(contact["id"], "Contact"))
    assert row["account_id"] == account.id


async def test_create_contact_refuses_a_hidden_account_and_a_bad_lead_source(
    team, factory, db, client_for, store
):
    # given
    hidden = await factory.account(team["other_rep"], "Hidden")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        CREATE_CONTACT,
        {"input": {"lastName": "\t", "leadSource": "BILLBOARD", "email": "a@b",
                   "accountId": gid("Account", hidden.id)}},
    )

    # then
    assert data["createContact"]["contact"] is None
    assert errors_of(data["createContact"]) == [
        (["input", "lastName"], "REQUIRED"),
        (["input", "email"], "INVALID"),
        (["input", "leadSource"], "INVALID"),
        (["input", "accountId"], "NOT_FOUND"),
    ]
    assert await store.count(models.Contact) == 0


async def test_update_contact_moves_it_to_another_account_and_back_to_none(
    team, factory, db, client_for, store
):
    # given
    first = await factory.account(team["rep"], "First")
    second = await factory.account(team["rep"], "Second")
    contact = await factory.contact(team["rep"], "Rossi", account_id=first.id, title="CTO")
    await db.commit()
    client = await client_for(team["rep"])
    contact_id = gid("Contact", contact.id)

    # when
    moved = await client.data(
        UPDATE_CONTACT, {"input": {"id": contact_id, "accountId": gid("Account", second.id)}}
    )
    cleared = await client.data(UPDATE_CONTACT, {"input": {"id": contact_id, "accountId": None}})

    # then
    assert moved["updateContact"]["contact"]["account"] == {"name": "Second"}
    assert cleared["updateContact"]["contact"]["account"] is None
    assert cleared["updateContact"]["contact"]["title"] == "CTO"
    row = await store.row(models.Contact, contact.id)
    assert (row["account_id"], row["title"]) == (None, "CTO")


async def test_a_refused_contact_update_changes_nothing(team, factory, db, client_for, store):
    # given
    account = await factory.account(team["rep"], "Acme")
    hidden = await factory.account(team["other_rep"], "Hidden")
    contact = await factory.contact(team["rep"], "Rossi", account_id=account.id)
    await db.commit()
    before = await store.row(models.Contact, contact.id)
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        UPDATE_CONTACT,
        {"input": {"id": gid("Contact", contact.id), "firstName": "Mario",
                   "accountId": gid("Account", hidden.id), "lastName": None}},
    )

    # then
    assert errors_of(data["updateContact"]) == [
        (["input", "lastName"], "REQUIRED"),
        (["input", "accountId"], "NOT_FOUND"),
    ]
    assert await store.row(models.Contact, contact.id) == before


# --- leads --------------------------------------------------------------------------------


async def test_create_lead_stores_its_picklists_and_campaign(
    team, factory, db, client_for, store
):
    # given
    campaign = await factory.campaign(team["admin"], "Spring Expo")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        CREATE_LEAD,
        {"input": {"lastName": "Bianchi", "company": "Bianchi S.r.l.", "firstName": "Giulia",
                   "email": "g@bianchi.example", "phone": "02 1", "title": "CFO",
                   "industry": "RETAIL", "leadSource": "TRADE_SHOW", "status": "HOT",
                   "campaignId": gid("Campaign", campaign.id), "description": "Expo"}},
    )

    # then
    lead = data["createLead"]["lead"]
    assert data["createLead"]["userErrors"] == []
    assert lead == {
        "id": lead["id"], "number": "LEA1", "firstName": "Giulia", "lastName": "Bianchi",
        "company": "Bianchi S.r.l.", "email": "g@bianchi.example", "phone": "02 1",
        "title": "CFO", "industry": "RETAIL", "leadSource": "TRADE_SHOW", "status": "HOT",
        "description": "Expo", "isConverted": False, "campaign": {"name": "Spring Expo"},
        "assignedTo": {"username": "rep"},
    }
    row = await store.row(models.Lead, pk_of(lead["id"], "Lead"))
    assert (row["campaign_id"], row["is_converted"]) == (campaign.id, False)


async def test_create_lead_reports_every_problem_at_once_and_creates_nothing(
    team, client_for, store
):
    # given
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        CREATE_LEAD,
        {"input": {"lastName": " ", "company": "", "status": "MAYBE", "industry": "retail",
                   "campaignId": gid("Campaign", 4242)}},
    )

    # then
    assert data["createLead"]["lead"] is None
    assert errors_of(data["createLead"]) == [
        (["input", "lastName"], "REQUIRED"),
        (["input", "company"], "REQUIRED"),
        (["input", "industry"], "INVALID"),
        (["input", "status"], "INVALID"),
        (["input", "campaignId"], "NOT_FOUND"),
    ]
    assert await store.count(models.Lead) == 0


async def test_update_lead_changes_the_given_fields(team, factory, db, client_for, store):
    # given
    lead = await factory.lead(team["rep"], "Bianchi", status="COLD", email="old@x.example")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        UPDATE_LEAD, {"input": {"id": gid("Lead", lead.id), "status": "WARM", "email": None}}
    )

    # then
    assert data["updateLead"]["userErrors"] == []
    assert (data["updateLead"]["lead"]["status"], data["updateLead"]["lead"]["email"]) == (
        "WARM", None
    )
    row = await store.row(models.Lead, lead.id)
    assert (row["status"], row["email"], row["company"]) == ("WARM", None, "Bianchi S.r.l.")


async def test_a_refused_lead_update_changes_nothing(team, factory, db, client_for, store):
    # given
    lead = await factory.lead(team["rep"], "Bianchi", status="COLD")
    await db.commit()
    before = await store.row(models.Lead, lead.id)
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        UPDATE_LEAD,
        {"input": {"id": gid("Lead", lead.id), "status": "WARM", "company": "  ",
                   "leadSource": "NOPE"}},
    )

    # then
    assert errors_of(data["updateLead"]) == [
        (["input", "company"], "REQUIRED"),
        (["input", "leadSource"], "INVALID"),
    ]
    assert await store.row(models.Lead, lead.id) == before


async def test_a_lead_of_another_team_answers_not_found(team, factory, db, client_for, store):
    # given
    lead = await factory.lead(team["other_rep"], "Bianchi")
    await db.commit()
    before = await store.row(models.Lead, lead.id)
    client = await client_for(team["manager"])

    # when
    data = await client.data(UPDATE_LEAD, {"input": {"id": gid("Lead", lead.id), "status": "HOT"}})

    # then
    assert errors_of(data["updateLead"]) == [(["input", "id"], "NOT_FOUND")]
    assert await store.row(models.Lead, lead.id) == before


# --- campaigns ----------------------------------------------------------------------------


async def test_create_campaign_stores_every_field(team, client_for, store):
    # given
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        CREATE_CAMPAIGN,
        {"input": {"name": "Spring Expo", "type": "TRADE_SHOW", "status": "PLANNING",
                   "expectedCloseDate": "2027-04-30", "budgetCost": "15000",
                   "actualCost": 0, "expectedRevenue": "90000.99", "description": "Booth 12"}},
    )

    # then
    campaign = data["createCampaign"]["campaign"]
    assert data["createCampaign"]["userErrors"] == []
    assert campaign == {
        "id": campaign["id"], "number": "CAM1", "name": "Spring Expo", "type": "TRADE_SHOW",
        "status": "PLANNING", "expectedCloseDate": "2027-04-30", "budgetCost": "15000.00",
        "actualCost": "0.00", "expectedRevenue": "90000.99", "description": "Booth 12",
        "assignedTo": {"username": "rep"},
    }
    assert await store.count(models.Campaign) == 1


async def test_create_campaign_reports_every_problem_at_once_and_creates_nothing(
    team, client_for, store
):
    # given
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        CREATE_CAMPAIGN,
        {"input": {"name": "", "type": "BILLBOARD", "status": "DONE", "budgetCost": "-1",
                   "actualCost": "1.001", "expectedRevenue": "99999999999999999"}},
    )

    # then
    assert data["createCampaign"]["campaign"] is None
    assert errors_of(data["createCampaign"]) == [
        (["input", "name"], "REQUIRED"),
        (["input", "type"], "INVALID"),
        (["input", "status"], "INVALID"),
        (["input", "budgetCost"], "OUT_OF_RANGE"),
        (["input", "actualCost"], "INVALID"),
        (["input", "expectedRevenue"], "OUT_OF_RANGE"),
    ]
    assert await store.count(models.Campaign) == 0


async def test_update_campaign_changes_the_given_fields(team, factory, db, client_for, store):
    # given
    campaign = await factory.campaign(team["rep"], "Spring Expo", status="PLANNING",
                                      budget_cost=Decimal("100.00"))
    await db.commit()
    client = await client_for(team["manager"])

    # when
    data = await client.data(
        UPDATE_CAMPAIGN,
        {"input": {"id": gid("Campaign", campaign.id), "status": "ACTIVE",
                   "actualCost": "80.5"}},
    )

    # then
    assert data["updateCampaign"]["userErrors"] == []
    updated = data["updateCampaign"]["campaign"]
    assert (updated["status"], updated["actualCost"], updated["budgetCost"]) == (
        "ACTIVE", "80.50", "100.00"
    )
    row = await store.row(models.Campaign, campaign.id)
    assert (row["status"], row["actual_cost"]) == ("ACTIVE", Decimal("80.50"))


async def test_a_rep_sees_but_may_not_edit_someone_elses_campaign(
    team, factory, db, client_for, store
):
    # given
    campaign = await factory.campaign(team["other_rep"], "Their Expo")
    await db.commit()
    before = await store.row(models.Campaign, campaign.id)
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        UPDATE_CAMPAIGN, {"input": {"id": gid("Campaign", campaign.id), "name": "Mine"}}
    )

    # then
    assert errors_of(data["updateCampaign"]) == [(["input", "id"], "PERMISSION_DENIED")]
    assert await store.row(models.Campaign, campaign.id) == before


# --- products (admin only) ----------------------------------------------------------------


async def test_an_admin_creates_a_product_with_default_tax_and_active(team, client_for, store):
    # given
    client = await client_for(team["admin"])

    # when
    data = await client.data(
        CREATE_PRODUCT, {"input": {"name": "Widget", "code": "W-1", "unitPrice": "19.9"}}
    )

    # then
    product = data["createProduct"]["product"]
    assert data["createProduct"]["userErrors"] == []
    assert product == {
        "id": product["id"], "number": "PRO1", "name": "Widget", "code": "W-1",
        "unitPrice": "19.90", "taxPercent": "0.00", "isActive": True,
    }
    row = await store.row(models.Product, pk_of(product["id"], "Product"))
    assert (row["unit_price"], row["tax_percent"], row["is_active"]) == (
        Decimal("19.90"), Decimal("0.00"), True
    )


async def test_create_product_reports_every_problem_at_once_and_creates_nothing(
    team, client_for, store
):
    # given
    client = await client_for(team["admin"])

    # when
    data = await client.data(
        CREATE_PRODUCT,
        {"input": {"name": " ", "unitPrice": "-0.01", "taxPercent": "100.5",
                   "code": "C" * 65}},
    )

    # then
    assert data["createProduct"]["product"] is None
    assert errors_of(data["createProduct"]) == [
        (["input", "name"], "REQUIRED"),
        (["input", "code"], "TOO_LONG"),
        (["input", "unitPrice"], "OUT_OF_RANGE"),
        (["input", "taxPercent"], "OUT_OF_RANGE"),
    ]
    assert await store.count(models.Product) == 0


async def test_an_admin_updates_a_product(team, factory, db, client_for, store):
    # given
    product = await factory.product("Widget", "10.00", tax_percent=Decimal("22.00"))
    await db.commit()
    client = await client_for(team["admin"])

    # when
    data = await client.data(
        UPDATE_PRODUCT,
        {"input": {"id": gid("Product", product.id), "unitPrice": "12.5", "isActive": False}},
    )

    # then
    assert data["updateProduct"]["userErrors"] == []
    updated = data["updateProduct"]["product"]
    assert (updated["unitPrice"], updated["taxPercent"], updated["isActive"]) == (
        "12.50", "22.00", False
    )
    row = await store.row(models.Product, product.id)
    assert (row["unit_price"], row["is_active"]) == (Decimal("12.50"), False)


async def test_a_product_update_may_not_clear_a_mandatory_field(
    team, factory, db, client_for, store
):
    # given
    product = await factory.product("Widget", "10.00", tax_percent=Decimal("22.00"))
    await db.commit()
    before = await store.row(models.Product, product.id)
    client = await client_for(team["admin"])

    # when
    body = await client.query(
        UPDATE_PRODUCT,
        {"input": {"id": gid("Product", product.id), "name": None, "unitPrice": None,
                   "taxPercent": None, "isActive": None}},
    )

    # then
    assert "errors" not in body, body["errors"]
    payload = body["data"]["updateProduct"]
    assert payload["product"] is None
    assert errors_of(payload) == [
        (["input", "name"], "REQUIRED"),
        (["input", "unitPrice"], "REQUIRED"),
        (["input", "taxPercent"], "REQUIRED"),
        (["input", "isActive"], "REQUIRED"),
    ]
    assert await store.row(models.Product, product.id) == before


@pytest.mark.parametrize("who", ["manager", "rep"])
async def test_create_product_by_a_non_admin_is_forbidden_and_creates_nothing(
    who, team, client_for, store
):
    # given
    client = await client_for(team[who])

    # when
    body = await client.query(CREATE_PRODUCT, {"input": {"name": "Widget", "unitPrice": "1"}})

    # then
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == ["createProduct"]
    assert await store.count(models.Product) == 0


@pytest.mark.parametrize("who", ["manager", "rep"])
async def test_update_product_by_a_non_admin_is_forbidden_and_changes_nothing(
    who, team, factory, db, client_for, store
):
    # given
    product = await factory.product("Widget", "10.00")
    await db.commit()
    before = await store.row(models.Product, product.id)
    client = await client_for(team[who])

    # when
    body = await client.query(
        UPDATE_PRODUCT, {"input": {"id": gid("Product", product.id), "unitPrice": "0"}}
    )

    # then
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert await store.row(models.Product, product.id) == before


async def test_update_product_with_an_unknown_id_answers_not_found(team, client_for):
    # given
    client = await client_for(team["admin"])
    product_id = gid("Product", 31337)

    # when
    data = await client.data(UPDATE_PRODUCT, {"input": {"id": product_id, "name": "X"}})

    # then
    assert data["updateProduct"] == {
        "product": None,
        "userErrors": [{"field": ["input", "id"], "code": "NOT_FOUND",
                        "message": f"No product with id {product_id!r}."}],
    }
