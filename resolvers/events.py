"""Live events about deals (created, updated, stage changed, deleted, restored).

The write rules `record` an event in the session as they change a deal; `commit` commits the
transaction and publishes what it committed, so a refused or rolled-back write publishes
nothing. On PostgreSQL the events travel as NOTIFY on one channel, sent inside the transaction
(PostgreSQL delivers them on commit, to every process listening); each process keeps one
connection that LISTENs and hands what it hears to its own subscribers. On SQLite they go to
the subscribers of this process only.

An event carries the deal's id, never its data: each subscriber reads the deal again with its
own visibility (and the filter it gave) before anything is sent to it. A write that reassigns
the deal also carries its previous assignee, so that a subscriber who could see the deal
before is told it left (REMOVED, resolvers/live.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from models import Opportunity
from models.base import utcnow
from resolvers.errors import RequestError

log = logging.getLogger("dealgraph.events")

TYPES = ("CREATED", "UPDATED", "STAGE_CHANGED", "DELETED", "RESTORED")
# One event per deal and transaction: the weightiest of what happened to it.
WEIGHT = {"UPDATED": 0, "STAGE_CHANGED": 1, "RESTORED": 2, "DELETED": 3, "CREATED": 4}
CHANNEL = "dealgraph_events"
PAYLOAD_LIMIT = 7000  # bytes; PostgreSQL refuses a NOTIFY payload of 8000 or more
PENDING = "dealgraph.events"  # session.info: events recorded, not yet committed
OWNERS = "dealgraph.owners"  # session.info: deal id → assignee when loaded for a change
BROKER = "dealgraph.broker"  # session.info (from the session factory): this process's broker


@dataclass(frozen=True)
class Event:
    type: str
    opportunity_id: int
    occurred_at: dt.datetime
    previous_owner_id: int | None = None  # set when the write reassigned the deal

    def encode(self) -> list[Any]:
        raw = [self.type, self.opportunity_id, self.occurred_at.isoformat()]
        return raw if self.previous_owner_id is None else [*raw, self.previous_owner_id]

    @classmethod
    def decode(cls, raw: list[Any]) -> Event:
        if not isinstance(raw, list) or len(raw) not in (3, 4):
            raise ValueError(f"not an event: {raw!r}")
        kind, pk, at, *rest = raw
        previous = rest[0] if rest else None
        if kind not in WEIGHT or not isinstance(pk, int) or not isinstance(previous, int | None):
            raise ValueError(f"not an event: {raw!r}")
        return cls(kind, pk, dt.datetime.fromisoformat(at), previous)


# --- recording and publishing ---------------------------------------------------------------


def record(session: AsyncSession, kind: str, opp: Opportunity) -> None:
    """Note that `opp` was created, changed, ...; published when the transaction commits."""
    pending: dict[int, tuple[str, Opportunity, dt.datetime]] = session.info.setdefault(
        PENDING, {}
    )
    known = pending.get(id(opp))
    if known is None or WEIGHT[kind] > WEIGHT[known[0]]:
        pending[id(opp)] = (kind, opp, utcnow())


def loaded(session: AsyncSession, opp: Opportunity) -> None:
    """Note the deal's assignee as this transaction first loads it for a change (called by
    history.remember, which every path that changes a deal calls first)."""
    session.info.setdefault(OWNERS, {}).setdefault(opp.id, opp.assigned_to_id)


def discard(session: AsyncSession) -> None:
    """Forget the events of a transaction that is rolled back (or has been published)."""
    session.info.pop(PENDING, None)
    session.info.pop(OWNERS, None)


def _pending(session: AsyncSession) -> list[Event]:
    found = session.info.get(PENDING) or {}
    owners: dict[int, int] = session.info.get(OWNERS) or {}
    events = []
    for kind, opp, at in found.values():
        if opp.id is None:
            continue
        before = owners.get(opp.id)
        moved = before is not None and before != opp.assigned_to_id
        events.append(Event(kind, opp.id, at, before if moved else None))
    return events


def _payloads(events: list[Event]) -> Iterable[str]:
    """JSON lists of encoded events, each small enough for one NOTIFY."""
    batch: list[str] = []
    size = 2
    for event in events:
        item = json.dumps(event.encode(), separators=(",", ":"))
        if batch and size + len(item) + 1 > PAYLOAD_LIMIT:
            yield "[" + ",".join(batch) + "]"
            batch, size = [], 2
        batch.append(item)
        size += len(item) + 1
    if batch:
        yield "[" + ",".join(batch) + "]"


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def commit(session: AsyncSession) -> None:
    """Commit the transaction and publish the events recorded in it."""
    try:
        if session.info.get(PENDING) and is_postgres(session):
            await session.flush()  # the ids of created deals
            for payload in _payloads(_pending(session)):
                await session.execute(select(func.pg_notify(CHANNEL, payload)))
            await session.commit()  # PostgreSQL delivers the notifications now
            return
        await session.commit()
        events = _pending(session)
        broker = session.info.get(BROKER)
        if events and isinstance(broker, Broker):
            broker.publish(events)
    finally:
        discard(session)


# --- the broker ------------------------------------------------------------------------------


class Interrupted(RequestError):
    """A subscription that may have missed events: the client should fetch and resubscribe."""

    def __init__(self, why: str) -> None:
        super().__init__(f"{why} Fetch what you show again and subscribe again.", "INTERRUPTED")


class Subscription:
    """One subscriber's queue of events."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(size)
        self.problem: str | None = None
        self._wake = asyncio.Event()

    def put(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.interrupt("Events came faster than this subscription took them.")

    def interrupt(self, why: str) -> None:
        self.problem = self.problem or why
        self._wake.set()

    async def get(self) -> Event:
        """The next event; raises Interrupted once events may have been lost."""
        if self.problem is None and self.queue.empty():
            getter = asyncio.ensure_future(self.queue.get())
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({getter, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waker.cancel()
                if not getter.done():
                    getter.cancel()
            if getter.done() and not getter.cancelled() and self.problem is None:
                return getter.result()
        if self.problem is not None:
            raise Interrupted(self.problem)
        return self.queue.get_nowait()


class Broker:
    """This process's subscribers; on PostgreSQL also the connection that LISTENs."""

    def __init__(self, database_url: str, queue_size: int = 1000) -> None:
        url = make_url(database_url)
        self.dsn = (
            url.set(drivername="postgresql").render_as_string(hide_password=False)
            if url.get_backend_name() == "postgresql" else None
        )
        self.queue_size = queue_size
        self.subscribers: set[Subscription] = set()
        # other channels heard on the same connection: channel → (heard(payload), told
        # whether the connection is up: on False, what was heard may be incomplete)
        self.watches: dict[str, tuple[Callable[[str], None], Callable[[bool], None]]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._listening: asyncio.Event | None = None

    def watch(
        self, channel: str, heard: Callable[[str], None], listening: Callable[[bool], None]
    ) -> None:
        """Hear `channel` too (before `start`): `heard` gets each payload, `listening` each
        time the connection is made or lost."""
        self.watches[channel] = (heard, listening)

    def start(self) -> None:
        """Listen from now on (PostgreSQL), without waiting for the connection."""
        if self.dsn is not None and (self._listener is None or self._listener.done()):
            self._listening = asyncio.Event()
            self._listener = asyncio.create_task(self._listen(), name="dealgraph-listen")

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            for subscriber in list(self.subscribers):
                subscriber.put(event)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """A subscription for the duration of the block (listening first, on PostgreSQL)."""
        await self._ensure_listening()
        subscription = Subscription(self.queue_size)
        self.subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self.subscribers.discard(subscription)

    async def _ensure_listening(self) -> None:
        if self.dsn is None:
            return
        self.start()
        assert self._listening is not None
        try:
            await asyncio.wait_for(self._listening.wait(), timeout=10)
        except TimeoutError:
            raise RequestError(
                "Live updates are unavailable (the database does not answer); try again later.",
                "SERVICE_UNAVAILABLE",
            ) from None

    def _heard(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            events = [Event.decode(raw) for raw in json.loads(payload)]
        except (ValueError, TypeError):
            log.warning("ignored a malformed notification on %s: %.200r", CHANNEL, payload)
            return
        self.publish(events)

    async def _listen(self) -> None:
        """Keep one LISTEN connection; when it is lost, interrupt the subscribers (they may
        have missed events) and reconnect."""
        import asyncpg  # the PostgreSQL driver; not needed on SQLite

        assert self._listening is not None and self.dsn is not None
        delay = 0.5
        while True:
            try:
                connection = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cannot LISTEN for events (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5)  # back within seconds of the database
                continue
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _c, lost=lost: lost.set())
            try:
                await connection.add_listener(CHANNEL, self._heard)
                for channel, (heard, listening) in self.watches.items():
                    await connection.add_listener(
                        channel, lambda _c, _p, _ch, payload, heard=heard: heard(payload)
                    )
                    listening(True)
                self._listening.set()
                delay = 0.5
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), timeout=15)
                    if not lost.is_set():
                        await connection.execute("SELECT 1")  # notices a dead connection
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("the LISTEN connection broke (%s)", exc)
            finally:
                self._listening.clear()
                for _heard, listening in self.watches.values():
                    listening(False)
                for subscriber in list(self.subscribers):
                    subscriber.interrupt("The server lost its feed of events.")
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)

    async def close(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.interrupt("The server is shutting down.")
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
