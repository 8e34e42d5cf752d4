"""Subscriptions to deal events: what a WebSocket connection needs to follow them, and the
per-subscriber check (current viewer, visibility, filter) before an event is sent.

A deal that leaves a subscriber's view is announced once as REMOVED, with its id only: when
the write reassigned it away from an owner whose deals the subscriber may read (it was
visible to them before; a board loaded by a query shows it), or when the subscription had
sent an event about it and it no longer matches (the filter, or visibility). A REMOVED may
name a deal the client does not show (one its filter never selected): ignore it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Opportunity
from resolvers import opportunity
from resolvers.auth import authenticate
from resolvers.errors import RequestError
from resolvers.events import Broker, Event
from resolvers.permissions import Viewer, load_viewer, readable


@dataclass(frozen=True)
class Live:
    """What a WebSocket connection's subscriptions need: the broker, and the token the
    connection was opened with (every event re-reads the viewer it stands for)."""

    broker: Broker
    token: str
    sharing: str


async def current_viewer(session: AsyncSession, live: Live) -> Viewer:
    """The viewer of the connection's token now; refused once it is revoked or inactive."""
    user = await authenticate(session, live.token)
    if user is None:
        raise RequestError("The token is unknown or revoked.", "UNAUTHENTICATED")
    return await load_viewer(session, user, live.sharing)


async def watch(
    session: AsyncSession, live: Live, f: opportunity.OpportunityFilter | None
) -> AsyncIterator[tuple[Event, Opportunity | None, Viewer]]:
    """The events a subscriber may see, with the deal read through `session` with the
    subscriber's current visibility and filter; a deal that left them comes as a REMOVED
    event without the deal. The session holds no connection between events."""
    shown = Shown()
    async with live.broker.subscribe() as subscription:
        while True:
            await session.close()  # the previous event has been sent: release its connection
            event = await subscription.get()
            viewer = await current_viewer(session, live)
            where = [
                Opportunity.id == event.opportunity_id,
                readable(Opportunity.assigned_to_id, viewer),
                *await opportunity.conditions_for(session, f),
            ]
            if event.type != "DELETED":
                where.append(Opportunity.deleted_at.is_(None))
            found = (await session.scalars(select(Opportunity).where(*where))).first()
            if found is not None:
                if event.type == "DELETED":
                    shown.discard(found.id)  # its DELETED says it is gone
                else:
                    shown.add(found.id)
                yield event, found, viewer
            elif left(event, viewer, shown):
                shown.discard(event.opportunity_id)
                yield replace(event, type="REMOVED"), None, viewer


class Shown:
    """The deals a subscription has sent and not removed since, the latest LIMIT of them
    (a long-lived subscription of a large organisation must not grow without bound; a
    deal forgotten here still gets its REMOVED when it is reassigned away)."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._ids: OrderedDict[int, None] = OrderedDict()

    def add(self, pk: int) -> None:
        self._ids[pk] = None
        self._ids.move_to_end(pk)
        if len(self._ids) > self.LIMIT:
            self._ids.popitem(last=False)

    def discard(self, pk: int) -> None:
        self._ids.pop(pk, None)

    def __contains__(self, pk: object) -> bool:
        return pk in self._ids


def left(event: Event, viewer: Viewer, shown: Shown) -> bool:
    """Whether a deal the subscriber is no longer sent (`event` was not for them) was
    theirs to see before: sent to them already, or reassigned away from an owner whose
    deals they may read."""
    if event.opportunity_id in shown:
        return True
    previous = event.previous_owner_id
    return event.type != "DELETED" and previous is not None and viewer.can_read_owner(previous)
