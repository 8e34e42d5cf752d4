"""Subscriptions to deal events: what a WebSocket connection needs to follow them, and the
per-subscriber check (current viewer, visibility, filter) before an event is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

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
) -> AsyncIterator[tuple[Event, Opportunity, Viewer]]:
    """The events a subscriber may see, with the deal read through `session` with the
    subscriber's current visibility and filter. The session holds no connection between
    events."""
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
                yield event, found, viewer
