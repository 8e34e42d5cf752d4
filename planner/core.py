"""Planned execution: a read-only query is turned once into a plan (which set-based SQL
statements to run, and per-type writers for exactly the selected fields), cached, and then
answered by running the plan instead of resolving field by field in graphql-core.

The plan reads with the same rules as the resolvers (visibility, filters, ordering, keyset
paging from `resolvers/`; the relations' statements from `resolvers/loaders.py`; computed
fields through the same functions), over plain rows instead of ORM objects. An operation it
does not cover raises `Unsupported` while planning and runs normally; a request it cannot
finish exactly as graphql-core would (an error to report, a null in a non-null field) raises
`Fallback` and runs normally too. The test suite runs with DEALGRAPH_PLANNER=verify (every
query it sends that the planner covers is answered both ways and must give the same JSON),
and tests/test_planner.py compares generated queries with the planner on and off.
"""

from __future__ import annotations

import functools
import itertools
import logging
import operator
from collections import Counter, OrderedDict, defaultdict, namedtuple
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import strawberry
from graphql import (
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    get_operation_ast,
    is_leaf_type,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.language import Visitor
from sqlalchemy import JSON, and_, inspect, select
from strawberry.types.arguments import convert_arguments

from resolvers import raw, records
from resolvers.dberrors import classify
from resolvers.errors import RequestError
from resolvers.ids import to_global_id
from resolvers.kinds import KINDS, Kind
from resolvers.loaders import Children
from resolvers.pagination import ManyPageQuery, Page, PageQuery, many_counts, many_page_query
from resolvers.permissions import Viewer
from resolvers.raw import IDS, Compiled
from schema.context import Context
from schema.reads import (
    Batched,
    ByKey,
    ChildList,
    Computed,
    Listing,
    NodeId,
    Paged,
    PerType,
    RecordRefs,
    Records,
    Reduced,
    TheViewer,
    ToOne,
    Value,
    call_resolver,
    declaration,
)
from schema.relay import page_args

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


def maker(row: Any, json_at: list[int]) -> Callable[[Any], Row]:
    """Rows of class `row` from a driver's rows, the JSON columns at `json_at` decoded (the
    drivers give their text)."""
    make = row._make
    if not json_at:
        return make  # type: ignore[no-any-return]

    def decoded(values: Any) -> Row:
        values = list(values)
        for i in json_at:
            if isinstance(values[i], str | bytes):
                values[i] = orjson.loads(values[i])
        return make(values)

    return decoded


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
    make: Callable[[Any], Row] = tuple  # a driver's row → `row` (JSON decoded)
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
        self.make = maker(self.row, [
            i for i, c in enumerate(self.columns) if isinstance(c.type, JSON)
        ])
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
                self.build(viewer, IDS[dialect]), run.connection.dialect
            )
        return compiled


def viewer_key(viewer: Viewer) -> tuple[Any, ...]:
    """What the statements built for a viewer depend on."""
    return viewer.user.id, viewer.user.role, viewer.team_ids, viewer.sharing


@dataclass
class Run:
    """One request's execution of a plan, on the driver's connection under its session's (see
    resolvers/raw.py: the statements are compiled once)."""

    context: Context
    connection: raw.Connection
    schema: strawberry.Schema
    variables: VariableValues
    data: defaultdict[int, Any] = field(default_factory=lambda: defaultdict(dict))

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
        return self.connection.dialect.name  # type: ignore[no-any-return]

    async def rows(
        self, compiled: Compiled, plan: ObjectPlan, ids: list[int] | None = None
    ) -> list[Row]:
        """Rows of `plan`'s columns; `ids` for the statement's IDS parameter."""
        make = plan.make
        return [make(row) for row in await compiled.fetch(self.connection, ids=ids)]

    async def load(self, plan: ObjectPlan, rows: list[Row]) -> None:
        for load in plan.loads:
            self.data[load.key], found = await load.fetch(rows, self)
            if found:
                await self.load(load.target, found)


def nullable(gql_type: Any) -> tuple[Any, bool]:
    if isinstance(gql_type, GraphQLNonNull):
        return gql_type.of_type, False
    return gql_type, True


@dataclass
class Planner:
    """Turns the selections of one operation into plans (see Plans), from the fields' read
    declarations (schema/reads.py)."""

    schema: GraphQLSchema
    fragments: dict[str, FragmentDetails]
    variables: VariableValues
    operation: OperationDefinitionNode

    def subfields(self, gql_type: GraphQLObjectType, details: list[FieldDetails]) -> Any:
        return collect_subfields(
            self.schema, self.fragments, self.variables, self.operation, gql_type, details
        ).grouped_field_set.items()

    def object_type(self, gql_type: Any) -> GraphQLObjectType:
        if not isinstance(gql_type, GraphQLObjectType):
            raise Unsupported(f"abstract type {gql_type}")
        return gql_type

    def object_plan(
        self, gql_type: Any, details: list[FieldDetails], needs: tuple[str, ...] = (),
        joins: bool = True, finish: bool = True, objects: bool = False,
    ) -> ObjectPlan:
        """The plan of an object type's selection. `joins`: whether its to-one relations may
        be read in its own statement; `finish`: lay out and compile now (not when it is to be
        joined into its parent's statement, at an offset known later); `objects`: its rows
        are Python objects (see ObjectPlan), whose undeclared fields are read as graphql-core
        reads them (the attribute, or the resolver of the object alone)."""
        gql_type = self.object_type(gql_type)
        model = model_of(gql_type)
        if model is None and not objects:
            raise Unsupported(f"type {gql_type.name}")
        plan = ObjectPlan(gql_type.name, model, can_join=joins and not objects, objects=objects)
        plan.need(*needs)
        selected = list(self.subfields(gql_type, details))
        # what the selected fields reduce from children (a quote's totals from its lines):
        # read by the children's list when it is selected too
        for _, field_details in selected:
            decl = declaration_of(gql_type, field_details[0].node.name.value)
            if isinstance(decl, Computed) and isinstance(decl.using, Reduced):
                plan.reduces.setdefault(decl.using.relation, set()).update(decl.using.reads)
        for key, field_details in selected:
            name = field_details[0].node.name.value
            if name == "__typename":
                plan.fields.append((key, typename(gql_type.name)))
                continue
            field_def = gql_type.fields[name]
            decl = declaration_of(gql_type, name)
            takes_arguments = isinstance(decl, Listing | Paged) or (
                isinstance(decl, Computed) and decl.arguments)
            if not takes_arguments and (
                field_def.args or any(d.node.arguments for d in field_details)
            ):
                raise Unsupported(f"arguments on {gql_type.name}.{name}")
            if decl is None and objects:
                emit = self.attribute(plan, field_def, field_details)
            elif decl is None:
                plan.fields.append((key, self.column(plan, field_def, name)))
                continue
            elif isinstance(decl, ToOne):
                emit = self.to_one(plan, field_def, field_details, decl)
            elif isinstance(decl, ChildList):
                emit = self.to_many(plan, field_def, field_details, decl)
            elif isinstance(decl, Listing) and decl.parent is not None:
                emit = self.nested(plan, field_def, field_details, decl)
            elif isinstance(decl, Paged):
                emit = self.paged(plan, field_def, field_details, decl)
            elif isinstance(decl, RecordRefs):
                emit = self.references(plan, field_def, field_details, decl)
            elif isinstance(decl, NodeId):
                plan.fields.append((key, self.node_id(plan, field_def, decl)))
                continue
            elif isinstance(decl, Computed) and decl.itself and isinstance(decl.using, ByKey):
                emit = self.reference_object(plan, field_def, field_details, decl.using)
            elif isinstance(decl, Computed) and not decl.itself:
                emit = self.computed(plan, field_def, field_details, decl)
            else:
                raise Unsupported(f"field {gql_type.name}.{name}")
            plan.fields.append((key, emit))
            plan.flat = False  # a relation or a computed field: needs rows of its own
        for relation, reads in plan.reduces.items():
            if relation not in plan.child_loads:  # no list of them selected: read their own
                target = ObjectPlan("", relation.model, [relation.parent.key, *sorted(reads)])
                self.children(plan, relation, target.finish())
        return plan.finish() if finish else plan

    def attribute(
        self, plan: ObjectPlan, field_def: GraphQLField, details: list[FieldDetails]
    ) -> Emit:
        """An undeclared field of an object: its attribute, or its resolver of the object
        alone (graphql-core's own way)."""
        definition = field_def.extensions.get(BACKREF)
        if definition is None:
            raise Unsupported(f"field {plan.type_name}.{field_def}")
        resolver = definition.base_resolver
        if resolver is None:
            name = definition.python_name
            return self.value(plan, field_def.type, details, lambda code: f"row.{name}",
                              operator.attrgetter(name))
        if (
            resolver.info_parameter is not None or resolver.arguments
            or (resolver.self_parameter is None and resolver.parent_parameter is None)
        ):
            raise Unsupported(f"resolver of {plan.type_name}.{definition.python_name}")
        function = resolver.wrapped_func
        if isinstance(function, staticmethod):
            function = function.__func__
        if resolver.is_async:  # awaited for every object before the JSON is built
            async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
                return {id(row): await function(row) for row in rows}, []

            load = Load(next(_ids), ObjectPlan("", None), fetch)
            plan.loads.append(load)
            return self.value(plan, field_def.type, details,
                              lambda code: f"data[{load.key}][id(row)]", None)
        return self.value(plan, field_def.type, details,
                          lambda code: f"{code.const(function)}(row)", function)

    def value(
        self, plan: ObjectPlan, gql_type: Any, details: list[FieldDetails],
        expr: Callable[[Code], str], get: Callable[[Row], Any] | None,
    ) -> Emit:
        """A value of any type computed from the row (`expr` in the builder, `get` to find
        the objects whose relations are to be loaded): leaves as graphql-core serializes
        them, objects and lists of them with plans of their own (objects mode)."""
        named, optional = nullable(gql_type)
        if is_leaf_type(named):
            return lambda code: code.leaf(gql_type, expr(code))
        many = isinstance(named, GraphQLList)
        item_type, item_optional = nullable(named.of_type) if many else (named, optional)
        if isinstance(item_type, GraphQLList):
            raise Unsupported("a list of lists")
        if is_leaf_type(item_type):
            serialize = leaves(item_type, item_optional)
            return lambda code: code.leaf_list(gql_type, expr(code), serialize)
        build, loads = self.objects_of(item_type, details)
        if loads is not None and get is None:
            raise Unsupported("relations below a computed value")
        if loads is not None and get is not None:
            def fetch(rows: list[Row], run: Run) -> Awaitable[tuple[Any, list[Row]]]:
                values = [get(row) for row in rows]
                found = [v for value in values if value is not None
                         for v in (value if many else [value]) if v is not None]
                return loads(found, run)

            plan.loads.append(Load(next(_ids), ObjectPlan("", None), fetch))

        def emit(code: Code) -> str:
            value = code.var(expr(code), required=not optional)
            item = f"{code.const(build)}(v, run)"
            if not item_optional:
                item = f"({item} if v is not None else {code.const(fallback)}())"
            one = f"{code.const(build)}({value}, run)"
            built = f"[{item} for v in {value}]" if many else one
            return f"(None if {value} is None else {built})" if optional else built

        return emit

    def objects_of(
        self, gql_type: Any, details: list[FieldDetails]
    ) -> tuple[Callable[[Any, Run], Any], Callable[[list[Any], Run], Awaitable[Any]] | None]:
        """The builder of objects of a type (an interface or union: by their class), and what
        loads their relations (None: nothing to load)."""
        if isinstance(gql_type, GraphQLObjectType):
            plan = self.object_plan(gql_type, details, objects=True)

            async def load(found: list[Any], run: Run) -> tuple[Any, list[Row]]:
                await run.load(plan, found)
                return {}, []

            return plan.build, load if plan.loads else None
        plans: dict[type, ObjectPlan] = {}
        for object_type in self.schema.get_possible_types(gql_type):
            model = model_of(object_type)
            if model is None:
                raise Unsupported(f"{object_type.name} in {gql_type}: no class to tell it by")
            plans[model] = self.object_plan(object_type, details, objects=True)

        def build(value: Any, run: Run) -> Any:
            plan = plans.get(value.__class__)
            if plan is None:
                raise Fallback
            return plan.build(value, run)

        async def load_all(found: list[Any], run: Run) -> tuple[Any, list[Row]]:
            by_class: dict[type, list[Any]] = {}
            for value in found:
                by_class.setdefault(value.__class__, []).append(value)
            for cls, values in by_class.items():
                if cls in plans:
                    await run.load(plans[cls], values)
            return {}, []

        return build, load_all if any(p.loads for p in plans.values()) else None

    def column(self, plan: ObjectPlan, field_def: GraphQLField, name: str) -> Emit:
        """A field without a declaration: the model's column of its Python name."""
        definition = field_def.extensions.get(BACKREF)
        if (
            definition is None or definition.base_resolver is not None
            or not is_leaf_type(nullable(field_def.type)[0])
            or definition.python_name not in attributes(plan.model)
        ):
            raise Unsupported(f"field {plan.type_name}.{name}")
        column = definition.python_name
        plan.need(column)
        return lambda code: code.leaf(
            field_def.type, plan.read(column), attributes(plan.model)[column]
        )

    def node_id(self, plan: ObjectPlan, field_def: GraphQLField, decl: NodeId) -> Emit:
        plan.need("id")
        return lambda code: code.leaf(
            field_def.type,
            f"{code.const(to_global_id)}({decl.type_name!r}, {plan.read('id')})",
        )

    def to_one(
        self, plan: ObjectPlan, field_def: GraphQLField, details: list[FieldDetails],
        decl: ToOne,
    ) -> Emit:
        gql_type, optional = nullable(field_def.type)
        kind, fk = KINDS[decl.kind], decl.fk
        plan.need(fk)
        target = self.object_plan(gql_type, details, ("id",), finish=False)
        if plan.can_join and target.flat and target.model is not plan.model and all(
            join.model is not target.model for join in plan.joins
        ):  # read in the parent's statement
            foreign_key = attributes(plan.model)[fk]
            plan.joins.append(Join(target.model, lambda viewer: and_(
                kind.model.id == foreign_key, *kind.visible(viewer)), target))

            def joined(code: Code) -> str:
                found = f"row[{target.column('id')}]"
                if not optional:
                    code.lines.append(f"if {found} is None: raise Fallback")
                return code.memo(found, f"{code.const(target.build)}(row, run)", optional)

            return joined
        target.finish()
        statement = Statements(lambda viewer, ids: records.visible_by_id(
            kind, viewer, ids, target.columns, target.joined(viewer)
        ))

        async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
            get = plan.getter(fk)
            ids = sorted({pk for row in rows if (pk := get(row)) is not None})
            if not ids:
                return {}, []
            found = await run.rows(statement(run), target, ids)
            return {row.id: row for row in found}, found

        load = Load(next(_ids), target, fetch)
        plan.loads.append(load)

        def emit(code: Code) -> str:
            related = code.var(
                f"data[{load.key}].get({plan.read(fk)})", required=not optional
            )
            built = f"{code.const(target.build)}({related}, run)"
            return f"(None if {related} is None else {built})" if optional else built

        return emit

    def children(self, plan: ObjectPlan, children: Children, target: ObjectPlan) -> Load:
        """The rows of a one-to-many relation for all the rows of `plan`, by parent id."""
        plan.need("id")
        parent_key = children.parent.key
        statement = Statements(lambda viewer, ids: children.statement(
            viewer, ids, target.columns, target.joined(viewer)
        ))

        async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
            get = plan.getter("id")
            ids = sorted({get(row) for row in rows})
            found = await run.rows(statement(run), target, ids)
            grouped: dict[Any, list[Row]] = {}
            index = target.column(parent_key)
            for child in found:
                grouped.setdefault(child[index], []).append(child)
            return grouped, found

        load = Load(next(_ids), target, fetch)
        plan.loads.append(load)
        plan.child_loads.setdefault(children, load)
        return load

    def to_many(
        self, plan: ObjectPlan, field_def: GraphQLField, details: list[FieldDetails],
        decl: ChildList,
    ) -> Emit:
        list_type, _ = nullable(field_def.type)
        if not isinstance(list_type, GraphQLList):
            raise Unsupported(f"{plan.type_name}: a list of children that is not a list")
        relation = decl.relation
        item_type, _ = nullable(list_type.of_type)
        needs = (relation.parent.key, *sorted(plan.reduces.get(relation, ())))
        target = self.object_plan(item_type, details, needs)
        load = self.children(plan, relation, target)

        def emit(code: Code) -> str:
            build = code.const(target.build)
            return f"[{build}(c, run) for c in data[{load.key}].get({plan.read('id')}, ())]"

        return emit

    def reference_object(
        self, plan: ObjectPlan, field_def: GraphQLField, details: list[FieldDetails],
        source: ByKey,
    ) -> Emit:
        """The reference row the row's column names (its stage), as an object."""
        lookup = plan.lookups.get(source) or self.lookup(plan, source)
        gql_type, optional = nullable(field_def.type)
        layout = reference_row(source.model)
        target = self.object_plan(gql_type, details, tuple(layout._fields))

        def itself(code: Code) -> str:
            ref = self.reference(plan, source, lookup, code, optional)
            key = f"(None if {ref} is None else {ref}.{source.key})" if optional else (
                f"{ref}.{source.key}")
            return code.memo(key, f"{code.const(target.build)}({ref}, run)", optional)

        return itself

    def computed(
        self, plan: ObjectPlan, field_def: GraphQLField, details: list[FieldDetails],
        decl: Computed,
    ) -> Emit:
        """`function(row[, the source's value][, **arguments])` (computed once per reference
        row when that is all it reads)."""
        plan.need(*decl.reads)
        function = decl.function
        source = None if decl.using is None else self.source(plan, decl.using)
        arguments = self.arguments(plan, field_def, details) if decl.arguments else None
        by_reference = isinstance(decl.using, ByKey) and not decl.reads and not decl.arguments
        key = decl.using.key if isinstance(decl.using, ByKey) else ""

        def expr(code: Code) -> str:
            parts = ["row"]
            if source is not None:
                parts.append(source(code))
            if arguments is not None:
                parts.append(f"**{arguments(code)}")
            value = f"{code.const(function)}({', '.join(parts)})"
            return code.memo(f"{parts[1]}.{key}", value) if by_reference else value

        plain = source is None and arguments is None
        return self.value(plan, field_def.type, details, expr, function if plain else None)

    def source(self, plan: ObjectPlan, source: Any) -> Callable[[Code], str]:
        """The builder's expression for the value of a computed field's source for the row."""
        if isinstance(source, ByKey):
            lookup = plan.lookups.get(source) or self.lookup(plan, source)
            return lambda code: self.reference(plan, source, lookup, code, False)
        if isinstance(source, Reduced):
            return self.reduced(plan, source)
        if isinstance(source, Batched):
            return self.batched(plan, source)
        if isinstance(source, PerType):
            return self.per_type(plan, source)
        raise Unsupported(f"source {source}")

    def lookup(self, plan: ObjectPlan, source: ByKey) -> Load | Join:
        """The reference rows: joined to the rows (no visibility rules), or every one of them
        by key (as graphql-core's loader reads them)."""
        plan.need(source.column)
        layout = reference_row(source.model)
        lookup: Load | Join
        if plan.can_join and all(join.model is not source.model for join in plan.joins):
            column = attributes(plan.model)[source.column]
            key = attributes(source.model)[source.key]
            lookup = Join(source.model, lambda viewer: key == column,
                          ObjectPlan("", source.model, list(layout._fields)))
            plan.joins.append(lookup)
        else:
            target = ObjectPlan("", source.model, list(layout._fields)).finish()
            statement = Statements(lambda viewer, ids: select(*target.columns))

            async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
                found = await run.rows(statement(run), target)
                return {getattr(ref, source.key): ref for ref in found}, []

            lookup = Load(next(_ids), target, fetch)
            plan.loads.append(lookup)
        plan.lookups[source] = lookup
        return lookup

    def reference(
        self, plan: ObjectPlan, source: ByKey, lookup: Load | Join, code: Code, optional: bool
    ) -> str:
        """The reference row of the row being built (once per builder)."""
        once = f"ref{id(source)}"
        if once in code.once:
            return code.once[once]
        layout = reference_row(source.model)
        if isinstance(lookup, Join):  # a row of the joined columns, one per reference row
            start = lookup.target.offset
            key = code.var(f"row[{start + layout._fields.index(source.key)}]",
                           required=not optional)
            row = f"row[{start}:{start + lookup.target.width}]"
            code.once[once] = code.memo(key, f"{code.const(layout._make)}({row})", optional)
        else:
            expr = f"data[{lookup.key}].get({plan.read(source.column)})"
            code.once[once] = code.var(expr, required=not optional)
        return code.once[once]

    def reduced(self, plan: ObjectPlan, source: Reduced) -> Callable[[Code], str]:
        """A value reduced from the row's children (read by their list when it is selected,
        or by a statement of their own: see object_plan)."""
        plan.need("id")
        relation = source.relation

        def value(code: Code) -> str:
            load = plan.child_loads[relation]
            children = f"data[{load.key}].get({plan.read('id')}, ())"
            return code.shared(f"reduce{id(source)}", f"{code.const(source.reduce)}({children})")

        return value

    def batched(self, plan: ObjectPlan, source: Batched) -> Callable[[Code], str]:
        """A value per row from the source's own statement for all the rows (through the
        session: it is the resolvers' own function)."""
        plan.need("id")
        load = plan.batches.get(source)
        if load is None:
            async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
                get = plan.getter("id")
                ids = sorted({get(row) for row in rows})
                ctx = run.context
                return await source.function(ctx.session, ctx.viewer, ids), []

            load = plan.batches[source] = Load(next(_ids), ObjectPlan("", None), fetch)
            plan.loads.append(load)
        found = load
        return lambda code: code.shared(
            f"batch{id(source)}",
            f"(data[{found.key}].get({plan.read('id')}) or {code.const(source.default())})",
        )

    def per_type(self, plan: ObjectPlan, source: PerType) -> Callable[[Code], str]:
        """One value for every row of the plan (they are of one type)."""
        load = plan.batches.get(source)
        if load is None:
            model = plan.model

            async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
                return await source.function(run.context, model), []

            load = plan.batches[source] = Load(next(_ids), ObjectPlan("", None), fetch)
            plan.loads.append(load)
        found = load
        return lambda code: f"data[{found.key}]"

    def arguments(self, plan: ObjectPlan, field_def: GraphQLField,
                  details: list[FieldDetails]) -> Callable[[Code], str]:
        """The field's arguments for this request (by Python name), once."""
        node = details[0].node

        async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
            return run.arguments(field_def, node), []

        load = Load(next(_ids), ObjectPlan("", None), fetch)
        plan.loads.append(load)
        return lambda code: f"data[{load.key}]"

    def references(
        self, plan: ObjectPlan, field_def: GraphQLField, details: list[FieldDetails],
        decl: RecordRefs,
    ) -> Emit:
        """Records of any kind the row refers to (see RecordRefs)."""
        plan.need("id", *decl.reads)
        gql_type, optional = nullable(field_def.type)
        if decl.many:
            gql_type, _ = nullable(gql_type.of_type)
        kinds = KindPlans.of(self, gql_type, details)

        async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
            keys = await decl.keys(run.context, rows)
            built = await kinds.read(run, [k for found in keys.values() for k in found])
            return {pid: [built[k] for k in found if k in built]
                    for pid, found in keys.items()}, []

        load = Load(next(_ids), ObjectPlan("", None), fetch)
        plan.loads.append(load)

        def emit(code: Code) -> str:
            found = code.var(f"data[{load.key}].get({plan.read('id')}, ())")
            if decl.many:
                return found
            one = code.var(f"({found}[0] if {found} else None)", required=not optional)
            return one

        return emit

    def paged(
        self, plan: ObjectPlan, field_def: GraphQLField, details: list[FieldDetails],
        decl: Paged,
    ) -> Emit:
        """A connection below each row whose pages one function gives for all the rows
        (the resolvers' own): its nodes are objects."""
        shape = connection_shape(self, field_def, details, objects=True)
        plan.need("id")
        node = details[0].node
        model = plan.model

        async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
            get = plan.getter("id")
            ids = sorted({get(row) for row in rows})
            pages = await decl.pages(run.context, model, ids, run.arguments(field_def, node))
            found = [n for page in pages.values() for n in page.nodes]
            for nodes in shape.node_plans:
                if nodes.load is not None and found:
                    await nodes.load(found, run)
            counts = {pid: await page.count() for pid, page in pages.items()} if shape.count \
                else {}
            return {pid: (page, counts.get(pid)) for pid, page in pages.items()}, []

        load = Load(next(_ids), ObjectPlan("", None), fetch)
        plan.loads.append(load)

        def emit(code: Code) -> str:
            found = code.var(f"data[{load.key}][{plan.read('id')}]")
            return f"{code.const(shape.write)}({found}[0], {{'count': {found}[1]}}, run)"

        return emit

    def nested(
        self, plan: ObjectPlan, field_def: GraphQLField, details: list[FieldDetails],
        decl: Listing,
    ) -> Emit:
        """A connection below each row: one windowed statement for every parent's page (and
        one grouped count when `totalCount` is asked for)."""
        shape = connection_shape(self, field_def, details)
        plan.need("id")
        kind = KINDS[decl.kind]
        node_plan = shape.node_plans[0] if shape.node_plans else ObjectPlan(
            "", kind.model, ["id"]).finish()
        node = details[0].node
        pages: OrderedDict[Any, tuple[ManyPageQuery, Compiled, Compiled | None]] = OrderedDict()

        async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
            get = plan.getter("id")
            ids = sorted({get(row) for row in rows})
            key = (viewer_key(run.context.viewer), run.dialect,
                   repr(get_argument_values(field_def, node, run.variables)))
            found = pages.get(key)
            if found is None:
                args = run.arguments(field_def, node)
                spec = await decl.spec(run.context, args, plan.model)
                viewer, ctx = run.context.viewer, run.context
                where = [*([] if decl.through_parent else kind.visible(viewer)),
                         *spec.conditions]
                sort, signature = records.sort_keys(decl.kind, spec.order, spec.extra_sort)
                parents = IDS[run.dialect]
                query = many_page_query(
                    kind.model, decl.parent, parents, where, sort, signature,
                    page_args(args.get("first"), args.get("after"), args.get("last"),
                              args.get("before")),
                    ctx.default_page_size, ctx.max_page_size, node_plan.columns,
                    node_plan.joined(viewer),
                )
                dialect = run.connection.dialect
                found = (query, Compiled.of(query.statement, dialect), Compiled.of(
                    many_counts(decl.parent, parents, where), dialect) if shape.count else None)
                if spec.reusable:
                    pages[key] = found
                    if len(pages) > 256:
                        pages.popitem(last=False)
            query, compiled, counting = found
            counts: dict[int, int] = {}
            if counting is not None:
                counts = {pid: int(n) for pid, n in await counting.fetch(run.connection, ids=ids)}

            async def count(pid: int) -> int:
                return counts.get(pid, 0)

            by_parent = query.pages(await compiled.fetch(run.connection, ids=ids), ids, count,
                                    plain=True)
            make = node_plan.make
            nodes = []
            for page in by_parent.values():
                page.nodes = [make(n) for n in page.nodes]
                nodes += page.nodes
            for other in shape.node_plans[1:]:  # the same rows (one layout), their own loads
                if nodes:
                    await run.load(other, nodes)
            return {pid: (page, counts.get(pid, 0)) for pid, page in by_parent.items()}, nodes

        load = Load(next(_ids), node_plan, fetch)
        plan.loads.append(load)

        def emit(code: Code) -> str:
            found = code.var(f"data[{load.key}][{plan.read('id')}]")
            return f"{code.const(shape.write)}({found}[0], {{'count': {found}[1]}}, run)"

        return emit


def fallback() -> Any:
    raise Fallback


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


# --- connections ---------------------------------------------------------------------------

Writer = Callable[[Page[Any], dict[str, Any], Run], Any]


@dataclass
class ConnectionShape:
    """A connection's selection: the writers of its JSON from a page, its nodes' plans (one
    layout), whether it counts."""

    writers: list[tuple[str, Writer]]
    node_plans: list[Any]  # ObjectPlans, or ObjectsOf in objects mode
    count: bool
    node_type: Any

    def write(self, page: Page[Any], extras: dict[str, Any], run: Run) -> dict[str, Any]:
        return {key: write(page, extras, run) for key, write in self.writers}


@dataclass
class ObjectsOf:
    """The nodes of a connection in objects mode (any type, an interface or union too)."""

    build: Callable[[Any, Run], Any]
    load: Callable[[list[Any], Run], Awaitable[Any]] | None


def connection_shape(planner: Planner, field_def: GraphQLField,
                     details: list[FieldDetails], objects: bool = False) -> ConnectionShape:
    """`objects`: its nodes are Python objects (see ObjectsOf), else rows of a statement."""
    conn_type = planner.object_type(nullable(field_def.type)[0])
    if "nodes" not in conn_type.fields or "edges" not in conn_type.fields:
        raise Unsupported(f"connection type {conn_type.name}")
    node_type = nullable(conn_type.fields["nodes"].type)[0]
    node_type = nullable(node_type.of_type)[0]
    if not objects:
        node_type = planner.object_type(node_type)
    writers: list[tuple[str, Writer]] = []
    node_plans: list[Any] = []
    count = False
    edge_type = planner.object_type(
        nullable(nullable(conn_type.fields["edges"].type)[0].of_type)[0]
    )
    if set(edge_type.fields) - {"cursor", "node"}:
        raise Unsupported(f"edge type {edge_type.name}")
    selections = 0  # of the nodes (`nodes`, and `node` in each `edges`)
    for _, sub_details in planner.subfields(conn_type, details):
        name = sub_details[0].node.name.value
        selections += name == "nodes"
        if name == "edges":
            selections += sum(
                d[0].node.name.value == "node" for _, d in planner.subfields(edge_type, sub_details)
            )
    joins = selections == 1

    def node_plan(sub_details: list[FieldDetails]) -> Any:
        plan: Any
        if objects:
            plan = ObjectsOf(*planner.objects_of(node_type, sub_details))
        else:
            plan = planner.object_plan(node_type, sub_details, joins=joins, finish=False)
        node_plans.append(plan)
        return plan

    for sub_key, sub_details in planner.subfields(conn_type, details):
        name = sub_details[0].node.name.value
        if name == "__typename":
            writers.append((sub_key, lambda page, extras, run: conn_type.name))
        elif name == "totalCount":
            count = True
            writers.append((sub_key, lambda page, extras, run: extras["count"]))
        elif name == "pageInfo":
            writers.append((sub_key, _page_info(planner, conn_type, sub_details)))
        elif name == "nodes":
            plan = node_plan(sub_details)
            writers.append((sub_key, nodes_writer(plan)))
        elif name == "edges":
            writers.append((sub_key, _edges(planner, edge_type, sub_details, node_plan)))
        else:
            raise Unsupported(f"{conn_type.name}.{name}")
    if objects:
        return ConnectionShape(writers, node_plans, count, node_type)
    shared = [name for plan in node_plans for name in plan.needs]
    for plan in node_plans:
        if len(node_plans) > 1:
            plan.need(*shared)
            plan.needs = sorted(plan.needs, key=shared.index)
        plan.finish()
    return ConnectionShape(writers, node_plans, count, node_type)


@dataclass
class ConnectionPlan:
    """A root connection: its page, then its nodes' relations, then the JSON."""

    key: str
    field_def: GraphQLField
    node: FieldNode
    listing: Listing
    shape: ConnectionShape
    # page statements compiled, by viewer, dialect and arguments (the first page of a list is
    # asked for again and again)
    pages: OrderedDict[Any, tuple[PageQuery, Compiled]] = field(default_factory=OrderedDict)
    size: int = 256

    async def execute(self, run: Run) -> Any:
        shape = self.shape
        # several node plans (`edges { node }` and `nodes`, say) share one layout, no joins
        plan = (shape.node_plans or [
            ObjectPlan("", KINDS[self.listing.kind].model).finish()])[0]
        key = (viewer_key(run.context.viewer), run.dialect,
               repr(get_argument_values(self.field_def, self.node, run.variables)))
        found = self.pages.get(key)
        if found is None:
            args = run.arguments(self.field_def, self.node)
            ctx = run.context
            spec = await self.listing.spec(ctx, args)
            query = records.list_query(
                ctx.viewer, self.listing.kind,
                page_args(args.get("first"), args.get("after"), args.get("last"),
                          args.get("before")),
                spec.conditions, spec.order, ctx.default_page_size, ctx.max_page_size,
                spec.extra_sort, plan.columns, plan.joined(ctx.viewer), shape.count,
            )
            found = query, Compiled.of(query.statement, run.connection.dialect)
            if spec.reusable:
                self.pages[key] = found
                if len(self.pages) > self.size:
                    self.pages.popitem(last=False)
        query, compiled = found
        page = query.page(await compiled.fetch(run.connection), run.context.session)
        width, make = len(plan.columns), plan.make
        page.nodes = [make(row[:width]) for row in page.nodes]
        extras: dict[str, Any] = {}
        if shape.count:
            extras["count"] = await page.count()
        for plan in shape.node_plans:
            if page.nodes:
                await run.load(plan, page.nodes)
        return shape.write(page, extras, run)


def typename(name: str) -> Emit:
    return lambda code: repr(name)


def nodes_writer(plan: Any) -> Writer:
    return lambda page, extras, run: [plan.build(row, run) for row in page.nodes]


def node_writer(plan: Any) -> Callable[[Row, str, Run], Any]:
    return lambda row, cursor, run: plan.build(row, run)


def _page_info(planner: Planner, conn_type: GraphQLObjectType,
               details: list[FieldDetails]) -> Writer:
    info_type = planner.object_type(nullable(conn_type.fields["pageInfo"].type)[0])
    values: dict[str, Callable[[Page[Any]], Any]] = {
        "hasNextPage": lambda page: page.has_next_page,
        "hasPreviousPage": lambda page: page.has_previous_page,
        "startCursor": lambda page: page.cursors[0] if page.cursors else None,
        "endCursor": lambda page: page.cursors[-1] if page.cursors else None,
        "__typename": lambda page: info_type.name,
    }
    fields = [
        (key, values[d[0].node.name.value]) for key, d in planner.subfields(info_type, details)
    ]
    return lambda page, extras, run: {key: value(page) for key, value in fields}


def _edges(planner: Planner, edge_type: GraphQLObjectType, details: list[FieldDetails],
           node_plan: Callable[[list[FieldDetails]], Any]) -> Writer:
    fields: list[tuple[str, Callable[[Row, str, Run], Any]]] = []
    for key, sub_details in planner.subfields(edge_type, details):
        name = sub_details[0].node.name.value
        if name == "cursor":
            fields.append((key, lambda row, cursor, run: cursor))
        elif name == "node":
            plan = node_plan(sub_details)
            fields.append((key, node_writer(plan)))
        elif name == "__typename":
            fields.append((key, lambda row, cursor, run: edge_type.name))
        else:
            raise Unsupported(f"{edge_type.name}.{name}")
    return lambda page, extras, run: [
        {key: value(row, cursor, run) for key, value in fields}
        for row, cursor in zip(page.nodes, page.cursors, strict=True)
    ]


# --- operations ---------------------------------------------------------------------------


@dataclass
class Constant:
    key: str
    value: Any

    async def execute(self, run: Run) -> Any:
        return self.value


def by_id(kind: Kind, plan: ObjectPlan) -> Callable[[Viewer, Any], Any]:
    """The statement of the visible records of a kind by id, with `plan`'s columns."""
    return lambda viewer, ids: records.visible_by_id(
        kind, viewer, ids, plan.columns, plan.joined(viewer)
    )


@dataclass
class KindPlans:
    """Records of the kinds an interface or union may be, by (kind, id): each kind read with
    its own plan and statement, the visibility rules applied."""

    plans: dict[str, tuple[ObjectPlan, Statements]]

    @classmethod
    def of(cls, planner: Planner, gql_type: Any, details: list[FieldDetails]) -> KindPlans:
        plans: dict[str, tuple[ObjectPlan, Statements]] = {}
        possible = [gql_type] if isinstance(gql_type, GraphQLObjectType) else (
            planner.schema.get_possible_types(gql_type))
        for object_type in possible:
            if object_type.name not in KINDS:
                continue
            kind = KINDS[object_type.name]
            plan = planner.object_plan(object_type, details, ("id",))
            plans[object_type.name] = plan, Statements(by_id(kind, plan))
        return cls(plans)

    async def read(self, run: Run, keys: Any) -> dict[tuple[str, int], Any]:
        """The JSON of the visible records among `keys`."""
        wanted: dict[str, set[int]] = {}
        for found in keys:
            if found is not None and found[0] in self.plans:
                wanted.setdefault(found[0], set()).add(found[1])
        built: dict[tuple[str, int], Any] = {}
        for kind, ids in wanted.items():
            plan, statement = self.plans[kind]
            rows = await run.rows(statement(run), plan, sorted(ids))
            if rows:
                await run.load(plan, rows)
            for row in rows:
                built[(kind, row.id)] = plan.build(row, run)
        return built


@dataclass
class RecordsPlan:
    """node / nodes: the visible records by key."""

    key: str
    field_def: GraphQLField
    node: FieldNode
    decl: Records
    kinds: KindPlans

    async def execute(self, run: Run) -> Any:
        keys = self.decl.keys(run.context, run.arguments(self.field_def, self.node))
        built = await self.kinds.read(run, keys)
        values = [None if k is None else built.get(k) for k in keys]
        return values if self.decl.many else values[0]


def records_plan(planner: Planner, key: str, field_def: GraphQLField,
                 details: list[FieldDetails], decl: Records) -> RecordsPlan:
    gql_type, _ = nullable(field_def.type)
    if decl.many:
        gql_type, _ = nullable(gql_type.of_type)
    return RecordsPlan(key, field_def, details[0].node, decl,
                       KindPlans.of(planner, gql_type, details))


@dataclass
class ViewerPlan:
    """The viewer's own row: built from the user loaded with the token, no statement."""

    key: str
    plan: ObjectPlan

    async def execute(self, run: Run) -> Any:
        user = run.context.viewer.user
        row = self.plan.row._make(getattr(user, name) for name in self.plan.needs)
        await run.load(self.plan, [row])
        return self.plan.build(row, run)


def viewer_plan(planner: Planner, key: str, field_def: GraphQLField,
                details: list[FieldDetails]) -> ViewerPlan:
    plan = planner.object_plan(nullable(field_def.type)[0], details, joins=False)
    return ViewerPlan(key, plan)


@dataclass
class ValuePlan:
    """A root field's own resolver (a Value), its answer built by a plan in objects mode."""

    key: str
    field_def: GraphQLField
    node: FieldNode
    function: Callable[..., Any]
    holder: ObjectPlan  # of one object whose `value` is the resolver's answer

    async def execute(self, run: Run) -> Any:
        value = await call_resolver(
            self.function, run.context, run.arguments(self.field_def, self.node)
        )
        holder = Holder(value)
        await run.load(self.holder, [holder])
        return self.holder.build(holder, run)["value"]


@dataclass
class Holder:
    value: Any


def value_plan(planner: Planner, key: str, field_def: GraphQLField,
               details: list[FieldDetails]) -> ValuePlan:
    resolver = field_def.extensions[BACKREF].base_resolver
    holder = ObjectPlan("", None, objects=True, can_join=False)
    holder.fields.append(("value", planner.value(
        holder, field_def.type, details, lambda code: "row.value", operator.attrgetter("value")
    )))
    return ValuePlan(key, field_def, details[0].node, resolver.wrapped_func, holder.finish())


RootPlan = ConnectionPlan | RecordsPlan | ViewerPlan | ValuePlan | Constant


@dataclass
class OperationPlan:
    roots: list[RootPlan]

    async def execute(
        self, context: Context, schema: strawberry.Schema, variables: VariableValues
    ) -> dict[str, Any]:
        connection = await raw.Connection.of(context.session)
        if connection is None:  # a database without a driver path in resolvers/raw.py
            raise Fallback
        run = Run(context, connection, schema, variables)
        return {root.key: await root.execute(run) for root in self.roots}


def directive_variables(document: DocumentNode) -> tuple[str, ...]:
    """Variables used by @include/@skip (a plan holds for one set of their values); any other
    directive, or fragment variables, make the operation unsupported."""
    names: list[str] = []

    class Directives(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            if node.name.value not in ("include", "skip"):
                raise Unsupported(f"directive @{node.name.value}")
            for argument in node.arguments or ():
                if isinstance(argument.value, VariableNode):
                    names.append(argument.value.name.value)
                elif not isinstance(argument.value, BooleanValueNode):
                    raise Unsupported("directive argument")

        def enter_fragment_definition(self, node: FragmentDefinitionNode, *_: Any) -> None:
            if node.variable_definitions:
                raise Unsupported("fragment variables")

    visit(document, Directives())
    return tuple(sorted(set(names)))


class Plans:
    """Plans by operation (query text, operation name, @include/@skip variable values),
    least recently used dropped beyond `size`; an unsupported operation is remembered too."""

    def __init__(self, schema: strawberry.Schema, mode: str = "on", size: int = 512) -> None:
        self.schema = schema
        self.mode = mode
        self.size = size
        self.cache: OrderedDict[Any, OperationPlan | None] = OrderedDict()
        self.directive_names: dict[str, tuple[str, ...] | None] = {}
        self.documents: dict[str, DocumentNode] = {}  # validated, by query text
        self.stats: Counter[str] = Counter()  # planned / unsupported / fallback / failed
        self.unsupported: Counter[str] = Counter()  # why operations were not planned
        self.mismatches: list[dict[str, Any]] = []  # "verify" mode: differences found

    async def execute_cached(
        self, query: str, operation_name: str | None, raw_variables: dict[str, Any] | None,
        context: Context,
    ) -> dict[str, Any] | None:
        """The data of a query that already ran (so its document was parsed and validated),
        from its plan; None when it is to go through Strawberry."""
        document = self.documents.get(query)
        if document is None:
            return None
        return await self.execute(query, document, operation_name, raw_variables, context)

    async def execute(
        self, query: str, document: DocumentNode, operation_name: str | None,
        raw_variables: dict[str, Any] | None, context: Context,
    ) -> dict[str, Any] | None:
        """The operation's data from its plan, or None when it is to run normally."""
        if query not in self.documents:  # validated: the fast path may take it from now on
            self.documents[query] = document
            if len(self.documents) > self.size:
                self.documents.pop(next(iter(self.documents)))
        try:
            variables = self.variables(document, operation_name, raw_variables)
            plan = None if variables is None else self.plan(query, document, operation_name,
                                                            variables)
            if plan is None or variables is None:
                self.stats["unsupported"] += 1
                return None
            data = await plan.execute(context, self.schema, variables)
        except (Fallback, RequestError):
            self.stats["fallback"] += 1
            return None
        except Exception as exc:  # a planner fault: answer normally, and say so
            if classify(exc) is not None:
                raise  # the database is away or busy: so it is for graphql-core too
            self.stats["failed"] += 1
            log.exception("planned execution failed; resolving normally")
            if self.mode == "verify":
                self.mismatches.append({"query": query, "variables": raw_variables,
                                        "planned": repr(exc), "resolved": None})
            return None
        self.stats["planned"] += 1
        return data

    def compare(
        self, query: str, variables: dict[str, Any] | None, planned: dict[str, Any], result: Any
    ) -> None:
        """Verify mode: the plan's JSON must be graphql-core's, byte for byte (order too)."""
        errors = getattr(result, "errors", None)
        resolved = getattr(result, "data", None)
        if errors or orjson.dumps(planned) != orjson.dumps(resolved):
            log.error("planned execution differs from graphql-core for %s", query)
            self.mismatches.append({
                "query": query, "variables": variables, "planned": planned,
                "resolved": resolved, "errors": [str(e) for e in errors or ()],
            })

    def plan(
        self, query: str, document: DocumentNode, operation_name: str | None,
        variables: VariableValues,
    ) -> OperationPlan | None:
        names = self.directive_names.get(query, ())
        if query not in self.directive_names:
            try:
                names = directive_variables(document)
            except Unsupported:
                names = None
            self.directive_names[query] = names
            if len(self.directive_names) > self.size:
                self.directive_names.pop(next(iter(self.directive_names)))
        if names is None:
            return None
        key = (query, operation_name, tuple(repr(variables.coerced.get(n)) for n in names))
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        try:
            plan: OperationPlan | None = self._compile(document, operation_name, variables)
        except Unsupported as why:
            self.unsupported[str(why)] += 1
            log.debug("not planned (%s): %s", why, operation_name or "anonymous operation")
            plan = None
        except Exception:  # a planner fault: remembered, so that it is logged once
            self.cache[key] = None
            raise
        self.cache[key] = plan
        if len(self.cache) > self.size:
            self.cache.popitem(last=False)
        return plan

    def _compile(
        self, document: DocumentNode, operation_name: str | None, variables: VariableValues
    ) -> OperationPlan:
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation != OperationType.QUERY:
            raise Unsupported("not a query")
        gql_schema = self.schema._schema
        fragments = {
            d.name.value: FragmentDetails(d)
            for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        planner = Planner(gql_schema, fragments, variables, operation)
        query_type = gql_schema.query_type
        assert query_type is not None
        grouped = collect_fields(gql_schema, fragments, variables, query_type, operation)
        roots: list[RootPlan] = []
        for key, details in grouped.grouped_field_set.items():
            name = details[0].node.name.value
            if name == "__typename":
                roots.append(Constant(key, query_type.name))
                continue
            if name.startswith("__"):
                raise Unsupported("introspection")
            decl = declaration_of(query_type, name)
            field_def = query_type.fields[name]
            if isinstance(decl, Listing) and decl.parent is None:
                roots.append(ConnectionPlan(
                    key, field_def, details[0].node, decl,
                    connection_shape(planner, field_def, details),
                ))
            elif isinstance(decl, Records):
                roots.append(records_plan(planner, key, field_def, details, decl))
            elif isinstance(decl, TheViewer):
                roots.append(viewer_plan(planner, key, field_def, details))
            elif isinstance(decl, Value):
                roots.append(value_plan(planner, key, field_def, details))
            else:
                raise Unsupported(f"root field {name}")
        return OperationPlan(roots)

    def variables(self, document: DocumentNode, operation_name: str | None,
                  raw: dict[str, Any] | None) -> VariableValues | None:
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return None
        coerced = get_variable_values(
            self.schema._schema, operation.variable_definitions or (), raw or {}
        )
        return coerced if isinstance(coerced, VariableValues) else None


__all__ = ["Fallback", "OperationPlan", "Plans", "Unsupported"]
