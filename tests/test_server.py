"""HTTP behaviour of the ASGI app: authentication, GraphiQL, health, limits, error shaping,
request ids and the access log."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update

import models
from resolvers import records
from schema import print_schema
from server.app import create_app
from server.settings import Settings
from tests.conftest import GraphQLClient, root

VIEWER = "query Viewer { viewer { username role } }"
OPPORTUNITIES = "query Deals { opportunities(first: 5) { totalCount nodes { name } } }"
QUOTE_TOTALS = "query QuoteTotals { quotes { nodes { subject netTotal } } }"
SYNTAX_ERROR = "query Broken { viewer { username "
UNKNOWN_FIELD = "query Unknown { viewer { username shoeSize } }"
TOO_LARGE_PAGE = "query Huge { opportunities(first: 101) { totalCount } }"
LARGEST_PAGE = "query Largest { opportunities(first: 100) { totalCount } }"


def nested_query(depth: int) -> str:
    """`viewer { manager { … { username } } }` whose leaf is `depth` levels below the root
    field (graphql-depth-limit's measure: `{ viewer { username } }` has depth 1)."""
    return (
        "query Deep { viewer { " + "manager { " * (depth - 1) + "username" + " }" * (depth - 1)
        + " } }"
    )


def aliased_query(aliases: int) -> str:
    fields = " ".join(f"a{i}: viewer {{ username }}" for i in range(aliases))
    return f"query Aliases {{ {fields} }}"


def token_heavy_query(tokens: int) -> str:
    """A cheap query of exactly `tokens` lexical tokens: a long list of stage keys."""
    fixed = 18  # query T { opportunities ( filter : { stage : [ ] } ) { totalCount } }
    stages = '"PROSPECTING" ' * (tokens - fixed)
    return f"query T {{ opportunities(filter: {{stage: [{stages}]}}) {{ totalCount }} }}"


def with_root_list(query: str) -> str:
    """The same query also asking for a root list (which a refused query must not run)."""
    return query.replace("{", "{ deals: opportunities { totalCount }", 1)


def error_codes(body: dict[str, Any]) -> list[str | None]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


@pytest.fixture
async def rep(team) -> models.User:
    return team["rep"]


@pytest.fixture
def http(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
def spy_lists(monkeypatch) -> list[str]:
    """Records every root list that gets executed."""
    calls: list[str] = []
    original = records.list_query

    def spy(viewer: Any, type_name: str, *args: Any) -> Any:
        calls.append(type_name)
        return original(viewer, type_name, *args)

    monkeypatch.setattr(records, "list_query", spy)
    return calls


# --- authentication ---------------------------------------------------------------------


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body.get("data") is None
    [error] = body["errors"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}


async def test_a_valid_token_authenticates_its_user(rep, client_for):
    # given
    client = await client_for(rep)

    # when
    data = await client.data(VIEWER)

    # then
    assert data == {"viewer": {"username": "rep", "role": "SALES_REP"}}


async def test_the_list_spy_sees_an_executed_list(rep, client_for, spy_lists):
    # given: the control for the tests below, which expect it to see nothing
    client = await client_for(rep)

    # when
    await client.data("{ opportunities(first: 1) { totalCount } }")

    # then
    assert "Opportunity" in spy_lists


async def test_a_request_without_a_token_is_401(anonymous_client, spy_lists):
    # when
    response = await anonymous_client.post(OPPORTUNITIES)

    # then
    assert_unauthenticated(response)
    assert spy_lists == []


@pytest.mark.parametrize(
    "authorization",
    ["Bearer dg_not-a-real-token", "Bearer ", "Basic cmVwOnNlY3JldA==", "dg_token-without-scheme"],
)
async def test_a_wrong_token_is_401(authorization, app, team, spy_lists):
    # given
    client = GraphQLClient(app, None)
    client.http.headers["Authorization"] = authorization

    # when
    response = await client.post(OPPORTUNITIES)

    # then
    assert_unauthenticated(response)
    assert spy_lists == []


async def test_a_revoked_token_is_401(rep, factory, db, app):
    # given
    token = await factory.token(rep)
    await db.execute(
        update(models.ApiToken)
        .where(models.ApiToken.user_id == rep.id)
        .values(revoked_at=dt.datetime.now(dt.UTC))
    )
    await db.commit()

    # when
    response = await GraphQLClient(app, token).post(VIEWER)

    # then
    assert_unauthenticated(response)


async def test_an_inactive_users_token_is_401(rep, factory, db, app):
    # given
    token = await factory.token(rep)
    rep.is_active = False
    await db.commit()

    # when
    response = await GraphQLClient(app, token).post(VIEWER)

    # then
    assert_unauthenticated(response)


async def test_other_tokens_of_the_same_user_survive_a_revocation(rep, factory, db, app):
    # given
    revoked, kept = await factory.token(rep), await factory.token(rep)
    await db.execute(
        update(models.ApiToken)
        .where(models.ApiToken.token_hash == hashlib.sha256(revoked.encode()).hexdigest())
        .values(revoked_at=dt.datetime.now(dt.UTC))
    )
    await db.commit()

    # when
    refused = await GraphQLClient(app, revoked).post(VIEWER)
    accepted = await GraphQLClient(app, kept).post(VIEWER)

    # then
    assert refused.status_code == 401
    assert accepted.status_code == 200


async def test_tokens_are_stored_only_as_a_sha256_hash(rep, factory, db):
    # given
    token = await factory.token(rep)
    await db.commit()

    # when
    rows = (await db.execute(text("SELECT * FROM api_tokens"))).mappings().all()

    # then
    [row] = rows
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    stored = " ".join(str(value) for value in row.values())
    assert token not in stored
    assert token.removeprefix("dg_") not in stored
    assert len(token) >= 32


async def test_every_token_is_different(rep, factory, db):
    # when
    tokens = {await factory.token(rep) for _ in range(20)}

    # then
    assert len(tokens) == 20


# --- GraphiQL, health, readiness -----------------------------------------------------------


async def test_graphiql_is_served_to_a_browser_without_a_token(http):
    # when
    response = await http.get("/graphql", headers={"Accept": "text/html"})

    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()
    assert response.headers["x-request-id"]


async def test_a_browser_get_with_a_query_still_needs_a_token(http, team, spy_lists):
    # when: a GET carrying a query is an operation, not the GraphiQL page
    response = await http.get(
        "/graphql", params={"query": OPPORTUNITIES}, headers={"Accept": "text/html"}
    )

    # then
    assert_unauthenticated(response)
    assert spy_lists == []


async def test_a_get_query_with_a_token_is_executed(rep, client_for):
    # given
    client = await client_for(rep)

    # when
    response = await client.http.get("/graphql", params={"query": VIEWER})

    # then
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"username": "rep", "role": "SALES_REP"}}}


async def test_healthz_answers_without_a_token(http):
    # when
    response = await http.get("/healthz")

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readyz_is_200_when_the_database_is_migrated(http):
    # when
    response = await http.get("/readyz")

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readyz_is_503_when_the_schema_is_at_an_unknown_revision(http, engine):
    # given
    async with engine.begin() as connection:
        [revision] = (await connection.execute(text("SELECT version_num FROM alembic_version")))
        revision = revision[0]
        await connection.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    try:
        # when
        response = await http.get("/readyz")
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :v"), {"v": revision}
            )

    # then
    assert response.status_code == 503
    assert response.json()["status"] != "ok"
    assert (await http.get("/readyz")).status_code == 200


# --- limits ------------------------------------------------------------------------------


def assert_refused(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code in (200, 400)
    body = response.json()
    assert body.get("data") is None
    assert body["errors"]
    assert set(error_codes(body)) == {code}, body
    return body


async def test_a_query_within_every_limit_is_executed(rep, client_for):
    # given
    client = await client_for(rep)

    # when
    deep = await client.query(nested_query(12))
    aliased = await client.query(aliased_query(50))
    long = await client.query(token_heavy_query(5000))

    # then
    for body in (deep, aliased, long):
        assert "errors" not in body, body
    assert deep["data"]["viewer"]["manager"] == {"manager": None}
    assert len(aliased["data"]) == 50
    assert long["data"] == {"opportunities": {"totalCount": 0}}


@pytest.mark.parametrize(
    "query",
    [nested_query(13), aliased_query(51), token_heavy_query(5001)],
    ids=["depth-13", "aliases-51", "tokens-5001"],
)
async def test_a_query_over_a_limit_is_refused_before_execution(query, rep, client_for, spy_lists):
    # given: the query also asks for a root list, which must not run
    client = await client_for(rep)

    # when
    response = await client.post(with_root_list(query))

    # then
    assert_refused(response, "QUERY_LIMIT_EXCEEDED")
    assert spy_lists == []


async def test_the_limits_come_from_the_settings(settings, rep, factory, db):
    # given
    strict = create_app(
        Settings(database_url=settings.database_url, max_query_depth=2, max_aliases=1)
    )
    token = await factory.token(rep)
    await db.commit()
    client = GraphQLClient(strict, token)

    try:
        # when
        shallow = await client.query(nested_query(2))
        deep = await client.post(nested_query(3))
        aliased = await client.post(aliased_query(2))
    finally:
        await strict.state.engine.dispose()

    # then
    assert "errors" not in shallow
    assert_refused(deep, "QUERY_LIMIT_EXCEEDED")
    assert_refused(aliased, "QUERY_LIMIT_EXCEEDED")


async def test_a_page_over_the_maximum_size_is_refused(rep, client_for):
    # given
    client = await client_for(rep)

    # when
    refused = await client.query(TOO_LARGE_PAGE)
    allowed = await client.query(LARGEST_PAGE)

    # then
    assert refused["data"] is None
    [error] = refused["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "100" in error["message"]
    assert allowed == {"data": {"opportunities": {"totalCount": 0}}}


# --- error shaping -------------------------------------------------------------------------


async def test_a_syntax_error_is_graphql_parse_failed(rep, client_for):
    # given
    client = await client_for(rep)

    # when
    response = await client.post(SYNTAX_ERROR)

    # then
    assert_refused(response, "GRAPHQL_PARSE_FAILED")


async def test_an_unknown_field_is_graphql_validation_failed(rep, client_for, spy_lists):
    # given
    client = await client_for(rep)

    # when
    response = await client.post(UNKNOWN_FIELD)

    # then
    body = assert_refused(response, "GRAPHQL_VALIDATION_FAILED")
    assert "shoeSize" in body["errors"][0]["message"]


async def test_an_unexpected_fault_is_masked_and_logged_with_the_request_id(
    rep, factory, db, client_for, monkeypatch, caplog
):
    # given
    deal = await factory.opportunity(rep)
    await factory.quote(deal, [(await factory.product(), "1", "10.00", "0", "0")], "Offer")
    await db.commit()
    client = await client_for(rep)

    def broken_totals(lines: Any) -> Any:
        raise RuntimeError("secret detail")

    # (the totals' own rule, which both the planner and graphql-core call)
    monkeypatch.setattr("resolvers.quote.line_net_total", broken_totals)
    caplog.set_level(logging.ERROR, logger="dealgraph")

    # when
    response = await client.post(QUOTE_TOTALS)

    # then: the client sees a generic message, a code and the request id
    assert response.status_code == 200
    body = response.json()
    assert "secret detail" not in response.text
    assert "Traceback" not in response.text
    [error] = body["errors"]
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert error["path"] == ["quotes", "nodes", 0, "netTotal"]
    assert request_id in error["message"]
    # and the log has the whole story
    [record] = [r for r in caplog.records if r.name == "dealgraph" and r.levelno == logging.ERROR]
    assert request_id in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "secret detail" in caplog.text
    assert "broken_totals" in caplog.text  # the stack trace


async def test_expected_errors_are_not_logged_as_faults(rep, client_for, caplog):
    # given
    client = await client_for(rep)
    caplog.set_level(logging.ERROR, logger="dealgraph")

    # when
    await client.post(UNKNOWN_FIELD)
    await client.post(TOO_LARGE_PAGE)

    # then
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# --- request ids and the access log ---------------------------------------------------------


async def test_every_graphql_response_carries_a_request_id(rep, client_for, anonymous_client):
    # given
    client = await client_for(rep)

    # when
    responses = [
        await client.post(VIEWER),
        await client.post(SYNTAX_ERROR),
        await client.post(TOO_LARGE_PAGE),
        await anonymous_client.post(VIEWER),
    ]

    # then
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(ids), ids
    assert len(set(ids)) == len(ids)


async def test_a_request_id_sent_by_the_client_is_kept(rep, client_for, anonymous_client):
    # given
    client = await client_for(rep)
    headers = {"X-Request-Id": "trace-1234"}

    # when
    ok = await client.http.post("/graphql", json={"query": VIEWER}, headers=headers)
    refused = await anonymous_client.http.post("/graphql", json={"query": VIEWER}, headers=headers)

    # then
    assert ok.headers["x-request-id"] == "trace-1234"
    assert refused.headers["x-request-id"] == "trace-1234"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "dealgraph.access"]


async def test_one_structured_access_log_line_per_request(rep, client_for, caplog):
    # given
    client = await client_for(rep)
    caplog.set_level(logging.INFO, logger="dealgraph.access")

    # when
    response = await client.post(VIEWER)

    # then
    [line] = access_lines(caplog)
    assert line["operation"] == "Viewer"
    assert line["status"] == 200
    assert line["request_id"] == response.headers["x-request-id"]
    assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    assert line["user"] == "rep"
    assert "secret" not in json.dumps(line)


async def test_refused_requests_are_logged_once_with_their_status(
    rep, client_for, anonymous_client, caplog
):
    # given
    client = await client_for(rep)
    caplog.set_level(logging.INFO, logger="dealgraph.access")

    # when
    unauthenticated = await anonymous_client.post(VIEWER)
    invalid = await client.post(UNKNOWN_FIELD)
    broken = await client.post(SYNTAX_ERROR)

    # then
    lines = access_lines(caplog)
    assert [(line["status"], line["request_id"]) for line in lines] == [
        (401, unauthenticated.headers["x-request-id"]),
        (200, invalid.headers["x-request-id"]),
        (broken.status_code, broken.headers["x-request-id"]),
    ]
    assert "user" not in lines[0]
    assert lines[1]["operation"] == "Unknown"
    assert lines[1]["errors"] == 1
    assert lines[2]["errors"] == 1


# --- schema snapshot ---------------------------------------------------------------------------


@pytest.mark.no_database
def test_the_committed_schema_matches_the_code():
    # given
    committed = (root() / "schema.graphql").read_text()

    # when
    printed = print_schema()

    # then
    assert printed == committed, "run `dealgraph schema > schema.graphql` and review the diff"
