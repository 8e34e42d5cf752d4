"""Root lists: the `opportunities` connection (every filter, every ordering, keyset paging,
limits and cursor errors) and the other root connections with their filters and orderings."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import models
from resolvers.ids import to_global_id

OPPORTUNITIES = """
query Opportunities(
  $first: Int, $after: String, $last: Int, $before: String,
  $filter: OpportunityFilter, $orderBy: [OpportunityOrder!]
) {
  opportunities(
    first: $first, after: $after, last: $last, before: $before,
    filter: $filter, orderBy: $orderBy
  ) {
    totalCount
    edges { cursor node { id number name } }
    nodes { id number name }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

OPPORTUNITIES_AMOUNT_LITERALS = """
{
  numberMin: opportunities(filter: {amountMin: 250.5}) { totalCount nodes { name } }
  stringMax: opportunities(filter: {amountMax: "250.50"}) { totalCount nodes { name } }
}
"""

ACCOUNTS_FIRST_PAGE = """
query { accounts(first: 1) { pageInfo { endCursor } } }
"""

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def at(hours: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def gid(type_name: str, pk: int) -> str:
    return to_global_id(type_name, pk)


def names(connection: dict[str, Any]) -> list[str]:
    return [node["name"] for node in connection["nodes"]]


def numbers(connection: dict[str, Any]) -> list[str]:
    return [node["number"] for node in connection["nodes"]]


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    """The single top-level error of a refused request (whose data is null)."""
    assert body["data"] is None, body
    assert len(body["errors"]) == 1, body["errors"]
    return body["errors"][0]  # type: ignore[no-any-return]


def forged_cursor(payload: Any) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- filters -------------------------------------------------------------------------


async def _filter_dataset(factory: Any, team: dict[str, models.User]) -> dict[str, Any]:
    """Five deals that differ in every filtered field (dates, amounts, owners, links)."""
    acme = await factory.account(team["admin"], "Acme")
    globex = await factory.account(team["admin"], "Globex")
    expo = await factory.campaign(team["admin"], "Expo")
    webinar = await factory.campaign(team["admin"], "Webinar")
    await factory.opportunity(  # POT1
        team["rep"], name="Alpha Rollout", stage="PROSPECTING", amount="100.00",
        close=dt.date(2027, 1, 10), account_id=acme.id, campaign_id=expo.id,
        type="NEW_BUSINESS", lead_source="COLD_CALL",
    )
    await factory.opportunity(  # POT2
        team["rep2"], name="Bravo Renewal", stage="PERCEPTION_ANALYSIS", amount="250.50",
        close=dt.date(2027, 2, 15), account_id=globex.id, type="EXISTING_BUSINESS",
        lead_source="WEB_SITE",
    )
    await factory.opportunity(  # POT3
        team["other_rep"], name="Charlie Upsell", stage="NEGOTIATION_REVIEW", amount="999.99",
        close=dt.date(2027, 3, 31), account_id=acme.id, campaign_id=webinar.id,
        type="NEW_BUSINESS",
    )
    await factory.opportunity(  # POT4
        team["manager"], name="Delta Expansion", stage="CLOSED_WON", amount="5000.00",
        close=dt.date(2027, 4, 1), campaign_id=expo.id, lead_source="COLD_CALL",
        actual_close_date=dt.date(2026, 11, 20),
    )
    await factory.opportunity(  # POT5
        team["admin"], name="Echo Pilot", stage="CLOSED_LOST", amount="0.00",
        close=dt.date(2026, 12, 31), lost_reason="No budget",
        actual_close_date=dt.date(2026, 10, 1),
    )
    return {**team, "acme": acme, "globex": globex, "expo": expo, "webinar": webinar}


ALPHA, BRAVO, CHARLIE, DELTA, ECHO = (
    "Alpha Rollout", "Bravo Renewal", "Charlie Upsell", "Delta Expansion", "Echo Pilot",
)

FILTER_CASES: list[tuple[str, Any, list[str]]] = [
    ("stage", lambda r: {"stage": ["PROSPECTING", "CLOSED_WON"]}, [ALPHA, DELTA]),
    (
        "assignedTo",
        lambda r: {"assignedTo": [gid("User", r["rep"].id), gid("User", r["rep2"].id)]},
        [ALPHA, BRAVO],
    ),
    ("assignedTo garbage id", lambda r: {"assignedTo": ["garbage"]}, []),
    ("account", lambda r: {"account": gid("Account", r["acme"].id)}, [ALPHA, CHARLIE]),
    ("account garbage id", lambda r: {"account": "garbage"}, []),
    (
        "account id of another type",
        lambda r: {"account": gid("Campaign", r["acme"].id)},
        [],
    ),
    ("campaign", lambda r: {"campaign": gid("Campaign", r["expo"].id)}, [ALPHA, DELTA]),
    ("campaign garbage id", lambda r: {"campaign": "garbage"}, []),
    (
        "expectedCloseDateFrom inclusive",
        lambda r: {"expectedCloseDateFrom": "2027-02-15"},
        [BRAVO, CHARLIE, DELTA],
    ),
    (
        "expectedCloseDateTo inclusive",
        lambda r: {"expectedCloseDateTo": "2027-02-15"},
        [ALPHA, BRAVO, ECHO],
    ),
    (
        "close date range",
        lambda r: {"expectedCloseDateFrom": "2027-01-10", "expectedCloseDateTo": "2027-03-31"},
        [ALPHA, BRAVO, CHARLIE],
    ),
    ("amountMin as string", lambda r: {"amountMin": "250.50"}, [BRAVO, CHARLIE, DELTA]),
    ("amountMin as number", lambda r: {"amountMin": 250.5}, [BRAVO, CHARLIE, DELTA]),
    ("amountMax as number", lambda r: {"amountMax": 250.5}, [ALPHA, BRAVO, ECHO]),
    ("amountMax as string", lambda r: {"amountMax": "999.99"}, [ALPHA, BRAVO, CHARLIE, ECHO]),
    (
        "amount range as integer and string",
        lambda r: {"amountMin": 100, "amountMax": "999.99"},
        [ALPHA, BRAVO, CHARLIE],
    ),
    ("type", lambda r: {"type": "NEW_BUSINESS"}, [ALPHA, CHARLIE]),
    ("leadSource", lambda r: {"leadSource": "COLD_CALL"}, [ALPHA, DELTA]),
    ("forecastCategory PIPELINE", lambda r: {"forecastCategory": ["PIPELINE"]}, [ALPHA]),
    (
        "forecastCategory BEST_CASE, COMMIT",
        lambda r: {"forecastCategory": ["BEST_CASE", "COMMIT"]},
        [BRAVO, CHARLIE],
    ),
    ("forecastCategory CLOSED", lambda r: {"forecastCategory": ["CLOSED"]}, [DELTA]),
    ("forecastCategory OMITTED", lambda r: {"forecastCategory": ["OMITTED"]}, [ECHO]),
    ("isClosed true", lambda r: {"isClosed": True}, [DELTA, ECHO]),
    ("isClosed false", lambda r: {"isClosed": False}, [ALPHA, BRAVO, CHARLIE]),
    ("isWon true", lambda r: {"isWon": True}, [DELTA]),
    ("isWon false", lambda r: {"isWon": False}, [ALPHA, BRAVO, CHARLIE, ECHO]),
    ("closed and not won", lambda r: {"isClosed": True, "isWon": False}, [ECHO]),
    ("search name, other case", lambda r: {"search": "rOLLOUT"}, [ALPHA]),
    ("search trims blanks", lambda r: {"search": "  upsell "}, [CHARLIE]),
    ("search number, lower case", lambda r: {"search": "pot3"}, [CHARLIE]),
    ("search number, upper case", lambda r: {"search": "POT5"}, [ECHO]),
    ("search wildcard is literal", lambda r: {"search": "%"}, []),
    ("search underscore is literal", lambda r: {"search": "_"}, []),
    (
        "account AND type AND amountMin",
        lambda r: {
            "account": gid("Account", r["acme"].id), "type": "NEW_BUSINESS", "amountMin": "500",
        },
        [CHARLIE],
    ),
    (
        "campaign AND isClosed",
        lambda r: {"campaign": gid("Campaign", r["expo"].id), "isClosed": False},
        [ALPHA],
    ),
    (
        "stage AND assignedTo that exclude each other",
        lambda r: {"stage": ["PROSPECTING"], "assignedTo": [gid("User", r["rep2"].id)]},
        [],
    ),
    ("actualCloseDateFrom inclusive", lambda r: {"actualCloseDateFrom": "2026-11-20"}, [DELTA]),
    ("actualCloseDateTo inclusive", lambda r: {"actualCloseDateTo": "2026-11-20"}, [DELTA, ECHO]),
    (
        "actual close date range",
        lambda r: {"actualCloseDateFrom": "2026-09-01", "actualCloseDateTo": "2026-10-31"},
        [ECHO],
    ),
    ("lostReason, other case", lambda r: {"lostReason": "BUDGET"}, [ECHO]),
    ("lostReason no match", lambda r: {"lostReason": "rival"}, []),
    (
        "search AND leadSource",
        lambda r: {"search": "e", "leadSource": "COLD_CALL"},
        [DELTA],
    ),
]


@pytest.mark.parametrize(
    ("filter_of", "expected"),
    [pytest.param(f, e, id=name) for name, f, e in FILTER_CASES],
)
async def test_opportunities_filter(team, factory, db, client_for, filter_of, expected):
    # given
    refs = await _filter_dataset(factory, team)
    await db.commit()
    client = await client_for(team["admin"])

    # when
    data = await client.data(OPPORTUNITIES, {"filter": filter_of(refs)})

    # then
    connection = data["opportunities"]
    assert sorted(names(connection)) == expected
    assert connection["totalCount"] == len(expected)


async def test_opportunities_amount_filters_accept_literals(team, factory, db, client_for):
    # given
    await _filter_dataset(factory, team)
    await db.commit()
    client = await client_for(team["admin"])

    # when
    data = await client.data(OPPORTUNITIES_AMOUNT_LITERALS)

    # then
    assert sorted(names(data["numberMin"])) == [BRAVO, CHARLIE, DELTA]
    assert sorted(names(data["stringMax"])) == [ALPHA, BRAVO, ECHO]


async def test_amount_filter_uses_the_stored_amount_in_the_deal_currency(
    team, factory, db, client_for
):
    # given: 260 USD is 236.36 EUR at 1.10, but the filter compares the stored amount
    db.add(models.Currency(code="USD", rate=Decimal("1.10")))
    await db.flush()
    await factory.opportunity(team["rep"], name="Dollar Deal", amount="260.00", currency="USD")
    await factory.opportunity(team["rep"], name="Euro Deal", amount="240.00")
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(OPPORTUNITIES, {"filter": {"amountMin": "250"}})

    # then
    assert names(data["opportunities"]) == ["Dollar Deal"]


async def test_opportunities_only_lists_visible_deals(team, factory, db, client_for):
    # given
    await _filter_dataset(factory, team)
    await db.commit()

    # when
    as_rep = await (await client_for(team["rep"])).data(OPPORTUNITIES)
    as_manager = await (await client_for(team["manager"])).data(OPPORTUNITIES)
    as_other_manager = await (await client_for(team["other_manager"])).data(OPPORTUNITIES)
    filtered = await (await client_for(team["rep"])).data(
        OPPORTUNITIES, {"filter": {"assignedTo": [gid("User", team["other_rep"].id)]}}
    )

    # then
    assert sorted(names(as_rep["opportunities"])) == [ALPHA]
    assert as_rep["opportunities"]["totalCount"] == 1
    assert sorted(names(as_manager["opportunities"])) == [ALPHA, BRAVO, DELTA]
    assert as_manager["opportunities"]["totalCount"] == 3
    assert sorted(names(as_other_manager["opportunities"])) == [CHARLIE]
    assert filtered["opportunities"] == {
        "totalCount": 0, "edges": [], "nodes": [],
        "pageInfo": {
            "hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None,
        },
    }


async def test_soft_deleted_deals_are_not_listed(team, factory, db, client_for):
    # given
    await factory.opportunity(team["rep"], name="Kept")
    gone = await factory.opportunity(team["rep"], name="Gone")
    gone.deleted_at = T0
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(OPPORTUNITIES, {"filter": {"search": "o"}})

    # then
    assert names(data["opportunities"]) == ["Kept"]
    assert data["opportunities"]["totalCount"] == 1


# --- ordering --------------------------------------------------------------------------

# POT<n>: name, amount, probability, close date, created (hours after T0), updated.
# Weighted amounts: 100.00, 100.00, 40.00, 100.00, 32.50, 37.75.
ORDER_ROWS = [
    ("delta", "200.00", "50", dt.date(2027, 3, 1), 3, 1),
    ("alpha", "400.00", "25", dt.date(2027, 1, 1), 1, 5),
    ("charlie", "50.00", "80", dt.date(2027, 3, 1), 2, 1),
    ("alpha", "1000.00", "10", dt.date(2027, 2, 1), 3, 2),
    ("bravo", "50.00", "65", dt.date(2027, 1, 1), 0, 4),
    ("echo", "75.50", "50", dt.date(2027, 2, 1), 1, 3),
]

# Ascending order by each field, as POT numbers; equal values are ordered by id.
ASCENDING = {
    "NAME": [2, 4, 5, 3, 1, 6],
    "AMOUNT": [3, 5, 6, 1, 2, 4],
    "EXPECTED_CLOSE_DATE": [2, 5, 4, 6, 1, 3],
    "PROBABILITY": [4, 2, 1, 6, 5, 3],
    "WEIGHTED_AMOUNT": [5, 6, 3, 1, 2, 4],
    "CREATED_AT": [5, 2, 6, 3, 1, 4],
    "UPDATED_AT": [1, 3, 4, 6, 5, 2],
}


def expected_order(field: str, direction: str) -> list[str]:
    ascending = [f"POT{n}" for n in ASCENDING[field]]
    return ascending if direction == "ASC" else ascending[::-1]


async def _order_dataset(factory: Any, owner: models.User) -> None:
    for name, amount, probability, close, created, updated in ORDER_ROWS:
        await factory.opportunity(
            owner, name=name, amount=amount, probability=probability, close=close,
            created_at=at(created), updated_at=at(updated),
        )


async def walk_forward(client: Any, size: int, variables: dict[str, Any]) -> list[list[str]]:
    """Every page from the start with `first`/`after`, checking pageInfo on the way."""
    pages: list[list[str]] = []
    after = None
    while True:
        page = (
            await client.data(OPPORTUNITIES, {**variables, "first": size, "after": after})
        )["opportunities"]
        pages.append(numbers(page))
        info = page["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        assert info["startCursor"] == page["edges"][0]["cursor"]
        assert info["endCursor"] == page["edges"][-1]["cursor"]
        if not info["hasNextPage"]:
            return pages
        after = info["endCursor"]
        assert len(pages) < 100, "paging does not end"


async def walk_backward(client: Any, size: int, variables: dict[str, Any]) -> list[list[str]]:
    """Every page from the end with `last`/`before`, in list order (first page first)."""
    pages: list[list[str]] = []
    before = None
    while True:
        page = (
            await client.data(OPPORTUNITIES, {**variables, "last": size, "before": before})
        )["opportunities"]
        pages.insert(0, numbers(page))
        info = page["pageInfo"]
        assert info["hasNextPage"] is (before is not None)
        assert info["startCursor"] == page["edges"][0]["cursor"]
        assert info["endCursor"] == page["edges"][-1]["cursor"]
        if not info["hasPreviousPage"]:
            return pages
        before = info["startCursor"]
        assert len(pages) < 100, "paging does not end"


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("field", list(ASCENDING))
async def test_order_by_each_field_breaks_ties_by_id(
    team, factory, db, client_for, field, direction
):
    # given
    await _order_dataset(factory, team["rep"])
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        OPPORTUNITIES, {"orderBy": [{"field": field, "direction": direction}]}
    )

    # then
    assert numbers(data["opportunities"]) == expected_order(field, direction)


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize("field", list(ASCENDING))
async def test_paging_both_ways_through_each_ordering(
    team, factory, db, client_for, field, direction
):
    # given
    await _order_dataset(factory, team["rep"])
    await db.commit()
    client = await client_for(team["rep"])
    order = {"orderBy": [{"field": field, "direction": direction}]}
    expected = expected_order(field, direction)

    # when
    forward = await walk_forward(client, 4, order)
    backward = await walk_backward(client, 4, order)
    forward_by_one = await walk_forward(client, 1, order)

    # then
    assert forward == [expected[:4], expected[4:]]
    assert backward == [expected[:2], expected[2:]]
    assert forward_by_one == [[number] for number in expected]


async def test_order_by_several_fields(team, factory, db, client_for):
    # given
    await _order_dataset(factory, team["rep"])
    await db.commit()
    client = await client_for(team["rep"])
    order = {
        "orderBy": [
            {"field": "EXPECTED_CLOSE_DATE", "direction": "DESC"},
            {"field": "NAME", "direction": "ASC"},
        ]
    }

    # when
    full = await client.data(OPPORTUNITIES, order)
    pages = await walk_forward(client, 2, order)

    # then: 03-01 charlie, delta; 02-01 alpha, echo; 01-01 alpha, bravo
    expected = ["POT3", "POT1", "POT4", "POT6", "POT2", "POT5"]
    assert numbers(full["opportunities"]) == expected
    assert pages == [expected[0:2], expected[2:4], expected[4:6]]


async def test_order_direction_defaults_to_ascending(team, factory, db, client_for):
    # given
    await _order_dataset(factory, team["rep"])
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(OPPORTUNITIES, {"orderBy": [{"field": "AMOUNT"}]})

    # then
    assert numbers(data["opportunities"]) == expected_order("AMOUNT", "ASC")


async def test_default_order_is_oldest_first(team, factory, db, client_for):
    # given
    await _order_dataset(factory, team["rep"])
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(OPPORTUNITIES)

    # then
    assert numbers(data["opportunities"]) == expected_order("CREATED_AT", "ASC")


# --- paging --------------------------------------------------------------------------


async def _many_deals(factory: Any, owner: models.User, count: int) -> list[str]:
    """`count` deals created newest-first: the default order is POT<count> ... POT1."""
    for i in range(count):
        await factory.opportunity(owner, name=f"deal{i:03}", created_at=T0 - dt.timedelta(hours=i))
    return [f"POT{n}" for n in range(count, 0, -1)]


async def test_default_page_size_is_20(team, factory, db, client_for):
    # given
    expected = await _many_deals(factory, team["rep"], 45)
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(OPPORTUNITIES)

    # then
    connection = data["opportunities"]
    assert numbers(connection) == expected[:20]
    assert [edge["node"]["number"] for edge in connection["edges"]] == expected[:20]
    assert connection["totalCount"] == 45
    assert connection["pageInfo"]["hasNextPage"] is True
    assert connection["pageInfo"]["hasPreviousPage"] is False


async def test_walk_all_pages_both_ways(team, factory, db, client_for):
    # given
    expected = await _many_deals(factory, team["rep"], 45)
    await db.commit()
    client = await client_for(team["rep"])

    # when
    everything = await client.data(OPPORTUNITIES, {"first": 100})
    forward = await walk_forward(client, 20, {})
    backward = await walk_backward(client, 20, {})

    # then
    assert numbers(everything["opportunities"]) == expected
    assert everything["opportunities"]["pageInfo"]["hasNextPage"] is False
    assert forward == [expected[:20], expected[20:40], expected[40:]]
    assert backward == [expected[:5], expected[5:25], expected[25:]]


async def test_total_count_is_the_same_on_every_page(team, factory, db, client_for):
    # given
    await _many_deals(factory, team["rep"], 7)
    await db.commit()
    client = await client_for(team["rep"])
    first = (await client.data(OPPORTUNITIES, {"first": 3}))["opportunities"]

    # when
    second = (
        await client.data(OPPORTUNITIES, {"first": 3, "after": first["pageInfo"]["endCursor"]})
    )["opportunities"]
    filtered = (
        await client.data(OPPORTUNITIES, {"first": 1, "filter": {"search": "deal00"}})
    )["opportunities"]

    # then
    assert (first["totalCount"], second["totalCount"]) == (7, 7)
    assert (len(filtered["nodes"]), filtered["totalCount"]) == (1, 7)


async def test_page_info_on_a_middle_page(team, factory, db, client_for):
    # given
    expected = await _many_deals(factory, team["rep"], 5)
    await db.commit()
    client = await client_for(team["rep"])
    first = (await client.data(OPPORTUNITIES, {"first": 2}))["opportunities"]

    # when
    middle = (
        await client.data(OPPORTUNITIES, {"first": 2, "after": first["pageInfo"]["endCursor"]})
    )["opportunities"]

    # then
    assert numbers(middle) == expected[2:4]
    assert middle["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": True,
        "startCursor": middle["edges"][0]["cursor"],
        "endCursor": middle["edges"][1]["cursor"],
    }
    assert middle["edges"][0]["cursor"] != middle["edges"][1]["cursor"]


async def test_before_and_after_together_bound_a_window(team, factory, db, client_for):
    # given
    expected = await _many_deals(factory, team["rep"], 6)
    await db.commit()
    client = await client_for(team["rep"])
    cursors = [
        e["cursor"] for e in (await client.data(OPPORTUNITIES))["opportunities"]["edges"]
    ]

    # when
    window = await client.data(
        OPPORTUNITIES, {"first": 10, "after": cursors[0], "before": cursors[4]}
    )

    # then
    assert numbers(window["opportunities"]) == expected[1:4]


async def test_cursor_is_stable_under_inserts_going_forward(team, factory, db, client_for):
    # given
    for name in ["n10", "n20", "n30", "n40", "n50"]:
        await factory.opportunity(team["rep"], name=name)
    await db.commit()
    client = await client_for(team["rep"])
    by_name = {"orderBy": [{"field": "NAME", "direction": "ASC"}]}
    first = (await client.data(OPPORTUNITIES, {**by_name, "first": 2}))["opportunities"]

    # when: one deal sorts before the cursor, one between the pages
    await factory.opportunity(team["rep"], name="n05")
    await factory.opportunity(team["rep"], name="n25")
    await db.commit()
    second = (
        await client.data(
            OPPORTUNITIES, {**by_name, "first": 2, "after": first["pageInfo"]["endCursor"]}
        )
    )["opportunities"]

    # then
    assert names(first) == ["n10", "n20"]
    assert names(second) == ["n25", "n30"]
    assert second["totalCount"] == 7


async def test_cursor_is_stable_under_inserts_going_backward(team, factory, db, client_for):
    # given
    for name in ["n10", "n20", "n30", "n40", "n50"]:
        await factory.opportunity(team["rep"], name=name)
    await db.commit()
    client = await client_for(team["rep"])
    by_name = {"orderBy": [{"field": "NAME", "direction": "ASC"}]}
    last = (await client.data(OPPORTUNITIES, {**by_name, "last": 2}))["opportunities"]

    # when: one deal sorts after the cursor, one between the pages
    await factory.opportunity(team["rep"], name="n99")
    await factory.opportunity(team["rep"], name="n35")
    await db.commit()
    previous = (
        await client.data(
            OPPORTUNITIES, {**by_name, "last": 2, "before": last["pageInfo"]["startCursor"]}
        )
    )["opportunities"]

    # then
    assert names(last) == ["n40", "n50"]
    assert names(previous) == ["n30", "n35"]


async def test_cursor_survives_a_deleted_record(team, factory, db, client_for):
    # given
    deals = [await factory.opportunity(team["rep"], name=n) for n in ["a", "b", "c", "d"]]
    await db.commit()
    client = await client_for(team["rep"])
    by_name = {"orderBy": [{"field": "NAME", "direction": "ASC"}]}
    first = (await client.data(OPPORTUNITIES, {**by_name, "first": 2}))["opportunities"]

    # when: the record the cursor points at goes to the recycle bin
    deals[1].deleted_at = T0
    await db.commit()
    second = (
        await client.data(
            OPPORTUNITIES, {**by_name, "first": 2, "after": first["pageInfo"]["endCursor"]}
        )
    )["opportunities"]

    # then
    assert names(second) == ["c", "d"]


async def test_first_100_is_allowed(team, factory, db, client_for):
    # given
    await _many_deals(factory, team["rep"], 3)
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(OPPORTUNITIES, {"first": 100})

    # then
    assert data["opportunities"]["totalCount"] == 3
    assert len(data["opportunities"]["nodes"]) == 3


@pytest.mark.parametrize(
    "arguments",
    [{"first": 101}, {"last": 101}, {"first": -1}, {"last": -1}],
    ids=["first 101", "last 101", "first -1", "last -1"],
)
async def test_page_size_out_of_range_is_refused(team, client_for, arguments):
    # given
    client = await client_for(team["rep"])

    # when
    body = await client.query(OPPORTUNITIES, arguments)

    # then
    error = only_error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == ["opportunities"]
    assert "100" in error["message"]


async def test_first_and_last_together_are_refused(team, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    body = await client.query(OPPORTUNITIES, {"first": 2, "last": 2})

    # then
    error = only_error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "`first`" in error["message"] and "`last`" in error["message"]


CREATED_ASC = "Opportunity:CREATED_AT+"


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "bm90LWpzb24",  # base64 of "not-json"
        forged_cursor({"a": 1}),
        forged_cursor([CREATED_ASC, [["x", 1], ["i", 1]]]),
        forged_cursor([CREATED_ASC, [["t", "yesterday"], ["i", 1]]]),
        forged_cursor([CREATED_ASC, [["n", "not-a-number"], ["i", 1]]]),
        forged_cursor([CREATED_ASC, [["i", "one"]]]),
    ],
    ids=[
        "not base64", "not json", "not a list", "unknown tag", "bad instant", "bad decimal",
        "bad integer",
    ],
)
@pytest.mark.parametrize("argument", ["after", "before"])
async def test_garbage_cursor_is_refused(team, factory, db, client_for, cursor, argument):
    # given
    await factory.opportunity(team["rep"])
    await db.commit()
    client = await client_for(team["rep"])

    # when
    body = await client.query(OPPORTUNITIES, {argument: cursor})

    # then
    error = only_error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cursor" in error["message"].lower()


@pytest.mark.parametrize(
    "values",
    [
        [["s", "yesterday"], ["i", 1]],
        [["i", 5], ["i", 1]],
        [["t", "2026-01-05T09:00:00"], ["i", 1]],  # no offset
        [["t", T0.isoformat()], ["s", "one"]],
    ],
    ids=["text for an instant", "integer for an instant", "naive instant", "text for an id"],
)
async def test_cursor_with_values_of_the_wrong_type_is_refused(
    team, factory, db, client_for, values
):
    # given: well-formed, with the right ordering, but values no list could have produced
    await factory.opportunity(team["rep"])
    await db.commit()
    client = await client_for(team["rep"])

    # when
    body = await client.query(OPPORTUNITIES, {"after": forged_cursor([CREATED_ASC, values])})

    # then
    error = only_error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cursor" in error["message"].lower()


@pytest.mark.parametrize(
    "other_order",
    [
        [{"field": "NAME", "direction": "DESC"}],
        [{"field": "AMOUNT", "direction": "ASC"}],
        [{"field": "NAME", "direction": "ASC"}, {"field": "AMOUNT", "direction": "ASC"}],
        None,
    ],
    ids=["other direction", "other field", "more fields", "default order"],
)
async def test_cursor_from_a_different_order_is_refused(
    team, factory, db, client_for, other_order
):
    # given
    await _many_deals(factory, team["rep"], 3)
    await db.commit()
    client = await client_for(team["rep"])
    by_name = [{"field": "NAME", "direction": "ASC"}]
    page = await client.data(OPPORTUNITIES, {"first": 1, "orderBy": by_name})
    cursor = page["opportunities"]["pageInfo"]["endCursor"]

    # when
    body = await client.query(OPPORTUNITIES, {"after": cursor, "orderBy": other_order})

    # then
    error = only_error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cursor" in error["message"].lower()


async def test_cursor_from_another_list_is_refused(team, factory, db, client_for):
    # given
    await factory.account(team["rep"])
    await factory.opportunity(team["rep"])
    await db.commit()
    client = await client_for(team["rep"])
    cursor = (await client.data(ACCOUNTS_FIRST_PAGE))["accounts"]["pageInfo"]["endCursor"]

    # when
    body = await client.query(OPPORTUNITIES, {"after": cursor})

    # then
    error = only_error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


# --- the other root lists --------------------------------------------------------------

ROOT_LIST = """
query RootList(
  $first: Int, $after: String, $last: Int, $before: String,
  $filter: {filter_type}, $orderBy: [RecordOrder!]
) {{
  {field}(
    first: $first, after: $after, last: $last, before: $before,
    filter: $filter, orderBy: $orderBy
  ) {{
    totalCount
    nodes {{ id label: {label} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}
"""

# list field: (filter input type, the field that names a record in that list)
LISTS = {
    "accounts": ("AccountFilter", "name"),
    "contacts": ("ContactFilter", "lastName"),
    "leads": ("LeadFilter", "lastName"),
    "campaigns": ("CampaignFilter", "name"),
    "quotes": ("QuoteFilter", "subject"),
    "products": ("ProductFilter", "name"),
    "users": ("UserFilter", "username"),
}

ROOT_LISTS = {
    field: ROOT_LIST.format(field=field, filter_type=filter_type, label=label)
    for field, (filter_type, label) in LISTS.items()
}


def labels(connection: dict[str, Any]) -> list[str]:
    return [node["label"] for node in connection["nodes"]]


async def _accounts(factory: Any, team: dict[str, models.User]) -> dict[str, Any]:
    await factory.account(team["rep"], "Acme Corp", industry="TECHNOLOGY", city="Milano")
    await factory.account(team["rep2"], "Globex", industry="BANKING", city="Roma")
    await factory.account(team["other_rep"], "Initech", industry="TECHNOLOGY", city="Torino")
    return dict(team)


async def _contacts(factory: Any, team: dict[str, models.User]) -> dict[str, Any]:
    acme = await factory.account(team["admin"], "Acme")
    globex = await factory.account(team["admin"], "Globex")
    await factory.contact(
        team["rep"], "Rossi", first_name="Mario", email="mario@acme.it", account_id=acme.id
    )
    await factory.contact(
        team["rep2"], "Verdi", first_name="Giulia", email="giulia@globex.com",
        account_id=globex.id,
    )
    await factory.contact(
        team["other_rep"], "Bianchi", first_name="Luca", email="luca@acme.it",
        account_id=acme.id,
    )
    return {**team, "acme": acme, "globex": globex}


async def _leads(factory: Any, team: dict[str, models.User]) -> dict[str, Any]:
    await factory.lead(
        team["rep"], "Neri", first_name="Anna", company="Neri SpA", email="anna@neri.it",
        status="HOT",
    )
    await factory.lead(
        team["rep2"], "Gialli", first_name="Paolo", company="Gialli Srl",
        email="paolo@gialli.it", status="COLD", is_converted=True, converted_at=T0,
    )
    await factory.lead(
        team["other_rep"], "Blu", first_name="Sara", company="Blu Srl", email="sara@blu.it",
        status="HOT",
    )
    return dict(team)


async def _campaigns(factory: Any, team: dict[str, models.User]) -> dict[str, Any]:
    await factory.campaign(team["rep"], "Spring Expo", type="TRADE_SHOW", status="ACTIVE")
    await factory.campaign(team["rep2"], "Autumn Webinar", type="WEBINAR", status="PLANNING")
    await factory.campaign(
        team["other_rep"], "Winter Expo", type="TRADE_SHOW", status="COMPLETED"
    )
    return dict(team)


async def _quotes(factory: Any, team: dict[str, models.User]) -> dict[str, Any]:
    acme = await factory.account(team["admin"], "Acme")
    globex = await factory.account(team["admin"], "Globex")
    first = await factory.opportunity(team["admin"], name="First", account_id=acme.id)
    second = await factory.opportunity(team["admin"], name="Second", account_id=globex.id)
    widget = await factory.product()
    line = [(widget, "1", "10.00", "0", "0")]
    await factory.quote(first, line, subject="Hardware offer", stage="CREATED")
    await factory.quote(first, line, subject="Software offer", stage="ACCEPTED")
    await factory.quote(second, line, subject="Hardware renewal", stage="ACCEPTED")
    return {**team, "acme": acme, "globex": globex, "first": first, "second": second}


async def _products(factory: Any, team: dict[str, models.User]) -> dict[str, Any]:
    await factory.product("Widget", code="W-1")
    await factory.product("Gadget", code="G-7", is_active=False)
    await factory.product("Widget Pro", code="WP-2")
    return dict(team)


async def _users(factory: Any, team: dict[str, models.User]) -> dict[str, Any]:
    ghost = await factory.user("ghost")
    ghost.full_name = "Casper Spirit"
    ghost.is_active = False
    return dict(team)


BUILDERS = {
    "accounts": _accounts, "contacts": _contacts, "leads": _leads, "campaigns": _campaigns,
    "quotes": _quotes, "products": _products, "users": _users,
}


def user_ids(*usernames: str) -> Any:
    return lambda r: {"assignedTo": [gid("User", r[u].id) for u in usernames]}


ROOT_FILTER_CASES: list[tuple[str, str, Any, list[str]]] = [
    ("accounts", "search name", lambda r: {"search": "ACME"}, ["Acme Corp"]),
    ("accounts", "search city", lambda r: {"search": "roma"}, ["Globex"]),
    ("accounts", "search number", lambda r: {"search": "acc3"}, ["Initech"]),
    ("accounts", "assignedTo", user_ids("rep", "other_rep"), ["Acme Corp", "Initech"]),
    ("accounts", "industry", lambda r: {"industry": "TECHNOLOGY"}, ["Acme Corp", "Initech"]),
    (
        "accounts", "industry AND assignedTo",
        lambda r: {"industry": "TECHNOLOGY", **user_ids("other_rep")(r)}, ["Initech"],
    ),
    ("accounts", "search AND industry", lambda r: {"search": "globex", "industry": "RETAIL"}, []),
    ("contacts", "search first name", lambda r: {"search": "MARIO"}, ["Rossi"]),
    ("contacts", "search last name", lambda r: {"search": "verdi"}, ["Verdi"]),
    ("contacts", "search email", lambda r: {"search": "ACME.IT"}, ["Bianchi", "Rossi"]),
    ("contacts", "search number", lambda r: {"search": "con2"}, ["Verdi"]),
    ("contacts", "assignedTo", user_ids("rep2"), ["Verdi"]),
    (
        "contacts", "account", lambda r: {"account": gid("Account", r["acme"].id)},
        ["Bianchi", "Rossi"],
    ),
    ("contacts", "account garbage id", lambda r: {"account": "garbage"}, []),
    (
        "contacts", "account AND assignedTo",
        lambda r: {"account": gid("Account", r["acme"].id), **user_ids("other_rep")(r)},
        ["Bianchi"],
    ),
    ("leads", "search first name", lambda r: {"search": "anna"}, ["Neri"]),
    ("leads", "search company", lambda r: {"search": "SRL"}, ["Blu", "Gialli"]),
    ("leads", "search email", lambda r: {"search": "blu.it"}, ["Blu"]),
    ("leads", "search number", lambda r: {"search": "lea2"}, ["Gialli"]),
    ("leads", "assignedTo", user_ids("rep", "rep2"), ["Gialli", "Neri"]),
    ("leads", "status", lambda r: {"status": "HOT"}, ["Blu", "Neri"]),
    ("leads", "isConverted true", lambda r: {"isConverted": True}, ["Gialli"]),
    ("leads", "isConverted false", lambda r: {"isConverted": False}, ["Blu", "Neri"]),
    (
        "leads", "status AND isConverted AND assignedTo",
        lambda r: {"status": "HOT", "isConverted": False, **user_ids("other_rep")(r)},
        ["Blu"],
    ),
    ("campaigns", "search name", lambda r: {"search": "expo"}, ["Spring Expo", "Winter Expo"]),
    ("campaigns", "search number", lambda r: {"search": "CAM2"}, ["Autumn Webinar"]),
    ("campaigns", "assignedTo", user_ids("rep2"), ["Autumn Webinar"]),
    ("campaigns", "status", lambda r: {"status": "ACTIVE"}, ["Spring Expo"]),
    ("campaigns", "type", lambda r: {"type": "TRADE_SHOW"}, ["Spring Expo", "Winter Expo"]),
    (
        "campaigns", "type AND status",
        lambda r: {"type": "TRADE_SHOW", "status": "COMPLETED"}, ["Winter Expo"],
    ),
    (
        "quotes", "search subject", lambda r: {"search": "HARDWARE"},
        ["Hardware offer", "Hardware renewal"],
    ),
    ("quotes", "search number", lambda r: {"search": "quo2"}, ["Software offer"]),
    (
        "quotes", "opportunity", lambda r: {"opportunity": gid("Opportunity", r["first"].id)},
        ["Hardware offer", "Software offer"],
    ),
    ("quotes", "opportunity garbage id", lambda r: {"opportunity": "garbage"}, []),
    (
        "quotes", "account", lambda r: {"account": gid("Account", r["globex"].id)},
        ["Hardware renewal"],
    ),
    ("quotes", "stage", lambda r: {"stage": "ACCEPTED"}, ["Hardware renewal", "Software offer"]),
    (
        "quotes", "opportunity AND stage",
        lambda r: {"opportunity": gid("Opportunity", r["first"].id), "stage": "ACCEPTED"},
        ["Software offer"],
    ),
    ("products", "search name", lambda r: {"search": "WIDGET"}, ["Widget", "Widget Pro"]),
    ("products", "search code", lambda r: {"search": "g-7"}, ["Gadget"]),
    ("products", "search number", lambda r: {"search": "pro3"}, ["Widget Pro"]),
    ("products", "isActive false", lambda r: {"isActive": False}, ["Gadget"]),
    ("products", "isActive true", lambda r: {"isActive": True}, ["Widget", "Widget Pro"]),
    (
        "products", "search AND isActive", lambda r: {"search": "g", "isActive": True},
        ["Widget", "Widget Pro"],
    ),
    ("users", "search username", lambda r: {"search": "REP"}, ["other_rep", "rep", "rep2"]),
    ("users", "search full name", lambda r: {"search": "casper"}, ["ghost"]),
    ("users", "search email", lambda r: {"search": "rep2@example"}, ["rep2"]),
    ("users", "role", lambda r: {"role": "MANAGER"}, ["manager", "other_manager"]),
    ("users", "isActive false", lambda r: {"isActive": False}, ["ghost"]),
    (
        "users", "role AND isActive", lambda r: {"role": "SALES_REP", "isActive": True},
        ["other_rep", "rep", "rep2"],
    ),
]


@pytest.mark.parametrize(
    ("field", "filter_of", "expected"),
    [pytest.param(f, flt, e, id=f"{f}: {name}") for f, name, flt, e in ROOT_FILTER_CASES],
)
async def test_root_list_filter(team, factory, db, client_for, field, filter_of, expected):
    # given
    refs = await BUILDERS[field](factory, team)
    await db.commit()
    client = await client_for(team["admin"])

    # when
    data = await client.data(ROOT_LISTS[field], {"filter": filter_of(refs)})

    # then
    connection = data[field]
    assert sorted(labels(connection)) == expected
    assert connection["totalCount"] == len(expected)


async def _named(
    factory: Any, db: Any, team: dict[str, models.User], field: str, name: str,
    created: dt.datetime, updated: dt.datetime,
) -> Any:
    """One record of the list's type whose name field is `name`, with set timestamps."""
    owner = team["rep"]
    if field == "accounts":
        record = await factory.account(owner, name)
    elif field == "contacts":
        record = await factory.contact(owner, name)
    elif field == "leads":
        record = await factory.lead(owner, name)
    elif field == "campaigns":
        record = await factory.campaign(owner, name)
    elif field == "products":
        record = await factory.product(name)
    elif field == "quotes":
        deal = await factory.opportunity(owner, name="Deal")
        record = await factory.quote(deal, [], subject=name)
    else:
        record = await factory.user(name)
    record.created_at = created
    if hasattr(record, "updated_at"):
        record.updated_at = updated
    await db.flush()
    return record


# name, created (hours after T0), updated
NAMED_ROWS = [("ordbravo", 1, 2), ("ordalpha", 2, 0), ("ordcharlie", 0, 1)]
RECORD_ORDERS = {
    "NAME": ["ordalpha", "ordbravo", "ordcharlie"],
    "CREATED_AT": ["ordcharlie", "ordbravo", "ordalpha"],
    "UPDATED_AT": ["ordalpha", "ordcharlie", "ordbravo"],
}
ORDER_CASES = [
    (field, order)
    for field in LISTS
    for order in RECORD_ORDERS
    # users have no updated_at: see test_users_accept_updated_at_order
    if not (field == "users" and order == "UPDATED_AT")
]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
@pytest.mark.parametrize(("field", "order"), ORDER_CASES)
async def test_root_list_order_and_paging(
    team, factory, db, client_for, field, order, direction
):
    # given
    for name, created, updated in NAMED_ROWS:
        await _named(factory, db, team, field, name, at(created), at(updated))
    await db.commit()
    client = await client_for(team["rep"])
    query = ROOT_LISTS[field]
    variables = {
        "filter": {"search": "ord"}, "orderBy": [{"field": order, "direction": direction}]
    }
    expected = RECORD_ORDERS[order] if direction == "ASC" else RECORD_ORDERS[order][::-1]

    # when
    full = (await client.data(query, variables))[field]
    first = (await client.data(query, {**variables, "first": 2}))[field]
    rest = (
        await client.data(query, {**variables, "first": 2, "after": first["pageInfo"]["endCursor"]})
    )[field]
    last = (await client.data(query, {**variables, "last": 1}))[field]
    before = (
        await client.data(
            query, {**variables, "last": 2, "before": last["pageInfo"]["startCursor"]}
        )
    )[field]

    # then
    assert labels(full) == expected
    assert (labels(first), labels(rest)) == (expected[:2], expected[2:])
    assert (first["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasNextPage"]) == (True, False)
    assert (labels(before), labels(last)) == (expected[:2], expected[2:])
    assert (last["pageInfo"]["hasPreviousPage"], before["pageInfo"]["hasPreviousPage"]) == (
        True, False,
    )
    assert full["totalCount"] == first["totalCount"] == rest["totalCount"] == 3


async def test_users_accept_updated_at_order(team, factory, db, client_for):
    # given
    for name, created, updated in NAMED_ROWS:
        await _named(factory, db, team, "users", name, at(created), at(updated))
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(
        ROOT_LISTS["users"],
        {"filter": {"search": "ord"}, "orderBy": [{"field": "UPDATED_AT", "direction": "DESC"}]},
    )

    # then
    assert sorted(labels(data["users"])) == ["ordalpha", "ordbravo", "ordcharlie"]


@pytest.mark.parametrize("field", list(LISTS))
async def test_root_list_limits_and_cursors(team, client_for, field):
    # given
    client = await client_for(team["rep"])

    # when
    too_many = await client.query(ROOT_LISTS[field], {"first": 101})
    garbage = await client.query(ROOT_LISTS[field], {"after": "garbage!"})
    opportunity_cursor = await client.query(
        ROOT_LISTS[field], {"after": forged_cursor([CREATED_ASC, [["t", T0.isoformat()]]])}
    )

    # then
    for body in (too_many, garbage, opportunity_cursor):
        assert only_error(body)["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("accounts", ["Acme Corp"]),
        ("contacts", ["Rossi"]),
        ("leads", ["Neri"]),
        ("quotes", []),
        ("campaigns", ["Autumn Webinar", "Spring Expo", "Winter Expo"]),
        ("products", ["Gadget", "Widget", "Widget Pro"]),
        ("users", ["admin", "ghost", "manager", "other_manager", "other_rep", "rep", "rep2"]),
    ],
)
async def test_root_list_visibility_for_a_rep(team, factory, db, client_for, field, expected):
    # given: records owned by several people; campaigns, products and users are public
    await BUILDERS[field](factory, team)
    await db.commit()
    client = await client_for(team["rep"])

    # when
    data = await client.data(ROOT_LISTS[field], {"first": 100})

    # then
    assert sorted(labels(data[field])) == expected
    assert data[field]["totalCount"] == len(expected)


# --- the total of the unfiltered list: per-owner counts kept by the database ---------------

TOTAL = "query { opportunities(first: 100) { totalCount nodes { id } } }"
DELETE_DEAL = """
mutation Delete($id: ID!) { deleteOpportunity(input: {id: $id}) { userErrors { code } } }
"""
RESTORE_DEAL = """
mutation Restore($id: ID!) {
  restoreOpportunity(input: {id: $id}) { userErrors { code } }
}
"""
REASSIGN_DEAL = """
mutation Reassign($id: ID!, $to: ID!) {
  updateOpportunity(input: {id: $id, assignedToId: $to}) { userErrors { code } }
}
"""


async def test_the_unfiltered_total_follows_every_change_of_owner_and_recycle_bin(
    team, factory, db, client_for
):
    """totalCount of the unfiltered list sums the per-owner counts that database triggers
    keep (migrations 0009 and 0010): after creating, deleting, restoring, reassigning and
    purging deals, one or several in a statement, it must still be the number of deals each
    viewer sees."""
    # given
    rep, rep2, other = team["rep"], team["rep2"], team["other_rep"]
    deals = [await factory.opportunity(owner, f"D{i}") for i, owner in
             enumerate([rep, rep, rep2, other, other])]
    await db.commit()
    clients = {name: await client_for(team[name])
               for name in ("admin", "manager", "rep", "rep2", "other_rep")}
    admin = clients["admin"]

    async def check() -> dict[str, int]:
        totals = {}
        for name, client in clients.items():
            data = (await client.data(TOTAL))["opportunities"]
            assert data["totalCount"] == len(data["nodes"]), name
            totals[name] = data["totalCount"]
        return totals

    # when / then: each change moves exactly the totals it should
    assert await check() == {"admin": 5, "manager": 3, "rep": 2, "rep2": 1, "other_rep": 2}
    first = gid("Opportunity", deals[0].id)
    await admin.data(DELETE_DEAL, {"id": first})
    assert await check() == {"admin": 4, "manager": 2, "rep": 1, "rep2": 1, "other_rep": 2}
    await admin.data(RESTORE_DEAL, {"id": first})
    assert await check() == {"admin": 5, "manager": 3, "rep": 2, "rep2": 1, "other_rep": 2}
    await admin.data(REASSIGN_DEAL, {"id": first, "to": gid("User", other.id)})
    assert await check() == {"admin": 5, "manager": 2, "rep": 1, "rep2": 1, "other_rep": 3}
    await admin.data(DELETE_DEAL, {"id": first})  # a deleted deal changing owner counts nowhere
    deal = await db.get(models.Opportunity, deals[0].id, populate_existing=True)
    assert deal is not None
    deal.assigned_to_id = rep.id
    await db.commit()
    assert await check() == {"admin": 4, "manager": 2, "rep": 1, "rep2": 1, "other_rep": 2}
    purged = deals[2].id  # gone for good, with its history
    await db.execute(sa.delete(models.StageChange).where(
        models.StageChange.opportunity_id == purged))
    await db.execute(sa.delete(models.Opportunity).where(models.Opportunity.id == purged))
    await db.commit()
    assert await check() == {"admin": 3, "manager": 1, "rep": 1, "rep2": 0, "other_rep": 2}
    await db.execute(sa.update(models.Opportunity).where(  # two deals in one statement
        models.Opportunity.assigned_to_id == other.id).values(assigned_to_id=rep2.id))
    await db.commit()
    assert await check() == {"admin": 3, "manager": 3, "rep": 1, "rep2": 2, "other_rep": 0}
    await db.execute(sa.update(models.Opportunity).where(
        models.Opportunity.assigned_to_id == rep2.id).values(deleted_at=sa.func.now()))
    await db.commit()
    assert await check() == {"admin": 1, "manager": 1, "rep": 1, "rep2": 0, "other_rep": 0}
