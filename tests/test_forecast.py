"""forecast(groupBy, period, filter, currency), currencies / setCurrencyRate, and the campaign
figures that share the currency conversion.

Every figure is checked against an independent computation over the hand-made DEALS below:
amount in base = amount / rate, in the report currency × its rate, summed exactly (Decimal
inputs as Fractions, so no intermediate rounding) and rounded half-up to cents once per figure.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import select

import models
from resolvers.ids import to_global_id

FORECAST = """
query Forecast(
  $groupBy: [ForecastDimension!]!, $period: PeriodUnit! = MONTH,
  $filter: OpportunityFilter, $currency: String
) {
  forecast(groupBy: $groupBy, period: $period, filter: $filter, currency: $currency) {
    currency
    buckets {
      period
      assignedTo { username }
      stage { key }
      campaign { name }
      forecastCategory
      type
      leadSource
      count amount weightedAmount openAmount wonAmount lostAmount
    }
    totals { count amount weightedAmount openAmount wonAmount lostAmount }
  }
}
"""

CURRENCIES = """
query { currencies { code rate isBase } }
"""

SET_CURRENCY_RATE = """
mutation SetCurrencyRate($input: SetCurrencyRateInput!) {
  setCurrencyRate(input: $input) {
    currency { code rate isBase }
    userErrors { field message code }
  }
}
"""

OPPORTUNITY = """
query Opportunity($id: ID!) {
  node(id: $id) { ... on Opportunity { amount currency weightedAmount } }
}
"""

CAMPAIGN_FIGURES = """
query CampaignFigures($id: ID!) {
  node(id: $id) {
    ... on Campaign { name opportunityCount pipelineAmount wonAmount roi }
  }
}
"""

FIGURES = ("count", "amount", "weightedAmount", "openAmount", "wonAmount", "lostAmount")
DIMENSIONS = ("PERIOD", "ASSIGNEE", "STAGE", "CAMPAIGN", "FORECAST_CATEGORY", "TYPE", "LEAD_SOURCE")

# key: (position, default probability, forecast category, closed, won) — API.md's defaults
STAGES: dict[str, tuple[int, int, str, bool, bool]] = {
    "PROSPECTING": (1, 10, "PIPELINE", False, False),
    "QUALIFICATION": (2, 20, "PIPELINE", False, False),
    "NEEDS_ANALYSIS": (3, 25, "PIPELINE", False, False),
    "VALUE_PROPOSITION": (4, 30, "PIPELINE", False, False),
    "ID_DECISION_MAKERS": (5, 40, "PIPELINE", False, False),
    "PERCEPTION_ANALYSIS": (6, 50, "BEST_CASE", False, False),
    "PROPOSAL_PRICE_QUOTE": (7, 65, "BEST_CASE", False, False),
    "NEGOTIATION_REVIEW": (8, 80, "COMMIT", False, False),
    "CLOSED_WON": (9, 100, "CLOSED", True, True),
    "CLOSED_LOST": (10, 0, "OMITTED", True, False),
}
CATEGORY_ORDER = ("PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMITTED")

# vtiger rates: units of the currency that one EUR (the base) buys.
RATES = {"EUR": Decimal("1"), "USD": Decimal("1.10"), "GBP": Decimal("0.85")}

TEAMS = {
    "rep": {"rep"},
    "rep2": {"rep2"},
    "manager": {"manager", "rep", "rep2"},
    "other_manager": {"other_manager", "other_rep"},
    "other_rep": {"other_rep"},
}


def d(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, day)


@dataclass(frozen=True)
class Deal:
    name: str
    owner: str
    stage: str
    amount: str
    currency: str
    close: dt.date
    actual: dt.date | None = None
    probability: str | None = None
    campaign: str | None = None
    type: str | None = None
    lead_source: str | None = None
    deleted: bool = False

    @property
    def closed(self) -> bool:
        return STAGES[self.stage][3]

    @property
    def won(self) -> bool:
        return STAGES[self.stage][4]

    @property
    def category(self) -> str:
        return STAGES[self.stage][2]

    @property
    def counts_on(self) -> dt.date:
        """Open deals count when they are expected to close, closed ones when they closed."""
        return self.actual if self.closed and self.actual else self.close

    @property
    def weight(self) -> Decimal:
        """Won deals weigh 100%, lost 0%, open ones their probability."""
        if self.closed:
            return Decimal(100) if self.won else Decimal(0)
        return Decimal(self.probability or STAGES[self.stage][1])


DEALS = [
    Deal("Alpha", "rep", "PROSPECTING", "1000.00", "EUR", d(2027, 1, 15), campaign="Expo",
         type="NEW_BUSINESS", lead_source="COLD_CALL"),
    Deal("Bravo", "rep", "NEGOTIATION_REVIEW", "2345.67", "USD", d(2027, 2, 28), campaign="Expo",
         type="EXISTING_BUSINESS", lead_source="WEB_SITE"),
    Deal("Charlie", "rep", "PROPOSAL_PRICE_QUOTE", "999.99", "GBP", d(2027, 3, 31),
         type="NEW_BUSINESS"),
    # won in another month, quarter (and so bucket) than it was expected to close
    Deal("Delta", "rep", "CLOSED_WON", "5000.00", "USD", d(2027, 3, 20), actual=d(2027, 4, 2),
         campaign="Webinar", type="NEW_BUSINESS", lead_source="PARTNER"),
    Deal("Echo", "rep", "CLOSED_LOST", "750.50", "EUR", d(2027, 6, 30), actual=d(2027, 5, 10),
         campaign="Webinar", lead_source="COLD_CALL"),
    Deal("Foxtrot", "rep", "ID_DECISION_MAKERS", "77.77", "USD", d(2027, 1, 31)),
    Deal("Golf", "rep2", "QUALIFICATION", "1234.56", "GBP", d(2027, 4, 15), probability="33.33",
         campaign="Expo", type="EXISTING_BUSINESS", lead_source="WEB_SITE"),
    # won in another year than it was expected to close
    Deal("Hotel", "rep2", "CLOSED_WON", "3333.33", "EUR", d(2026, 12, 31), actual=d(2027, 1, 5),
         type="NEW_BUSINESS", lead_source="PARTNER"),
    Deal("India", "rep2", "PERCEPTION_ANALYSIS", "10000.01", "USD", d(2027, 12, 31),
         campaign="Webinar", type="NEW_BUSINESS", lead_source="TRADE_SHOW"),
    Deal("Juliett", "rep2", "NEGOTIATION_REVIEW", "4321.09", "EUR", d(2028, 1, 1),
         probability="90", campaign="Expo", type="EXISTING_BUSINESS", lead_source="WEB_SITE"),
    Deal("Kilo", "rep2", "CLOSED_WON", "1500.00", "GBP", d(2027, 5, 31), actual=d(2027, 5, 20),
         campaign="Expo", type="EXISTING_BUSINESS", lead_source="PARTNER"),
    Deal("Lima", "manager", "VALUE_PROPOSITION", "500.00", "EUR", d(2027, 2, 1),
         type="NEW_BUSINESS", lead_source="EMPLOYEE"),
    Deal("Mike", "rep", "NEGOTIATION_REVIEW", "7777.77", "EUR", d(2027, 2, 15), campaign="Expo",
         type="NEW_BUSINESS", lead_source="COLD_CALL", deleted=True),
    Deal("November", "other_rep", "NEGOTIATION_REVIEW", "8888.88", "EUR", d(2027, 2, 15),
         campaign="Expo", type="NEW_BUSINESS", lead_source="COLD_CALL"),
    Deal("Oscar", "other_rep", "CLOSED_WON", "2222.22", "USD", d(2027, 3, 1),
         actual=d(2027, 3, 3), campaign="Webinar"),
    Deal("Papa", "rep", "CLOSED_LOST", "420.00", "GBP", d(2027, 8, 31), actual=d(2027, 9, 1),
         type="EXISTING_BUSINESS", lead_source="WEB_SITE"),
    Deal("Quebec", "rep2", "CLOSED_WON", "640.00", "USD", d(2027, 2, 10), actual=d(2027, 2, 9),
         campaign="Webinar", type="NEW_BUSINESS", lead_source="PARTNER", deleted=True),
]

CAMPAIGN_COSTS = {"Expo": Decimal("1500.00"), "Webinar": Decimal("3000.00"), "Referral": None}


def visible(viewer: str, deals: Iterable[Deal] = DEALS) -> list[Deal]:
    """The live deals a viewer may see (PRIVATE sharing: own team, admins everything)."""
    return [
        deal for deal in deals
        if not deal.deleted and (viewer == "admin" or deal.owner in TEAMS[viewer])
    ]


def money(value: Decimal | Fraction) -> str:
    """Half-up to cents, from the exact value (a Fraction is never rounded on the way)."""
    if isinstance(value, Fraction):
        hundredths = math.floor(value * 100 + Fraction(1, 2))
        return str(Decimal(hundredths).scaleb(-2))
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def in_report(amount: Decimal, currency: str, report: str) -> Fraction:
    """amount / rate is the base amount; × the report currency's rate, exactly."""
    return Fraction(amount) / Fraction(RATES[currency]) * Fraction(RATES[report])


def period_key(day: dt.date, unit: str) -> str:
    if unit == "YEAR":
        return str(day.year)
    if unit == "QUARTER":
        return f"{day.year}-Q{(day.month + 2) // 3}"
    return f"{day.year}-{day.month:02d}"


Key = tuple[str | None, ...]


def key_of(deal: Deal, dims: Iterable[str], unit: str) -> Key:
    """(period, assignee, stage, campaign, category, type, lead source); None when ungrouped."""
    values = {
        "PERIOD": period_key(deal.counts_on, unit),
        "ASSIGNEE": deal.owner,
        "STAGE": deal.stage,
        "CAMPAIGN": deal.campaign,
        "FORECAST_CATEGORY": deal.category,
        "TYPE": deal.type,
        "LEAD_SOURCE": deal.lead_source,
    }
    return tuple(values[dim] if dim in dims else None for dim in DIMENSIONS)


def figures(deals: list[Deal], report: str = "EUR") -> dict[str, Any]:
    def total(deals: Iterable[Deal], weighted: bool = False) -> str:
        return money(sum(
            (
                in_report(Decimal(x.amount) * (x.weight / 100 if weighted else 1), x.currency,
                          report)
                for x in deals
            ),
            Fraction(0),
        ))

    return {
        "count": len(deals),
        "amount": total(deals),
        "weightedAmount": total(deals, weighted=True),
        "openAmount": total(x for x in deals if not x.closed),
        "wonAmount": total(x for x in deals if x.won),
        "lostAmount": total(x for x in deals if x.closed and not x.won),
    }


def expected_buckets(
    deals: list[Deal], dims: Iterable[str], unit: str = "MONTH", report: str = "EUR"
) -> dict[Key, dict[str, Any]]:
    dims = list(dims)
    groups: dict[Key, list[Deal]] = defaultdict(list)
    for deal in deals:
        groups[key_of(deal, dims, unit)].append(deal)
    if dims == ["STAGE"]:  # the board: every active stage, empty ones included
        for stage in STAGES:
            groups.setdefault((None, None, stage, None, None, None, None), [])
    return {key: figures(group, report) for key, group in groups.items()}


def bucket_key(bucket: dict[str, Any]) -> Key:
    def name(obj: dict[str, Any] | None, field: str) -> str | None:
        return None if obj is None else obj[field]

    return (
        bucket["period"],
        name(bucket["assignedTo"], "username"),
        name(bucket["stage"], "key"),
        name(bucket["campaign"], "name"),
        bucket["forecastCategory"],
        bucket["type"],
        bucket["leadSource"],
    )


def actual_buckets(forecast: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    buckets = {bucket_key(b): {f: b[f] for f in FIGURES} for b in forecast["buckets"]}
    assert len(buckets) == len(forecast["buckets"]), "two buckets share their keys"
    return buckets


def gid(type_name: str, pk: int) -> str:
    return to_global_id(type_name, pk)


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    assert body["data"] is None, body
    assert len(body["errors"]) == 1, body["errors"]
    return body["errors"][0]  # type: ignore[no-any-return]


async def add_currencies(db: Any) -> None:
    db.add_all([models.Currency(code="USD", rate=RATES["USD"]),
                models.Currency(code="GBP", rate=RATES["GBP"])])
    await db.flush()


async def arrange(
    factory: Any, db: Any, team: dict[str, models.User], deals: list[Deal] = DEALS
) -> dict[str, models.Campaign]:
    campaigns = {
        name: await factory.campaign(team["admin"], name=name, actual_cost=cost)
        for name, cost in CAMPAIGN_COSTS.items()
    }
    for deal in deals:
        await factory.opportunity(
            team[deal.owner], name=deal.name, stage=deal.stage, amount=deal.amount,
            probability=deal.probability, close=deal.close, currency=deal.currency,
            actual_close_date=deal.actual,
            campaign_id=campaigns[deal.campaign].id if deal.campaign else None,
            type=deal.type, lead_source=deal.lead_source,
            deleted_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC) if deal.deleted else None,
        )
    await db.commit()
    return campaigns


@pytest.fixture
async def campaigns(team, factory, db) -> dict[str, models.Campaign]:
    await add_currencies(db)
    return await arrange(factory, db, team)


# --- grouping --------------------------------------------------------------------------


@pytest.mark.parametrize("dimension", DIMENSIONS)
async def test_each_dimension_alone_sums_the_managers_deals(
    dimension, team, campaigns, client_for
):
    # given
    client = await client_for(team["manager"])
    deals = visible("manager")

    # when
    data = await client.data(FORECAST, {"groupBy": [dimension]})

    # then
    forecast = data["forecast"]
    assert forecast["currency"] == "EUR"
    assert actual_buckets(forecast) == expected_buckets(deals, [dimension])
    assert forecast["totals"] == figures(deals)


@pytest.mark.parametrize(
    ("unit", "keys"),
    [
        ("MONTH", ["2027-01", "2027-02", "2027-03", "2027-04", "2027-05", "2027-09", "2027-12",
                   "2028-01"]),
        ("QUARTER", ["2027-Q1", "2027-Q2", "2027-Q3", "2027-Q4", "2028-Q1"]),
        ("YEAR", ["2027", "2028"]),
    ],
)
async def test_period_keys_follow_the_unit_in_date_order(
    unit, keys, team, campaigns, client_for
):
    # given: closed deals count when they closed (Hotel: expected 2026-12, won 2027-01;
    # Echo: expected 2027-06, lost 2027-05; Papa: expected 2027-08, lost 2027-09)
    client = await client_for(team["admin"])
    deals = visible("admin")

    # when
    data = await client.data(FORECAST, {"groupBy": ["PERIOD"], "period": unit})

    # then
    forecast = data["forecast"]
    assert [b["period"] for b in forecast["buckets"]] == keys
    assert actual_buckets(forecast) == expected_buckets(deals, ["PERIOD"], unit)
    assert forecast["totals"] == figures(deals)


async def test_a_closed_deal_counts_in_the_period_it_closed_not_the_expected_one(
    team, campaigns, client_for
):
    # given: Delta was expected in 2027-03 (Q1) and won on 2027-04-02 (Q2)
    client = await client_for(team["rep"])
    won = {"stage": ["CLOSED_WON"]}

    # when
    months = await client.data(FORECAST, {"groupBy": ["PERIOD"], "filter": won})
    quarters = await client.data(
        FORECAST, {"groupBy": ["PERIOD"], "period": "QUARTER", "filter": won}
    )

    # then
    delta = figures([deal for deal in DEALS if deal.name == "Delta"])
    assert [(b["period"], b["wonAmount"]) for b in months["forecast"]["buckets"]] == [
        ("2027-04", delta["wonAmount"])
    ]
    assert [(b["period"], b["count"]) for b in quarters["forecast"]["buckets"]] == [
        ("2027-Q2", 1)
    ]
    assert delta["wonAmount"] == "4545.45"


async def test_period_and_stage_by_quarter_in_period_then_stage_order(
    team, campaigns, client_for
):
    # given
    client = await client_for(team["manager"])
    deals = visible("manager")

    # when
    data = await client.data(FORECAST, {"groupBy": ["PERIOD", "STAGE"], "period": "QUARTER"})

    # then
    forecast = data["forecast"]
    expected = expected_buckets(deals, ["PERIOD", "STAGE"], "QUARTER")
    assert actual_buckets(forecast) == expected
    order = sorted(expected, key=lambda k: (k[0], STAGES[k[2] or ""][0]))
    assert [bucket_key(b) for b in forecast["buckets"]] == order
    assert forecast["totals"] == figures(deals)


async def test_assignee_and_forecast_category(team, campaigns, client_for):
    # given
    client = await client_for(team["manager"])
    deals = visible("manager")

    # when
    data = await client.data(FORECAST, {"groupBy": ["ASSIGNEE", "FORECAST_CATEGORY"]})

    # then
    forecast = data["forecast"]
    expected = expected_buckets(deals, ["ASSIGNEE", "FORECAST_CATEGORY"])
    assert actual_buckets(forecast) == expected
    order = sorted(expected, key=lambda k: (k[1] or "", CATEGORY_ORDER.index(k[4] or "")))
    assert [bucket_key(b) for b in forecast["buckets"]] == order
    assert forecast["totals"] == figures(deals)


@pytest.mark.parametrize("unit", ["MONTH", "QUARTER", "YEAR"])
async def test_all_seven_dimensions_together(unit, team, campaigns, client_for):
    # given
    client = await client_for(team["admin"])
    deals = visible("admin")

    # when
    data = await client.data(FORECAST, {"groupBy": list(DIMENSIONS), "period": unit})

    # then
    forecast = data["forecast"]
    assert actual_buckets(forecast) == expected_buckets(deals, DIMENSIONS, unit)
    assert forecast["totals"] == figures(deals)


async def test_no_dimension_gives_one_bucket_of_everything_but_deleted_deals(
    team, campaigns, client_for
):
    # given: rep has 8 deals, one of them (Mike) in the recycle bin
    client = await client_for(team["rep"])
    deals = visible("rep")

    # when
    data = await client.data(FORECAST, {"groupBy": []})

    # then
    forecast = data["forecast"]
    assert len(deals) == 7
    assert actual_buckets(forecast) == {(None,) * 7: figures(deals)}
    assert forecast["totals"] == figures(deals)
    assert forecast["totals"]["count"] == 7


# --- currencies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "dims", "unit"),
    [
        ("USD", ["ASSIGNEE"], "MONTH"),
        ("USD", ["PERIOD", "CAMPAIGN"], "QUARTER"),
        ("GBP", ["STAGE", "TYPE"], "YEAR"),
        ("EUR", ["LEAD_SOURCE"], "MONTH"),
    ],
)
async def test_figures_are_converted_to_the_report_currency(
    report, dims, unit, team, campaigns, client_for
):
    # given
    client = await client_for(team["admin"])
    deals = visible("admin")

    # when
    data = await client.data(
        FORECAST, {"groupBy": dims, "period": unit, "currency": report}
    )

    # then
    forecast = data["forecast"]
    assert forecast["currency"] == report
    assert actual_buckets(forecast) == expected_buckets(deals, dims, unit, report)
    assert forecast["totals"] == figures(deals, report)


async def test_a_usd_deal_in_a_usd_report_keeps_its_amount(team, factory, db, client_for):
    # given
    await add_currencies(db)
    await factory.opportunity(
        team["rep"], stage="PROPOSAL_PRICE_QUOTE", amount="2345.67", currency="USD"
    )
    await db.commit()
    client = await client_for(team["rep"])

    # when
    usd = await client.data(FORECAST, {"groupBy": [], "currency": "USD"})
    eur = await client.data(FORECAST, {"groupBy": []})

    # then: 2345.67 × 0.65 = 1524.6855; in EUR 2345.67 / 1.10 = 2132.427…
    assert usd["forecast"]["totals"]["amount"] == "2345.67"
    assert usd["forecast"]["totals"]["weightedAmount"] == "1524.69"
    assert eur["forecast"]["totals"]["amount"] == "2132.43"
    assert eur["forecast"]["totals"]["weightedAmount"] == "1386.08"


async def test_a_conversion_that_lands_on_half_a_cent_rounds_up(team, factory, db, client_for):
    # given: three USD deals won in Q2 2027, 12800.03 USD in all; in GBP that is
    # 12800.03 / 1.10 × 0.85 = 9891.705 exactly, which rounds half-up to 9891.71
    await add_currencies(db)
    for month, amount in [(4, "7980.26"), (5, "4714.25"), (6, "106.52")]:
        await factory.opportunity(team["rep"], stage="CLOSED_WON", amount=amount, currency="USD",
                                  actual_close_date=d(2027, month, 1))
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        FORECAST, {"groupBy": ["PERIOD"], "period": "QUARTER", "currency": "GBP"}
    )

    # then
    forecast = data["forecast"]
    assert [(b["period"], b["amount"], b["wonAmount"]) for b in forecast["buckets"]] == [
        ("2027-Q2", "9891.71", "9891.71")
    ]
    assert forecast["totals"]["amount"] == "9891.71"
    assert forecast["totals"]["weightedAmount"] == "9891.71"


async def test_a_deal_keeps_its_own_currency_and_weighted_amount(team, factory, db, client_for):
    # given
    await add_currencies(db)
    deal = await factory.opportunity(
        team["rep"], stage="PROPOSAL_PRICE_QUOTE", amount="2345.67", currency="USD"
    )
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(OPPORTUNITY, {"id": gid("Opportunity", deal.id)})
    usd = await client.data(FORECAST, {"groupBy": [], "currency": " usd "})

    # then: 2345.67 × 65 / 100 = 1524.6855, in USD, not converted
    assert data["node"] == {"amount": "2345.67", "currency": "USD", "weightedAmount": "1524.69"}
    assert usd["forecast"]["currency"] == "USD"
    assert usd["forecast"]["totals"]["weightedAmount"] == "1524.69"


@pytest.mark.parametrize("code", ["XYZ", "usdx", "E"])
async def test_an_unknown_report_currency_is_a_top_level_error(
    code, team, campaigns, client_for
):
    # given
    client = await client_for(team["manager"])

    # when
    body = await client.query(FORECAST, {"groupBy": ["STAGE"], "currency": code})

    # then
    error = only_error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "currency" in error["message"].lower()


# --- filter and visibility -----------------------------------------------------------


FILTERS: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], Callable[[Deal], bool]]] = [
    ("stage", lambda ids: {"stage": ["NEGOTIATION_REVIEW", "CLOSED_WON"]},
     lambda deal: deal.stage in ("NEGOTIATION_REVIEW", "CLOSED_WON")),
    ("assignedTo", lambda ids: {"assignedTo": [ids["rep2"]]}, lambda deal: deal.owner == "rep2"),
    ("assignedTo outside the team", lambda ids: {"assignedTo": [ids["rep"], ids["other_rep"]]},
     lambda deal: deal.owner == "rep"),
    ("isClosed", lambda ids: {"isClosed": True}, lambda deal: deal.closed),
    ("isOpen", lambda ids: {"isClosed": False}, lambda deal: not deal.closed),
    ("isWon", lambda ids: {"isWon": True}, lambda deal: deal.won),
    ("forecastCategory", lambda ids: {"forecastCategory": ["BEST_CASE", "COMMIT"]},
     lambda deal: deal.category in ("BEST_CASE", "COMMIT")),
    ("type", lambda ids: {"type": "NEW_BUSINESS"}, lambda deal: deal.type == "NEW_BUSINESS"),
    ("leadSource", lambda ids: {"leadSource": "WEB_SITE"},
     lambda deal: deal.lead_source == "WEB_SITE"),
    ("campaign", lambda ids: {"campaign": ids["Expo"]}, lambda deal: deal.campaign == "Expo"),
    ("expected close dates",
     lambda ids: {"expectedCloseDateFrom": "2027-03-01", "expectedCloseDateTo": "2027-06-30"},
     lambda deal: d(2027, 3, 1) <= deal.close <= d(2027, 6, 30)),
    ("amounts in own currency", lambda ids: {"amountMin": "1000", "amountMax": "5000.00"},
     lambda deal: Decimal(1000) <= Decimal(deal.amount) <= Decimal(5000)),
    ("combined",
     lambda ids: {"isClosed": False, "assignedTo": [ids["rep"]], "type": "NEW_BUSINESS"},
     lambda deal: not deal.closed and deal.owner == "rep" and deal.type == "NEW_BUSINESS"),
]


@pytest.mark.parametrize(("label", "make_filter", "matches"), FILTERS, ids=[f[0] for f in FILTERS])
async def test_the_opportunity_filter_narrows_the_forecast(
    label, make_filter, matches, team, campaigns, client_for
):
    # given
    ids = {name: gid("User", user.id) for name, user in team.items()}
    ids.update({name: gid("Campaign", c.id) for name, c in campaigns.items()})
    client = await client_for(team["manager"])
    deals = [deal for deal in visible("manager") if matches(deal)]
    assert deals, "the filter should keep some deals"

    # when
    data = await client.data(
        FORECAST,
        {"groupBy": ["PERIOD", "ASSIGNEE"], "period": "QUARTER", "filter": make_filter(ids),
         "currency": "USD"},
    )

    # then
    forecast = data["forecast"]
    assert actual_buckets(forecast) == expected_buckets(
        deals, ["PERIOD", "ASSIGNEE"], "QUARTER", "USD"
    )
    assert forecast["totals"] == figures(deals, "USD")


@pytest.mark.parametrize(
    "viewer", ["rep", "rep2", "manager", "other_manager", "other_rep", "admin"]
)
async def test_each_role_forecasts_only_the_deals_it_may_see(
    viewer, team, campaigns, client_for
):
    # given
    client = await client_for(team[viewer])
    deals = visible(viewer)

    # when
    data = await client.data(FORECAST, {"groupBy": ["ASSIGNEE", "CAMPAIGN"]})

    # then
    forecast = data["forecast"]
    assert actual_buckets(forecast) == expected_buckets(deals, ["ASSIGNEE", "CAMPAIGN"])
    assert forecast["totals"] == figures(deals)
    owners = {b["assignedTo"]["username"] for b in forecast["buckets"]}
    assert owners == {deal.owner for deal in deals}


async def test_a_forecast_of_nothing_visible_is_empty(team, campaigns, factory, db, client_for):
    # given: a new rep without deals
    newcomer = await factory.user("newcomer", "SALES_REP", team["manager"])
    await db.commit()
    client = await client_for(newcomer)

    # when
    data = await client.data(FORECAST, {"groupBy": ["PERIOD", "ASSIGNEE"]})

    # then
    assert data["forecast"]["buckets"] == []
    assert data["forecast"]["totals"] == figures([])


# --- the board: one bucket per active stage --------------------------------------------


async def test_stage_grouping_has_every_active_stage_in_order_with_empty_ones(
    team, campaigns, client_for
):
    # given: rep's deals are in 6 of the 10 stages
    client = await client_for(team["rep"])
    deals = visible("rep")

    # when
    data = await client.data(FORECAST, {"groupBy": ["STAGE"]})

    # then
    forecast = data["forecast"]
    assert [b["stage"]["key"] for b in forecast["buckets"]] == list(STAGES)
    assert actual_buckets(forecast) == expected_buckets(deals, ["STAGE"])
    empty = [b for b in forecast["buckets"] if b["count"] == 0]
    assert [b["stage"]["key"] for b in empty] == [
        "QUALIFICATION", "NEEDS_ANALYSIS", "VALUE_PROPOSITION", "PERCEPTION_ANALYSIS"
    ]
    assert all(b[f] == "0.00" for b in empty for f in FIGURES if f != "count")
    assert forecast["totals"] == figures(deals)


async def test_stage_grouping_follows_the_edited_stage_order_and_skips_inactive_stages(
    team, campaigns, db, client_for
):
    # given: an admin moved Negotiation/Review first and retired Needs Analysis
    negotiation = await db.get(models.SalesStage, "NEGOTIATION_REVIEW")
    needs = await db.get(models.SalesStage, "NEEDS_ANALYSIS")
    negotiation.position = 0
    needs.is_active = False
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(FORECAST, {"groupBy": ["STAGE"]})

    # then
    keys = [b["stage"]["key"] for b in data["forecast"]["buckets"]]
    assert keys == ["NEGOTIATION_REVIEW"] + [
        k for k in STAGES if k not in ("NEGOTIATION_REVIEW", "NEEDS_ANALYSIS")
    ]


async def test_stage_grouping_without_deals_lists_every_stage_at_zero(team, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    data = await client.data(FORECAST, {"groupBy": ["STAGE"]})

    # then
    buckets = data["forecast"]["buckets"]
    assert [b["stage"]["key"] for b in buckets] == list(STAGES)
    assert all(b["count"] == 0 and b["amount"] == "0.00" for b in buckets)


# --- cost ----------------------------------------------------------------------------


async def _statements_for(client: Any, statements: Any, variables: dict[str, Any]) -> int:
    statements.count = 0
    statements.sql.clear()
    await client.data(FORECAST, variables)
    return int(statements.count)


async def _add_deals(factory: Any, team: dict[str, models.User], start: int, n: int) -> None:
    owners = [team["manager"], team["rep"], team["rep2"], team["other_rep"]]
    stages = list(STAGES)
    campaigns = [await factory.campaign(team["admin"], name=f"C{start + i}") for i in range(n)]
    for i in range(start, start + n):
        await factory.opportunity(
            owners[i % len(owners)], name=f"D{i}", stage=stages[i % len(stages)],
            amount=f"{100 + i}.10", currency=("EUR", "USD", "GBP")[i % 3],
            close=d(2027, 1 + i % 12, 1 + i % 28), actual_close_date=d(2027, 1 + i % 12, 28),
            campaign_id=campaigns[i - start].id,
            type=("NEW_BUSINESS", "EXISTING_BUSINESS", None)[i % 3],
            lead_source=("COLD_CALL", "WEB_SITE", "PARTNER", None)[i % 4],
        )


@pytest.mark.parametrize(
    "variables",
    [
        {"groupBy": list(DIMENSIONS), "currency": "USD"},
        {"groupBy": ["STAGE"]},
        {"groupBy": ["ASSIGNEE", "CAMPAIGN"], "period": "QUARTER",
         "filter": {"isClosed": False}},
    ],
    ids=["all seven", "stage board", "assignee and campaign"],
)
async def test_forecast_runs_the_same_few_statements_for_5_and_40_deals(
    variables, team, factory, db, client_for, statements, settings
):
    # given
    await add_currencies(db)
    await _add_deals(factory, team, 0, 5)
    await db.commit()
    client = await client_for(team["manager"])
    small = await _statements_for(client, statements, variables)

    # when
    await _add_deals(factory, team, 5, 35)
    await db.commit()
    large = await _statements_for(client, statements, variables)

    # then
    print(f"forecast {variables['groupBy']}: 5 deals → {small}, 40 deals → {large} statements")
    assert small == large
    # (in verify mode the planner and graphql-core each read)
    assert large <= 12 * (2 if settings.planner == "verify" else 1)


# --- currencies and setCurrencyRate -------------------------------------------------------


def rates_of(data: dict[str, Any]) -> dict[str, tuple[Decimal, bool]]:
    return {c["code"]: (Decimal(c["rate"]), c["isBase"]) for c in data["currencies"]}


async def test_currencies_list_codes_and_rates(team, db, client_for):
    # given
    await add_currencies(db)
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(CURRENCIES)

    # then
    assert [c["code"] for c in data["currencies"]] == ["EUR", "GBP", "USD"]
    assert rates_of(data) == {
        "EUR": (Decimal(1), True), "GBP": (Decimal("0.85"), False),
        "USD": (Decimal("1.10"), False),
    }


async def test_an_admin_adds_a_currency_and_changes_its_rate(team, factory, db, client_for):
    # given: only EUR; a GBP deal can exist once GBP has a rate
    client = await client_for(team["admin"])

    # when
    added = await client.data(SET_CURRENCY_RATE, {"input": {"code": "GBP", "rate": "0.85"}})
    await factory.opportunity(team["rep"], amount="1700.00", currency="GBP")
    await db.commit()
    before = await client.data(FORECAST, {"groupBy": []})
    changed = await client.data(SET_CURRENCY_RATE, {"input": {"code": "gbp", "rate": 0.8}})
    after = await client.data(FORECAST, {"groupBy": []})
    listed = await client.data(CURRENCIES)

    # then
    payload = added["setCurrencyRate"]
    assert payload["userErrors"] == []
    assert payload["currency"]["code"] == "GBP"
    assert Decimal(payload["currency"]["rate"]) == Decimal("0.85")
    assert payload["currency"]["isBase"] is False
    assert changed["setCurrencyRate"]["userErrors"] == []
    assert Decimal(changed["setCurrencyRate"]["currency"]["rate"]) == Decimal("0.8")
    assert rates_of(listed) == {"EUR": (Decimal(1), True), "GBP": (Decimal("0.8"), False)}
    assert before["forecast"]["totals"]["amount"] == "2000.00"  # 1700 / 0.85
    assert after["forecast"]["totals"]["amount"] == "2125.00"  # 1700 / 0.80


@pytest.mark.parametrize(
    ("given", "field", "code"),
    [
        ({"code": "EUR", "rate": "2"}, "rate", "INVALID"),
        ({"code": "EURO", "rate": "1.5"}, "code", "INVALID"),
        ({"code": "U5D", "rate": "1.5"}, "code", "INVALID"),
        ({"code": "  ", "rate": "1.5"}, "code", None),
        ({"code": "CHF", "rate": "0"}, "rate", None),
        ({"code": "CHF", "rate": "-1.2"}, "rate", None),
        ({"code": "USD", "rate": "1.1234567"}, "rate", "INVALID"),
    ],
    ids=["base rate", "four letters", "digit", "blank", "zero", "negative", "seven decimals"],
)
async def test_set_currency_rate_refuses_bad_input_and_changes_nothing(
    given, field, code, team, db, client_for
):
    # given
    await add_currencies(db)
    await db.commit()
    client = await client_for(team["admin"])
    before = await client.data(CURRENCIES)

    # when
    data = await client.data(SET_CURRENCY_RATE, {"input": given})

    # then
    payload = data["setCurrencyRate"]
    assert payload["currency"] is None
    assert [e["field"] for e in payload["userErrors"]] == [["input", field]]
    if code:
        assert payload["userErrors"][0]["code"] == code
    assert await client.data(CURRENCIES) == before


@pytest.mark.parametrize("viewer", ["rep", "manager"])
async def test_only_an_admin_may_set_a_currency_rate(viewer, team, db, client_for):
    # given
    await add_currencies(db)
    await db.commit()
    client = await client_for(team[viewer])
    before = await client.data(CURRENCIES)

    # when
    changed = await client.query(SET_CURRENCY_RATE, {"input": {"code": "USD", "rate": "2"}})
    added = await client.query(SET_CURRENCY_RATE, {"input": {"code": "CHF", "rate": "0.95"}})

    # then
    for body in (changed, added):
        assert only_error(body)["extensions"]["code"] == "FORBIDDEN"
    assert await client.data(CURRENCIES) == before
    codes = set((await db.scalars(select(models.Currency.code))).all())
    assert codes == {"EUR", "USD", "GBP"}


# --- campaign figures ------------------------------------------------------------------


def campaign_figures(name: str, viewer: str) -> dict[str, Any]:
    deals = [deal for deal in visible(viewer) if deal.campaign == name]
    in_base = figures(deals)
    cost = CAMPAIGN_COSTS[name]
    won = Decimal(in_base["wonAmount"])
    return {
        "name": name,
        "opportunityCount": len(deals),
        "pipelineAmount": in_base["openAmount"],
        "wonAmount": in_base["wonAmount"],
        "roi": None if not cost else money((won - cost) / cost * 100),
    }


@pytest.mark.parametrize("viewer", ["rep", "manager", "admin"])
@pytest.mark.parametrize("name", ["Expo", "Webinar", "Referral"])
async def test_campaign_figures_convert_each_deal_to_the_base_currency(
    name, viewer, team, campaigns, client_for
):
    # given
    client = await client_for(team[viewer])

    # when
    data = await client.data(CAMPAIGN_FIGURES, {"id": gid("Campaign", campaigns[name].id)})

    # then
    assert data["node"] == campaign_figures(name, viewer)


async def test_campaign_roi_with_a_usd_deal(team, factory, db, client_for):
    # given: cost 1000.00 EUR; won 500.00 EUR and 1000.00 USD (= 909.09 EUR); open 2345.67 USD
    await add_currencies(db)
    campaign = await factory.campaign(team["admin"], name="Fair", actual_cost=Decimal("1000.00"))
    for stage, amount, currency in [
        ("CLOSED_WON", "500.00", "EUR"), ("CLOSED_WON", "1000.00", "USD"),
        ("NEGOTIATION_REVIEW", "2345.67", "USD"),
    ]:
        await factory.opportunity(
            team["rep"], stage=stage, amount=amount, currency=currency, campaign_id=campaign.id,
            actual_close_date=d(2027, 1, 1) if stage == "CLOSED_WON" else None,
        )
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(CAMPAIGN_FIGURES, {"id": gid("Campaign", campaign.id)})

    # then: won 1409.09; roi (1409.09 − 1000) / 1000 × 100 = 40.909
    assert data["node"] == {
        "name": "Fair", "opportunityCount": 3, "pipelineAmount": "2132.43",
        "wonAmount": "1409.09", "roi": "40.91",
    }
