"""Lookup by id and the paged lists of every entity type (the kinds: resolvers/kinds.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.ids import from_global_id, pk_of
from resolvers.kinds import KINDS, Kind
from resolvers.pagination import PageArgs, PageQuery, SortKey, outer_joined, page_query
from resolvers.permissions import Viewer
from resolvers.text import contains


def visible_by_id(
    kind: Kind, viewer: Viewer, ids: Sequence[int] | Any, columns: Sequence[Any] | None = None,
    joins: Sequence[tuple[Any, Any]] = (),
) -> Any:
    """The statement for the records with these ids (or an expanding parameter) that the viewer
    may see: ORM objects, or rows of `columns` with `joins`."""
    return outer_joined(select(*(columns or [kind.model])), kind.model, joins).where(
        kind.model.id.in_(ids), *kind.visible(viewer)
    )


def node_keys(global_ids: Sequence[str]) -> list[tuple[str, int] | None]:
    """The (kind, id) each global id names (None: not a record's)."""
    return [
        d if (d := from_global_id(gid)) is not None and d[0] in KINDS else None
        for gid in global_ids
    ]


async def get_by_keys(
    session: AsyncSession, viewer: Viewer, keys: Sequence[tuple[str, int] | None]
) -> list[Any]:
    """Records by (kind, id), in order; None for anything the viewer may not see."""
    wanted: dict[str, list[int]] = {}
    for key in keys:
        if key is not None:
            wanted.setdefault(key[0], []).append(key[1])
    found: dict[tuple[str, int], Any] = {}
    for type_name, pks in wanted.items():
        for record in (await session.scalars(visible_by_id(KINDS[type_name], viewer, pks))).all():
            found[(type_name, record.id)] = record
    return [None if key is None else found.get(key) for key in keys]


@dataclass(frozen=True)
class ListFilter:
    """The filters every other list shares: free-text search and owner, plus exact matches."""

    search: str | None = None
    assigned_to: tuple[str, ...] | None = None
    equals: tuple[tuple[str, Any], ...] = ()


def list_conditions(kind: Kind, f: ListFilter | None) -> list[ColumnElement[bool]]:
    if f is None:
        return []
    c: list[ColumnElement[bool]] = []
    if f.search:
        c.append(contains(f.search, *kind.search))
    if f.assigned_to is not None and kind.owner is not None:
        c.append(kind.owner.in_([pk for g in f.assigned_to if (pk := pk_of(g, "User"))]))
    for attr, value in f.equals:
        if value is not None:
            c.append(getattr(kind.model, attr) == value)
    return c


def sort_keys(
    type_name: str,
    order: tuple[tuple[str, bool], ...] | None,
    extra: dict[str, Any] | None = None,
) -> tuple[list[SortKey], str]:
    """Sort keys for (field, descending) pairs, and the cursor signature they imply;
    `extra` holds expressions for names beyond the type's fields (custom fields)."""
    order = order or (("CREATED_AT", False),)
    fields = {**KINDS[type_name].order, **(extra or {})}
    keys = [SortKey(fields[name], desc) for name, desc in order]
    return keys, type_name + ":" + ",".join(f"{n}{'-' if d else '+'}" for n, d in order)


def list_query(
    viewer: Viewer,
    type_name: str,
    args: PageArgs,
    conditions: list[ColumnElement[bool]],
    order: tuple[tuple[str, bool], ...] | None,
    default_size: int,
    max_size: int,
    extra_sort: dict[str, Any] | None = None,
    columns: Sequence[Any] | None = None,
    joins: Sequence[tuple[Any, Any]] = (),
    with_total: bool = False,
) -> PageQuery:
    """The statement of a page of visible records of one type matching `conditions`, in
    `order` then id (ORM objects, or rows of `columns` with `joins`; see page_query)."""
    kind = KINDS[type_name]
    keys, signature = sort_keys(type_name, order, extra_sort)
    where = [*kind.visible(viewer), *conditions]
    total = kind.total(viewer) if kind.total is not None and not conditions else None
    return page_query(
        kind.model, where, keys, signature, args, default_size, max_size, columns, joins,
        with_total, total,
    )
