"""The database going away, coming back, or being busy (issue 13, items 9 and 10).

A server must survive its database connections being dropped (PostgreSQL restarted, or its
backends terminated): a dead connection is discarded, a read is retried once on a fresh one,
and at worst the client gets HTTP 503 with a GraphQL-shaped `DATABASE_UNAVAILABLE` error,
never a 500; it recovers by itself. On SQLite, writers of one process take turns, and a lock
held by another process beyond the busy timeout answers `DATABASE_BUSY` (503, Retry-After).

`DEALGRAPH_RESILIENCE_ROUNDS` (default 5) sets how many kill/recover rounds the end-to-end
test runs (the issue asks for 100 in a row).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg.exceptions as asyncpg_errors
import httpx
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from models import Opportunity
from resolvers import events, raw
from server.app import create_app
from tests import test_cli_serve as cli
from tests.conftest import GraphQLClient
from tests.test_cli_serve import dealgraph
from tests.test_subscriptions import Closed, WebSocketClient

# the serve tests' fixtures: a clean environment, an empty database of its own, `serve`
cli_env, serve, serve_database_url = cli.cli_env, cli.serve, cli.serve_database_url

ROUNDS = int(os.environ.get("DEALGRAPH_RESILIENCE_ROUNDS", "5"))
RECOVERY_SECONDS = 5  # every request succeeds again within this long after a kill

LIST = "query List { opportunities(first: 5) { totalCount nodes { id name } } }"
VIEWER = "query Viewer { viewer { username } }"
CREATE = """
mutation Create($input: CreateOpportunityInput!) {
  createOpportunity(input: $input) { opportunity { id } userErrors { field message code } }
}
"""
CLOSE = (dt.date.today() + dt.timedelta(days=30)).isoformat()


def create_input(name: str) -> dict[str, Any]:
    return {"input": {"name": name, "expectedCloseDate": CLOSE, "salesStage": "QUALIFICATION"}}


def check_refusal(response: httpx.Response, code: str) -> None:
    """A database refusal: HTTP 503, Retry-After, GraphQL-shaped JSON with code and id."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"]
    body = response.json()
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == code
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert "Traceback" not in error["message"]


def is_success(response: httpx.Response, field: str) -> bool:
    if response.status_code != 200:
        return False
    body = response.json()
    return "errors" not in body and body["data"][field] is not None


# --- PostgreSQL: a real server, its backends terminated ------------------------------------


async def terminate_backends(database_url: str) -> int:
    """Every other backend of the database (the server's pool, its LISTEN connection)."""
    engine = create_async_engine(database_url, poolclass=None)
    try:
        async with engine.connect() as connection:
            killed = await connection.scalar(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ))
            await connection.commit()
            return int(killed or 0)
    finally:
        await engine.dispose()


def run(coroutine: Any) -> Any:
    """A coroutine's result, from a test that is not one (on a loop of its own)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


@pytest.mark.no_database
def test_a_server_survives_its_database_connections_being_dropped(
    is_postgres, serve_database_url, cli_env, tmp_path, serve
):
    """PostgreSQL: pg_terminate_backend on every connection of the server, ROUNDS times.
    SQLite: another process holds the write lock beyond the busy timeout, ROUNDS times."""
    # given: a server with a user, a token, and a deal
    db = ["--database-url", serve_database_url]
    dealgraph("migrate", *db, env=cli_env, cwd=tmp_path)
    dealgraph("users", "create", "alice", "--role", "sales_rep", *db, env=cli_env, cwd=tmp_path)
    token = dealgraph("tokens", "create", "alice", *db, env=cli_env, cwd=tmp_path).stdout.strip()
    cli_env["DEALGRAPH_SQLITE_BUSY_TIMEOUT_MS"] = "200"
    server = serve(*db)
    headers = {"Authorization": f"Bearer {token}"}

    def ask(name: str) -> tuple[str, httpx.Response]:
        query, variables, field = {
            "list": (LIST, None, "opportunities"),
            "viewer": (VIEWER, None, "viewer"),
            "create": (CREATE, create_input(f"deal {time.monotonic_ns()}"), "createOpportunity"),
        }[name]
        response = httpx.post(
            f"{server.url}/graphql", json={"query": query, "variables": variables},
            headers=headers, timeout=30,
        )
        return field, response

    for name in ("create", "list", "viewer", "list"):  # positive control (the list twice:
        field, response = ask(name)                     # planned from its second run)
        assert is_success(response, field), response.text

    refusals = 0
    for _round in range(ROUNDS):
        # when: the database drops every connection of the server
        if is_postgres:
            assert run(terminate_backends(serve_database_url)) >= 1
            lock = None
        else:
            lock = sqlite3.connect(make_url(serve_database_url).database, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")

        # then: each next request succeeds, or at worst answers 503 with the JSON error
        code = "DATABASE_UNAVAILABLE" if is_postgres else "DATABASE_BUSY"
        for name in ("list", "viewer", "create"):
            field, response = ask(name)
            if not is_success(response, field):
                check_refusal(response, code)
                refusals += 1
            if lock is not None and name == "create":  # the write waited and gave up...
                check_refusal(response, code)
                assert is_success(ask("list")[1], "opportunities")  # ...while reads went on
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()

        # and within a few seconds every request succeeds
        deadline = time.monotonic() + RECOVERY_SECONDS
        pending = {"list", "viewer", "create"}
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                field, response = ask(name)
                assert response.status_code in (200, 503), response.text
                if is_success(response, field):
                    pending.discard(name)
            if pending:
                time.sleep(0.1)
        assert not pending, f"round {_round}: still failing: {pending}\n{server.output()}"

    # and the log names each refusal on one line, without a traceback
    output = server.output()
    assert "Traceback" not in output, output
    assert " 500" not in output and '"status": 500' not in output, output
    if not is_postgres:
        assert refusals >= ROUNDS
    retries = output.count("retrying once")
    print(f"\n{ROUNDS} rounds: {refusals} requests answered 503, {retries} retried")


# --- a dead connection met by a request (in-process app) ----------------------------------


@pytest.fixture
def dead_connections(engine, monkeypatch):
    """dead(n): the next n statements on the driver's own connection (resolvers/raw.py: the
    token lookup, planned reads) find their connection dead, as after a restart that the
    event loop has not noticed yet."""
    dialect = engine.dialect.name
    fetch = raw._FETCH[dialect]
    left: list[BaseException] = []

    async def flaky(connection: Any, sql: str, params: Any) -> Any:
        if left:
            raise left.pop()
        return await fetch(connection, sql, params)

    monkeypatch.setitem(raw._FETCH, dialect, flaky)

    def dead(n: int, error: BaseException | None = None) -> None:
        left[:] = [error or ConnectionResetError("Connection reset by peer")] * n

    return dead


# How the drivers say that a connection is dead (asyncpg's, whatever the database here: the
# classification is the same).
DEAD = {
    "reset": ConnectionResetError("Connection reset by peer"),
    "closed": asyncpg_errors.InterfaceError("cannot perform operation: connection is closed"),
    "closed mid-way": asyncpg_errors.ConnectionDoesNotExistError(
        "connection was closed in the middle of operation"
    ),
    "terminated": asyncpg_errors.AdminShutdownError(
        "terminating connection due to administrator command"
    ),
    # the FATAL error of pg_terminate_backend arrived while the connection was idle (found by a
    # stress run: kills every 0.5 s under 8 clients gave 500s before this was recognised)
    "fatal while idle": asyncpg_errors.InternalClientError(
        "cannot switch to state 12; another operation (2) is in progress"
    ),
}


@pytest.mark.parametrize("how", DEAD)
async def test_a_read_that_meets_a_dead_connection_is_retried_once(
    client_for, team, dead_connections, caplog, how
):
    # given
    client = await client_for(team["rep"])

    # when: one dead connection, then two in a row
    with caplog.at_level(logging.INFO):
        dead_connections(1, DEAD[how])
        once = await client.post(VIEWER)
        retried = [r for r in caplog.records if "retrying once" in r.getMessage()]
        dead_connections(2, DEAD[how])
        twice = await client.post(VIEWER)
        after = await client.post(VIEWER)

    # then: the first succeeds on a fresh connection, the second is a 503; no traceback
    assert once.status_code == 200, once.text
    assert once.json() == {"data": {"viewer": {"username": "rep"}}}
    assert len(retried) == 1
    check_refusal(twice, "DATABASE_UNAVAILABLE")
    assert after.json() == {"data": {"viewer": {"username": "rep"}}}  # positive control
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    access = [json.loads(r.getMessage()) for r in caplog.records if r.name == "dealgraph.access"]
    assert [line["status"] for line in access] == [200, 503, 200]  # one line per request
    assert all(0 <= line["duration_ms"] < 60_000 for line in access), access


async def test_a_query_resolved_field_by_field_that_meets_a_dead_connection_is_retried(
    client_for, team, engine, caplog
):
    # given: the connection dies under the first statement that reads the sales stages
    client = await client_for(team["rep"])
    attempts = []

    def die_once(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM sales_stages" in statement:
            attempts.append(statement)
            if len(attempts) == 1:
                raise ConnectionResetError("Connection reset by peer")

    event.listen(engine.sync_engine, "before_cursor_execute", die_once)
    try:
        with caplog.at_level(logging.INFO):
            response = await client.post("query Stages { salesStages { key } }")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", die_once)

    # then: answered from the second run, which the log names; no traceback
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text
    assert response.json()["data"]["salesStages"]
    assert len(attempts) == 2
    assert len([r for r in caplog.records if "retrying once" in r.getMessage()]) == 1
    assert not [r for r in caplog.records if r.exc_info], caplog.text


async def test_a_mutation_that_may_have_reached_the_database_is_not_retried(
    client_for, team, engine, db, caplog
):
    # given: the connection dies under the mutation's INSERT
    client = await client_for(team["rep"])
    attempts = []

    def die(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO opportunities"):
            attempts.append(statement)
            raise ConnectionResetError("Connection reset by peer")

    event.listen(engine.sync_engine, "before_cursor_execute", die)
    try:
        with caplog.at_level(logging.INFO):
            response = await client.post(CREATE, create_input("maybe written"))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", die)

    # then: a 503, sent once, nothing written, no traceback
    check_refusal(response, "DATABASE_UNAVAILABLE")
    assert len(attempts) == 1
    assert not [r for r in caplog.records if "retrying once" in r.getMessage()]
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert await db.scalar(select(func.count()).select_from(Opportunity)) == 0
    again = await client.post(CREATE, create_input("written"))  # positive control
    assert again.json()["data"]["createOpportunity"]["userErrors"] == [], again.text


async def test_a_websocket_opened_while_the_database_is_away_is_refused_cleanly(
    app, team, factory, db, dead_connections, caplog
):
    # given
    token = await factory.token(team["rep"])
    await db.commit()
    refused, accepted = WebSocketClient(app), WebSocketClient(app)
    try:
        # when: connection_init meets a dead connection, then a live one
        dead_connections(1)
        with caplog.at_level(logging.INFO), pytest.raises(Closed) as closed:
            await refused.init({"Authorization": f"Bearer {token}"})
        ack = await accepted.init({"Authorization": f"Bearer {token}"})
    finally:
        await refused.close()
        await accepted.close()

    # then: refused, one log line without a traceback; then accepted
    assert closed.value.code == 4403  # (graphql-transport-ws gives no reason but "Forbidden")
    assert [r for r in caplog.records if "DATABASE_UNAVAILABLE" in r.getMessage()]
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert ack["type"] == "connection_ack"


# --- the database unreachable, then back (in-process app) ----------------------------------


class Proxy:
    """A TCP relay to PostgreSQL that can be switched off (every connection cut, new ones
    refused) and on again: a database server restart, without touching the shared one."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.up()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()  # a reset, as when the server process dies
        await self.server.wait_closed()

    def up(self) -> None:
        self._call(self._start())

    def down(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
async def reachable(is_postgres, settings, tmp_path) -> AsyncIterator[Any]:
    """(app, make unreachable, make reachable again): an app over the suite's database whose
    way to the database can be cut."""
    url = make_url(settings.database_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432) if is_postgres else None
    path = Path(url.database or "")
    link = tmp_path / "link"  # SQLite: the file's directory, through a link that can go
    link.symlink_to(path.parent, target_is_directory=True)
    database_url = (
        url.set(host="127.0.0.1", port=proxy.port) if proxy else
        url.set(database=str(link / path.name))
    )
    application = create_app(settings.model_copy(update={
        "database_url": database_url.render_as_string(hide_password=False), "planner": "on",
    }))

    async def cut() -> None:
        if proxy:
            proxy.down()
        else:  # the file cannot be opened (the connections open on it go with the pool)
            link.unlink()
            await application.state.engine.dispose()

    async def mend() -> None:
        if proxy:
            proxy.up()
        else:
            link.symlink_to(path.parent, target_is_directory=True)

    try:
        yield application, cut, mend
    finally:
        await application.state.broker.close()
        await application.state.engine.dispose()
        if proxy:
            proxy.close()


async def test_an_unreachable_database_answers_503_and_readyz_follows_it(
    reachable, team, factory, db, caplog
):
    # given: an app that has served requests (its pool holds connections)
    application, cut, mend = reachable
    token = await factory.token(team["rep"])
    await db.commit()
    client = GraphQLClient(application, token)
    readyz = httpx.AsyncClient(transport=httpx.ASGITransport(app=application),
                               base_url="http://test")
    assert (await readyz.get("/readyz")).status_code == 200
    for query in (LIST, LIST, VIEWER):
        response = await client.post(query)
        assert response.status_code == 200 and "errors" not in response.json(), response.text

    # when: the database goes away
    await cut()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        away = [await client.post(q) for q in (LIST, VIEWER)]
        write = await client.post(CREATE, create_input("while away"))
        export = await client.http.get("/export/opportunities.csv")
        not_ready = await readyz.get("/readyz")

    # then: 503 with the JSON error, readyz 503, one log line each and no traceback
    for response in (*away, write, export):
        check_refusal(response, "DATABASE_UNAVAILABLE")
    assert not_ready.status_code == 503
    assert not_ready.json()["status"] == "unavailable"
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    refused = [r for r in caplog.records if "DATABASE_UNAVAILABLE" in r.getMessage()]
    assert len(refused) == 4, caplog.text

    # when: it is back
    await mend()

    # then: within a few seconds, without a restart
    deadline = time.monotonic() + RECOVERY_SECONDS
    while (await readyz.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "readyz did not recover"
        await asyncio.sleep(0.1)
    for query in (LIST, VIEWER):
        response = await client.post(query)
        assert response.status_code == 200 and "errors" not in response.json(), response.text
    created = await client.post(CREATE, create_input("once back"))
    assert created.json()["data"]["createOpportunity"]["userErrors"] == []
    names = set((await db.scalars(select(Opportunity.name))).all())
    assert names == {"once back"}  # the refused write changed nothing
    await readyz.aclose()


# --- SQLite: writers take turns; a lock held elsewhere is DATABASE_BUSY ---------------------


WRITERS = 16
WRITE_ROUNDS = 12


async def test_concurrent_writers_all_succeed(settings, team, factory, db, is_postgres):
    """16 writers at once, 12 times over, SQLite's busy timeout at 0.5 s: they take turns.
    (Before they did, SQLite's busy handler let some wait beyond it: 59 of 2,000 writes failed
    with "database is locked" at 1 s, 1,080 at 100 ms.)"""
    # given
    token = await factory.token(team["rep"])
    await db.commit()
    application = create_app(settings.model_copy(update={"sqlite_busy_timeout_ms": 500}))
    client = GraphQLClient(application, token)

    # when
    failures: list[str] = []
    try:
        for round_ in range(WRITE_ROUNDS):
            responses = await asyncio.gather(*(
                client.post(CREATE, create_input(f"deal {round_}-{i}")) for i in range(WRITERS)
            ))
            failures += [r.text for r in responses if not (
                r.status_code == 200 and "errors" not in r.json()
                and r.json()["data"]["createOpportunity"]["userErrors"] == []
            )]
    finally:
        await application.state.engine.dispose()

    # then
    assert failures == []
    assert await db.scalar(select(func.count()).select_from(Opportunity)) == (
        WRITERS * WRITE_ROUNDS
    )


async def test_a_write_lock_held_elsewhere_is_waited_for_then_database_busy(
    settings, team, factory, db, is_postgres, caplog
):
    """SQLite: beyond the busy timeout (100 ms here) a write gives up with DATABASE_BUSY.
    PostgreSQL (no lock timeout): the write waits for the lock and then succeeds."""
    # given: an app that waits 100 ms for SQLite's lock, and another connection holding one
    token = await factory.token(team["rep"])
    await db.commit()
    application = create_app(settings.model_copy(update={"sqlite_busy_timeout_ms": 100}))
    client = GraphQLClient(application, token)
    holder = create_async_engine(settings.database_url)
    try:
        async with holder.connect() as connection:
            if is_postgres:
                await connection.execute(text("LOCK TABLE opportunities IN EXCLUSIVE MODE"))
            else:
                await connection.exec_driver_sql("BEGIN IMMEDIATE")

            # when
            with caplog.at_level(logging.INFO):
                write = asyncio.ensure_future(client.post(CREATE, create_input("blocked")))
                await asyncio.sleep(0.5)
                read = await client.post(VIEWER)
                waited = not write.done()
                await connection.rollback()
                busy = await write

        # then: reads unaffected, no traceback
        assert read.status_code == 200 and "errors" not in read.json(), read.text
        assert not [r for r in caplog.records if r.exc_info], caplog.text
        count = await db.scalar(select(func.count()).select_from(Opportunity))
        if is_postgres:  # the write waited its turn
            assert waited
            assert busy.json()["data"]["createOpportunity"]["userErrors"] == [], busy.text
            assert count == 1
        else:  # a retryable refusal, nothing written
            assert not waited
            check_refusal(busy, "DATABASE_BUSY")
            assert count == 0
            refused = [r for r in caplog.records if "DATABASE_BUSY" in r.getMessage()]
            assert len(refused) == 1, caplog.text

        # and once the lock is gone a write succeeds
        again = await client.post(CREATE, create_input("unblocked"))
        assert again.json()["data"]["createOpportunity"]["userErrors"] == [], again.text
    finally:
        await holder.dispose()
        await application.state.engine.dispose()


# --- the event feed's LISTEN connection ---------------------------------------------------


async def test_the_event_feed_comes_back_after_its_connection_is_dropped(settings, is_postgres):
    # given: a broker with a subscriber (on PostgreSQL: listening on its own connection)
    broker = events.Broker(settings.database_url)
    event = events.Event("UPDATED", 1, dt.datetime.now(dt.UTC))
    try:
        async with broker.subscribe() as first:
            # when: the database drops every connection (SQLite: the broker has none)
            if is_postgres:
                assert await terminate_backends(settings.database_url) >= 1
                # then: the subscriber is told that it may have missed events
                with pytest.raises(events.Interrupted):
                    await asyncio.wait_for(first.get(), RECOVERY_SECONDS)
            else:
                broker.publish([event])
                assert await first.get() == event

        # and a new subscription hears events again, through a new connection
        async with broker.subscribe() as second:
            if is_postgres:
                notifier = create_async_engine(settings.database_url)
                async with notifier.begin() as connection:
                    await connection.execute(select(func.pg_notify(
                        events.CHANNEL, f"[{json.dumps(event.encode())}]"
                    )))
                await notifier.dispose()
            else:
                broker.publish([event])
            assert await asyncio.wait_for(second.get(), RECOVERY_SECONDS) == event
    finally:
        await broker.close()
