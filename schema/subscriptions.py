"""Subscriptions: live events about the deals a viewer may see (graphql-transport-ws on
/graphql)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from enum import Enum

import strawberry

from resolvers import live
from resolvers.errors import RequestError
from resolvers.ids import to_global_id
from resolvers.loaders import Loaders
from resolvers.opportunity import OpportunityFilter as OpportunityFilterRules
from resolvers.opportunity import check_keys
from schema.context import Context, Info
from schema.opportunity import Opportunity, OpportunityFilter


@strawberry.enum
class OpportunityEventType(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    STAGE_CHANGED = "STAGE_CHANGED"
    DELETED = "DELETED"
    RESTORED = "RESTORED"
    REMOVED = strawberry.enum_value(
        "REMOVED",
        description="The deal left the subscriber's view (reassigned away, or no longer "
        "matching the filter): drop it. Only its id comes with it.",
    )


@strawberry.type(description="Something happened to a deal.")
class OpportunityEvent:
    type: OpportunityEventType
    opportunity_id: strawberry.ID = strawberry.field(description="The deal's id (every event).")
    opportunity: Opportunity | None = strawberry.field(
        description="The deal as it is now (for DELETED: in the recycle bin); null for "
        "REMOVED."
    )
    occurred_at: dt.datetime


@strawberry.type
class OpportunitySubscription:
    @strawberry.subscription(
        description="Deals created, updated, moved between stages, deleted and restored, as "
        "they happen: only deals the viewer may see (checked again for every event) that "
        "match the filter. One event per deal and write (STAGE_CHANGED covers the update "
        "it came with); REMOVED, with the id only, when a deal the subscriber could see "
        "leaves their view. Over the WebSocket on /graphql (graphql-transport-ws), "
        'authenticated by connection_init {"Authorization": "Bearer <token>"}.'
    )
    async def opportunity_events(
        self, info: Info, filter: OpportunityFilter | None = None
    ) -> AsyncGenerator[OpportunityEvent, None]:
        ctx = info.context
        if ctx.live is None:  # not over the WebSocket (server/websocket.py refuses it first)
            raise RequestError(
                "Subscribe over the WebSocket on /graphql (protocol graphql-transport-ws)."
            )
        rules = filter.to_rules() if filter else None
        if rules is not None:
            await check_keys(ctx.session, rules)  # refused now, not at the first event
        return _events(ctx, rules)


async def _events(
    ctx: Context, rules: OpportunityFilterRules | None
) -> AsyncGenerator[OpportunityEvent, None]:
    assert ctx.live is not None
    async for event, deal, viewer in live.watch(ctx.session, ctx.live, rules):
        # Every event is resolved afresh, as the subscriber is now.
        ctx.viewer = viewer
        ctx.loaders = Loaders(ctx.session, viewer, ctx.default_page_size, ctx.max_page_size)
        yield OpportunityEvent(
            type=OpportunityEventType(event.type),
            opportunity_id=strawberry.ID(to_global_id("Opportunity", event.opportunity_id)),
            opportunity=deal,  # type: ignore[arg-type]
            occurred_at=event.occurred_at,
        )
