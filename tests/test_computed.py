"""Computed fields (weighted amount, stage-derived flags, day counts, quote totals, campaign
figures) and reference data (sales stages, picklists, currencies)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

import models
from resolvers.ids import to_global_id

DEAL = """
query Deal($id: ID!) {
  node(id: $id) {
    ... on Opportunity {
      amount
      probability
      weightedAmount
      forecastCategory
      isClosed
      isWon
      ageDays
      daysInStage
      daysToClose
      isOverdue
      salesStage { key }
    }
  }
}
"""

QUOTE_TOTALS = """
query Quote($id: ID!) {
  node(id: $id) {
    ... on Quote {
      lines { netTotal }
      subtotal
      discountTotal
      netTotal
      taxTotal
      grandTotal
    }
  }
}
"""

CAMPAIGN_FIGURES = """
query Campaign($id: ID!) {
  node(id: $id) {
    ... on Campaign { opportunityCount pipelineAmount wonAmount roi }
  }
}
"""

SALES_STAGES = """
query SalesStages($includeInactive: Boolean! = false) {
  salesStages(includeInactive: $includeInactive) {
    key name position probability forecastCategory isClosed isWon isActive
  }
}
"""

PICKLIST = """
query Picklist($name: String!) {
  picklist(name: $name) { key label position isActive }
}
"""

CURRENCIES = """
{ currencies { code rate isBase } }
"""

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def gid(type_name: str, pk: int) -> str:
    return to_global_id(type_name, pk)


def local_noon(days_ago: int) -> dt.datetime:
    """Noon of a day in the server's local time zone (the one "today" is counted in)."""
    day = dt.date.today() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(12)).astimezone()


async def deal_fields(client, deal: models.Opportunity) -> dict:
    return (await client.data(DEAL, {"id": gid("Opportunity", deal.id)}))["node"]


# --- Opportunity ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "probability", "weighted"),
    [
        ("10.05", "50", "5.03"),  # 5.025: half-up, where banker's rounding gives 5.02
        ("0.01", "50", "0.01"),  # 0.005
        ("0.25", "10", "0.03"),  # 0.025
        ("20.10", "12.50", "2.51"),  # 2.5125
        ("333.33", "33.33", "111.10"),  # 111.099889
        ("1000.00", "65", "650.00"),
        ("1234.56", "0", "0.00"),
        ("123456789.99", "33.33", "41148148.10"),  # 41148148.103667
    ],
)
async def test_weighted_amount_rounds_half_up(
    team, factory, db, client_for, amount, probability, weighted
):
    # given
    deal = await factory.opportunity(team["rep"], amount=amount, probability=probability)
    await db.commit()
    client = await client_for(team["rep"])

    # when
    fields = await deal_fields(client, deal)

    # then
    assert fields["weightedAmount"] == weighted


@pytest.mark.parametrize(
    ("stage", "category", "is_closed", "is_won"),
    [
        ("PROSPECTING", "PIPELINE", False, False),
        ("QUALIFICATION", "PIPELINE", False, False),
        ("NEEDS_ANALYSIS", "PIPELINE", False, False),
        ("VALUE_PROPOSITION", "PIPELINE", False, False),
        ("ID_DECISION_MAKERS", "PIPELINE", False, False),
        ("PERCEPTION_ANALYSIS", "BEST_CASE", False, False),
        ("PROPOSAL_PRICE_QUOTE", "BEST_CASE", False, False),
        ("NEGOTIATION_REVIEW", "COMMIT", False, False),
        ("CLOSED_WON", "CLOSED", True, True),
        ("CLOSED_LOST", "OMITTED", True, False),
    ],
)
async def test_stage_flags(team, factory, db, client_for, stage, category, is_closed, is_won):
    # given
    deal = await factory.opportunity(team["rep"], stage=stage)
    await db.commit()
    client = await client_for(team["rep"])

    # when
    fields = await deal_fields(client, deal)

    # then
    assert fields["salesStage"] == {"key": stage}
    assert (fields["forecastCategory"], fields["isClosed"], fields["isWon"]) == (
        category, is_closed, is_won,
    )


async def test_flags_follow_an_admin_edited_stage(team, factory, db, client_for):
    # given: an admin moved Negotiation/Review to the best case
    stage = await db.get(models.SalesStage, "NEGOTIATION_REVIEW")
    stage.forecast_category = "BEST_CASE"
    deal = await factory.opportunity(team["rep"], stage="NEGOTIATION_REVIEW")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    fields = await deal_fields(client, deal)

    # then
    assert fields["forecastCategory"] == "BEST_CASE"


@pytest.mark.parametrize("days_ago", [0, 1, 7, 400])
async def test_age_days(team, factory, db, client_for, days_ago):
    # given
    deal = await factory.opportunity(team["rep"], created_at=local_noon(days_ago))
    await db.commit()
    client = await client_for(team["rep"])

    # when
    fields = await deal_fields(client, deal)

    # then
    assert fields["ageDays"] == days_ago


async def test_days_in_stage_counts_from_the_last_stage_change(team, factory, db, client_for):
    # given: created 30 days ago, in its current stage for 3 days
    deal = await factory.opportunity(
        team["rep"], created_at=local_noon(30), stage_changed_at=local_noon(3)
    )
    fresh = await factory.opportunity(team["rep"], created_at=local_noon(0))
    await db.commit()
    client = await client_for(team["rep"])

    # when
    fields = await deal_fields(client, deal)
    fresh_fields = await deal_fields(client, fresh)

    # then
    assert (fields["ageDays"], fields["daysInStage"]) == (30, 3)
    assert (fresh_fields["ageDays"], fresh_fields["daysInStage"]) == (0, 0)


@pytest.mark.parametrize(
    ("stage", "close_in_days", "days_to_close", "is_overdue"),
    [
        ("PROSPECTING", 12, 12, False),
        ("PROSPECTING", 0, 0, False),
        ("NEGOTIATION_REVIEW", -1, -1, True),
        ("PROPOSAL_PRICE_QUOTE", -4, -4, True),
        ("CLOSED_WON", -4, None, False),
        ("CLOSED_LOST", -4, None, False),
        ("CLOSED_WON", 5, None, False),
    ],
)
async def test_days_to_close_and_overdue(
    team, factory, db, client_for, stage, close_in_days, days_to_close, is_overdue
):
    # given
    close = dt.date.today() + dt.timedelta(days=close_in_days)
    deal = await factory.opportunity(team["rep"], stage=stage, close=close)
    await db.commit()
    client = await client_for(team["rep"])

    # when
    fields = await deal_fields(client, deal)

    # then
    assert (fields["daysToClose"], fields["isOverdue"]) == (days_to_close, is_overdue)


# --- Quote totals --------------------------------------------------------------------


async def test_quote_totals_round_per_line(team, factory, db, client_for):
    # given: lines whose unrounded figures would round differently as a sum
    deal = await factory.opportunity(team["rep"])
    widget = await factory.product("Widget")
    gadget = await factory.product("Gadget")
    quote = await factory.quote(
        deal,
        [
            # product, quantity, list price, discount %, tax %
            (widget, "3", "3.35", "10", "22"),  # 10.05 → net 9.045 → 9.05, tax 1.991 → 1.99
            (gadget, "1.5", "10.01", "0", "22"),  # 15.015 → 15.02, tax 3.3044 → 3.30
            (widget, "7", "0.15", "50", "10"),  # 1.05 → net 0.525 → 0.53, tax 0.053 → 0.05
            (gadget, "2", "12.34", "12.5", "4"),  # 24.68 → net 21.595 → 21.60, tax 0.864 → 0.86
            (gadget, "1.5", "10.01", "0", "22"),  # 15.015 → 15.02, tax 3.3044 → 3.30
        ],
    )
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(QUOTE_TOTALS, {"id": gid("Quote", quote.id)})

    # then: rounding the unrounded sums instead would give 65.81, 61.20 and 9.51
    assert data["node"] == {
        "lines": [
            {"netTotal": "9.05"},
            {"netTotal": "15.02"},
            {"netTotal": "0.53"},
            {"netTotal": "21.60"},
            {"netTotal": "15.02"},
        ],
        "subtotal": "65.82",
        "discountTotal": "4.60",
        "netTotal": "61.22",
        "taxTotal": "9.50",
        "grandTotal": "70.72",
    }


async def test_quote_totals_with_full_discount_and_no_tax(team, factory, db, client_for):
    # given
    deal = await factory.opportunity(team["rep"])
    widget = await factory.product()
    quote = await factory.quote(
        deal, [(widget, "4", "25.00", "100", "22"), (widget, "1", "99.99", "0", "0")]
    )
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(QUOTE_TOTALS, {"id": gid("Quote", quote.id)})

    # then
    assert data["node"] == {
        "lines": [{"netTotal": "0.00"}, {"netTotal": "99.99"}],
        "subtotal": "199.99",
        "discountTotal": "100.00",
        "netTotal": "99.99",
        "taxTotal": "0.00",
        "grandTotal": "99.99",
    }


async def test_quote_without_lines_totals_zero(team, factory, db, client_for):
    # given
    deal = await factory.opportunity(team["rep"])
    quote = await factory.quote(deal, [])
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(QUOTE_TOTALS, {"id": gid("Quote", quote.id)})

    # then
    assert data["node"] == {
        "lines": [], "subtotal": "0.00", "discountTotal": "0.00", "netTotal": "0.00",
        "taxTotal": "0.00", "grandTotal": "0.00",
    }


# --- Campaign figures ----------------------------------------------------------------


async def _campaign_with_deals(factory, db, team, actual_cost: str | None) -> models.Campaign:
    db.add(models.Currency(code="USD", rate=Decimal("1.10")))
    await db.flush()
    expo = await factory.campaign(
        team["admin"], "Expo", actual_cost=Decimal(actual_cost) if actual_cost else None
    )
    other = await factory.campaign(team["admin"], "Other")
    rep, rep2 = team["rep"], team["rep2"]
    await factory.opportunity(rep, amount="1000.00", campaign_id=expo.id)
    await factory.opportunity(  # 90.909090… EUR
        rep, amount="100.00", currency="USD", stage="NEGOTIATION_REVIEW", campaign_id=expo.id
    )
    await factory.opportunity(rep2, amount="2500.00", stage="CLOSED_WON", campaign_id=expo.id)
    await factory.opportunity(  # 500.00 EUR
        rep, amount="550.00", currency="USD", stage="CLOSED_WON", campaign_id=expo.id
    )
    await factory.opportunity(
        rep, amount="700.00", stage="CLOSED_LOST", campaign_id=expo.id, lost_reason="Price"
    )
    deleted = await factory.opportunity(rep, amount="9999.00", campaign_id=expo.id)
    deleted.deleted_at = T0
    deleted_won = await factory.opportunity(
        rep, amount="9999.00", stage="CLOSED_WON", campaign_id=expo.id
    )
    deleted_won.deleted_at = T0
    await factory.opportunity(team["other_rep"], amount="4000.00", campaign_id=expo.id)
    await factory.opportunity(rep, amount="123.00", campaign_id=other.id)
    await db.commit()
    return expo


async def test_campaign_figures_in_base_currency(team, factory, db, client_for):
    # given
    expo = await _campaign_with_deals(factory, db, team, actual_cost="700.00")
    client = await client_for(team["manager"])

    # when
    data = await client.data(CAMPAIGN_FIGURES, {"id": gid("Campaign", expo.id)})

    # then: open 1000 + 100/1.10; won 2500 + 550/1.10; roi (3000 − 700) / 700 × 100
    assert data["node"] == {
        "opportunityCount": 5,
        "pipelineAmount": "1090.91",
        "wonAmount": "3000.00",
        "roi": "328.57",
    }


async def test_campaign_figures_count_only_visible_deals(team, factory, db, client_for):
    # given
    expo = await _campaign_with_deals(factory, db, team, actual_cost="700.00")

    # when
    as_rep = await (await client_for(team["rep"])).data(
        CAMPAIGN_FIGURES, {"id": gid("Campaign", expo.id)}
    )
    as_admin = await (await client_for(team["admin"])).data(
        CAMPAIGN_FIGURES, {"id": gid("Campaign", expo.id)}
    )

    # then: the rep does not see rep2's won deal; the admin also sees the other team's
    assert as_rep["node"] == {
        "opportunityCount": 4,
        "pipelineAmount": "1090.91",
        "wonAmount": "500.00",
        "roi": "-28.57",
    }
    assert as_admin["node"] == {
        "opportunityCount": 6,
        "pipelineAmount": "5090.91",
        "wonAmount": "3000.00",
        "roi": "328.57",
    }


@pytest.mark.parametrize("actual_cost", [None, "0.00"])
async def test_campaign_roi_is_null_without_cost(team, factory, db, client_for, actual_cost):
    # given
    expo = await _campaign_with_deals(factory, db, team, actual_cost=actual_cost)
    client = await client_for(team["manager"])

    # when
    data = await client.data(CAMPAIGN_FIGURES, {"id": gid("Campaign", expo.id)})

    # then
    assert data["node"]["roi"] is None
    assert data["node"]["wonAmount"] == "3000.00"


async def test_campaign_without_deals(team, factory, db, client_for):
    # given
    empty = await factory.campaign(team["admin"], "Empty", actual_cost=Decimal("100.00"))
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(CAMPAIGN_FIGURES, {"id": gid("Campaign", empty.id)})

    # then
    assert data["node"] == {
        "opportunityCount": 0, "pipelineAmount": "0.00", "wonAmount": "0.00", "roi": "-100.00",
    }


# --- Reference data ------------------------------------------------------------------

DEFAULT_STAGES = [
    # key, name, probability, forecast category, closed, won
    ("PROSPECTING", "Prospecting", 10, "PIPELINE", False, False),
    ("QUALIFICATION", "Qualification", 20, "PIPELINE", False, False),
    ("NEEDS_ANALYSIS", "Needs Analysis", 25, "PIPELINE", False, False),
    ("VALUE_PROPOSITION", "Value Proposition", 30, "PIPELINE", False, False),
    ("ID_DECISION_MAKERS", "Id. Decision Makers", 40, "PIPELINE", False, False),
    ("PERCEPTION_ANALYSIS", "Perception Analysis", 50, "BEST_CASE", False, False),
    ("PROPOSAL_PRICE_QUOTE", "Proposal/Price Quote", 65, "BEST_CASE", False, False),
    ("NEGOTIATION_REVIEW", "Negotiation/Review", 80, "COMMIT", False, False),
    ("CLOSED_WON", "Closed Won", 100, "CLOSED", True, True),
    ("CLOSED_LOST", "Closed Lost", 0, "OMITTED", True, False),
]


async def test_sales_stages_defaults_in_order(team, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    data = await client.data(SALES_STAGES)

    # then
    stages = data["salesStages"]
    assert [
        (s["key"], s["name"], Decimal(s["probability"]), s["forecastCategory"], s["isClosed"],
         s["isWon"])
        for s in stages
    ] == [(k, n, Decimal(p), c, closed, won) for k, n, p, c, closed, won in DEFAULT_STAGES]
    assert [s["position"] for s in stages] == sorted(s["position"] for s in stages)
    assert len({s["position"] for s in stages}) == 10
    assert all(s["isActive"] for s in stages)


async def test_inactive_stage_is_listed_only_on_request(team, db, client_for):
    # given
    stage = await db.get(models.SalesStage, "VALUE_PROPOSITION")
    stage.is_active = False
    await db.commit()
    client = await client_for(team["rep"])

    # when
    active = await client.data(SALES_STAGES)
    everything = await client.data(SALES_STAGES, {"includeInactive": True})

    # then
    keys = [k for k, *_ in DEFAULT_STAGES]
    assert [s["key"] for s in active["salesStages"]] == keys[:3] + keys[4:]
    assert [s["key"] for s in everything["salesStages"]] == keys
    assert [s["isActive"] for s in everything["salesStages"]][3] is False


PICKLIST_KEYS = {
    "salesStage": [k for k, *_ in DEFAULT_STAGES],
    "opportunityType": ["EXISTING_BUSINESS", "NEW_BUSINESS"],
    "leadSource": [
        "COLD_CALL", "EXISTING_CUSTOMER", "SELF_GENERATED", "EMPLOYEE", "PARTNER",
        "PUBLIC_RELATIONS", "DIRECT_MAIL", "CONFERENCE", "TRADE_SHOW", "WEB_SITE",
        "WORD_OF_MOUTH", "OTHER",
    ],
    "contactRole": [
        "BUSINESS_USER", "MANAGER", "PURCHASE_AGENT", "PURCHASE_MANAGER", "EXAMINER",
        "SPONSOR_MANAGER", "CONSULTANT", "TECH_PURCHASE_AGENT", "OTHER",
    ],
    "quoteStage": ["CREATED", "DELIVERED", "REVIEWED", "ACCEPTED", "REJECTED"],
    "leadStatus": [
        "NOT_CONTACTED", "ATTEMPTED_TO_CONTACT", "CONTACTED", "CONTACT_IN_FUTURE",
        "PRE_QUALIFIED", "QUALIFIED", "HOT", "WARM", "COLD", "JUNK_LEAD", "LOST_LEAD",
    ],
    "industry": [
        "BANKING", "CONSULTING", "EDUCATION", "ENERGY", "FINANCE", "GOVERNMENT", "HEALTHCARE",
        "MANUFACTURING", "MEDIA", "RETAIL", "TECHNOLOGY", "TELECOMMUNICATIONS",
        "TRANSPORTATION", "OTHER",
    ],
    "campaignType": [
        "CONFERENCE", "WEBINAR", "TRADE_SHOW", "PUBLIC_RELATIONS", "PARTNERS",
        "REFERRAL_PROGRAM", "ADVERTISEMENT", "DIRECT_MAIL", "EMAIL", "TELEMARKETING", "OTHER",
    ],
    "campaignStatus": ["PLANNING", "ACTIVE", "INACTIVE", "COMPLETED", "CANCELLED"],
}


def screaming_snake(label: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", label.upper()).strip("_")


@pytest.mark.parametrize("name", list(PICKLIST_KEYS))
async def test_picklist_default_keys_in_order(team, client_for, name):
    # given
    client = await client_for(team["rep"])

    # when
    data = await client.data(PICKLIST, {"name": name})

    # then: labels are the English defaults the keys are made from
    values = data["picklist"]
    assert [v["key"] for v in values] == PICKLIST_KEYS[name]
    assert [screaming_snake(v["label"]) for v in values] == PICKLIST_KEYS[name]
    assert [v["position"] for v in values] == sorted(v["position"] for v in values)
    assert len({v["position"] for v in values}) == len(values)
    assert all(v["isActive"] for v in values)


async def test_picklist_labels(team, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    stages = await client.data(PICKLIST, {"name": "salesStage"})
    types = await client.data(PICKLIST, {"name": "opportunityType"})

    # then: a stage's label is its name
    assert [v["label"] for v in stages["picklist"]] == [n for _, n, *_ in DEFAULT_STAGES]
    assert [v["label"] for v in types["picklist"]] == ["Existing Business", "New Business"]


@pytest.mark.parametrize("name", ["noSuchList", "", "SALESSTAGE", "lead_source"])
async def test_unknown_picklist_is_refused(team, client_for, name):
    # given
    client = await client_for(team["rep"])

    # when
    body = await client.query(PICKLIST, {"name": name})

    # then
    assert body["data"] is None
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == ["picklist"]
    assert "salesStage" in error["message"]


async def test_currencies_list_the_base_currency(team, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    data = await client.data(CURRENCIES)

    # then
    assert [(c["code"], Decimal(c["rate"]), c["isBase"]) for c in data["currencies"]] == [
        ("EUR", Decimal(1), True),
    ]


async def test_currencies_list_added_rates(team, db, client_for):
    # given
    db.add(models.Currency(code="USD", rate=Decimal("1.10")))
    db.add(models.Currency(code="CHF", rate=Decimal("0.945678")))
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(CURRENCIES)

    # then
    assert [(c["code"], Decimal(c["rate"]), c["isBase"]) for c in data["currencies"]] == [
        ("CHF", Decimal("0.945678"), False),
        ("EUR", Decimal(1), True),
        ("USD", Decimal("1.10"), False),
    ]
