"""Small helpers the type modules share."""

from __future__ import annotations

from collections.abc import Hashable
from enum import Enum
from typing import Any

import strawberry

from resolvers import editing, records
from resolvers.kinds import KINDS
from resolvers.pagination import PageArgs
from schema.context import Info
from schema.reads import ListSpec
from schema.relay import Connection, OrderDirection, order_pairs


async def related(info: Info, type_name: str, pk: int | None) -> Any:
    """The referenced record if the viewer may see it, else None (batched per request)."""
    if pk is None:
        return None
    return await info.context.loaders.by_id[type_name].load(pk)


@strawberry.enum(description="Fields every list except opportunities can be ordered by.")
class RecordOrderField(Enum):
    NAME = "NAME"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"


@strawberry.input
class RecordOrder:
    field: RecordOrderField
    direction: OrderDirection = OrderDirection.ASC


async def relation(
    info: Info,
    type_name: str,
    parent_column: Any,
    parent_id: int,
    args: PageArgs,
    order: tuple[tuple[str, bool], ...] | None,
    conditions: list[Any] | None = None,
    spec: Hashable = None,
    extra_sort: dict[str, Any] | None = None,
) -> Connection[Any]:
    """A connection below one parent, batched with its siblings on the page."""
    page = await info.context.loaders.relation_page(
        type_name, parent_column, parent_id, conditions or [], order, args, spec, extra_sort
    )
    return Connection(page=page)


async def root_list(
    info: Info,
    type_name: str,
    args: PageArgs,
    conditions: list[Any],
    order_by: list[Any] | None,
    extra_sort: dict[str, Any] | None = None,
) -> Connection[Any]:
    """A root connection of visible records matching `conditions`."""
    ctx = info.context
    page = await records.list_query(
        ctx.viewer, type_name, args, conditions, order_pairs(order_by),
        ctx.default_page_size, ctx.max_page_size, extra_sort,
    ).read(ctx.session)
    return Connection(page=page)


async def record_spec(
    info: Info, type_name: str, f: Any, order_by: list[Any] | None, *equals: tuple[str, Any]
) -> ListSpec:
    """A record connection's arguments: the shared filter (list_filter) and the ordering."""
    return ListSpec(await list_filter(info, type_name, f, *equals), order_pairs(order_by))


async def list_filter(
    info: Info, type_name: str, f: Any, *equals: tuple[str, Any]
) -> list[Any]:
    """Conditions for the shared search/assignedTo filter plus exact-match fields (an unknown
    picklist key among them is refused)."""
    if f is None:
        return []
    await editing.check_filter_keys(info.context.session, type_name, equals)
    return records.list_conditions(
        KINDS[type_name],
        records.ListFilter(
            search=getattr(f, "search", None),
            assigned_to=tuple(f.assigned_to) if getattr(f, "assigned_to", None) else None,
            equals=equals,
        ),
    )
