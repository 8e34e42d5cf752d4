"""setBudget, budgets and budgetAttainment (with vtenext's probability bands).

Attainment figures are checked against an independent computation over the hand-made DEALS
below: amounts in base = amount / rate, summed exactly and rounded half-up to cents once per
figure; commit = closedWon + open COMMIT, bestCase = commit + open BEST_CASE (as the issue
defines them, from the rounded figures).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import func, select

import models
from resolvers.ids import to_global_id

SET_BUDGET = """
mutation SetBudget($input: SetBudgetInput!) {
  setBudget(input: $input) {
    budget { id user { username } year period number amount }
    userErrors { field message code }
  }
}
"""

BUDGETS = """
query Budgets($year: Int, $userId: ID) {
  budgets(year: $year, userId: $userId) { id user { username } year period number amount }
}
"""

ATTAINMENT = """
query Attainment($year: Int!, $period: PeriodUnit!, $number: Int!, $userId: ID) {
  budgetAttainment(year: $year, period: $period, number: $number, userId: $userId) {
    target closedWon commit bestCase pipeline weightedPipeline gap attainmentPercent
    bestBand forecastBand worstBand
  }
}
"""

# key: (default probability, forecast category, closed, won) — API.md's defaults
STAGES: dict[str, tuple[int, str, bool, bool]] = {
    "PROSPECTING": (10, "PIPELINE", False, False),
    "NEEDS_ANALYSIS": (25, "PIPELINE", False, False),
    "VALUE_PROPOSITION": (30, "PIPELINE", False, False),
    "PERCEPTION_ANALYSIS": (50, "BEST_CASE", False, False),
    "PROPOSAL_PRICE_QUOTE": (65, "BEST_CASE", False, False),
    "NEGOTIATION_REVIEW": (80, "COMMIT", False, False),
    "CLOSED_WON": (100, "CLOSED", True, True),
    "CLOSED_LOST": (0, "OMITTED", True, False),
}

RATES = {"EUR": Decimal("1"), "USD": Decimal("1.10"), "GBP": Decimal("0.85")}

# whose figures roll up into a user's attainment (everyone below them, themselves included)
ROLL_UP = {
    "admin": {"admin"},
    "manager": {"manager", "rep", "rep2"},
    "rep": {"rep"},
    "rep2": {"rep2"},
    "other_manager": {"other_manager", "other_rep"},
    "other_rep": {"other_rep"},
}


def d(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, day)


@dataclass(frozen=True)
class Deal:
    owner: str
    stage: str
    amount: str
    currency: str
    close: dt.date
    actual: dt.date | None = None
    probability: str | None = None
    deleted: bool = False

    @property
    def closed(self) -> bool:
        return STAGES[self.stage][2]

    @property
    def won(self) -> bool:
        return STAGES[self.stage][3]

    @property
    def category(self) -> str:
        return STAGES[self.stage][1]

    @property
    def percent(self) -> Decimal:
        return Decimal(self.probability or STAGES[self.stage][0])

    @property
    def in_base(self) -> Fraction:
        return Fraction(Decimal(self.amount)) / Fraction(RATES[self.currency])


DEALS = [
    # rep: won in Q2 although expected in Q1
    Deal("rep", "CLOSED_WON", "1000.00", "EUR", d(2027, 3, 25), actual=d(2027, 4, 10)),
    Deal("rep", "CLOSED_WON", "2200.00", "USD", d(2027, 5, 15), actual=d(2027, 5, 14)),
    Deal("rep", "NEGOTIATION_REVIEW", "1700.00", "GBP", d(2027, 5, 31)),
    Deal("rep", "PROPOSAL_PRICE_QUOTE", "333.33", "USD", d(2027, 6, 30)),
    Deal("rep", "PROSPECTING", "999.99", "EUR", d(2027, 4, 1), probability="95"),
    Deal("rep", "NEEDS_ANALYSIS", "123.45", "GBP", d(2027, 6, 15), probability="70"),
    Deal("rep", "CLOSED_LOST", "500.00", "EUR", d(2027, 4, 30), actual=d(2027, 4, 20)),
    # won in Q3 although expected in Q2
    Deal("rep", "CLOSED_WON", "800.00", "EUR", d(2027, 6, 30), actual=d(2027, 7, 1)),
    Deal("rep", "NEGOTIATION_REVIEW", "400.00", "EUR", d(2027, 9, 30)),
    Deal("rep", "NEGOTIATION_REVIEW", "250.00", "USD", d(2027, 3, 31)),
    # won in 2026 although expected in 2027
    Deal("rep", "CLOSED_WON", "1234.00", "EUR", d(2027, 4, 15), actual=d(2026, 12, 30)),
    Deal("rep", "CLOSED_WON", "9999.00", "EUR", d(2027, 5, 1), actual=d(2027, 5, 1),
         deleted=True),
    Deal("rep", "PERCEPTION_ANALYSIS", "4444.44", "EUR", d(2027, 5, 20), deleted=True),
    # rep2
    Deal("rep2", "CLOSED_WON", "1234.57", "GBP", d(2027, 6, 30), actual=d(2027, 6, 30)),
    Deal("rep2", "NEGOTIATION_REVIEW", "3000.00", "USD", d(2027, 4, 30), probability="85"),
    Deal("rep2", "PERCEPTION_ANALYSIS", "2500.00", "EUR", d(2027, 5, 5)),
    Deal("rep2", "VALUE_PROPOSITION", "777.77", "GBP", d(2027, 11, 11), probability="90"),
    # manager's own
    Deal("manager", "VALUE_PROPOSITION", "600.00", "EUR", d(2027, 6, 1)),
    Deal("manager", "CLOSED_WON", "110.00", "USD", d(2027, 4, 4), actual=d(2027, 4, 4)),
    # another team
    Deal("other_rep", "CLOSED_WON", "5000.00", "EUR", d(2027, 5, 1), actual=d(2027, 5, 1)),
    Deal("other_rep", "NEGOTIATION_REVIEW", "6000.00", "EUR", d(2027, 5, 10)),
]


def cents(value: Fraction) -> Decimal:
    """Half-up to cents from the exact value."""
    hundredths = math.floor(abs(value) * 100 + Fraction(1, 2))
    return Decimal(hundredths if value >= 0 else -hundredths).scaleb(-2)


def text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def period_range(year: int, unit: str, number: int) -> tuple[dt.date, dt.date]:
    months = {"MONTH": (number, number), "QUARTER": (3 * number - 2, 3 * number),
              "YEAR": (1, 12)}[unit]
    first = d(year, months[0], 1)
    after_last = d(year + 1, 1, 1) if months[1] == 12 else d(year, months[1] + 1, 1)
    return first, after_last - dt.timedelta(days=1)


def expected_attainment(
    user: str, year: int, unit: str, number: int, target: str | None
) -> dict[str, Any]:
    start, end = period_range(year, unit, number)
    deals = [x for x in DEALS if not x.deleted and x.owner in ROLL_UP[user]]
    won = [x for x in deals if x.won and x.actual and start <= x.actual <= end]
    due = [x for x in deals if not x.closed and start <= x.close <= end]

    def total(deals: Iterable[Deal]) -> Decimal:
        return cents(sum((x.in_base for x in deals), Fraction(0)))

    closed_won = total(won)
    commit = closed_won + total(x for x in due if x.category == "COMMIT")
    best_case = commit + total(x for x in due if x.category == "BEST_CASE")
    weighted = cents(sum((x.in_base * Fraction(x.percent) / 100 for x in due), Fraction(0)))
    goal = None if target is None else Decimal(target)
    return {
        "target": target,
        "closedWon": text(closed_won),
        "commit": text(commit),
        "bestCase": text(best_case),
        "pipeline": text(total(due)),
        "weightedPipeline": text(weighted),
        "gap": None if goal is None else text(goal - closed_won),
        "attainmentPercent": None if not goal else text(
            cents(Fraction(closed_won) / Fraction(goal) * 100)
        ),
        "bestBand": text(total(x for x in due if x.percent >= 70)),
        "forecastBand": text(total(x for x in due if x.percent >= 80)),
        "worstBand": text(total(x for x in due if x.percent >= 90)),
    }


def gid(type_name: str, pk: int) -> str:
    return to_global_id(type_name, pk)


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    assert body["data"] is None, body
    assert len(body["errors"]) == 1, body["errors"]
    return body["errors"][0]  # type: ignore[no-any-return]


async def add_budget(
    db: Any, user: models.User, year: int, unit: str, number: int, amount: str
) -> None:
    db.add(models.Budget(user_id=user.id, year=year, period=unit, number=number,
                         amount=Decimal(amount)))
    await db.flush()


async def stored_budgets(db: Any) -> list[tuple[int, int, str, int, Decimal]]:
    rows = await db.execute(
        select(models.Budget.user_id, models.Budget.year, models.Budget.period,
               models.Budget.number, models.Budget.amount).order_by(models.Budget.id)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


@pytest.fixture
async def deals(team, factory, db) -> list[Deal]:
    db.add_all([models.Currency(code="USD", rate=RATES["USD"]),
                models.Currency(code="GBP", rate=RATES["GBP"])])
    await db.flush()
    for n, deal in enumerate(DEALS):
        await factory.opportunity(
            team[deal.owner], name=f"Deal {n}", stage=deal.stage, amount=deal.amount,
            probability=deal.probability, close=deal.close, currency=deal.currency,
            actual_close_date=deal.actual,
            deleted_at=dt.datetime(2027, 1, 2, tzinfo=dt.UTC) if deal.deleted else None,
        )
    await db.commit()
    return DEALS


# --- setBudget ---------------------------------------------------------------------------


async def test_a_manager_sets_a_target_for_a_team_member_and_setting_it_again_replaces_it(
    team, db, client_for
):
    # given
    client = await client_for(team["manager"])
    rep_id = gid("User", team["rep"].id)
    given = {"userId": rep_id, "year": 2027, "period": "QUARTER", "number": 2}

    # when
    first = await client.data(SET_BUDGET, {"input": {**given, "amount": "15000.00"}})
    second = await client.data(SET_BUDGET, {"input": {**given, "amount": 17500.5}})

    # then
    created = first["setBudget"]
    assert created["userErrors"] == []
    assert {k: v for k, v in created["budget"].items() if k != "id"} == {
        "user": {"username": "rep"}, "year": 2027, "period": "QUARTER", "number": 2,
        "amount": "15000.00",
    }
    replaced = second["setBudget"]
    assert replaced["userErrors"] == []
    assert replaced["budget"]["id"] == created["budget"]["id"]
    assert replaced["budget"]["amount"] == "17500.50"
    assert await stored_budgets(db) == [
        (team["rep"].id, 2027, "QUARTER", 2, Decimal("17500.50"))
    ]


async def test_targets_of_one_user_differ_by_period_unit_and_number(team, db, client_for):
    # given
    client = await client_for(team["manager"])
    rep_id = gid("User", team["rep"].id)

    # when
    for unit, number, amount in [("MONTH", 4, "1000"), ("MONTH", 5, "1100"),
                                 ("QUARTER", 2, "3300"), ("YEAR", 1, "12000"),
                                 ("QUARTER", 2, "3400")]:
        data = await client.data(SET_BUDGET, {"input": {
            "userId": rep_id, "year": 2027, "period": unit, "number": number, "amount": amount,
        }})
        assert data["setBudget"]["userErrors"] == []
    await client.data(SET_BUDGET, {"input": {
        "userId": rep_id, "year": 2028, "period": "YEAR", "number": 1, "amount": "13000",
    }})

    # then
    rep = team["rep"].id
    assert sorted(await stored_budgets(db)) == sorted([
        (rep, 2027, "MONTH", 4, Decimal("1000.00")), (rep, 2027, "MONTH", 5, Decimal("1100.00")),
        (rep, 2027, "QUARTER", 2, Decimal("3400.00")), (rep, 2027, "YEAR", 1, Decimal("12000.00")),
        (rep, 2028, "YEAR", 1, Decimal("13000.00")),
    ])


@pytest.mark.parametrize(
    ("viewer", "target"),
    [("admin", "other_rep"), ("admin", "manager"), ("manager", "manager"),
     ("manager", "rep2"), ("other_manager", "other_rep")],
)
async def test_who_may_set_a_target(viewer, target, team, db, client_for):
    # given
    client = await client_for(team[viewer])

    # when
    data = await client.data(SET_BUDGET, {"input": {
        "userId": gid("User", team[target].id), "year": 2027, "period": "YEAR", "number": 1,
        "amount": "50000",
    }})

    # then
    assert data["setBudget"]["userErrors"] == []
    assert data["setBudget"]["budget"]["user"] == {"username": target}
    assert await stored_budgets(db) == [
        (team[target].id, 2027, "YEAR", 1, Decimal("50000.00"))
    ]


@pytest.mark.parametrize(
    ("viewer", "target"),
    [("rep", "rep"), ("rep", "rep2"), ("rep2", "manager"), ("manager", "other_rep"),
     ("manager", "other_manager"), ("other_manager", "rep"), ("manager", "admin")],
)
async def test_a_rep_or_a_manager_outside_their_team_is_refused_and_nothing_changes(
    viewer, target, team, db, client_for
):
    # given: an existing target must survive the refused upsert
    await add_budget(db, team[target], 2027, "QUARTER", 2, "1000.00")
    await db.commit()
    client = await client_for(team[viewer])
    before = await stored_budgets(db)

    # when
    data = await client.data(SET_BUDGET, {"input": {
        "userId": gid("User", team[target].id), "year": 2027, "period": "QUARTER",
        "number": 2, "amount": "99999",
    }})

    # then
    payload = data["setBudget"]
    assert payload["budget"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "userId"], "PERMISSION_DENIED")
    ]
    assert payload["userErrors"][0]["message"]
    assert await stored_budgets(db) == before


@pytest.mark.parametrize(
    ("unit", "number"),
    [("MONTH", 13), ("MONTH", 0), ("QUARTER", 5), ("QUARTER", 0), ("YEAR", 2), ("MONTH", -1)],
)
async def test_a_number_outside_the_unit_is_refused(unit, number, team, db, client_for):
    # given
    client = await client_for(team["manager"])

    # when
    data = await client.data(SET_BUDGET, {"input": {
        "userId": gid("User", team["rep"].id), "year": 2027, "period": unit, "number": number,
        "amount": "100",
    }})

    # then
    payload = data["setBudget"]
    assert payload["budget"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "number"], "OUT_OF_RANGE")
    ]
    assert await stored_budgets(db) == []


@pytest.mark.parametrize(
    ("amount", "code"), [("-1.00", "OUT_OF_RANGE"), ("100.001", "INVALID")]
)
async def test_a_negative_or_too_precise_amount_is_refused(amount, code, team, db, client_for):
    # given
    client = await client_for(team["admin"])

    # when
    data = await client.data(SET_BUDGET, {"input": {
        "userId": gid("User", team["rep"].id), "year": 2027, "period": "MONTH", "number": 3,
        "amount": amount,
    }})

    # then
    payload = data["setBudget"]
    assert payload["budget"] is None
    assert [e["field"] for e in payload["userErrors"]] == [["input", "amount"]]
    assert await stored_budgets(db) == []


async def test_every_problem_is_reported_at_once(team, db, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    data = await client.data(SET_BUDGET, {"input": {
        "userId": gid("User", team["rep2"].id), "year": 2027, "period": "MONTH", "number": 13,
        "amount": "-5",
    }})

    # then
    fields = sorted(e["field"][1] for e in data["setBudget"]["userErrors"])
    assert fields == ["amount", "number", "userId"]
    assert await stored_budgets(db) == []


@pytest.mark.parametrize("user_id", [gid("User", 999_999), gid("Campaign", 1), "garbage"])
async def test_an_unknown_user_is_not_found(user_id, team, db, client_for):
    # given
    client = await client_for(team["admin"])

    # when
    data = await client.data(SET_BUDGET, {"input": {
        "userId": user_id, "year": 2027, "period": "YEAR", "number": 1, "amount": "1",
    }})

    # then
    assert [(e["field"], e["code"]) for e in data["setBudget"]["userErrors"]] == [
        (["input", "userId"], "NOT_FOUND")
    ]
    assert await stored_budgets(db) == []


# --- budgets -----------------------------------------------------------------------------


@pytest.fixture
async def budgets(team, db) -> list[tuple[str, int, str, int, str]]:
    rows = [
        ("rep", 2027, "QUARTER", 2, "6000.00"), ("rep", 2028, "YEAR", 1, "30000.00"),
        ("rep2", 2027, "QUARTER", 2, "7000.50"), ("manager", 2027, "QUARTER", 2, "20000.00"),
        ("other_rep", 2027, "QUARTER", 2, "9000.00"), ("other_manager", 2027, "MONTH", 4, "1.00"),
        ("admin", 2027, "YEAR", 1, "100000.00"),
    ]
    for user, year, unit, number, amount in rows:
        await add_budget(db, team[user], year, unit, number, amount)
    await db.commit()
    return rows


def listed(data: dict[str, Any]) -> list[tuple[str, int, str, int, str]]:
    return sorted(
        (b["user"]["username"], b["year"], b["period"], b["number"], b["amount"])
        for b in data["budgets"]
    )


@pytest.mark.parametrize("viewer", ["rep", "rep2", "manager", "other_manager", "admin"])
async def test_budgets_lists_the_targets_of_the_viewer_and_their_team(
    viewer, team, budgets, client_for
):
    # given
    client = await client_for(team[viewer])
    seen = ROLL_UP[viewer] if viewer != "admin" else set(ROLL_UP)

    # when
    data = await client.data(BUDGETS)

    # then
    assert listed(data) == sorted(row for row in budgets if row[0] in seen)


async def test_budgets_filter_by_year_and_user(team, budgets, client_for):
    # given
    client = await client_for(team["manager"])

    # when
    of_2028 = await client.data(BUDGETS, {"year": 2028})
    of_rep2 = await client.data(BUDGETS, {"userId": gid("User", team["rep2"].id)})
    of_other = await client.data(BUDGETS, {"userId": gid("User", team["other_rep"].id)})

    # then
    assert listed(of_2028) == [("rep", 2028, "YEAR", 1, "30000.00")]
    assert listed(of_rep2) == [("rep2", 2027, "QUARTER", 2, "7000.50")]
    assert listed(of_other) == []


# --- budgetAttainment --------------------------------------------------------------------

RANGES = [("MONTH", 4), ("MONTH", 5), ("MONTH", 6), ("MONTH", 12), ("QUARTER", 1),
          ("QUARTER", 2), ("QUARTER", 3), ("QUARTER", 4), ("YEAR", 1)]


@pytest.mark.parametrize(("unit", "number"), RANGES)
async def test_a_reps_attainment_for_each_range(unit, number, team, deals, db, client_for):
    # given
    await add_budget(db, team["rep"], 2027, unit, number, "4321.00")
    await db.commit()
    client = await client_for(team["rep"])
    period = {"year": 2027, "period": unit, "number": number}

    # when
    implicit = await client.data(ATTAINMENT, period)
    explicit = await client.data(ATTAINMENT, {**period, "userId": gid("User", team["rep"].id)})

    # then
    expected = expected_attainment("rep", 2027, unit, number, "4321.00")
    assert implicit["budgetAttainment"] == expected
    assert explicit["budgetAttainment"] == expected


async def test_the_reps_second_quarter_by_hand(team, deals, db, client_for):
    # given: the same figures worked out on paper, as a check on the helper itself
    await add_budget(db, team["rep"], 2027, "QUARTER", 2, "5000.00")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(ATTAINMENT, {"year": 2027, "period": "QUARTER", "number": 2})

    # then: won 1000 + 2200/1.10 = 3000.00; commit + 1700/0.85 = 2000.00; best case
    # + 333.33/1.10 (303.027…); due: 999.99 + 2000 + 303.027… + 123.45/0.85 (145.235…)
    assert data["budgetAttainment"] == {
        "target": "5000.00", "closedWon": "3000.00", "commit": "5000.00",
        "bestCase": "5303.03", "pipeline": "3448.25",
        # 999.99×.95 + 2000×.80 + 303.027…×.65 + 145.235…×.70 = 949.9905 + 1600
        # + 196.9677… + 101.6647… = 2848.623…
        "weightedPipeline": "2848.62",
        "gap": "2000.00", "attainmentPercent": "60.00",
        # ≥ 70: 999.99 (95) + 2000 (80) + 145.235… (70); ≥ 80: the first two; ≥ 90: the first
        "bestBand": "3145.23", "forecastBand": "2999.99", "worstBand": "999.99",
    }


async def test_a_managers_attainment_rolls_up_the_team_with_their_own_target(
    team, deals, budgets, client_for
):
    # given: manager 20000.00 of their own (rep 6000.00 and rep2 7000.50 are not added)
    client = await client_for(team["manager"])

    # when
    data = await client.data(ATTAINMENT, {"year": 2027, "period": "QUARTER", "number": 2})

    # then
    assert data["budgetAttainment"] == expected_attainment(
        "manager", 2027, "QUARTER", 2, "20000.00"
    )


async def test_a_managers_target_without_their_own_is_the_sum_of_the_teams(
    team, deals, db, client_for
):
    # given: rep 6000.00 and rep2 7000.50 for Q2; other periods and other teams do not count
    for user, unit, number, amount in [
        ("rep", "QUARTER", 2, "6000.00"), ("rep2", "QUARTER", 2, "7000.50"),
        ("rep", "QUARTER", 3, "1111.00"), ("rep2", "MONTH", 4, "2222.00"),
        ("other_rep", "QUARTER", 2, "9000.00"), ("admin", "QUARTER", 2, "3333.00"),
    ]:
        await add_budget(db, team[user], 2027, unit, number, amount)
    await db.commit()

    # when
    as_manager = await (await client_for(team["manager"])).data(
        ATTAINMENT, {"year": 2027, "period": "QUARTER", "number": 2}
    )
    as_admin = await (await client_for(team["admin"])).data(
        ATTAINMENT,
        {"year": 2027, "period": "QUARTER", "number": 2, "userId": gid("User", team["manager"].id)},
    )

    # then
    expected = expected_attainment("manager", 2027, "QUARTER", 2, "13000.50")
    assert as_manager["budgetAttainment"] == expected
    assert as_admin["budgetAttainment"] == expected


async def test_without_a_target_gap_and_attainment_percent_are_null(team, deals, client_for):
    # given
    client = await client_for(team["rep2"])

    # when
    data = await client.data(ATTAINMENT, {"year": 2027, "period": "QUARTER", "number": 2})

    # then
    figures = data["budgetAttainment"]
    assert figures == expected_attainment("rep2", 2027, "QUARTER", 2, None)
    assert (figures["target"], figures["gap"], figures["attainmentPercent"]) == (None, None, None)
    assert figures["closedWon"] != "0.00"


async def test_a_zero_target_has_no_attainment_percent(team, deals, db, client_for):
    # given
    await add_budget(db, team["rep"], 2027, "QUARTER", 2, "0.00")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(ATTAINMENT, {"year": 2027, "period": "QUARTER", "number": 2})

    # then
    figures = data["budgetAttainment"]
    assert figures["target"] == "0.00"
    assert figures["attainmentPercent"] is None
    assert figures["gap"] == "-3000.00"


@pytest.mark.parametrize(
    ("viewer", "user"),
    [("manager", "rep"), ("manager", "rep2"), ("admin", "rep2"), ("admin", "other_manager"),
     ("other_manager", "other_rep")],
)
async def test_a_manager_or_admin_sees_the_attainment_of_someone_below_them(
    viewer, user, team, deals, budgets, client_for
):
    # given
    client = await client_for(team[viewer])
    target = {"rep": "6000.00", "rep2": "7000.50", "other_rep": "9000.00"}.get(user)

    # when
    data = await client.data(ATTAINMENT, {
        "year": 2027, "period": "QUARTER", "number": 2, "userId": gid("User", team[user].id),
    })

    # then
    if user == "other_manager":  # no own Q2 target: other_rep's 9000.00
        target = "9000.00"
    assert data["budgetAttainment"] == expected_attainment(user, 2027, "QUARTER", 2, target)


@pytest.mark.parametrize(
    ("viewer", "user"),
    [("rep", "rep2"), ("rep", "manager"), ("rep2", "rep"), ("manager", "other_rep"),
     ("manager", "other_manager"), ("manager", "admin"), ("other_manager", "rep"),
     ("other_rep", "other_manager")],
)
async def test_the_attainment_of_someone_outside_the_viewers_team_is_null(
    viewer, user, team, deals, budgets, client_for
):
    # given
    client = await client_for(team[viewer])

    # when
    data = await client.data(ATTAINMENT, {
        "year": 2027, "period": "QUARTER", "number": 2, "userId": gid("User", team[user].id),
    })

    # then
    assert data["budgetAttainment"] is None


@pytest.mark.parametrize("user_id", [gid("User", 999_999), gid("Campaign", 1)])
async def test_the_attainment_of_a_user_that_does_not_exist_is_null(
    user_id, team, deals, client_for
):
    # given
    client = await client_for(team["admin"])

    # when
    data = await client.data(
        ATTAINMENT, {"year": 2027, "period": "QUARTER", "number": 2, "userId": user_id}
    )

    # then
    assert data["budgetAttainment"] is None


@pytest.mark.parametrize(
    ("unit", "number"), [("MONTH", 13), ("MONTH", 0), ("QUARTER", 5), ("YEAR", 2)]
)
async def test_an_invalid_period_is_a_top_level_error(unit, number, team, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    body = await client.query(ATTAINMENT, {"year": 2027, "period": unit, "number": number})

    # then
    assert body["data"] == {"budgetAttainment": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert str(number) in body["errors"][0]["message"]


async def test_budget_rows_are_unique_per_user_and_period(team, db, client_for):
    # given: an admin upserting the same target three times
    client = await client_for(team["admin"])
    given = {"userId": gid("User", team["rep"].id), "year": 2027, "period": "MONTH",
             "number": 1}

    # when
    for amount in ("1", "2", "3"):
        await client.data(SET_BUDGET, {"input": {**given, "amount": amount}})

    # then
    count = await db.scalar(select(func.count()).select_from(models.Budget))
    assert count == 1
    assert (await stored_budgets(db))[0][4] == Decimal("3.00")
