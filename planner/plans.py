"""The pieces of a plan: rows and their layout (ObjectPlan), the statements that read them
(Load, Join, Statements), the source of the compiled builders (Code), one request's run (Run),
and what the planner reads off the schema (declarations, models)."""


from __future__ import annotations

import functools
import itertools
import logging
import operator
from collections import defaultdict, namedtuple
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import strawberry
from graphql import (
    FieldNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
    ListValueNode,
    ObjectValueNode,
    ValueNode,
    VariableNode,
)
from graphql.execution.values import VariableValues, get_argument_values
from sqlalchemy import inspect
from strawberry.types.arguments import convert_arguments

from resolvers import raw
from resolvers.loaders import Children
from resolvers.permissions import Viewer
from resolvers.raw import IDS, Compiled
from schema.context import Context
from schema.reads import (
    declaration,
)

Row = Any
BACKREF = "strawberry-definition"
log = logging.getLogger("dealgraph.planner")


class Unsupported(Exception):
    """The operation uses something the planner does not cover: run it normally."""


class Fallback(Exception):
    """This request needs graphql-core's own handling (an error, a null where none may be)."""


def attributes(model: Any) -> dict[str, Any]:
    """A model's columns by attribute name."""
    found = _ATTRIBUTES.get(model)
    if found is None:
        found = _ATTRIBUTES[model] = {a.key: a.columns[0] for a in inspect(model).column_attrs}
    return found


_ATTRIBUTES: dict[Any, dict[str, Any]] = {}


def python_type(column: Any) -> type | None:
    try:
        return column.type.python_type  # type: ignore[no-any-return]
    except NotImplementedError:
        return None


# --- plans -------------------------------------------------------------------------------

_ids = itertools.count()


@dataclass
class Load:
    """One set-based statement for all the rows of a level: its results go to run.data[key],
    then the rows it found are loaded in turn with `target`."""

    key: int
    target: ObjectPlan
    fetch: Callable[[list[Row], Run], Awaitable[tuple[Any, list[Row]]]]


class Code:
    """The source of one type's compiled builder: statements, then the dict of the fields."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {"Fallback": Fallback}
        self.lines: list[str] = ["data = run.data"]
        self.once: dict[str, str] = {}
        self.count = 0

    def const(self, value: Any) -> str:
        name = f"c{self.count}"
        self.count += 1
        self.names[name] = value
        return name

    def var(self, expr: str, required: bool = False) -> str:
        name = f"v{self.count}"
        self.count += 1
        self.lines.append(f"{name} = {expr}")
        if required:
            self.lines.append(f"if {name} is None: raise Fallback")
        return name

    def shared(self, key: str, expr: str, required: bool = False) -> str:
        """A value computed once per object however many fields use it (its stage, say)."""
        if key not in self.once:
            self.once[key] = self.var(expr, required)
        return self.once[key]

    def memo(self, key: str, expr: str, optional: bool = False) -> str:
        """`expr`, computed once per request for each value of `key` (the id of a row read in
        its parent's statement, which gives the same object wherever it appears); `optional`:
        None where `key` is None."""
        memo = next(_ids)  # run.data[memo]: a dict made on first use
        value = self.var(f"data[{memo}].get({key})")
        unknown = f"{value} is None and {key} is not None" if optional else f"{value} is None"
        self.lines.append(f"if {unknown}: {value} = data[{memo}][{key}] = {expr}")
        return value

    def leaf(self, gql_type: Any, expr: str, column: Any = None) -> str:
        """A leaf value as graphql-core completes it: serialized, None only where allowed.
        From a NOT NULL string or boolean `column` it is the value itself, as is."""
        named, optional = nullable(gql_type)
        if isinstance(named, GraphQLList):
            raise Unsupported("list of leaves")
        if column is not None and not column.nullable and (
            (named in (GraphQLString, GraphQLID) and python_type(column) is str)
            or (named is GraphQLBoolean and python_type(column) is bool)
        ):
            return expr
        # (a NOT NULL column's value is never None: the builder of a joined row runs only when
        # the join found one)
        value = self.var(expr, required=not optional and (column is None or column.nullable))
        if isinstance(named, GraphQLEnumType):  # few values: each serialized once
            serialize = self.const(functools.lru_cache(maxsize=None)(named.serialize))
        else:
            serialize = self.const(named.serialize)
        if named is GraphQLString or named is GraphQLID:
            out = f"({value} if {value}.__class__ is str else {serialize}({value}))"
        elif named is GraphQLBoolean:
            out = f"({value} if {value}.__class__ is bool else {serialize}({value}))"
        else:
            out = f"{serialize}({value})"
        return f"(None if {value} is None else {out})" if optional else out

    def leaf_list(self, gql_type: Any, expr: str, serialize: Callable[[Any], Any]) -> str:
        """A list of leaves (None only where allowed)."""
        named, optional = nullable(gql_type)
        value = self.var(expr, required=not optional)
        out = f"{self.const(serialize)}({value})"
        return f"(None if {value} is None else {out})" if optional else out

    def compile(self, fields: list[tuple[str, str]]) -> Callable[[Row, Run], dict[str, Any]]:
        body = "\n    ".join(self.lines)
        items = ", ".join(f"{key!r}: {expr}" for key, expr in fields)
        source = f"def build(row, run):\n    {body}\n    return {{{items}}}\n"
        exec(compile(source, "<planned builder>", "exec"), self.names)  # noqa: S102
        build = self.names["build"]
        build.source = source  # for reading a plan (and the profiles that show its lines)
        return build  # type: ignore[no-any-return]


Emit = Callable[[Code], str]  # writes a field's statements, returns its value's expression


@dataclass
class ObjectPlan:
    """The rows of one type at one place in the query, and the builder of their JSON.

    Its rows hold the columns it `need`s, in that order, starting at `offset` (after its
    parent's when it is joined into the parent's statement), then those of its joins."""

    type_name: str
    model: Any
    needs: list[str] = field(default_factory=list)
    fields: list[tuple[str, Emit]] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    joins: list[Join] = field(default_factory=list)
    # its rows are Python objects read by attribute (a resolver's value, ORM objects), not
    # the rows of a statement it lays out
    objects: bool = False
    flat: bool = True  # only columns: may be joined into its parent's statement
    can_join: bool = True  # may read to-one relations in its own statement
    # children's columns that computed fields reduce (see Planner.object_plan); the loads
    # of the children, of the reference rows (by source) and of batched sources
    reduces: dict[Children, set[str]] = field(default_factory=dict)
    child_loads: dict[Children, Load] = field(default_factory=dict)
    lookups: dict[Any, Load | Join] = field(default_factory=dict)
    batches: dict[Any, Load] = field(default_factory=dict)
    offset: int = 0
    # Once finished: the statement's columns, the rows' class (tuples with attributes: the
    # computed fields' functions read them so, and an ORM Row's attribute costs ten times a
    # namedtuple's) and the builder.
    columns: tuple[Any, ...] = ()
    row: Any = None
    make: Callable[[Any], Row] = tuple  # a driver's row (resolvers/raw.py converts) → `row`
    build: Callable[[Row, Run], dict[str, Any]] = lambda row, run: {}

    def need(self, *names: str) -> None:
        for name in names:
            if name not in self.needs:
                self.needs.append(name)

    def read(self, name: str) -> str:
        """The builder's expression for the row's `name`."""
        return f"row.{name}" if self.objects else f"row[{self.column(name)}]"

    def getter(self, name: str) -> Callable[[Row], Any]:
        if self.objects:
            return operator.attrgetter(name)
        return operator.itemgetter(self.column(name))

    def column(self, name: str) -> int:
        return self.offset + self.needs.index(name)

    @property
    def width(self) -> int:
        return len(self.needs) + sum(join.target.width for join in self.joins)

    def _columns(self) -> tuple[Any, ...]:
        """By attribute name (the computed fields' functions read them so), a joined
        target's prefixed."""
        own = attributes(self.model)
        prefix = f"j{self.offset}_" if self.offset else ""
        return tuple(own[name].label(prefix + name) for name in self.needs) + tuple(
            column for join in self.joins for column in join.target.columns
        )

    def joined(self, viewer: Viewer) -> list[tuple[Any, Any]]:
        return [join.clause(viewer) for join in self.joins]

    def finish(self, offset: int = 0) -> ObjectPlan:
        """Lay out the row and compile the builder."""
        self.offset = offset
        if self.objects:
            code = Code()
            self.build = code.compile([(key, emit(code)) for key, emit in self.fields])
            return self
        at = offset + len(self.needs)
        for join in self.joins:
            join.target.finish(at)
            at += join.target.width
        self.columns = self._columns()
        self.row = namedtuple(  # type: ignore[misc]
            f"{self.type_name or 'Plain'}Row", [c.name for c in self.columns], rename=True
        )
        self.make = self.row._make
        code = Code()
        self.build = code.compile([(key, emit(code)) for key, emit in self.fields])
        return self


@dataclass(frozen=True)
class Join:
    """A to-one relation read in its parent's statement: LEFT JOIN `model` ON `on(viewer)`
    (the join condition, then the visibility rules); `target` lays out its columns."""

    model: Any
    on: Callable[[Viewer], Any]
    target: ObjectPlan

    def clause(self, viewer: Viewer) -> tuple[Any, Any]:
        return self.model, self.on(viewer)


class Statements:
    """A relation's statement, built and compiled once per kind of viewer (the visibility rules
    depend on who asks) and dialect, with the ids as a parameter."""

    def __init__(self, build: Callable[[Viewer, Any], Any], size: int = 256) -> None:
        self.build = build
        self.size = size
        self.built: dict[Any, Compiled] = {}

    def __call__(self, run: Run) -> Compiled:
        viewer, dialect = run.context.viewer, run.dialect
        key = (viewer_key(viewer), dialect)
        compiled = self.built.get(key)
        if compiled is None:
            if len(self.built) >= self.size:
                self.built.clear()
            compiled = self.built[key] = Compiled.of(
                self.build(viewer, IDS[dialect]), run.sql_dialect
            )
        return compiled


def viewer_key(viewer: Viewer) -> tuple[Any, ...]:
    """What the statements built for a viewer depend on."""
    return viewer.user.id, viewer.user.role, viewer.team_ids, viewer.sharing


def _variables_in(value: ValueNode) -> set[str]:
    if isinstance(value, VariableNode):
        return {value.name.value}
    if isinstance(value, ListValueNode):
        return set().union(*map(_variables_in, value.values))
    if isinstance(value, ObjectValueNode):
        return set().union(*(_variables_in(f.value) for f in value.fields))
    return set()


class ArgumentsKey:
    """A key for a field's argument values, without coercing them on every request: in a plan
    they are a function of the field's literals (fixed) and of the variables they name."""

    def __init__(self, node: FieldNode) -> None:
        self.names = tuple(sorted(set().union(
            *(_variables_in(argument.value) for argument in node.arguments or ()))))

    def __call__(self, variables: VariableValues) -> tuple[str, ...]:
        coerced = variables.coerced
        return tuple(repr(coerced[n]) if n in coerced else "-" for n in self.names)


@dataclass
class Run:
    """One request's execution of a plan, on the driver's connection under its session's (see
    resolvers/raw.py: the statements are compiled once)."""

    context: Context
    sql_dialect: Any  # SQLAlchemy's, of the session (raw.Connection.dialect_of)
    schema: strawberry.Schema
    variables: VariableValues
    data: defaultdict[int, Any] = field(default_factory=lambda: defaultdict(dict))
    _connection: raw.Connection | None = None

    async def connection(self) -> raw.Connection:
        """The session's connection, from the first statement on: a plan that reads nothing
        (the viewer's own fields) takes none from the pool."""
        if self._connection is None:
            self._connection = await raw.Connection.of(self.context.session)
            assert self._connection is not None  # the dialect has a driver path: dialect_of
        return self._connection

    def arguments(self, field_def: GraphQLField, node: FieldNode) -> dict[str, Any]:
        """A field's arguments as its resolver gets them (by Python name, inputs converted)."""
        definition = field_def.extensions[BACKREF]
        return convert_arguments(
            get_argument_values(field_def, node, self.variables), definition.arguments,
            scalar_registry=self.schema.schema_converter.scalar_registry,
            config=self.schema.config,
        )

    @property
    def dialect(self) -> str:
        return self.sql_dialect.name  # type: ignore[no-any-return]

    async def rows(
        self, compiled: Compiled, plan: ObjectPlan, ids: list[int] | None = None
    ) -> list[Row]:
        """Rows of `plan`'s columns; `ids` for the statement's IDS parameter."""
        make = plan.make
        return [make(row) for row in await compiled.fetch(await self.connection(), ids=ids)]

    async def load(self, plan: ObjectPlan, rows: list[Row]) -> None:
        for load in plan.loads:
            self.data[load.key], found = await load.fetch(rows, self)
            if found:
                await self.load(load.target, found)


def nullable(gql_type: Any) -> tuple[Any, bool]:
    if isinstance(gql_type, GraphQLNonNull):
        return gql_type.of_type, False
    return gql_type, True


def fallback() -> Any:
    raise Fallback


def leaf(gql_type: Any) -> Callable[[Any], Any]:
    """Serializes one leaf as graphql-core does (None only where allowed)."""
    named, optional = nullable(gql_type)
    serialize = named.serialize

    def serialized(value: Any) -> Any:
        if value is None:
            if not optional:
                raise Fallback
            return None
        return serialize(value)

    return serialized


def leaves(gql_type: Any, optional: bool) -> Callable[[Any], list[Any]]:
    """Serializes a list of leaves as graphql-core does (None only where allowed)."""
    serialize = gql_type.serialize

    def serialized(values: Any) -> list[Any]:
        out: list[Any] = []
        for v in values:
            if v is None:
                if not optional:
                    raise Fallback
                out.append(None)
            else:
                out.append(serialize(v))
        return out

    return serialized


def declaration_of(gql_type: GraphQLObjectType, name: str) -> Any:
    field_def = gql_type.fields.get(name)
    definition = field_def.extensions.get(BACKREF) if field_def is not None else None
    return None if definition is None else declaration(definition)


def model_of(gql_type: GraphQLObjectType) -> Any:
    """The model whose rows a GraphQL type is built from (its `is_type_of = rows_of(...)`)."""
    definition = gql_type.extensions.get(BACKREF)
    origin = getattr(definition, "origin", None)
    return getattr(getattr(origin, "is_type_of", None), "model", None)


@functools.cache
def reference_row(model: Any) -> Any:
    """The class of a reference row read whole (a stage)."""
    return namedtuple(f"{model.__name__}Row", list(attributes(model)))
