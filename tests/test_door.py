"""The one door into the planner (planner/door.py): a planned answer is served without
Strawberry; in "verify" mode graphql-core answers too and the two are compared; whatever the
planner does not answer goes to graphql-core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from server.app import create_app
from server.settings import Settings
from tests.conftest import GraphQLClient, cached_app, graphql_schema, stop_app

DEALS = "query Deals { opportunities(first: 5) { totalCount nodes { name } } }"
INTROSPECTION = "query Intro { __schema { queryType { name } } }"


@pytest.fixture
async def planned_app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings.model_copy(update={"planner": "on"}))
    yield application
    await application.state.engine.dispose()


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Counts the operations Strawberry (so graphql-core) executes, in a given app."""

    def spy(application: Any) -> list[str]:
        schema = graphql_schema(application)
        seen: list[str] = []
        execute = schema.execute

        async def counted(query: str | None, *args: Any, **kwargs: Any) -> Any:
            seen.append(query or "")
            return await execute(query, *args, **kwargs)

        monkeypatch.setattr(schema, "execute", counted)
        return seen

    return spy


async def test_a_planned_answer_is_served_without_graphql_core(
    planned_app, team, factory, db, executions
):
    # given
    await factory.opportunity(team["rep"], "Mine")
    client = GraphQLClient(planned_app, await factory.token(team["rep"]))
    await db.commit()
    plans = graphql_schema(planned_app).plans
    seen = executions(planned_app)
    before = plans.stats["planned"]

    # when: a query the planner answers, POSTed and as a GET; then one it does not
    posted = await client.data(DEALS)
    got = (await client.http.get("/graphql", params={"query": DEALS})).json()["data"]
    planned_executions = list(seen)
    intro = await client.data(INTROSPECTION)

    # then
    expected = {"opportunities": {"totalCount": 1, "nodes": [{"name": "Mine"}]}}
    assert posted == got == expected
    assert plans.stats["planned"] == before + 2
    assert planned_executions == []
    assert intro == {"__schema": {"queryType": {"name": "Query"}}}
    assert seen == [INTROSPECTION]  # the positive control: graphql-core answered this one


async def test_verify_mode_compares_through_the_door(app, team, factory, db, monkeypatch):
    # given: the suite's app (verify mode), its planner made to answer wrongly
    await factory.opportunity(team["rep"], "Mine")
    client = GraphQLClient(app, await factory.token(team["rep"]))
    await db.commit()
    plans = graphql_schema(app).plans
    assert plans.mode == "verify"
    assert await client.data(DEALS)  # a right answer first: no difference
    assert plans.mismatches == []
    execute = plans.execute

    async def wrong(*args: Any, **kwargs: Any) -> Any:
        data = await execute(*args, **kwargs)
        return None if data is None else {"opportunities": {"totalCount": 99, "nodes": []}}

    monkeypatch.setattr(plans, "execute", wrong)

    # when
    body = await client.data(DEALS)

    # then: the difference recorded, and the answer is graphql-core's
    found = list(plans.mismatches)
    plans.mismatches.clear()  # (the suite fails a test that leaves one)
    assert body == {"opportunities": {"totalCount": 1, "nodes": [{"name": "Mine"}]}}
    assert len(found) == 1 and found[0]["planned"]["opportunities"]["totalCount"] == 99


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (INTROSPECTION, None),  # valid, not planned
        ("query Broken { opportunities(first: 5) { totalCount ", "GRAPHQL_PARSE_FAILED"),
        ("query Unknown { opportunities(first: 5) { shoeSize } }", "GRAPHQL_VALIDATION_FAILED"),
        ("mutation { createAccount(input: { name: \"\" }) { account { name } } }", None),
    ],
)
async def test_what_the_planner_does_not_answer_is_graphql_cores(
    planned_app, team, factory, db, executions, query, code
):
    # given
    client = GraphQLClient(planned_app, await factory.token(team["admin"]))
    await db.commit()
    plans = graphql_schema(planned_app).plans
    seen = executions(planned_app)
    before = plans.stats["planned"]

    # when
    response = await client.post(query)

    # then: answered by graphql-core, errors included
    body = response.json()
    assert seen == [query]
    assert plans.stats["planned"] == before
    codes = [e["extensions"]["code"] for e in body.get("errors", [])]
    assert codes == ([code] if code else []), body


async def test_a_plan_that_reads_nothing_takes_no_connection(settings, team, factory, db):
    # given: an app that keeps verified tokens (the second request needs no lookup)
    application = await cached_app(settings, 60, planner="on")
    checkouts: list[int] = []
    event.listen(application.state.engine.sync_engine.pool, "checkout",
                 lambda *_: checkouts.append(1))
    client = GraphQLClient(application, await factory.token(team["rep"]))
    await db.commit()
    try:
        await client.data("{ viewer { id } }")  # the token verified: a connection

        # when
        checkouts.clear()
        viewer = await client.data("query Me { viewer { username role } }")
        after_viewer = len(checkouts)
        deals = await client.data(DEALS)  # positive control: a plan that reads

        # then
        assert viewer == {"viewer": {"username": "rep", "role": "SALES_REP"}}
        assert after_viewer == 0
        assert deals["opportunities"]["totalCount"] == 0 and len(checkouts) == 1
        assert graphql_schema(application).plans.stats["planned"] == 3  # all three
    finally:
        await stop_app(application)


async def test_a_cached_page_is_per_value_of_the_variables_its_arguments_name(
    planned_app, team, factory, db
):
    # given: one query text, its arguments naming variables inside a list and an object
    for name in ("Alpha", "Beta", "Gamma"):
        await factory.opportunity(team["rep"], name)
    client = GraphQLClient(planned_app, await factory.token(team["rep"]))
    await db.commit()
    query = """query Deals($first: Int, $direction: OrderDirection!, $search: String) {
      opportunities(first: $first, filter: {search: $search},
                    orderBy: [{field: NAME, direction: $direction}]) { nodes { name } } }"""

    async def names(**variables: Any) -> list[str]:
        data = await client.data(query, variables)
        return [n["name"] for n in data["opportunities"]["nodes"]]

    # when / then: every change of a variable's value is a different page
    assert await names(first=2, direction="ASC") == ["Alpha", "Beta"]
    assert await names(first=2, direction="DESC") == ["Gamma", "Beta"]
    assert await names(first=3, direction="DESC") == ["Gamma", "Beta", "Alpha"]
    assert await names(first=3, direction="DESC", search="alp") == ["Alpha"]
    assert await names(direction="ASC", search=None) == ["Alpha", "Beta", "Gamma"]
    assert graphql_schema(planned_app).plans.stats["planned"] == 5
