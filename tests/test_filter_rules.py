"""Issue 13's filter corrections: unknown picklist keys are refused on every path (GraphQL
lists, planned or not, nested lists, the forecast, subscriptions, the CSV export); the new
filters updatedSince and isOverdue; dates outside 1900–2999 are refused everywhere."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select, update

import models
from resolvers import exporting
from resolvers.errors import RequestError
from resolvers.ids import to_global_id
from tests.test_custom_fields import create, define, errors_of
from tests.test_subscriptions import EVENTS, WebSocketClient

LIST = """
query($filter: OpportunityFilter) {
  opportunities(filter: $filter) { totalCount nodes { name } }
}
"""
NESTED = """
query($filter: OpportunityFilter) {
  accounts { nodes { opportunities(filter: $filter) { totalCount } } }
}
"""
FORECAST = """
query($filter: OpportunityFilter) {
  forecast(groupBy: [STAGE], filter: $filter) { totals { count } }
}
"""
CREATE = """
mutation($input: CreateOpportunityInput!) {
  createOpportunity(input: $input) { opportunity { id } userErrors { field code } }
}
"""
DEACTIVATE = """
mutation { updatePicklistValue(input: {picklist: "leadSource", key: "COLD_CALL", isActive: false}) {
  userErrors { code } } }
"""

TODAY = dt.date.today()


def refused(body: dict[str, Any]) -> str:
    """The message of the single BAD_USER_INPUT error of a refused request."""
    assert body["data"] is None or all(v is None for v in body["data"].values()), body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    return error["message"]  # type: ignore[no-any-return]


@pytest.fixture
async def deals(team, factory, db) -> None:
    acme = await factory.account(team["rep"], "Acme")
    await factory.opportunity(
        team["rep"], "Cold", stage="QUALIFICATION", lead_source="COLD_CALL",
        type="NEW_BUSINESS", account_id=acme.id, close=TODAY - dt.timedelta(days=3),
    )
    await factory.opportunity(
        team["rep"], "Won late", stage="CLOSED_WON", close=TODAY - dt.timedelta(days=3),
        actual_close_date=TODAY,
    )
    await factory.opportunity(
        team["rep"], "Due today", stage="PROSPECTING", close=TODAY, account_id=acme.id,
    )
    await db.commit()


# --- unknown picklist keys ---------------------------------------------------------------


@pytest.mark.parametrize(("bad", "good", "named"), [
    ({"stage": ["QUALIFICATION", "NOPE"]}, {"stage": ["QUALIFICATION"]}, "'NOPE'"),
    ({"type": "OLD_BUSINESS"}, {"type": "NEW_BUSINESS"}, "'OLD_BUSINESS'"),
    ({"leadSource": "cold_call"}, {"leadSource": "COLD_CALL"}, "'cold_call'"),
])
@pytest.mark.parametrize("query", [LIST, NESTED, FORECAST], ids=["list", "nested", "forecast"])
async def test_unknown_picklist_keys_in_a_filter_are_refused(
    team, deals, client_for, bad, good, named, query
):
    # given
    client = await client_for(team["rep"])

    # when
    refusal = await client.query(query, {"filter": bad})
    control = await client.query(query, {"filter": good})

    # then
    message = refused(refusal)
    assert named in message and "known keys" in message
    assert "errors" not in control, control


async def test_a_deactivated_key_still_filters_the_records_that_keep_it(
    team, deals, client_for
):
    # given
    admin = await client_for(team["admin"])
    assert (await admin.data(DEACTIVATE))["updatePicklistValue"]["userErrors"] == []

    # when
    data = await admin.data(LIST, {"filter": {"leadSource": "COLD_CALL"}})

    # then
    assert [n["name"] for n in data["opportunities"]["nodes"]] == ["Cold"]


async def test_the_export_route_answers_400_for_an_unknown_key(team, deals, client_for):
    # given
    client = await client_for(team["rep"])

    # when
    bad = await client.http.get("/export/opportunities.csv", params={"stage": "NOPE"})
    good = await client.http.get("/export/opportunities.csv", params={"stage": "QUALIFICATION"})

    # then
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "'NOPE'" in bad.json()["errors"][0]["message"]
    assert good.status_code == 200
    assert "Cold" in good.text


async def test_a_subscription_with_an_unknown_key_is_refused_at_once(team, factory, db, app):
    # given
    token = await factory.token(team["rep"])
    await db.commit()
    client = WebSocketClient(app)
    assert await client.init({"Authorization": f"Bearer {token}"}) == {"type": "connection_ack"}

    # when
    await client.subscribe(variables={"filter": {"stage": ["NOPE"]}}, op_id="bad")
    await client.subscribe(EVENTS, variables={"filter": {"stage": ["QUALIFICATION"]}}, op_id="ok")
    message = await client.receive()

    # then: the bad one fails, the good one stays subscribed
    assert message["type"] == "error" and message["id"] == "bad", message
    assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await client.nothing()
    await client.close()


# --- the new filters ---------------------------------------------------------------------


async def test_is_overdue_filters_open_deals_past_their_close_date(team, deals, client_for):
    client = await client_for(team["rep"])

    overdue = await client.data(LIST, {"filter": {"isOverdue": True}})
    not_overdue = await client.data(LIST, {"filter": {"isOverdue": False}})

    assert [n["name"] for n in overdue["opportunities"]["nodes"]] == ["Cold"]
    assert sorted(n["name"] for n in not_overdue["opportunities"]["nodes"]) == [
        "Due today", "Won late",
    ]


async def test_updated_since_keeps_the_deals_changed_at_or_after_it(
    team, deals, client_for, db
):
    # given: "Cold" last changed ten days ago
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    await db.execute(
        update(models.Opportunity).where(models.Opportunity.name == "Cold")
        .values(updated_at=long_ago)
    )
    await db.commit()
    client = await client_for(team["rep"])
    since = (long_ago + dt.timedelta(days=1)).isoformat()

    # when
    recent = await client.data(LIST, {"filter": {"updatedSince": since}})
    inclusive = await client.data(LIST, {"filter": {"updatedSince": long_ago.isoformat()}})

    # then
    assert sorted(n["name"] for n in recent["opportunities"]["nodes"]) == ["Due today", "Won late"]
    assert inclusive["opportunities"]["totalCount"] == 3


async def test_the_export_takes_the_new_filters(team, deals, client_for):
    client = await client_for(team["rep"])

    response = await client.http.get(
        "/export/opportunities.csv",
        params={"isOverdue": "true", "actualCloseDateFrom": "1900-01-01"},
    )
    bad = await client.http.get("/export/opportunities.csv", params={"updatedSince": "yesterday"})

    assert response.status_code == 200
    assert response.text.count("\r\n") == 1  # the header: "Cold" is open, "Won late" is not late
    assert bad.status_code == 400


# --- dates outside 1900–2999 -------------------------------------------------------------


@pytest.mark.parametrize("day", ["1899-12-31", "3000-01-01", "0202-03-31"])
async def test_dates_out_of_range_are_refused_in_mutations_and_filters(
    team, client_for, day, db
):
    # given
    client = await client_for(team["rep"])
    before = await db.scalar(select(func.count()).select_from(models.Opportunity))

    # when
    created = await client.query(CREATE, {"input": {
        "name": "Typo", "expectedCloseDate": day, "salesStage": "PROSPECTING",
    }})
    literal = await client.query(
        'mutation { createOpportunity(input: {name: "Typo", salesStage: "PROSPECTING", '
        f'expectedCloseDate: "{day}"}}) {{ userErrors {{ code }} }} }}'
    )
    listed = await client.query(LIST, {"filter": {"expectedCloseDateFrom": day}})
    since = await client.query(LIST, {"filter": {"updatedSince": f"{day}T00:00:00+00:00"}})
    control = await client.data(CREATE, {"input": {
        "name": "Fine", "expectedCloseDate": "1900-01-01", "salesStage": "PROSPECTING",
    }})

    # then
    for body in (created, literal, listed, since):
        assert body["errors"], body
        assert "out of range" in body["errors"][0]["message"], body
        assert body["errors"][0]["extensions"]["code"] in (
            "BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED",
        )
    assert control["createOpportunity"]["userErrors"] == []
    await db.commit()  # a fresh snapshot
    assert await db.scalar(select(func.count()).select_from(models.Opportunity)) == before + 1


def test_the_export_filter_refuses_dates_out_of_range():
    with pytest.raises(RequestError, match="out of range"):
        exporting.filter_from_params({"expectedCloseDateTo": "3000-01-01"})
    with pytest.raises(RequestError, match="out of range"):
        exporting.filter_from_json('{"updatedSince": "1850-01-01T00:00:00+00:00"}')
    latest = exporting.filter_from_params({"expectedCloseDateTo": "2999-12-31"})
    assert latest.expected_close_date_to == dt.date(2999, 12, 31)


def gid(type_name: str, pk: int) -> str:
    return to_global_id(type_name, pk)


@pytest.mark.parametrize(("kind", "bad", "good"), [
    ("DATE", "3000-01-01", "2999-12-31"),
    ("DATETIME", "1899-12-31T23:00:00+00:00", "1900-01-01T00:00:00+00:00"),
])
async def test_custom_date_values_out_of_range_are_refused(team, client_for, kind, bad, good):
    # given
    admin = await client_for(team["admin"])
    field = await define(admin, "Signed", kind)

    # when
    refused = await create(admin, "OPPORTUNITY", [{"key": field["key"], "value": bad}])
    accepted = await create(admin, "OPPORTUNITY", [{"key": field["key"], "value": good}])

    # then
    assert errors_of(refused) == [(["input", "customFields", "0", "value"], "INVALID")]
    assert "out of range" in refused["userErrors"][0]["message"]
    assert accepted["userErrors"] == []


@pytest.mark.parametrize(("query", "bad", "good"), [
    ("accounts", {"industry": "BANKS"}, {"industry": "BANKING"}),
    ("campaigns", {"status": "LIVE"}, {"status": "ACTIVE"}),
    ("campaigns", {"type": "FAIR"}, {"type": "TRADE_SHOW"}),
    ("leads", {"status": "TEPID"}, {"status": "WARM"}),
    ("quotes", {"stage": "SIGNED"}, {"stage": "ACCEPTED"}),
])
async def test_other_lists_refuse_unknown_picklist_keys_too(team, client_for, query, bad, good):
    # given
    client = await client_for(team["rep"])
    filter_type = {"accounts": "AccountFilter", "campaigns": "CampaignFilter",
                   "leads": "LeadFilter", "quotes": "QuoteFilter"}[query]
    document = f"query($f: {filter_type}) {{ {query}(filter: $f) {{ totalCount }} }}"

    # when
    refusal = await client.query(document, {"f": bad})
    control = await client.query(document, {"f": good})

    # then
    assert repr(next(iter(bad.values()))) in refused(refusal)
    assert "errors" not in control, control
