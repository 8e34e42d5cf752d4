"""Relay's node and nodes: any entity the viewer may see, else null."""

from __future__ import annotations

import strawberry

from resolvers import records
from resolvers.errors import RequestError
from schema.context import Info
from schema.relay import Node

MAX_NODES = 100


@strawberry.type
class NodeQuery:
    @strawberry.field(description="The object with this global id, or null.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        found = await records.get_visible(info.context.session, info.context.viewer, [id])
        return found[0]  # type: ignore[no-any-return]

    @strawberry.field(description="Objects for global ids, in order; null where not visible.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise RequestError(f"At most {MAX_NODES} ids per call; got {len(ids)}.")
        return await records.get_visible(info.context.session, info.context.viewer, ids)
