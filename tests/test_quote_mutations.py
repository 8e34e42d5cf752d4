"""Quote mutations (API.md "Mutations" and "Rules that clients rely on" → Quotes).

Totals come from the product lines, rounded half-up to cents per line; the synced quote (at
most one per deal) drives the deal's amount (amountSource QUOTE), a hand-set amount is then
refused with AMOUNT_FROM_QUOTE, and unsyncing or deleting that quote returns the deal to
MANUAL with its last amount. A refused mutation changes nothing.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import models
from resolvers.ids import pk_of, to_global_id
from tests.conftest import GraphQLClient

QUOTE_FIELDS = """
  id number subject stage validUntil isSynced
  subtotal discountTotal netTotal taxTotal grandTotal
  lines {
    product { name } description quantity listPrice discountPercent taxPercent netTotal
  }
  account { name }
  contact { lastName }
  opportunity { amount amountSource version }
"""

CREATE_QUOTE = f"""
mutation CreateQuote($input: CreateQuoteInput!) {{
  createQuote(input: $input) {{
    quote {{ {QUOTE_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

UPDATE_QUOTE = f"""
mutation UpdateQuote($input: UpdateQuoteInput!) {{
  updateQuote(input: $input) {{
    quote {{ {QUOTE_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}
"""

DELETE_QUOTE = """
mutation DeleteQuote($input: DeleteQuoteInput!) {
  deleteQuote(input: $input) {
    deletedId
    userErrors { field code message }
  }
}
"""

SYNC_QUOTE = """
mutation SyncQuote($input: SyncQuoteInput!) {
  syncQuote(input: $input) {
    quote { id isSynced netTotal opportunity { amount amountSource } }
    userErrors { field code message }
  }
}
"""

UPDATE_OPPORTUNITY = """
mutation UpdateOpportunity($input: UpdateOpportunityInput!) {
  updateOpportunity(input: $input) {
    opportunity { amount amountSource version }
    userErrors { field code message }
  }
}
"""

UPDATE_PRODUCT = """
mutation UpdateProduct($input: UpdateProductInput!) {
  updateProduct(input: $input) { userErrors { field code } }
}
"""

OPPORTUNITY_QUOTES = """
query OpportunityQuotes($id: ID!) {
  node(id: $id) {
    ... on Opportunity {
      amount amountSource
      quotes { subject isSynced netTotal }
    }
  }
}
"""


def gid(type_name: str, pk: int) -> str:
    return to_global_id(type_name, pk)


def errors_of(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    """(field, code) of each user error, in order."""
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


class Store:
    """Reads the database in a fresh session each time (what the server really committed)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def count(self, model: Any) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    async def get(self, model: Any, pk: Any) -> Any:
        async with self.sessions() as session:
            return await session.get(model, pk)

    async def lines(self, quote_id: int) -> list[tuple[int, Decimal, Decimal]]:
        """(product id, quantity, list price) of a quote's lines, in order."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(models.QuoteLine.product_id, models.QuoteLine.quantity,
                       models.QuoteLine.list_price)
                .where(models.QuoteLine.quote_id == quote_id)
                .order_by(models.QuoteLine.position)
            )
            return [tuple(row) for row in rows.all()]  # type: ignore[misc]

    async def deal(self, pk: int) -> tuple[Decimal, str, int]:
        """(amount, amountSource, version) of a deal."""
        deal = await self.get(models.Opportunity, pk)
        return deal.amount, deal.amount_source, deal.version


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession]) -> Store:
    return Store(sessions)


@pytest.fixture
async def catalogue(factory: Any, db: AsyncSession) -> dict[str, models.Product]:
    widget = await factory.product("Widget", "19.99", tax_percent=Decimal("22.00"))
    gadget = await factory.product("Gadget", "50.00", tax_percent=Decimal("10.00"))
    retired = await factory.product("Retired", "5.00", is_active=False)
    await db.commit()
    return {"widget": widget, "gadget": gadget, "retired": retired}


@pytest.fixture
async def deal(team: dict[str, models.User], factory: Any, db: AsyncSession) -> models.Opportunity:
    """rep's deal at Acme with Rossi as primary contact, amount 1000.00 typed by hand."""
    rep = team["rep"]
    account = await factory.account(rep, "Acme")
    contact = await factory.contact(rep, "Rossi", account_id=account.id)
    opp = await factory.opportunity(rep, "Acme roll-out", account_id=account.id)
    db.add(models.OpportunityContact(opportunity_id=opp.id, contact_id=contact.id,
                                     is_primary=True))
    await db.commit()
    return opp  # type: ignore[no-any-return]


def widget_line(catalogue: dict[str, models.Product], quantity: str = "1") -> dict[str, Any]:
    return {"productId": gid("Product", catalogue["widget"].id), "quantity": quantity}


async def create_quote(client: GraphQLClient, **input: Any) -> dict[str, Any]:
    data = await client.data(CREATE_QUOTE, {"input": input})
    return data["createQuote"]  # type: ignore[no-any-return]


# --- totals -------------------------------------------------------------------------------


async def test_create_quote_computes_totals_from_lines_rounded_half_up_per_line(
    team, catalogue, deal, client_for
):
    # given
    client = await client_for(team["rep"])
    lines = [
        # 3 × 19.99 = 59.97; −12.5% = 52.47375 → 52.47; tax 22% = 11.5434 → 11.54
        {"productId": gid("Product", catalogue["widget"].id), "quantity": "3",
         "discountPercent": "12.5", "description": "First year"},
        # 2.5 × 10.05 = 25.125 → 25.13 (half-up); tax 10% = 2.513 → 2.51
        {"productId": gid("Product", catalogue["gadget"].id), "quantity": 2.5,
         "listPrice": "10.05"},
    ]

    # when
    payload = await create_quote(
        client, opportunityId=gid("Opportunity", deal.id), subject="  Offer 2027  ",
        validUntil="2027-03-31", lines=lines,
    )

    # then
    assert payload["userErrors"] == []
    quote = payload["quote"]
    assert quote["number"] == "QUO1"
    assert quote["subject"] == "Offer 2027"
    assert quote["stage"] == "CREATED"
    assert quote["validUntil"] == "2027-03-31"
    assert quote["lines"] == [
        {"product": {"name": "Widget"}, "description": "First year", "quantity": "3.000",
         "listPrice": "19.99", "discountPercent": "12.50", "taxPercent": "22.00",
         "netTotal": "52.47"},
        {"product": {"name": "Gadget"}, "description": None, "quantity": "2.500",
         "listPrice": "10.05", "discountPercent": "0.00", "taxPercent": "10.00",
         "netTotal": "25.13"},
    ]
    # Per-line rounding: the unrounded tax would be 14.0564 → 14.06.
    assert (quote["subtotal"], quote["discountTotal"], quote["netTotal"]) == (
        "85.10", "7.50", "77.60"
    )
    assert (quote["taxTotal"], quote["grandTotal"]) == ("14.05", "91.65")
    assert quote["account"] == {"name": "Acme"}
    assert quote["contact"] == {"lastName": "Rossi"}


async def test_list_price_and_tax_default_to_the_product_and_are_kept_on_the_line(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    admin = await client_for(team["admin"])
    payload = await create_quote(
        client, opportunityId=gid("Opportunity", deal.id), subject="Offer",
        lines=[widget_line(catalogue, "2")],
    )

    # when the product's price changes afterwards
    changed = await admin.data(
        UPDATE_PRODUCT,
        {"input": {"id": gid("Product", catalogue["widget"].id), "unitPrice": "25.00",
                   "taxPercent": "4"}},
    )

    # then
    assert changed["updateProduct"]["userErrors"] == []
    assert payload["quote"]["lines"][0]["listPrice"] == "19.99"
    assert payload["quote"]["lines"][0]["taxPercent"] == "22.00"
    quote_id = pk_of(payload["quote"]["id"], "Quote")
    assert await store.lines(quote_id) == [
        (catalogue["widget"].id, Decimal("2.000"), Decimal("19.99"))
    ]
    data = await client.data(OPPORTUNITY_QUOTES, {"id": gid("Opportunity", deal.id)})
    assert data["node"]["quotes"] == [{"subject": "Offer", "isSynced": True, "netTotal": "39.98"}]


async def test_a_line_may_set_its_own_list_price_and_tax_to_zero(
    team, catalogue, deal, client_for
):
    # given
    client = await client_for(team["rep"])

    # when
    payload = await create_quote(
        client, opportunityId=gid("Opportunity", deal.id), subject="Free sample",
        lines=[{**widget_line(catalogue), "listPrice": "0", "taxPercent": "0"}],
    )

    # then
    assert payload["userErrors"] == []
    assert payload["quote"]["lines"][0]["listPrice"] == "0.00"
    assert payload["quote"]["lines"][0]["taxPercent"] == "0.00"
    assert payload["quote"]["grandTotal"] == "0.00"


# --- validation ---------------------------------------------------------------------------


async def test_create_quote_reports_every_problem_at_once_and_creates_nothing(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    lines = [
        {"productId": gid("Product", 999_999), "quantity": "1"},
        {"productId": gid("Product", catalogue["widget"].id), "quantity": "0",
         "listPrice": "1.234", "discountPercent": "101", "taxPercent": "-1"},
        {"productId": gid("Product", catalogue["retired"].id), "quantity": "1.0005"},
    ]

    # when
    payload = await create_quote(
        client, opportunityId=gid("Opportunity", deal.id), subject="   ", stage="SENT",
        lines=lines,
    )

    # then
    assert payload["quote"] is None
    assert errors_of(payload) == [
        (["input", "subject"], "REQUIRED"),
        (["input", "stage"], "INVALID"),
        (["input", "lines", "0", "productId"], "NOT_FOUND"),
        (["input", "lines", "1", "quantity"], "OUT_OF_RANGE"),
        (["input", "lines", "1", "listPrice"], "INVALID"),
        (["input", "lines", "1", "discountPercent"], "OUT_OF_RANGE"),
        (["input", "lines", "1", "taxPercent"], "OUT_OF_RANGE"),
        (["input", "lines", "2", "productId"], "INACTIVE"),
        (["input", "lines", "2", "quantity"], "INVALID"),
    ]
    assert all(e["message"] for e in payload["userErrors"])
    assert await store.count(models.Quote) == 0
    assert await store.count(models.QuoteLine) == 0
    assert await store.deal(deal.id) == (Decimal("1000.00"), "MANUAL", 1)


async def test_a_quote_without_lines_is_refused(team, catalogue, deal, client_for, store):
    # given
    client = await client_for(team["rep"])

    # when
    payload = await create_quote(
        client, opportunityId=gid("Opportunity", deal.id), subject="Empty", lines=[]
    )

    # then
    assert payload["quote"] is None
    assert errors_of(payload) == [(["input", "lines"], "REQUIRED")]
    assert await store.count(models.Quote) == 0
    assert await store.deal(deal.id) == (Decimal("1000.00"), "MANUAL", 1)


async def test_a_refused_quote_does_not_use_up_a_number(team, catalogue, deal, client_for):
    # given
    client = await client_for(team["rep"])
    await create_quote(
        client, opportunityId=gid("Opportunity", deal.id), subject="", lines=[]
    )

    # when
    payload = await create_quote(
        client, opportunityId=gid("Opportunity", deal.id), subject="Offer",
        lines=[widget_line(catalogue)],
    )

    # then
    assert payload["quote"]["number"] == "QUO1"


async def test_quote_stages_come_from_the_quote_stage_picklist(
    team, catalogue, deal, client_for, db, store
):
    # given
    client = await client_for(team["rep"])
    await db.execute(
        update(models.PicklistValue)
        .where(models.PicklistValue.picklist == "quoteStage",
               models.PicklistValue.key == "REJECTED")
        .values(is_active=False)
    )
    await db.commit()
    deal_id = gid("Opportunity", deal.id)

    # when
    delivered = await create_quote(
        client, opportunityId=deal_id, subject="A", stage="DELIVERED",
        lines=[widget_line(catalogue)],
    )
    rejected = await create_quote(
        client, opportunityId=deal_id, subject="B", stage="REJECTED",
        lines=[widget_line(catalogue)],
    )
    sales_stage = await create_quote(
        client, opportunityId=deal_id, subject="C", stage="CLOSED_WON",
        lines=[widget_line(catalogue)],
    )

    # then
    assert delivered["userErrors"] == []
    assert delivered["quote"]["stage"] == "DELIVERED"
    assert errors_of(rejected) == [(["input", "stage"], "INACTIVE")]
    assert errors_of(sales_stage) == [(["input", "stage"], "INVALID")]
    assert "CREATED, DELIVERED, REVIEWED, ACCEPTED" in sales_stage["userErrors"][0]["message"]
    assert await store.count(models.Quote) == 1


# --- the synced quote drives the amount ----------------------------------------------------


async def test_the_first_quote_of_a_deal_becomes_the_synced_one_and_sets_the_amount(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])

    # when
    payload = await create_quote(
        client, opportunityId=gid("Opportunity", deal.id), subject="Offer",
        lines=[widget_line(catalogue, "3")],
    )

    # then
    assert payload["quote"]["isSynced"] is True
    assert payload["quote"]["netTotal"] == "59.97"
    assert payload["quote"]["opportunity"] == {
        "amount": "59.97", "amountSource": "QUOTE", "version": 2,
    }
    assert await store.deal(deal.id) == (Decimal("59.97"), "QUOTE", 2)


async def test_a_quote_created_without_sync_stays_unsynced_when_the_deal_has_a_synced_quote(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    deal_id = gid("Opportunity", deal.id)
    await create_quote(client, opportunityId=deal_id, subject="First",
                       lines=[widget_line(catalogue, "1")])

    # when
    second = await create_quote(client, opportunityId=deal_id, subject="Second",
                                lines=[widget_line(catalogue, "5")])

    # then
    assert second["quote"]["isSynced"] is False
    assert await store.deal(deal.id) == (Decimal("19.99"), "QUOTE", 2)
    data = await client.data(OPPORTUNITY_QUOTES, {"id": deal_id})
    assert data["node"]["quotes"] == [
        {"subject": "First", "isSynced": True, "netTotal": "19.99"},
        {"subject": "Second", "isSynced": False, "netTotal": "99.95"},
    ]


async def test_sync_false_never_syncs_even_the_first_quote(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])

    # when
    payload = await create_quote(
        client, opportunityId=gid("Opportunity", deal.id), subject="Draft", sync=False,
        lines=[widget_line(catalogue, "3")],
    )

    # then
    assert payload["userErrors"] == []
    assert payload["quote"]["isSynced"] is False
    assert payload["quote"]["opportunity"] == {
        "amount": "1000.00", "amountSource": "MANUAL", "version": 1,
    }
    assert await store.deal(deal.id) == (Decimal("1000.00"), "MANUAL", 1)


async def test_of_two_simultaneous_first_quotes_exactly_one_becomes_the_synced_one(
    team, catalogue, deal, client_for, store
):
    # given
    first = await client_for(team["rep"])
    second = await client_for(team["manager"])
    deal_id = gid("Opportunity", deal.id)

    # when
    bodies = await asyncio.gather(
        first.query(CREATE_QUOTE, {"input": {"opportunityId": deal_id, "subject": "A",
                                             "lines": [widget_line(catalogue, "1")]}}),
        second.query(CREATE_QUOTE, {"input": {"opportunityId": deal_id, "subject": "B",
                                              "lines": [widget_line(catalogue, "2")]}}),
    )

    # then
    assert all("errors" not in body for body in bodies), bodies
    quotes = [body["data"]["createQuote"]["quote"] for body in bodies]
    synced = [q for q in quotes if q["isSynced"]]
    assert len(synced) == 1, quotes
    assert await store.count(models.Quote) == 2
    assert await store.deal(deal.id) == (Decimal(synced[0]["netTotal"]), "QUOTE", 2)


async def test_sync_true_on_create_takes_over_from_the_synced_quote(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    deal_id = gid("Opportunity", deal.id)
    await create_quote(client, opportunityId=deal_id, subject="First",
                       lines=[widget_line(catalogue, "1")])

    # when
    second = await create_quote(client, opportunityId=deal_id, subject="Second", sync=True,
                                lines=[widget_line(catalogue, "2")])

    # then
    assert second["quote"]["isSynced"] is True
    assert second["quote"]["opportunity"]["amount"] == "39.98"
    assert await store.deal(deal.id) == (Decimal("39.98"), "QUOTE", 3)
    data = await client.data(OPPORTUNITY_QUOTES, {"id": deal_id})
    assert [(q["subject"], q["isSynced"]) for q in data["node"]["quotes"]] == [
        ("First", False), ("Second", True),
    ]


async def test_sync_quote_chooses_the_one_synced_quote_of_the_deal(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    deal_id = gid("Opportunity", deal.id)
    await create_quote(client, opportunityId=deal_id, subject="First",
                       lines=[widget_line(catalogue, "1")])
    second = await create_quote(client, opportunityId=deal_id, subject="Second",
                                lines=[widget_line(catalogue, "4")])

    # when
    data = await client.data(SYNC_QUOTE, {"input": {"quoteId": second["quote"]["id"]}})

    # then
    assert data["syncQuote"] == {
        "quote": {"id": second["quote"]["id"], "isSynced": True, "netTotal": "79.96",
                  "opportunity": {"amount": "79.96", "amountSource": "QUOTE"}},
        "userErrors": [],
    }
    async with store.sessions() as session:
        synced = (await session.scalars(
            select(models.Quote.subject).where(models.Quote.is_synced.is_(True))
        )).all()
    assert synced == ["Second"]
    assert await store.deal(deal.id) == (Decimal("79.96"), "QUOTE", 3)


async def test_syncing_the_already_synced_quote_changes_nothing(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    first = await create_quote(client, opportunityId=gid("Opportunity", deal.id),
                               subject="First", lines=[widget_line(catalogue, "1")])

    # when
    data = await client.data(SYNC_QUOTE, {"input": {"quoteId": first["quote"]["id"]}})

    # then
    assert data["syncQuote"]["userErrors"] == []
    assert data["syncQuote"]["quote"]["isSynced"] is True
    assert await store.deal(deal.id) == (Decimal("19.99"), "QUOTE", 2)


async def test_changing_the_lines_of_the_synced_quote_recomputes_the_amount(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    created = await create_quote(client, opportunityId=gid("Opportunity", deal.id),
                                 subject="Offer", lines=[widget_line(catalogue, "1")])
    new_lines = [
        widget_line(catalogue, "10"),
        {"productId": gid("Product", catalogue["gadget"].id), "quantity": "1",
         "discountPercent": "50"},
    ]

    # when
    data = await client.data(
        UPDATE_QUOTE, {"input": {"id": created["quote"]["id"], "lines": new_lines}}
    )

    # then
    quote = data["updateQuote"]["quote"]
    assert data["updateQuote"]["userErrors"] == []
    assert [line["product"]["name"] for line in quote["lines"]] == ["Widget", "Gadget"]
    assert (quote["subtotal"], quote["discountTotal"], quote["netTotal"]) == (
        "249.90", "25.00", "224.90"
    )
    # 199.90 × 22% = 43.978 → 43.98; 25.00 × 10% = 2.50
    assert (quote["taxTotal"], quote["grandTotal"]) == ("46.48", "271.38")
    assert quote["opportunity"] == {"amount": "224.90", "amountSource": "QUOTE", "version": 3}
    assert await store.deal(deal.id) == (Decimal("224.90"), "QUOTE", 3)
    assert await store.count(models.QuoteLine) == 2


async def test_changing_the_lines_of_an_unsynced_quote_leaves_the_amount_alone(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    created = await create_quote(client, opportunityId=gid("Opportunity", deal.id),
                                 subject="Draft", sync=False, lines=[widget_line(catalogue)])

    # when
    data = await client.data(
        UPDATE_QUOTE,
        {"input": {"id": created["quote"]["id"], "lines": [widget_line(catalogue, "7")]}},
    )

    # then
    assert data["updateQuote"]["quote"]["netTotal"] == "139.93"
    assert await store.deal(deal.id) == (Decimal("1000.00"), "MANUAL", 1)


async def test_update_quote_changes_only_the_given_fields(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    created = await create_quote(
        client, opportunityId=gid("Opportunity", deal.id), subject="Offer",
        validUntil="2027-01-31", lines=[widget_line(catalogue, "2")],
    )

    # when
    data = await client.data(
        UPDATE_QUOTE,
        {"input": {"id": created["quote"]["id"], "stage": "ACCEPTED", "validUntil": None}},
    )

    # then
    quote = data["updateQuote"]["quote"]
    assert data["updateQuote"]["userErrors"] == []
    assert (quote["subject"], quote["stage"], quote["validUntil"]) == ("Offer", "ACCEPTED", None)
    assert quote["netTotal"] == "39.98"
    assert await store.deal(deal.id) == (Decimal("39.98"), "QUOTE", 2)


async def test_a_refused_quote_update_changes_nothing(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    created = await create_quote(client, opportunityId=gid("Opportunity", deal.id),
                                 subject="Offer", lines=[widget_line(catalogue, "2")])
    quote_pk = pk_of(created["quote"]["id"], "Quote")
    before = await store.get(models.Quote, quote_pk)

    # when
    data = await client.data(
        UPDATE_QUOTE,
        {"input": {
            "id": created["quote"]["id"], "subject": " ", "stage": "LOST",
            "lines": [widget_line(catalogue, "9"), widget_line(catalogue, "-1")],
        }},
    )

    # then
    assert data["updateQuote"]["quote"] is None
    assert errors_of(data["updateQuote"]) == [
        (["input", "subject"], "REQUIRED"),
        (["input", "stage"], "INVALID"),
        (["input", "lines", "1", "quantity"], "OUT_OF_RANGE"),
    ]
    after = await store.get(models.Quote, quote_pk)
    assert (after.subject, after.stage, after.updated_at) == (
        "Offer", "CREATED", before.updated_at
    )
    assert await store.lines(quote_pk) == [
        (catalogue["widget"].id, Decimal("2.000"), Decimal("19.99"))
    ]
    assert await store.deal(deal.id) == (Decimal("39.98"), "QUOTE", 2)


async def test_a_hand_set_amount_is_refused_while_a_synced_quote_drives_it(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    await create_quote(client, opportunityId=gid("Opportunity", deal.id), subject="Offer",
                       lines=[widget_line(catalogue, "3")])

    # when
    data = await client.data(
        UPDATE_OPPORTUNITY,
        {"input": {"id": gid("Opportunity", deal.id), "amount": "5000", "name": "Renamed"}},
    )

    # then
    assert data["updateOpportunity"]["opportunity"] is None
    assert errors_of(data["updateOpportunity"]) == [(["input", "amount"], "AMOUNT_FROM_QUOTE")]
    assert await store.deal(deal.id) == (Decimal("59.97"), "QUOTE", 2)
    assert (await store.get(models.Opportunity, deal.id)).name == "Acme roll-out"


async def test_unsyncing_the_quote_returns_the_deal_to_manual_keeping_the_amount(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    created = await create_quote(client, opportunityId=gid("Opportunity", deal.id),
                                 subject="Offer", lines=[widget_line(catalogue, "3")])

    # when
    unsynced = await client.data(
        SYNC_QUOTE, {"input": {"quoteId": created["quote"]["id"], "sync": False}}
    )
    typed = await client.data(
        UPDATE_OPPORTUNITY, {"input": {"id": gid("Opportunity", deal.id), "amount": "75.50"}}
    )

    # then
    assert unsynced["syncQuote"] == {
        "quote": {"id": created["quote"]["id"], "isSynced": False, "netTotal": "59.97",
                  "opportunity": {"amount": "59.97", "amountSource": "MANUAL"}},
        "userErrors": [],
    }
    assert typed["updateOpportunity"] == {
        "opportunity": {"amount": "75.50", "amountSource": "MANUAL", "version": 4},
        "userErrors": [],
    }
    assert await store.deal(deal.id) == (Decimal("75.50"), "MANUAL", 4)


async def test_lines_of_an_unsynced_quote_no_longer_move_the_amount(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    created = await create_quote(client, opportunityId=gid("Opportunity", deal.id),
                                 subject="Offer", lines=[widget_line(catalogue, "3")])
    await client.data(SYNC_QUOTE, {"input": {"quoteId": created["quote"]["id"], "sync": False}})

    # when
    await client.data(
        UPDATE_QUOTE,
        {"input": {"id": created["quote"]["id"], "lines": [widget_line(catalogue, "1")]}},
    )

    # then
    assert await store.deal(deal.id) == (Decimal("59.97"), "MANUAL", 3)


async def test_deleting_the_synced_quote_returns_the_deal_to_manual_keeping_the_amount(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    created = await create_quote(client, opportunityId=gid("Opportunity", deal.id),
                                 subject="Offer", lines=[widget_line(catalogue, "3")])
    quote_id = created["quote"]["id"]

    # when
    data = await client.data(DELETE_QUOTE, {"input": {"id": quote_id}})

    # then
    assert data["deleteQuote"] == {"deletedId": quote_id, "userErrors": []}
    assert await store.deal(deal.id) == (Decimal("59.97"), "MANUAL", 3)
    deleted = await store.get(models.Quote, pk_of(quote_id, "Quote"))
    assert deleted.deleted_at is not None
    assert deleted.is_synced is False
    view = await client.data(OPPORTUNITY_QUOTES, {"id": gid("Opportunity", deal.id)})
    assert view["node"] == {"amount": "59.97", "amountSource": "MANUAL", "quotes": []}


async def test_after_the_synced_quote_is_deleted_the_next_quote_becomes_synced(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    deal_id = gid("Opportunity", deal.id)
    created = await create_quote(client, opportunityId=deal_id, subject="Old",
                                 lines=[widget_line(catalogue, "3")])
    await client.data(DELETE_QUOTE, {"input": {"id": created["quote"]["id"]}})

    # when
    payload = await create_quote(client, opportunityId=deal_id, subject="New",
                                 lines=[widget_line(catalogue, "1")])

    # then
    assert payload["quote"]["isSynced"] is True
    assert await store.deal(deal.id) == (Decimal("19.99"), "QUOTE", 4)


async def test_deleting_an_unsynced_quote_leaves_the_deal_alone(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    deal_id = gid("Opportunity", deal.id)
    await create_quote(client, opportunityId=deal_id, subject="Synced",
                       lines=[widget_line(catalogue, "3")])
    other = await create_quote(client, opportunityId=deal_id, subject="Other",
                               lines=[widget_line(catalogue, "1")])

    # when
    data = await client.data(DELETE_QUOTE, {"input": {"id": other["quote"]["id"]}})

    # then
    assert data["deleteQuote"]["userErrors"] == []
    assert await store.deal(deal.id) == (Decimal("59.97"), "QUOTE", 2)


async def test_a_deleted_quote_cannot_be_changed_or_deleted_again(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["rep"])
    created = await create_quote(client, opportunityId=gid("Opportunity", deal.id),
                                 subject="Offer", lines=[widget_line(catalogue, "3")])
    quote_id = created["quote"]["id"]
    await client.data(DELETE_QUOTE, {"input": {"id": quote_id}})

    # when
    again = await client.data(DELETE_QUOTE, {"input": {"id": quote_id}})
    synced = await client.data(SYNC_QUOTE, {"input": {"quoteId": quote_id}})
    updated = await client.data(UPDATE_QUOTE, {"input": {"id": quote_id, "subject": "Back"}})

    # then
    assert again["deleteQuote"] == {
        "deletedId": None,
        "userErrors": [{"field": ["input", "id"], "code": "NOT_FOUND",
                        "message": f"No quote with id {quote_id!r}."}],
    }
    assert errors_of(synced["syncQuote"]) == [(["input", "quoteId"], "NOT_FOUND")]
    assert errors_of(updated["updateQuote"]) == [(["input", "id"], "NOT_FOUND")]
    assert await store.deal(deal.id) == (Decimal("59.97"), "MANUAL", 3)
    assert (await store.get(models.Quote, pk_of(quote_id, "Quote"))).subject == "Offer"


# --- permissions --------------------------------------------------------------------------


async def test_a_rep_cannot_quote_a_deal_they_may_not_see(
    team, catalogue, factory, db, client_for, store
):
    # given
    theirs = await factory.opportunity(team["other_rep"], "Elsewhere")
    await db.commit()
    client = await client_for(team["rep"])
    deal_id = gid("Opportunity", theirs.id)

    # when
    payload = await create_quote(client, opportunityId=deal_id, subject="Offer",
                                 lines=[widget_line(catalogue)])

    # then
    assert payload == {
        "quote": None,
        "userErrors": [{"field": ["input", "opportunityId"], "code": "NOT_FOUND",
                        "message": f"No opportunity with id {deal_id!r}."}],
    }
    assert await store.count(models.Quote) == 0
    assert await store.deal(theirs.id) == (Decimal("1000.00"), "MANUAL", 1)


@pytest.mark.parametrize("who", ["rep2", "other_rep", "other_manager"])
async def test_a_quote_on_a_deal_the_caller_may_not_see_answers_not_found(
    who, team, catalogue, deal, client_for, store
):
    # given
    owner = await client_for(team["rep"])
    created = await create_quote(owner, opportunityId=gid("Opportunity", deal.id),
                                 subject="Offer", lines=[widget_line(catalogue, "3")])
    quote_id = created["quote"]["id"]
    client = await client_for(team[who])

    # when
    updated = await client.data(
        UPDATE_QUOTE, {"input": {"id": quote_id, "lines": [widget_line(catalogue, "9")]}}
    )
    unsynced = await client.data(SYNC_QUOTE, {"input": {"quoteId": quote_id, "sync": False}})
    deleted = await client.data(DELETE_QUOTE, {"input": {"id": quote_id}})

    # then
    assert errors_of(updated["updateQuote"]) == [(["input", "id"], "NOT_FOUND")]
    assert errors_of(unsynced["syncQuote"]) == [(["input", "quoteId"], "NOT_FOUND")]
    assert errors_of(deleted["deleteQuote"]) == [(["input", "id"], "NOT_FOUND")]
    quote = await store.get(models.Quote, pk_of(quote_id, "Quote"))
    assert (quote.is_synced, quote.deleted_at) == (True, None)
    assert await store.lines(pk_of(quote_id, "Quote")) == [
        (catalogue["widget"].id, Decimal("3.000"), Decimal("19.99"))
    ]
    assert await store.deal(deal.id) == (Decimal("59.97"), "QUOTE", 2)


async def test_a_manager_edits_the_quotes_of_their_team(
    team, catalogue, deal, client_for, store
):
    # given
    client = await client_for(team["manager"])

    # when
    created = await create_quote(client, opportunityId=gid("Opportunity", deal.id),
                                 subject="Offer", lines=[widget_line(catalogue, "1")])
    updated = await client.data(
        UPDATE_QUOTE,
        {"input": {"id": created["quote"]["id"], "lines": [widget_line(catalogue, "2")]}},
    )

    # then
    assert created["userErrors"] == []
    assert updated["updateQuote"]["userErrors"] == []
    assert await store.deal(deal.id) == (Decimal("39.98"), "QUOTE", 3)


async def test_under_public_sharing_a_rep_reads_but_may_not_quote_someone_elses_deal(
    team, catalogue, deal, factory, db, public_app, store
):
    # given
    token = await factory.token(team["other_rep"])
    await db.commit()
    client = GraphQLClient(public_app, token)
    deal_id = gid("Opportunity", deal.id)

    # when
    payload = await create_quote(client, opportunityId=deal_id, subject="Offer",
                                 lines=[widget_line(catalogue)])

    # then
    assert payload["quote"] is None
    assert errors_of(payload) == [(["input", "opportunityId"], "PERMISSION_DENIED")]
    assert await store.count(models.Quote) == 0
    assert await store.deal(deal.id) == (Decimal("1000.00"), "MANUAL", 1)
