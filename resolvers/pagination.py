"""Relay connections with keyset cursors: stable under inserts, one query per page."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import functools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

import orjson
from sqlalchemy import ColumnElement, TypeDecorator, and_, func, or_, outerjoin, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.errors import RequestError
from resolvers.raw import ParentIds

T = TypeVar("T")


@dataclass(frozen=True)
class PageArgs:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None


@dataclass(frozen=True)
class SortKey:
    expr: Any
    descending: bool = False


@dataclass
class Page(Generic[T]):
    nodes: list[T]
    keys: Sequence[Sequence[Any]]  # each node's sort key values: what its cursor encodes
    signature: str
    has_next_page: bool
    has_previous_page: bool
    count: Callable[[], Awaitable[int]]

    @functools.cached_property
    def cursors(self) -> list[str]:
        """Encoded when asked for (most pages are read without their cursors)."""
        return [encode_cursor(self.signature, key) for key in self.keys]


def page_size(args: PageArgs, default: int, maximum: int) -> tuple[int, bool]:
    """(size, backwards) after checking the arguments against the limits."""
    if args.first is not None and args.last is not None:
        raise RequestError("Pass either `first` or `last`, not both.")
    for name in ("first", "last"):
        value = getattr(args, name)
        if value is not None and not 0 <= value <= maximum:
            raise RequestError(f"`{name}` must be between 0 and {maximum}; got {value}.")
    if args.last is not None:
        return args.last, True
    return (args.first if args.first is not None else default), False


# A sort key's value in a cursor: tagged with its type, by the value's class (or the closest
# of its bases: a bool is no int here, a datetime no date).
_ENCODERS: dict[type, Callable[[Any], list[Any]]] = {
    bool: lambda v: ["b", v],
    type(None): lambda v: ["b", v],
    Decimal: lambda v: ["n", str(v)],
    float: lambda v: ["f", repr(v)],
    int: lambda v: ["i", v],
    dt.datetime: lambda v: ["t", v.isoformat()],
    dt.date: lambda v: ["d", v.isoformat()],
}


def _encode_value(value: Any) -> list[Any]:
    for cls in value.__class__.__mro__:
        encode = _ENCODERS.get(cls)
        if encode is not None:
            return encode(value)
    return ["s", str(value)]


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "b": lambda v: v,
    "n": Decimal,
    "f": float,
    "i": int,
    "t": dt.datetime.fromisoformat,
    "d": dt.date.fromisoformat,
    "s": str,
}


def encode_cursor(signature: str, values: Sequence[Any]) -> str:
    raw = orjson.dumps([signature, [_encode_value(v) for v in values]])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _fits(value: Any, key: SortKey) -> bool:
    """Whether a decoded cursor value has the type of its sort key's column."""
    sql_type = key.expr.type
    if isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    try:
        expected = sql_type.python_type
    except NotImplementedError:  # pragma: no cover - every sort key has a plain type
        return True
    if expected is dt.datetime:
        return isinstance(value, dt.datetime) and value.tzinfo is not None
    if expected is dt.date:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if expected is Decimal:
        return isinstance(value, Decimal | float)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def decode_cursor(cursor: str, signature: str, keys: Sequence[SortKey]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        sig, values = json.loads(raw)
        decoded = [_DECODERS[tag](v) for tag, v in values]
    except (binascii.Error, ValueError, TypeError, KeyError, ArithmeticError) as exc:
        raise RequestError(f"Invalid cursor: {cursor!r}.") from exc
    if sig != signature or len(decoded) != len(keys):
        raise RequestError("This cursor belongs to a different ordering; fetch the list again.")
    if not all(_fits(v, k) for v, k in zip(decoded, keys, strict=True)):
        raise RequestError(f"Invalid cursor: {cursor!r}.")
    return decoded


def _keyset(keys: Sequence[SortKey], values: Sequence[Any], forward: bool) -> ColumnElement[bool]:
    """Rows strictly after (forward) or before the given key values in the sort order."""
    clauses = []
    for i, key in enumerate(keys):
        later = key.descending != forward  # "later" means greater unless exactly one flips
        step = key.expr > values[i] if later else key.expr < values[i]
        equal = [keys[j].expr == values[j] for j in range(i)]
        clauses.append(and_(*equal, step))
    return or_(*clauses)


def outer_joined(stmt: Any, model: Any, joins: Sequence[tuple[Any, Any]]) -> Any:
    """`stmt` selecting from `model`, with each (table, ON clause) of `joins` LEFT JOINed (the
    planner reads to-one relations in their parent's statement)."""
    if not joins:
        return stmt
    source = model
    for target, on in joins:
        source = outerjoin(source, target, on)
    return stmt.select_from(source)


@dataclass
class PageQuery:
    """One page's statement (see page_query) and how its rows become the Page."""

    statement: Any
    total: Any  # the statement counting every matching row
    size: int
    backwards: bool
    width: int  # the nodes' columns, before the sort keys' values
    keys: int
    signature: str
    args: PageArgs
    with_total: bool
    plain: bool  # the nodes are the rows of columns (the planner's), not ORM objects

    async def read(self, session: AsyncSession) -> Page[Any]:
        return self.page((await session.execute(self.statement)).all(), session)

    def page(self, rows: Sequence[Any], session: AsyncSession) -> Page[Any]:
        """The Page of the statement's `rows`."""
        with_total, total = self.with_total, self.total
        first = rows[0] if rows else None

        async def count() -> int:
            if with_total and first is not None:
                return int(first[-1])
            return int(await session.scalar(total) or 0)

        return _page(rows, self.size, self.backwards, self.width, self.keys, self.signature,
                     self.args, None if self.plain else _first, count)


def page_query(
    entity: Any,
    where: Sequence[ColumnElement[bool]],
    sort: Sequence[SortKey],
    signature: str,
    args: PageArgs,
    default_size: int,
    max_size: int,
    columns: Sequence[Any] | None = None,
    joins: Sequence[tuple[Any, Any]] = (),
    with_total: bool = False,
    total: Any = None,
) -> PageQuery:
    """The statement of one page of `entity` rows matching `where`, ordered by `sort` then by
    primary key; its rows hold the nodes (`entity`, or the `columns` with `joins` outer-joined),
    the sort keys' values, and with `with_total` the total count (a scalar subquery: no second
    statement when it is asked for). `total`: a statement for the number of rows matching
    `where`, in place of counting them."""
    size, backwards = page_size(args, default_size, max_size)
    keys = [*sort, SortKey(entity.id, sort[-1].descending if sort else False)]
    if total is None:
        total = select(func.count()).select_from(entity).where(*where)
    stmt = outer_joined(select(
        *(columns if columns is not None else [entity]),
        *[k.expr.label(f"_key{i}") for i, k in enumerate(keys)],
        *([total.scalar_subquery().label("_total")] if with_total else []),
    ), entity, joins).where(*where)
    if args.after:
        stmt = stmt.where(_keyset(keys, decode_cursor(args.after, signature, keys), True))
    if args.before:
        stmt = stmt.where(_keyset(keys, decode_cursor(args.before, signature, keys), False))
    order = [
        (k.expr.desc() if k.descending != backwards else k.expr.asc()) for k in keys
    ]
    return PageQuery(
        stmt.order_by(*order).limit(size + 1), total, size, backwards,
        len(columns) if columns is not None else 1, len(keys), signature, args, with_total,
        columns is not None,
    )


@dataclass
class ManyPageQuery:
    """The statement of the same page of a relation for many parents (many_page_query):
    its rows hold the nodes, the sort keys' values, then the parent's id."""

    statement: Any
    size: int
    backwards: bool
    width: int
    keys: int
    signature: str
    args: PageArgs

    def pages(
        self, rows: Sequence[Any], parent_ids: Sequence[int],
        count: Callable[[int], Awaitable[int]], plain: bool = False,
    ) -> dict[int, Page[Any]]:
        grouped: dict[int, list[Any]] = {pid: [] for pid in parent_ids}
        for row in rows:
            grouped.setdefault(row[-1], []).append(row)
        width = self.width
        node = (lambda row: row[:width]) if plain else _first
        return {
            pid: _page(found, self.size, self.backwards, width, self.keys, self.signature,
                       self.args, node, lambda pid=pid: count(pid))  # type: ignore[misc]
            for pid, found in grouped.items()
        }


def _first(row: Any) -> Any:
    return row[0]


def _page(
    rows: Sequence[Any], size: int, backwards: bool, width: int, keys: int, signature: str,
    args: PageArgs, node: Callable[[Any], Any] | None, count: Callable[[], Awaitable[int]],
) -> Page[Any]:
    """A page of up to `size` of the `rows` a statement gave (one more tells that there is a
    next page), each row its node (`node(row)`, else the row), then its sort keys' values."""
    more = len(rows) > size
    found = list(rows[:size])
    if backwards:
        found.reverse()
    return Page(
        nodes=found if node is None else [node(row) for row in found],
        keys=[row[width:width + keys] for row in found], signature=signature,
        has_next_page=more if not backwards else bool(args.before),
        has_previous_page=more if backwards else bool(args.after),
        count=count,
    )


def many_page_query(
    entity: Any,
    parent_column: Any,
    parent_ids: Any,
    where: Sequence[ColumnElement[bool]],
    sort: Sequence[SortKey],
    signature: str,
    args: PageArgs,
    default_size: int,
    max_size: int,
    columns: Sequence[Any] | None = None,
    joins: Sequence[tuple[Any, Any]] = (),
    parents: ParentIds | None = None,
) -> ManyPageQuery:
    """The same page of a relation for many parents at once (one windowed statement):
    `entity` rows, or rows of `columns` with `joins` outer-joined (the planner's).
    `parent_ids`: a list, or an expression giving them (resolvers/raw.IDS). `parents`, with
    `columns`: the parents' ids as a table (resolvers/raw.IDS_TABLE), each parent's page read
    with its LIMIT by a LATERAL subquery or a correlated IN (an index on the parent and the
    ordering reads only the page, where the window ranks every row of every parent).

    `parent_column` is a column of `entity`, or of a link table that `where` joins to it
    (documents through document_links); an entity linked to several parents of the batch
    comes once per parent."""
    size, backwards = page_size(args, default_size, max_size)
    keys = [*sort, SortKey(entity.id, sort[-1].descending if sort else False)]
    conditions = [parent_column.in_(parent_ids), *where]
    if args.after:
        conditions.append(_keyset(keys, decode_cursor(args.after, signature, keys), True))
    if args.before:
        conditions.append(_keyset(keys, decode_cursor(args.before, signature, keys), False))
    order = [(k.expr.desc() if k.descending != backwards else k.expr.asc()) for k in keys]
    nodes = list(columns) if columns is not None else [entity]
    if parents is not None and columns is not None and not parents.lateral:
        table = parents.table
        page_ids = (
            select(entity.id).where(parent_column == table.c.value, *conditions[1:])
            .order_by(*order).limit(size + 1).correlate(table)
        )
        source = table.join(entity, entity.id.in_(page_ids))
        for target, on in joins:
            source = outerjoin(source, target, on)
        statement = (
            select(*nodes, *[k.expr.label(f"k{i}") for i, k in enumerate(keys)], table.c.value)
            .select_from(source)
            .order_by(table.c.value, *order)
        )
        return ManyPageQuery(statement, size, backwards, len(nodes), len(keys), signature, args)
    if parents is not None and columns is not None:
        lateral = parents.table
        page = (
            outer_joined(select(*nodes, *[k.expr.label(f"k{i}") for i, k in enumerate(keys)]),
                         entity, joins)
            .where(parent_column == lateral.c.value, *conditions[1:])
            .order_by(*order)
            .limit(size + 1)
            .lateral("page")
        )
        ranked = [page.c[f"k{i}"] for i in range(len(keys))]
        statement = (
            select(*[page.c[c.name] for c in nodes], *ranked, lateral.c.value)
            .select_from(lateral.join(page, true()))
            .order_by(lateral.c.value, *[
                (c.desc() if k.descending != backwards else c.asc())
                for c, k in zip(ranked, keys, strict=True)
            ])
        )
        return ManyPageQuery(statement, size, backwards, len(nodes), len(keys), signature, args)
    rank = func.row_number().over(partition_by=parent_column, order_by=order).label("rank")
    inner = (
        select(
            entity.id.label("pk"), parent_column.label("parent"),
            *[k.expr.label(f"k{i}") for i, k in enumerate(keys)], rank,
        )
        .where(*conditions)
        .subquery()
    )
    statement = (
        outer_joined(select(*nodes, *[inner.c[f"k{i}"] for i in range(len(keys))],
                            inner.c.parent), entity, joins)
        .join(inner, entity.id == inner.c.pk)
        .where(inner.c.rank <= size + 1)
        .order_by(inner.c.parent, inner.c.rank)
    )
    return ManyPageQuery(statement, size, backwards, len(nodes), len(keys), signature, args)


def many_counts(
    parent_column: Any, parent_ids: Any, where: Sequence[ColumnElement[bool]]
) -> Any:
    """The number of matching rows per parent (the relation's totalCount)."""
    return (
        select(parent_column, func.count())
        .where(parent_column.in_(parent_ids), *where)
        .group_by(parent_column)
    )


async def paginate_many(
    session: AsyncSession,
    entity: Any,
    parent_column: Any,
    parent_ids: Sequence[int],
    where: Sequence[ColumnElement[bool]],
    sort: Sequence[SortKey],
    signature: str,
    args: PageArgs,
    default_size: int,
    max_size: int,
) -> dict[int, Page[Any]]:
    """many_page_query's pages, through the session (the counts on first demand)."""
    query = many_page_query(
        entity, parent_column, sorted(set(parent_ids)), where, sort, signature, args,
        default_size, max_size,
    )
    rows = (await session.execute(query.statement)).all()
    counts: dict[int, int] | None = None
    # The parents' totalCount fields resolve concurrently: the first one runs the query,
    # the others wait for it instead of each sending the same COUNT.
    counting = asyncio.Lock()

    async def count_for(parent_id: int) -> int:
        nonlocal counts
        async with counting:
            if counts is None:  # one grouped COUNT for every parent, on first demand
                result = await session.execute(
                    many_counts(parent_column, sorted(set(parent_ids)), where)
                )
                counts = {pid: int(n) for pid, n in result}
        return counts.get(parent_id, 0)

    return query.pages(rows, parent_ids, count_for)
