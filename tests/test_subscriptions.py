"""Live updates (issue "The deal room", 6): Subscription.opportunityEvents over the
graphql-transport-ws protocol on /graphql, authenticated by the token in connection_init.
A change committed by another request reaches the subscribers who may see the deal (checked
again for every event, with the subscription's filter); on PostgreSQL an event written by
one server process reaches the subscribers of another (LISTEN/NOTIFY).

The WebSocket client here runs the ASGI app in the test's own event loop (the app's database
connections belong to it); the cross-process test talks to a real `dealgraph serve`.

A deal that leaves a subscriber's view comes to them once as REMOVED with its id only
(issue 13, defect 7): reassigned away from an owner whose deals they may read, or no longer
matching once the subscription had sent it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from sqlalchemy import update

import models
from models.base import utcnow
from resolvers import importing
from resolvers.events import Event
from resolvers.ids import to_global_id
from resolvers.live import Shown
from resolvers.permissions import load_viewer
from server.app import create_app

PROTOCOL = "graphql-transport-ws"

EVENTS = """
subscription Events($filter: OpportunityFilter) {
  opportunityEvents(filter: $filter) {
    type occurredAt opportunityId
    opportunity { id name version salesStage { key } assignedTo { username } }
  }
}
"""

UPDATE = """
mutation Update($input: UpdateOpportunityInput!) {
  updateOpportunity(input: $input) { userErrors { code message } }
}
"""

CHANGE_STAGE = """
mutation Stage($input: ChangeOpportunityStageInput!) {
  changeOpportunityStage(input: $input) { userErrors { code message } }
}
"""

CREATE = """
mutation Create($input: CreateOpportunityInput!) {
  createOpportunity(input: $input) { opportunity { id } userErrors { code message } }
}
"""

DELETE = """
mutation Delete($input: DeleteOpportunityInput!) {
  deleteOpportunity(input: $input) { deletedId userErrors { code message } }
}
"""

RESTORE = """
mutation Restore($input: RestoreOpportunityInput!) {
  restoreOpportunity(input: $input) { opportunity { id } userErrors { code message } }
}
"""


def gid(record: Any) -> str:
    return to_global_id(type(record).__name__, record.id)


class Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class WebSocketClient:
    """A WebSocket client over an ASGI app, in this event loop."""

    def __init__(
        self, app: Any, headers: list[tuple[bytes, bytes]] | None = None,
        subprotocols: tuple[str, ...] = (PROTOCOL,),
    ) -> None:
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {
            "type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "scheme": "ws", "path": "/graphql", "raw_path": b"/graphql", "query_string": b"",
            "root_path": "", "headers": [(b"host", b"test"), *(headers or [])],
            "client": ("127.0.0.1", 50000), "server": ("test", 80),
            "subprotocols": list(subprotocols), "extensions": {},
        }
        self.task = asyncio.create_task(app(scope, self.to_app.get, self.from_app.put))
        self.subprotocol: str | None = None

    async def connect(self) -> None:
        await self.to_app.put({"type": "websocket.connect"})
        message = await asyncio.wait_for(self.from_app.get(), 5)
        if message["type"] == "websocket.close":
            raise Closed(message.get("code", 1000), message.get("reason", ""))
        assert message["type"] == "websocket.accept", message
        self.subprotocol = message.get("subprotocol")

    async def send(self, message: dict[str, Any]) -> None:
        await self.to_app.put({"type": "websocket.receive", "text": json.dumps(message)})

    async def receive(self, seconds: float = 5) -> dict[str, Any]:
        message = await asyncio.wait_for(self.from_app.get(), seconds)
        if message["type"] == "websocket.close":
            raise Closed(message.get("code", 1000), message.get("reason", ""))
        assert message["type"] == "websocket.send", message
        assert message.get("text") is not None, "graphql-ws clients need text frames"
        return json.loads(message["text"])  # type: ignore[no-any-return]

    async def nothing(self, seconds: float = 0.3) -> None:
        """Nothing arrives within `seconds`."""
        with pytest.raises(TimeoutError):
            message = await asyncio.wait_for(self.from_app.get(), seconds)
            pytest.fail(f"unexpected message {message}")

    async def init(self, payload: dict[str, Any]) -> dict[str, Any]:
        await self.connect()
        await self.send({"type": "connection_init", "payload": payload})
        return await self.receive()

    async def subscribe(
        self, query: str = EVENTS, variables: dict[str, Any] | None = None, op_id: str = "1"
    ) -> None:
        await self.send({"type": "subscribe", "id": op_id,
                         "payload": {"query": query, "variables": variables or {}}})

    async def close(self) -> None:
        if not self.task.done():
            await self.to_app.put({"type": "websocket.disconnect", "code": 1000})
            try:
                await asyncio.wait_for(self.task, 5)
            except TimeoutError:
                self.task.cancel()


@pytest.fixture
async def sockets(app: Any) -> AsyncIterator[list[WebSocketClient]]:
    """WebSocket clients opened in a test, closed after it."""
    opened: list[WebSocketClient] = []
    yield opened
    for client in opened:
        await client.close()


@pytest.fixture
def subscriber(app: Any, factory: Any, db: Any, sockets: list[WebSocketClient]) -> Any:
    """A connection of `user`, acknowledged, subscribed to opportunityEvents (registered
    with the broker before it returns)."""

    async def make(
        user: models.User, variables: dict[str, Any] | None = None, target: Any = None
    ) -> WebSocketClient:
        token = await factory.token(user)
        await db.commit()
        client = WebSocketClient(target or app)
        sockets.append(client)
        assert await client.init({"Authorization": f"Bearer {token}"}) == {
            "type": "connection_ack"
        }
        broker = (target or app).state.broker
        before = len(broker.subscribers)
        await client.subscribe(variables=variables)
        await until(lambda: len(broker.subscribers) > before)
        return client

    return make


async def until(condition: Any, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def next_event(client: WebSocketClient, seconds: float = 5) -> dict[str, Any]:
    message = await client.receive(seconds)
    assert message["type"] == "next", message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]["opportunityEvents"]  # type: ignore[no-any-return]


# --- receiving --------------------------------------------------------------------------


async def test_a_subscriber_receives_a_change_made_by_another_request(
    team, factory, db, client_for, subscriber
):
    # given: the manager follows deals; the rep works on one of theirs
    deal = await factory.opportunity(team["rep"], "Fiat fleet", "PROSPECTING")
    await db.commit()
    listening = await subscriber(team["manager"])
    rep = await client_for(team["rep"])
    before = utcnow().isoformat()

    # when
    body = await rep.data(CHANGE_STAGE, {"input": {"id": gid(deal), "stage": "QUALIFICATION"}})

    # then
    assert body["changeOpportunityStage"]["userErrors"] == []
    event = await next_event(listening)
    assert event["type"] == "STAGE_CHANGED"
    assert event["opportunity"] == {
        "id": gid(deal), "name": "Fiat fleet", "version": 2,
        "salesStage": {"key": "QUALIFICATION"}, "assignedTo": {"username": "rep"},
    }
    assert event["occurredAt"] >= before
    await listening.nothing()  # one event per write


async def test_every_kind_of_event(team, factory, db, client_for, subscriber):
    # given
    listening = await subscriber(team["rep"])
    rep = await client_for(team["rep"])

    # when: created, updated, stage changed, deleted, restored (each event is awaited: an
    # event shows the deal as it is when it is sent)
    created = await rep.data(CREATE, {"input": {
        "name": "New", "expectedCloseDate": "2031-01-01", "salesStage": "PROSPECTING",
    }})
    deal_id = created["createOpportunity"]["opportunity"]["id"]
    seen = [await next_event(listening)]
    for query, data in (
        (UPDATE, {"amount": "10"}), (UPDATE, {"salesStage": "QUALIFICATION"}),
        (DELETE, {}), (RESTORE, {}),
    ):
        await rep.data(query, {"input": {"id": deal_id, **data}})
        seen.append(await next_event(listening))

    # then
    assert [(e["type"], e["opportunity"]["id"], e["opportunity"]["version"]) for e in seen] == [
        ("CREATED", deal_id, 1), ("UPDATED", deal_id, 2), ("STAGE_CHANGED", deal_id, 3),
        ("DELETED", deal_id, 4), ("RESTORED", deal_id, 5),
    ]
    assert [e["occurredAt"] for e in seen] == sorted(e["occurredAt"] for e in seen)
    assert all(e["opportunityId"] == e["opportunity"]["id"] for e in seen)


async def test_events_keep_their_order_and_show_the_deal_as_it_is_now(
    team, factory, db, client_for, subscriber
):
    # given
    deal = await factory.opportunity(team["rep"], "Busy")
    await db.commit()
    listening = await subscriber(team["rep"])
    rep = await client_for(team["rep"])

    # when: three quick writes
    for amount in ("1", "2", "3"):
        await rep.data(UPDATE, {"input": {"id": gid(deal), "amount": amount}})

    # then: three events, in order, each with the deal as it is when it is sent
    seen = [await next_event(listening) for _ in range(3)]
    assert [e["type"] for e in seen] == ["UPDATED"] * 3
    versions = [e["opportunity"]["version"] for e in seen]
    assert versions == sorted(versions) and versions[-1] == 4


async def test_a_refused_or_empty_write_sends_nothing(
    team, factory, db, client_for, subscriber
):
    # given
    deal = await factory.opportunity(team["rep"], amount="5.00")
    await db.commit()
    listening = await subscriber(team["rep"])
    rep = await client_for(team["rep"])

    # when: a refused update, and one that changes nothing
    refused = await rep.data(UPDATE, {"input": {"id": gid(deal), "salesStage": "NOPE"}})
    await rep.data(UPDATE, {"input": {"id": gid(deal), "amount": "5"}})

    # then
    assert refused["updateOpportunity"]["userErrors"]
    await listening.nothing()


async def test_a_rep_receives_no_events_of_deals_they_may_not_see(
    team, factory, db, client_for, subscriber
):
    # given: a deal of another team and one of the rep's own
    theirs = await factory.opportunity(team["other_rep"], "Theirs")
    mine = await factory.opportunity(team["rep"], "Mine")
    await db.commit()
    rep_listening = await subscriber(team["rep"])
    admin_listening = await subscriber(team["admin"])
    other = await client_for(team["other_rep"])
    rep = await client_for(team["rep"])

    # when: both change
    await other.data(UPDATE, {"input": {"id": gid(theirs), "amount": "1"}})
    await rep.data(UPDATE, {"input": {"id": gid(mine), "amount": "2"}})

    # then: the rep hears only of their own; the admin of both
    assert (await next_event(rep_listening))["opportunity"]["name"] == "Mine"
    await rep_listening.nothing()
    assert [(await next_event(admin_listening))["opportunity"]["name"] for _ in range(2)] == [
        "Theirs", "Mine",
    ]


async def test_visibility_is_checked_again_for_every_event(
    team, factory, db, client_for, subscriber
):
    # given: the rep follows deals; their manager hands one to another team
    deal = await factory.opportunity(team["rep"], "Moving")
    await db.commit()
    listening = await subscriber(team["rep"])
    admin = await client_for(team["admin"])

    # when: reassigned away (no longer the rep's to see), then changed again
    await admin.data(UPDATE, {"input": {"id": gid(deal), "assignedToId": gid(team["other_rep"])}})
    await admin.data(UPDATE, {"input": {"id": gid(deal), "amount": "99"}})

    # then: the rep hears that it left (its id only), once, and nothing of it since
    assert await next_event(listening) == {
        "type": "REMOVED", "occurredAt": ANY, "opportunityId": gid(deal), "opportunity": None,
    }
    await listening.nothing()


# --- leaving a subscriber's view: REMOVED -------------------------------------------------


async def test_a_deal_reassigned_away_is_removed_for_those_who_saw_it(
    team, factory, db, client_for, subscriber
):
    # given: rep's deal; rep and manager see it, other_rep (the new owner) will, and
    # rep2 (rep's colleague) never does but follows a deal of their own
    deal = await factory.opportunity(team["rep"], "Handed over")
    own = await factory.opportunity(team["rep2"], "Rep2 deal")
    await db.commit()
    old_owner = await subscriber(team["rep"])
    manager = await subscriber(team["manager"])
    new_owner = await subscriber(team["other_rep"])
    colleague = await subscriber(team["rep2"])
    admin = await client_for(team["admin"])

    # when: the admin hands the deal to another team, then rep2's deal changes
    await admin.data(UPDATE, {"input": {"id": gid(deal), "assignedToId": gid(team["other_rep"])}})
    await admin.data(UPDATE, {"input": {"id": gid(own), "amount": "5"}})

    # then
    for listening in (old_owner, manager):
        removed = await next_event(listening)
        assert (removed["type"], removed["opportunityId"], removed["opportunity"]) == (
            "REMOVED", gid(deal), None
        )
    arrived = await next_event(new_owner)
    assert (arrived["type"], arrived["opportunityId"]) == ("UPDATED", gid(deal))
    assert arrived["opportunity"]["assignedTo"] == {"username": "other_rep"}
    # rep2 hears nothing of the deal they never saw, but does hear of their own (control)
    control = await next_event(colleague)
    assert (control["type"], control["opportunity"]["name"]) == ("UPDATED", "Rep2 deal")
    assert (await next_event(manager))["opportunity"]["name"] == "Rep2 deal"
    for listening in (old_owner, new_owner, colleague, manager):
        await listening.nothing()


async def test_a_deal_reassigned_within_a_managers_team_stays_for_the_manager(
    team, factory, db, client_for, subscriber
):
    # given
    deal = await factory.opportunity(team["rep"], "Within the team")
    await db.commit()
    old_owner = await subscriber(team["rep"])
    manager = await subscriber(team["manager"])
    manager_client = await client_for(team["manager"])

    # when: the manager hands it from rep to rep2
    await manager_client.data(
        UPDATE, {"input": {"id": gid(deal), "assignedToId": gid(team["rep2"])}}
    )

    # then: still the manager's to see; gone for rep
    kept = await next_event(manager)
    assert (kept["type"], kept["opportunity"]["assignedTo"]) == ("UPDATED", {"username": "rep2"})
    assert (await next_event(old_owner))["type"] == "REMOVED"
    await manager.nothing()


async def test_a_deal_that_leaves_the_filter_is_removed(team, factory, db, client_for, subscriber):
    # given: a board of the Qualification column
    moving = await factory.opportunity(team["rep"], "Moving on", "PROSPECTING")
    never = await factory.opportunity(team["rep"], "Never there", "PROSPECTING")
    await db.commit()
    board = await subscriber(team["rep"], {"filter": {"stage": ["QUALIFICATION"]}})
    rep = await client_for(team["rep"])

    # when: one deal enters the column, then leaves it; another moves outside it
    await rep.data(CHANGE_STAGE, {"input": {"id": gid(moving), "stage": "QUALIFICATION"}})
    entered = await next_event(board)
    await rep.data(CHANGE_STAGE, {"input": {"id": gid(moving), "stage": "NEEDS_ANALYSIS"}})
    await rep.data(CHANGE_STAGE, {"input": {"id": gid(never), "stage": "NEEDS_ANALYSIS"}})
    await rep.data(UPDATE, {"input": {"id": gid(moving), "amount": "7"}})

    # then: the deal that was sent is removed once; the other is never mentioned
    assert (entered["type"], entered["opportunityId"]) == ("STAGE_CHANGED", gid(moving))
    left = await next_event(board)
    assert (left["type"], left["opportunityId"], left["opportunity"]) == (
        "REMOVED", gid(moving), None
    )
    await board.nothing()


async def test_a_deal_reassigned_out_of_an_owner_filter_is_removed(
    team, factory, db, client_for, subscriber
):
    # given: the manager follows rep's deals only (a deal they may keep seeing)
    deal = await factory.opportunity(team["rep"], "Rep's")
    await db.commit()
    board = await subscriber(team["manager"], {"filter": {"assignedTo": [gid(team["rep"])]}})
    admin = await client_for(team["admin"])

    # when
    await admin.data(UPDATE, {"input": {"id": gid(deal), "assignedToId": gid(team["rep2"])}})

    # then
    assert (await next_event(board))["type"] == "REMOVED"
    await board.nothing()


async def test_the_filter_picks_the_events(team, factory, db, client_for, subscriber):
    # given: a subscription to won deals only
    a = await factory.opportunity(team["rep"], "A")
    b = await factory.opportunity(team["rep"], "B")
    await db.commit()
    listening = await subscriber(team["rep"], {"filter": {"isWon": True}})
    rep = await client_for(team["rep"])

    # when
    await rep.data(CHANGE_STAGE, {"input": {"id": gid(a), "stage": "QUALIFICATION"}})
    await rep.data(CHANGE_STAGE, {"input": {"id": gid(b), "stage": "CLOSED_WON"}})

    # then
    event = await next_event(listening)
    assert (event["type"], event["opportunity"]["name"]) == ("STAGE_CHANGED", "B")
    await listening.nothing()


async def test_quote_sync_and_imports_publish_too(
    team, factory, db, client_for, subscriber, sessions
):
    # given
    deal = await factory.opportunity(team["rep"], "Quoted", amount="1.00")
    product = await factory.product()
    await db.commit()
    listening = await subscriber(team["rep"])
    rep = await client_for(team["rep"])

    # when: a quote drives the amount; an import creates two deals in two batches
    await rep.data(
        """mutation Q($input: CreateQuoteInput!) { createQuote(input: $input) {
             userErrors { code } } }""",
        {"input": {"opportunityId": gid(deal), "subject": "Offer",
                   "lines": [{"productId": gid(product), "quantity": "1"}]}},
    )
    async with sessions() as session:
        viewer = await load_viewer(session, team["rep"], "PRIVATE")
    csv = "Opportunity Name,Expected Close Date,Sales Stage\nX,2031-01-01,Prospecting\n"
    csv += "Y,2031-01-01,Prospecting\n"
    report = await importing.import_opportunities(
        sessions, viewer, csv.encode(), importing.Options(batch_size=1)
    )

    # then
    assert report.created == 2
    seen = [await next_event(listening) for _ in range(3)]
    assert [(e["type"], e["opportunity"]["name"]) for e in seen] == [
        ("UPDATED", "Quoted"), ("CREATED", "X"), ("CREATED", "Y"),
    ]


async def test_an_import_that_reassigns_a_deal_away_sends_removed(
    team, factory, db, subscriber, sessions
):
    # given: rep follows their deal "Imported"; the admin's CSV hands it to other_rep
    deal = await factory.opportunity(team["rep"], "Imported")
    await db.commit()
    listening = await subscriber(team["rep"])
    async with sessions() as session:
        admin = await load_viewer(session, team["admin"], "PRIVATE")
    csv = "Opportunity Name,Assigned To,Expected Close Date,Sales Stage\n"
    csv += "Imported,other_rep,2031-01-01,Prospecting\n"

    # when
    report = await importing.import_opportunities(
        sessions, admin, csv.encode(),
        importing.Options(duplicates="overwrite", match=("name",)),
    )

    # then
    assert report.updated == 1, report
    removed = await next_event(listening)
    assert (removed["type"], removed["opportunityId"]) == ("REMOVED", gid(deal))
    await listening.nothing()


async def test_a_dry_run_import_publishes_nothing(team, db, subscriber, sessions):
    # given
    listening = await subscriber(team["rep"])
    async with sessions() as session:
        viewer = await load_viewer(session, team["rep"], "PRIVATE")

    # when
    await importing.import_opportunities(
        sessions, viewer, b"Opportunity Name,Expected Close Date,Sales Stage\nX,2031-01-01,"
        b"Prospecting\n", importing.Options(dry_run=True),
    )

    # then
    await listening.nothing()


@pytest.mark.no_database
def test_an_event_travels_with_its_previous_owner_and_bad_ones_are_refused() -> None:
    at = utcnow()
    moved = Event("UPDATED", 7, at, previous_owner_id=3)

    assert Event.decode(json.loads(json.dumps(moved.encode()))) == moved
    assert Event.decode(["UPDATED", 7, at.isoformat()]) == Event("UPDATED", 7, at)
    for raw in (["UPDATED", 7, at.isoformat(), "3"], ["UPDATED", 7], ["REMOVED", 7, at.isoformat()],
                {"type": "UPDATED"}):
        with pytest.raises(ValueError):
            Event.decode(raw)  # type: ignore[arg-type]


@pytest.mark.no_database
def test_a_subscription_remembers_the_latest_deals_it_sent(monkeypatch) -> None:
    monkeypatch.setattr(Shown, "LIMIT", 2)
    shown = Shown()

    for pk in (1, 2, 1, 3):  # 1 sent again: 2 is now the oldest
        shown.add(pk)
    shown.discard(3)

    assert [pk for pk in (1, 2, 3) if pk in shown] == [1]


# --- the connection -----------------------------------------------------------------------


@pytest.mark.parametrize("payload", [
    {}, {"Authorization": "Bearer dg_not-a-token"}, {"Authorization": "Basic abc"},
    {"token": "nope"},
])
async def test_a_bad_token_in_connection_init_closes_the_connection(
    team, app, sockets, payload
):
    # given
    client = WebSocketClient(app)
    sockets.append(client)

    # when
    with pytest.raises(Closed) as closed:
        await client.init(payload)

    # then
    assert closed.value.code == 4403


@pytest.mark.parametrize("key", ["Authorization", "authorization", "token"])
async def test_the_token_may_come_under_any_usual_key(team, factory, db, app, sockets, key):
    # given
    token = await factory.token(team["rep"])
    await db.commit()
    client = WebSocketClient(app)
    sockets.append(client)

    # when
    ack = await client.init({key: token if key == "token" else f"Bearer {token}"})

    # then
    assert ack == {"type": "connection_ack"}
    assert client.subprotocol == PROTOCOL


async def test_subscribing_before_connection_init_closes_with_4401(app, sockets):
    # given
    client = WebSocketClient(app)
    sockets.append(client)
    await client.connect()

    # when
    await client.subscribe()

    # then
    with pytest.raises(Closed) as closed:
        await client.receive()
    assert closed.value.code == 4401


async def test_a_revoked_token_ends_the_subscription(team, factory, db, client_for, subscriber):
    # given
    deal = await factory.opportunity(team["rep"])
    await db.commit()
    listening = await subscriber(team["rep"])
    await db.execute(update(models.ApiToken).values(revoked_at=utcnow()))
    await db.commit()
    admin = await client_for(team["admin"])

    # when
    await admin.data(UPDATE, {"input": {"id": gid(deal), "amount": "3"}})

    # then: an error (not the deal), then complete
    message = await listening.receive()
    assert message["type"] == "next"
    assert message["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await listening.receive())["type"] == "complete"


async def test_queries_run_over_the_websocket_too(team, factory, db, app, sockets):
    # given
    await factory.opportunity(team["rep"], "Mine")
    await factory.opportunity(team["other_rep"], "Theirs")
    token = await factory.token(team["rep"])
    await db.commit()
    client = WebSocketClient(app)
    sockets.append(client)
    await client.init({"Authorization": f"Bearer {token}"})

    # when
    await client.subscribe("{ viewer { username } opportunities { nodes { name } } }")

    # then
    message = await client.receive()
    assert message == {"id": "1", "type": "next", "payload": {"data": {
        "viewer": {"username": "rep"}, "opportunities": {"nodes": [{"name": "Mine"}]},
    }}}
    assert (await client.receive()) == {"id": "1", "type": "complete"}


async def test_subscribing_over_http_is_refused(team, client_for):
    client = await client_for(team["rep"])
    body = await client.query(EVENTS)
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "WebSocket" in body["errors"][0]["message"]


async def test_the_old_subscriptions_transport_ws_protocol_is_not_spoken(app, sockets):
    client = WebSocketClient(app, subprotocols=("graphql-ws",))
    sockets.append(client)
    await client.connect()
    with pytest.raises(Closed) as closed:
        await client.receive()
    assert closed.value.code == 4406


async def test_a_browser_page_on_another_origin_is_refused(app, sockets):
    client = WebSocketClient(app, headers=[(b"origin", b"https://evil.example")])
    sockets.append(client)
    with pytest.raises(Closed):
        await client.connect()


async def test_allowed_origins_and_the_connection_limit_come_from_settings(
    settings, team, factory, db
):
    # given: an app that allows one origin and one connection
    token = await factory.token(team["rep"])
    await db.commit()
    limited = create_app(settings.model_copy(update={
        "ws_allowed_origins": ["https://app.example"], "ws_max_connections": 1,
    }))
    origin = [(b"origin", b"https://app.example")]
    first, second = WebSocketClient(limited, origin), WebSocketClient(limited, origin)
    try:
        # when
        ack = await first.init({"Authorization": f"Bearer {token}"})
        await second.connect()

        # then
        assert ack == {"type": "connection_ack"}
        with pytest.raises(Closed) as closed:
            await second.receive()
        assert closed.value.code == 1013
    finally:
        await first.close()
        await second.close()
        await limited.state.broker.close()
        await limited.state.engine.dispose()


# --- across processes (PostgreSQL) -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_event_reaches_the_subscriber_of_a_real_server_process(
    is_postgres, migrated_url, team, factory, db, client_for, tmp_path
):
    """On PostgreSQL the write comes from this process (NOTIFY crosses processes); on SQLite,
    where events stay within the process that wrote them, from the server process itself."""
    from websockets.asyncio.client import connect

    # given: a real server process on the test database, and a subscriber connected to it
    deal = await factory.opportunity(team["rep"], "Across")
    token = await factory.token(team["manager"])
    rep_token = await factory.token(team["rep"])
    await db.commit()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALGRAPH_")}
    env["DEALGRAPH_DATA_DIR"] = str(tmp_path / "data")
    dealgraph = str(Path(sys.executable).parent / "dealgraph")
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = await asyncio.create_subprocess_exec(
            dealgraph, "serve", "--port", str(port), "--database-url", migrated_url,
            env=env, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient() as http:
            deadline = time.monotonic() + 60
            while True:
                assert server.returncode is None, log.read_text()
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.2)
        async with connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=[PROTOCOL]) as ws:
            await ws.send(json.dumps({"type": "connection_init",
                                      "payload": {"Authorization": f"Bearer {token}"}}))
            assert json.loads(await ws.recv()) == {"type": "connection_ack"}
            await ws.send(json.dumps({"type": "subscribe", "id": "1",
                                      "payload": {"query": EVENTS}}))
            rep = await client_for(team["rep"])
            remote = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {rep_token}"},
            )

            # when: the deal changes (until the subscription, started asynchronously over
            # there, hears it)
            event = None
            for amount in range(1, 40):
                variables = {"input": {"id": gid(deal), "amount": str(amount)}}
                if is_postgres:
                    await rep.data(UPDATE, variables)
                else:
                    answer = await remote.post(
                        "/graphql", json={"query": UPDATE, "variables": variables}
                    )
                    assert "errors" not in answer.json(), answer.text
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                assert isinstance(raw, str)  # a text frame
                event = json.loads(raw)
                break

            # then
            assert event is not None, f"no event arrived; the server said:\n{log.read_text()}"
            assert event["type"] == "next", event
            data = event["payload"]["data"]["opportunityEvents"]
            assert (data["type"], data["opportunity"]["name"]) == ("UPDATED", "Across")
            await remote.aclose()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(server.wait(), 20)
        except TimeoutError:
            server.kill()
            await asyncio.wait_for(server.wait(), 10)
