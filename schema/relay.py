"""Relay plumbing: the Node interface, connections over keyset pages, ordering enums."""

from __future__ import annotations

from enum import Enum
from typing import Any, Generic, TypeVar

import strawberry

from resolvers.errors import RequestError
from resolvers.pagination import Page, PageArgs

NodeT = TypeVar("NodeT")


@strawberry.interface(description="An object with a global id.")
class Node:
    id: strawberry.ID


def rows_of(model: type) -> Any:
    """`is_type_of` for a GraphQL type whose values are rows of `model` (which the planner
    reads as the type's model)."""

    def is_type_of(obj: Any, _info: Any) -> bool:
        return isinstance(obj, model)

    is_type_of.model = model  # type: ignore[attr-defined]
    return staticmethod(is_type_of)


@strawberry.enum
class OrderDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    page: strawberry.Private[Page[Any]]

    @strawberry.field
    def edges(self) -> list[Edge[NodeT]]:
        page = self.page
        return [Edge(cursor=c, node=n) for c, n in zip(page.cursors, page.nodes, strict=True)]

    @strawberry.field
    def nodes(self) -> list[NodeT]:
        return self.page.nodes

    @strawberry.field
    def page_info(self) -> PageInfo:
        cursors = self.page.cursors
        return PageInfo(
            has_next_page=self.page.has_next_page,
            has_previous_page=self.page.has_previous_page,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )

    @strawberry.field(description="Matching records, on every page.")
    async def total_count(self) -> int:
        return await self.page.count()


def page_args(
    first: int | None, after: str | None, last: int | None, before: str | None
) -> PageArgs:
    return PageArgs(first=first, after=after, last=last, before=before)


def order_pairs(order_by: list[Any] | None) -> tuple[tuple[str, bool], ...] | None:
    """(field name, descending) pairs from a list of `*Order` inputs."""
    if not order_by:
        return None
    pairs = []
    for o in order_by:
        name = o.field.value
        if name == "CUSTOM_FIELD":
            name = getattr(o, "custom_field_key", None)
            if not name:
                raise RequestError("Ordering by CUSTOM_FIELD needs a customFieldKey.")
        pairs.append((name, o.direction == OrderDirection.DESC))
    return tuple(pairs)
