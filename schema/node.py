"""Relay's node and nodes: any entity the viewer may see, else null."""

from __future__ import annotations

from typing import Any

import strawberry

from resolvers import records
from resolvers.errors import RequestError
from schema.context import Context, Info
from schema.reads import records_field
from schema.relay import Node

MAX_NODES = 100


def _node(ctx: Context, values: dict[str, Any]) -> list[tuple[str, int] | None]:
    return records.node_keys([values["id"]])


def _nodes(ctx: Context, values: dict[str, Any]) -> list[tuple[str, int] | None]:
    ids = values["ids"]
    if len(ids) > MAX_NODES:
        raise RequestError(f"At most {MAX_NODES} ids per call; got {len(ids)}.")
    return records.node_keys(ids)


@strawberry.type
class NodeQuery:
    @records_field(_node, many=False, description="The object with this global id, or null.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None: ...

    @records_field(
        _nodes, many=True, description="Objects for global ids, in order; null where not visible."
    )
    async def nodes(  # type: ignore[empty-body]  # a stub: see records_field
        self, info: Info, ids: list[strawberry.ID]
    ) -> list[Node | None]: ...
