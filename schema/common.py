"""Small helpers the type modules share."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry

from resolvers import editing, records
from resolvers.kinds import KINDS
from schema.context import Info
from schema.reads import ListSpec
from schema.relay import OrderDirection, order_pairs


@strawberry.enum(description="Fields every list except opportunities can be ordered by.")
class RecordOrderField(Enum):
    NAME = "NAME"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"


@strawberry.input
class RecordOrder:
    field: RecordOrderField
    direction: OrderDirection = OrderDirection.ASC


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
