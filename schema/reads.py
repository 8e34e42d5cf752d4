"""What each read field needs from the database, declared once where the field is defined.

A field made by one of the factories below carries its declaration in its metadata (key
READS). graphql-core's resolver is made from that declaration here; the planner (planner/)
compiles the same declaration into set-based statements. So a field's column, relation or
inputs are written in one place, and both execution paths read them from there:

- a plain annotated field reads the model's column of its Python name (no declaration);
- `to_one(kind, fk)`: the visible record the row's foreign key `fk` points to;
- `children(relation)`: a plain list of the row's children (a resolvers/loaders relation);
- `computed(function, reads=..., using=...)`: a pure function of the row's `reads` columns
  (and of one value per row from a `Source`: the deal's stage, a quote's line totals, a
  campaign's figures);
- `@connection(kind, arguments, parent=...)`: a Relay connection, at the root or below a row,
  whose conditions and ordering come from `arguments` (the resolvers' rules).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import operator
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import strawberry

from resolvers import records
from resolvers.ids import to_global_id
from resolvers.loaders import Children
from resolvers.pagination import Page, PageArgs
from resolvers.permissions import Viewer
from schema.context import Context, Info
from schema.relay import Connection

READS = "dealgraph.reads"


def declaration(strawberry_field: Any) -> Any:
    """The read declaration of a Strawberry field (None: a column, or not declared)."""
    metadata = getattr(strawberry_field, "metadata", None) or {}
    return metadata.get(READS)


# --- sources: one value per row, from other rows ----------------------------------------


@dataclass(frozen=True, eq=False)
class ByKey:
    """Reference rows looked up by a column of the row (a deal's stage by its key): every
    row of `model` is read, no visibility rules apply."""

    model: Any
    key: str  # the model's column matched
    column: str  # the row's column holding the key
    load: Callable[[Any, Info], Awaitable[Any]]  # graphql-core's way: (row, info) → value


@dataclass(frozen=True, eq=False)
class Reduced:
    """A value computed from the row's children (a quote's totals from its lines)."""

    relation: Children
    reads: tuple[str, ...]  # the children's columns `reduce` reads
    reduce: Callable[[Sequence[Any]], Any]

    async def load(self, row: Any, info: Info) -> Any:
        return self.reduce(await info.context.loaders.children(self.relation).load(row.id))


@dataclass(frozen=True, eq=False)
class Batched:
    """A value per row from one statement for all the rows (a campaign's figures):
    `statement(viewer, ids)` selects them (`ids` a list, or the planner's one parameter for
    them: resolvers/raw.IDS), `collect(rows)` gives {id: value}; `default` for the others."""

    statement: Callable[[Viewer, Any], Any]
    collect: Callable[[Sequence[Any]], dict[int, Any]]
    default: Callable[[], Any]

    async def load(self, row: Any, info: Info) -> Any:
        loader = info.context.loaders.selected(self, self.statement, self.collect)
        return await loader.load(row.id) or self.default()


@dataclass(frozen=True, eq=False)
class PerType:
    """One value per type of row (a record type's custom field definitions), from
    `function(context, model)`, which caches it for the request."""

    function: Callable[[Context, type], Awaitable[Any]]

    async def load(self, row: Any, info: Info) -> Any:
        return await self.function(info.context, type(row))


Source = ByKey | Reduced | Batched | PerType


# --- declarations -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ToOne:
    kind: str  # resolvers.records.KINDS
    fk: str


@dataclass(frozen=True, eq=False)
class ChildList:
    relation: Children


@dataclass(frozen=True, eq=False)
class Computed:
    function: Callable[..., Any]  # (row) or (row, value of `using`)
    reads: tuple[str, ...]
    using: Source | None = None
    itself: bool = False  # the field is the source's value (an object: the deal's stage)
    arguments: bool = False  # the function also takes the field's arguments (by name)


@dataclass(frozen=True, eq=False)
class NodeId:
    """The global id of the row (its type name and primary key)."""

    type_name: str


@dataclass(frozen=True, eq=False)
class Paged:
    """A connection below each row whose pages one function gives for all the rows at once:
    `pages(context, model, ids, arguments)` → {id: Page} (its nodes are objects)."""

    pages: Callable[[Context, type, list[int], dict[str, Any]], Awaitable[dict[int, Page[Any]]]]


@dataclass(frozen=True, eq=False)
class RecordRefs:
    """Records of any kind a row refers to, those the viewer may see: `keys(context, rows)`
    gives {row id: [(kind, id), ...]} for all the rows at once (reading the row's `reads`).
    `many`: the list, else the first or null."""

    keys: Callable[[Context, list[Any]], Awaitable[dict[int, list[tuple[str, int]]]]]
    reads: tuple[str, ...]
    many: bool


@dataclass(frozen=True, eq=False)
class EdgeLink:
    """An edge's field read from the link between the connection's parent and the edge's
    node: among the node's `relation` rows, the one whose `match` column holds the parent's
    id; `function(that link or None)` (reading the link's `reads`)."""

    relation: Children
    match: str
    reads: tuple[str, ...]
    function: Callable[[Any], Any]


@dataclass(frozen=True, eq=False)
class Records:
    """Root records by key: `keys(context, arguments)` gives the (kind, id) of each wanted
    record in order (None for an id that names none); the visible ones are returned, null
    for the others. `many`: a list (nodes), else the one record (node)."""

    keys: Callable[[Context, dict[str, Any]], list[tuple[str, int] | None]]
    many: bool


@dataclass(frozen=True, eq=False)
class Value:
    """A root field whose resolver computes its answer from `info.context` and its arguments
    alone (a forecast, the picklists): the planner calls that same resolver, then builds the
    JSON of what it gave."""


@dataclass(frozen=True, eq=False)
class TheViewer:
    """The viewer's own user row (already loaded with the token)."""


@dataclass(frozen=True)
class ListSpec:
    """What a connection field's stub gives: its arguments in the rules' terms."""

    conditions: list[Any] = field(default_factory=list)
    order: tuple[tuple[str, bool], ...] | None = None
    extra_sort: dict[str, Any] | None = None
    spec: Hashable = None  # what the conditions depend on (batches siblings' pages)
    reusable: bool = True  # its statement depends only on the arguments and the viewer


@dataclass(frozen=True, eq=False)
class Listing:
    kind: str
    stub: Callable[..., Awaitable[ListSpec]]  # (self/root, info, **arguments) → ListSpec
    parent: Any = None  # below a row: the listed rows' column referring to it
    # the rows are visible because their (visible) parent is: the spec's conditions alone
    # select them (documents, activities, comments)
    through_parent: bool = False

    async def spec(self, context: Context, values: dict[str, Any], parent: Any = None
                   ) -> ListSpec:
        """The stub's answer outside graphql-core (the planner's): it reads only
        `info.context`, and of its parent row only the class (`parent`: the model)."""
        return await self.stub(parent, _Info(context), **values)


@dataclass(frozen=True)
class _Info:
    context: Context


def _field(resolver: Callable[..., Any], decl: Any, **kwargs: Any) -> Any:
    return strawberry.field(resolver=resolver, metadata={READS: decl}, **kwargs)


def to_one(kind: str, fk: str, description: str | None = None) -> Any:
    """The visible `kind` record whose id the row's `fk` holds (a dotted path for objects:
    "lead.converted_account_id")."""
    decl = ToOne(kind, fk)
    get = operator.attrgetter(fk)

    async def resolve(root: strawberry.Parent[Any], info: Info):  # type: ignore[no-untyped-def]  # noqa: ANN202
        pk = get(root)
        return None if pk is None else await info.context.loaders.by_id[kind].load(pk)

    return _field(resolve, decl, description=description)


def children(relation: Children, description: str | None = None) -> Any:
    decl = ChildList(relation)

    async def resolve(root: strawberry.Parent[Any], info: Info):  # type: ignore[no-untyped-def]  # noqa: ANN202
        return await info.context.loaders.children(relation).load(root.id)

    return _field(resolve, decl, description=description)


def computed(
    function: Callable[..., Any], reads: Sequence[str] = (), using: Source | None = None,
    description: str | None = None, itself: bool = False,
) -> Any:
    """A field computed by `function` from the row (and the value of `using` for it)."""
    decl = Computed(function, tuple(reads), using, itself)
    if using is None:
        def resolve(root: strawberry.Parent[Any]):  # type: ignore[no-untyped-def]  # noqa: ANN202
            return function(root)

        return _field(resolve, decl, description=description)
    source = using

    async def resolve_using(root: strawberry.Parent[Any], info: Info):  # type: ignore[no-untyped-def]  # noqa: ANN202
        return function(root, await source.load(root, info))

    return _field(resolve_using, decl, description=description)


def computed_with(
    function: Callable[..., Any], reads: Sequence[str], using: Source,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Any]:
    """A computed field with arguments, from a stub whose signature gives them (its body is
    not run): `function(row, value of using, **arguments)`."""
    decl = Computed(function, tuple(reads), using, arguments=True)

    async def answer(root: Any, info: Info, values: dict[str, Any]) -> Any:
        return function(root, await using.load(root, info), **values)

    return lambda stub: _stub_field(decl, stub, answer, description=description)


def node_id(type_name: str) -> Any:
    """The `id` field of a type whose root objects are ORM rows."""

    def resolve(root: strawberry.Parent[Any]) -> strawberry.ID:
        return strawberry.ID(to_global_id(type_name, root.id))

    return _field(resolve, NodeId(type_name), description="Opaque global id.")


def connection(
    kind: str, returns: Any, parent: Any = None, description: str | None = None,
    through_parent: bool = False, of_parent: bool = False,
) -> Callable[[Callable[..., Awaitable[ListSpec]]], Any]:
    """A connection field of `kind` records (of type `returns`), from a stub whose signature
    gives the field's arguments (first, after, last, before and its own) and which turns
    them into a ListSpec. The stub reads only `info.context`, and of its parent row only its
    class (links.entity_of): the planner calls it too, with the parent's model. `parent`:
    below a row, the records' column referring to it (see Listing). `of_parent`: `returns` is
    a connection type that also takes the parent's id (its edges' EdgeLink fields read it)."""

    def decorate(stub: Any) -> Any:
        stub = unwrapped(stub)
        decl = Listing(kind, stub, parent, through_parent)

        async def answer(root: Any, info: Info, values: dict[str, Any]) -> Any:
            spec = await stub(root, info, **values)
            page = (await read_connection(info, decl, root, spec, page_args_of(values))).page
            return returns(page=page, parent_id=root.id) if of_parent else Connection(page=page)

        return _stub_field(decl, stub, answer, description=description, graphql_type=returns)

    return decorate


def records_field(
    keys: Callable[[Context, dict[str, Any]], list[tuple[str, int] | None]], many: bool,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Any]:
    """A root field of records by key, from a stub whose signature gives its arguments (its
    body is not run: `keys` reads them)."""
    decl = Records(keys, many)

    async def answer(root: Any, info: Info, values: dict[str, Any]) -> Any:
        ctx = info.context
        found = await records.get_by_keys(ctx.session, ctx.viewer, keys(ctx, values))
        return found if many else found[0]

    return lambda stub: _stub_field(decl, stub, answer, description=description)


def value_field(description: str | None = None) -> Any:
    """Decorates a root resolver that reads only `info.context` and its arguments (Value)."""
    return strawberry.field(metadata={READS: Value()}, description=description)


async def call_resolver(function: Callable[..., Any], context: Context,
                        values: dict[str, Any]) -> Any:
    """A Value field's resolver, outside graphql-core."""
    result = function(None, _Info(context), **values)
    return await result if inspect.isawaitable(result) else result


def the_viewer(description: str | None = None) -> Any:
    def resolve(info: Info):  # type: ignore[no-untyped-def]  # noqa: ANN202
        return info.context.viewer.user

    return _field(resolve, TheViewer(), description=description)


def references(
    keys: Callable[[Context, list[Any]], Awaitable[dict[int, list[tuple[str, int]]]]],
    reads: Sequence[str] = (), many: bool = True, description: str | None = None,
) -> Any:
    """A RecordRefs field."""
    decl = RecordRefs(keys, tuple(reads), many)

    async def resolve(root: strawberry.Parent[Any], info: Info):  # type: ignore[no-untyped-def]  # noqa: ANN202
        ctx = info.context
        wanted = (await keys(ctx, [root])).get(root.id, [])
        found = await asyncio.gather(*(ctx.loaders.by_id[kind].load(pk) for kind, pk in wanted))
        visible = [record for record in found if record is not None]
        return visible if many else (visible[0] if visible else None)

    return _field(resolve, decl, description=description)


def edge_link(
    relation: Children, match: str, function: Callable[[Any], Any], reads: Sequence[str],
    description: str | None = None,
) -> Any:
    """An EdgeLink field of an edge type whose objects hold `node` and `parent_id`."""
    decl = EdgeLink(relation, match, tuple(reads), function)
    get = operator.attrgetter(match)

    async def resolve(root: strawberry.Parent[Any], info: Info):  # type: ignore[no-untyped-def]  # noqa: ANN202
        found = await info.context.loaders.children(relation).load(root.node.id)
        return function(next((link for link in found if get(link) == root.parent_id), None))

    return _field(resolve, decl, description=description)


def paged(
    pages: Callable[[Context, type, list[int], dict[str, Any]], Awaitable[dict[int, Page[Any]]]],
    returns: Any, description: str | None = None,
) -> Callable[[Callable[..., Any]], Any]:
    """A Paged connection field, from a stub whose signature gives its arguments (its body is
    not run); the pages of a request's rows are read together."""
    decl = Paged(pages)

    async def answer(root: Any, info: Info, values: dict[str, Any]) -> Any:
        ctx, model = info.context, type(root)

        async def load(ids: list[int]) -> list[Page[Any]]:
            found = await pages(ctx, model, ids, values)
            return [found[i] for i in ids]

        key = (decl, model, repr(sorted(values.items())))
        return Connection(page=await ctx.loaders.batch(key, load).load(root.id))

    return lambda stub: _stub_field(
        decl, stub, answer, description=description, graphql_type=returns
    )


def unwrapped(stub: Any) -> Any:
    return stub.__func__ if isinstance(stub, staticmethod) else stub


def _stub_field(
    decl: Any, stub: Any, answer: Callable[[Any, Info, dict[str, Any]], Awaitable[Any]],
    **kwargs: Any,
) -> Any:
    """A field whose arguments a stub's signature declares (Strawberry reads it), answered by
    `answer(parent row or None, info, arguments by Python name)`."""
    stub = unwrapped(stub)
    signature = inspect.signature(stub)

    @functools.wraps(stub)
    async def resolve(*args: Any, **kwargs_: Any) -> Any:
        bound = signature.bind(*args, **kwargs_)
        bound.apply_defaults()
        values = dict(bound.arguments)
        info: Info = values.pop("info")
        root = values.pop("root", None)
        values.pop("self", None)
        return await answer(root, info, values)

    return _field(resolve, decl, **kwargs)


def page_args_of(values: dict[str, Any]) -> PageArgs:
    return PageArgs(first=values.get("first"), after=values.get("after"),
                    last=values.get("last"), before=values.get("before"))


async def read_connection(
    info: Info, decl: Listing, root: Any, spec: ListSpec, args: PageArgs
) -> Connection[Any]:
    """graphql-core's resolver of a connection field."""
    ctx = info.context
    if decl.parent is None:
        page = await records.list_query(
            ctx.viewer, decl.kind, args, spec.conditions, spec.order,
            ctx.default_page_size, ctx.max_page_size, spec.extra_sort,
        ).read(ctx.session)
    else:
        page = await ctx.loaders.relation_page(
            decl.kind, decl.parent, root.id, spec.conditions, spec.order, args, spec.spec,
            spec.extra_sort, decl.through_parent,
        )
    return Connection(page=page)
