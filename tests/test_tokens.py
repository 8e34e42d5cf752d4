"""The token cache (resolvers/tokens.py): a verified token is not looked up again for a few
seconds, and a revoked token or a deactivated user is refused at once in the process that
made the change, and within the NOTIFY latency in another one (PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select, text, update

import models
from resolvers.permissions import Viewer
from resolvers.tokens import TokenCache
from server.settings import Settings
from tests.conftest import GraphQLClient, Statements, cached_app, stop_app

VIEWER = "{ viewer { username } }"


def token_lookups(engine: Any) -> Statements:
    """Counts the statements that read api_tokens (the token's lookup)."""
    counter = Statements()

    def seen(*args: Any) -> None:
        if "api_tokens" in args[2]:
            counter(*args)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    counter.remove = lambda: event.remove(  # type: ignore[attr-defined]
        engine.sync_engine, "before_cursor_execute", seen
    )
    return counter


def revoke(token: str) -> Any:
    return (
        update(models.ApiToken)
        .where(models.ApiToken.token_hash == hashlib.sha256(token.encode()).hexdigest())
        .values(revoked_at=dt.datetime.now(dt.UTC))
    )


@pytest.fixture
async def cached(settings: Settings) -> AsyncIterator[Any]:
    application = await cached_app(settings)
    yield application
    await stop_app(application)


@pytest.fixture
async def writes(cached: Any) -> AsyncIterator[Any]:
    """A session of the cached app (as a mutation's would be), for changes."""
    async with cached.state.sessions() as session:
        yield session


# --- in this process --------------------------------------------------------------------------


async def test_a_verified_token_is_not_looked_up_again(cached, writes, team, factory, db):
    # given
    client = GraphQLClient(cached, await factory.token(team["rep"]))
    await db.commit()
    lookups = token_lookups(cached.state.engine)

    # when
    first = await client.data(VIEWER)
    count_after_first = lookups.count
    again = [await client.data(VIEWER) for _ in range(3)]
    lookups.remove()  # type: ignore[attr-defined]

    # then: looked up once (the positive control), then from the cache
    assert first == {"viewer": {"username": "rep"}} and again == [first] * 3
    assert count_after_first == 1
    assert lookups.count == 1


async def test_without_a_lifetime_every_request_looks_its_token_up(app, team, factory, db):
    # given: the suite's app (DEALGRAPH_TOKEN_CACHE_SECONDS=0)
    assert app.state.tokens is None
    client = GraphQLClient(app, await factory.token(team["rep"]))
    await db.commit()
    lookups = token_lookups(app.state.engine)

    # when
    for _ in range(3):
        await client.data(VIEWER)
    lookups.remove()  # type: ignore[attr-defined]

    # then
    assert lookups.count == 3


@pytest.mark.parametrize("how", ["bulk update", "attribute"])
async def test_a_revoked_token_is_refused_at_once(cached, writes, team, factory, db, how):
    # given: verified, so cached
    token = await factory.token(team["rep"])
    await db.commit()
    client = GraphQLClient(cached, token)
    assert (await client.post(VIEWER)).status_code == 200

    # when
    if how == "bulk update":
        await writes.execute(revoke(token))
    else:
        found = (await writes.scalars(select(models.ApiToken))).one()
        found.revoked_at = dt.datetime.now(dt.UTC)
    await writes.commit()

    # then
    response = await client.post(VIEWER)
    assert response.status_code == 401, response.text


async def test_a_deactivated_user_is_refused_at_once(cached, writes, team, factory, db):
    # given
    client = GraphQLClient(cached, await factory.token(team["rep"]))
    await db.commit()
    assert (await client.post(VIEWER)).status_code == 200

    # when
    rep = await writes.get(models.User, team["rep"].id)
    rep.is_active = False
    await writes.commit()

    # then
    assert (await client.post(VIEWER)).status_code == 401


async def test_a_change_rolled_back_keeps_the_token(cached, writes, team, factory, db):
    # given
    client = GraphQLClient(cached, await factory.token(team["rep"]))
    await db.commit()
    assert (await client.post(VIEWER)).status_code == 200
    lookups = token_lookups(cached.state.engine)

    # when
    rep = await writes.get(models.User, team["rep"].id)
    rep.is_active = False
    await writes.flush()
    await writes.rollback()
    response = await client.post(VIEWER)
    lookups.remove()  # type: ignore[attr-defined]

    # then: still valid, and still from the cache
    assert response.status_code == 200
    assert lookups.count == 0


async def test_a_managers_team_follows_the_hierarchy(cached, writes, team, factory, db):
    # given: the manager's viewer (with the team's ids) is cached
    client = GraphQLClient(cached, await factory.token(team["manager"]))
    await factory.opportunity(team["other_rep"], "Moved")
    await db.commit()
    names = "{ opportunities { nodes { name } } }"
    assert "Moved" not in str(await client.data(names))

    # when: other_rep now reports to the manager
    moved = await writes.get(models.User, team["other_rep"].id)
    moved.manager_id = team["manager"].id
    await writes.commit()

    # then
    assert "Moved" in str(await client.data(names))


# --- the cache itself -----------------------------------------------------------------------


def viewer_of(user: models.User) -> Viewer:
    return Viewer(user=user, team_ids=frozenset({user.id}))


def test_an_entry_expires() -> None:
    # given
    user = models.User(id=7, username="u", role="SALES_REP", is_active=True)
    short, long = TokenCache(ttl=0.05), TokenCache(ttl=60)

    # when
    for cache in (short, long):
        cache.put("h", cache.generation, viewer_of(user))
    time.sleep(0.06)

    # then
    assert short.get("h") is None
    kept = long.get("h")
    assert kept is not None and kept.team_ids == frozenset({7}) and kept.user["username"] == "u"


def test_a_lookup_overtaken_by_a_change_is_not_kept() -> None:
    # given: a lookup starts, then a revocation is heard before it ends
    user = models.User(id=7, username="u", role="SALES_REP", is_active=True)
    cache = TokenCache()
    started = cache.generation
    cache.heard("some-other-hash")

    # when
    cache.put("h", started, viewer_of(user))
    cache.put("k", cache.generation, viewer_of(user))

    # then
    assert cache.get("h") is None
    assert cache.get("k") is not None


def test_without_its_listener_the_cache_is_not_used() -> None:
    # given
    user = models.User(id=7, username="u", role="SALES_REP", is_active=True)
    cache = TokenCache(needs_listener=True)

    # when / then: not before the connection listens, nor once it is lost
    cache.put("h", cache.generation, viewer_of(user))
    assert cache.get("h") is None
    cache.listening(True)
    cache.put("h", cache.generation, viewer_of(user))
    assert cache.get("h") is not None
    cache.listening(False)
    assert cache.get("h") is None


def test_a_notification_drops_its_token_or_everything() -> None:
    user = models.User(id=7, username="u", role="SALES_REP", is_active=True)
    cache = TokenCache()
    for key in ("a", "b", "c"):
        cache.put(key, cache.generation, viewer_of(user))

    cache.heard("a")
    assert [cache.get(k) is not None for k in "abc"] == [False, True, True]
    cache.heard("*")
    assert [cache.get(k) is not None for k in "abc"] == [False, False, False]


# --- across processes (PostgreSQL: two apps, two engines, two LISTEN connections) ---------------


# How soon another worker refuses a changed token: PostgreSQL tells it (NOTIFY); on SQLite,
# which has no such channel, it looks the token up again once its cached entry is this old.
SQLITE_LIFETIME = 1.0


@pytest.fixture
async def workers(settings: Settings, is_postgres: bool) -> AsyncIterator[list[Any]]:
    seconds = 10 if is_postgres else SQLITE_LIFETIME
    found = [await cached_app(settings, seconds) for _ in range(2)]
    yield found
    for application in found:
        await stop_app(application)


async def refused_within(client: GraphQLClient, seconds: float) -> float:
    """How long until the client's token is refused (fails after `seconds`)."""
    started = time.monotonic()
    while (await client.post(VIEWER)).status_code != 401:
        assert time.monotonic() - started < seconds, "still accepted"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


CHANGES = {
    "revoked": lambda token, user_id: revoke(token),
    "deactivated": lambda token, user_id: (
        update(models.User).where(models.User.id == user_id).values(is_active=False)
    ),
}


@pytest.mark.parametrize("change", CHANGES)
async def test_another_worker_refuses_within_the_notify_latency(workers, team, factory, db, change):
    """(On SQLite: within the cache's lifetime, SQLITE_LIFETIME.)"""
    # given: the token verified by both workers, so cached by both
    token = await factory.token(team["rep"])
    await db.commit()
    one, other = (GraphQLClient(w, token) for w in workers)
    for client in (one, other):
        assert (await client.post(VIEWER)).status_code == 200
    lookups = token_lookups(workers[1].state.engine)
    assert (await other.post(VIEWER)).status_code == 200
    assert lookups.count == 0  # the positive control: the other worker serves it cached

    # when: the change is made through the first worker's sessions
    async with workers[0].state.sessions() as session:
        await session.execute(CHANGES[change](token, team["rep"].id))
        await session.commit()

    # then: at once in the first (its session's commit), soon in the other (NOTIFY)
    assert (await one.post(VIEWER)).status_code == 401
    latency = await refused_within(other, 3.0)
    lookups.remove()  # type: ignore[attr-defined]
    print(f"{change}: refused by the other worker after {latency * 1000:.1f} ms")
    assert lookups.count >= 1  # looked up again once told


async def test_a_change_made_outside_the_server_is_heard_too(workers, team, factory, db):
    """psql, the CLI, another deployment: the database's triggers announce it."""
    # given
    token = await factory.token(team["rep"])
    await db.commit()
    clients = [GraphQLClient(w, token) for w in workers]
    for client in clients:
        assert (await client.post(VIEWER)).status_code == 200

    # when: on a plain connection, outside any of the apps' sessions
    async with workers[0].state.engine.connect() as connection:
        await connection.execute(
            text("UPDATE api_tokens SET revoked_at = CURRENT_TIMESTAMP WHERE user_id = :id"),
            {"id": team["rep"].id},
        )
        await connection.commit()

    # then
    for client in clients:
        assert await refused_within(client, 3.0) < 3.0
