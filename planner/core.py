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

import models
from resolvers import opportunity as deal_rules
from resolvers import quote as quote_rules
from resolvers import raw, records
from resolvers.dberrors import classify
from resolvers.errors import RequestError
from resolvers.ids import to_global_id
from resolvers.kinds import KINDS
from resolvers.loaders import LINES, QUOTES, Children
from resolvers.pagination import Page, PageQuery
from resolvers.permissions import Viewer
from resolvers.raw import IDS, Compiled
from schema.context import Context
from schema.picklist import ForecastCategory
from schema.relay import page_args

Row = Any
BACKREF = "strawberry-definition"
log = logging.getLogger("dealgraph.planner")


class Unsupported(Exception):
    """The operation uses something the planner does not cover: run it normally."""


class Fallback(Exception):
    """This request needs graphql-core's own handling (an error, a null where none may be)."""


# --- what the planner knows of the schema ----------------------------------------------

# GraphQL type → the model whose rows it is built from.
MODELS: dict[str, Any] = {
    **{name: kind.model for name, kind in KINDS.items()},
    "QuoteLine": models.QuoteLine,
    "SalesStage": models.SalesStage,
}

# Fields that return the visible record a foreign key points to (`related(...)`).
TO_ONE: dict[tuple[str, str], tuple[str, str]] = {
    ("Opportunity", "assignedTo"): ("User", "assigned_to_id"),
    ("Opportunity", "createdBy"): ("User", "created_by_id"),
    ("Opportunity", "account"): ("Account", "account_id"),
    ("Opportunity", "campaign"): ("Campaign", "campaign_id"),
    ("Quote", "opportunity"): ("Opportunity", "opportunity_id"),
    ("Quote", "account"): ("Account", "account_id"),
    ("Quote", "contact"): ("Contact", "contact_id"),
    ("QuoteLine", "product"): ("Product", "product_id"),
    ("User", "manager"): ("User", "manager_id"),
    ("Account", "assignedTo"): ("User", "assigned_to_id"),
    ("Campaign", "assignedTo"): ("User", "assigned_to_id"),
}

# Fields that list the children of a row (the loaders' relations).
TO_MANY: dict[tuple[str, str], tuple[str, Children]] = {
    ("Opportunity", "quotes"): ("Quote", QUOTES),
    ("Quote", "lines"): ("QuoteLine", LINES),
}

# Opportunity fields computed from the deal's stage (those of STAGE_ONLY from the stage alone:
# computed once per stage in a request).
STAGE_ONLY = {"forecastCategory", "isClosed", "isWon"}
BY_STAGE: dict[str, Callable[[Row, Any], Any]] = {
    "forecastCategory": lambda deal, stage: ForecastCategory(stage.forecast_category),
    "isClosed": lambda deal, stage: stage.is_closed,
    "isWon": lambda deal, stage: stage.is_won,
    "daysToClose": deal_rules.days_to_close,
    "isOverdue": deal_rules.is_overdue,
}

# Quote fields computed from its lines.
QUOTE_TOTALS = {"subtotal", "discountTotal", "netTotal", "taxTotal", "grandTotal"}

# What the functions of computed fields read from the row; a resolver not listed here gets
# every column. A name missing here is a bug the differential tests find (AttributeError).
READS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Opportunity", "weightedAmount"): ("amount", "probability"),
    ("Opportunity", "amountSource"): ("amount_source",),
    ("Opportunity", "ageDays"): ("created_at",),
    ("Opportunity", "daysInStage"): ("stage_changed_at",),
    ("Opportunity", "daysToClose"): ("expected_close_date",),
    ("Opportunity", "isOverdue"): ("expected_close_date",),
    ("QuoteLine", "netTotal"): ("quantity", "list_price", "discount_percent"),
    ("User", "role"): ("role",),
}
LINE_TOTALS = ("quote_id", "quantity", "list_price", "discount_percent", "tax_percent")


def attributes(model: Any) -> dict[str, Any]:
    """A model's columns by attribute name (JSON columns left out: no field reads them)."""
    found = _ATTRIBUTES.get(model)
    if found is None:
        found = _ATTRIBUTES[model] = {
            a.key: a.columns[0] for a in inspect(model).column_attrs
            if not isinstance(a.columns[0].type, JSON)
        }
    return found


_ATTRIBUTES: dict[Any, dict[str, Any]] = {}


def python_type(column: Any) -> type | None:
    try:
        return column.type.python_type  # type: ignore[no-any-return]
    except NotImplementedError:
        return None


# A stage read in its deal's row (see Planner.stages): what the stage fields read from it.
STAGE_ROW = namedtuple("StageRow", list(attributes(models.SalesStage)))  # type: ignore[misc]


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
    flat: bool = True  # only columns: may be joined into its parent's statement
    can_join: bool = True  # may read to-one relations in its own statement
    totals: Load | None = None  # a quote's lines, for its totals
    offset: int = 0
    # Once finished: the statement's columns, the rows' class (tuples with attributes: the
    # computed fields' functions read them so, and an ORM Row's attribute costs ten times a
    # namedtuple's) and the builder.
    columns: tuple[Any, ...] = ()
    row: Any = None
    build: Callable[[Row, Run], dict[str, Any]] = lambda row, run: {}

    def need(self, *names: str) -> None:
        for name in names:
            if name not in self.needs:
                self.needs.append(name)

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
        at = offset + len(self.needs)
        for join in self.joins:
            join.target.finish(at)
            at += join.target.width
        self.columns = self._columns()
        self.row = namedtuple(  # type: ignore[misc]
            f"{self.type_name or 'Plain'}Row", [c.name for c in self.columns], rename=True
        )
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
    data: defaultdict[int, Any] = field(default_factory=lambda: defaultdict(dict))

    @property
    def dialect(self) -> str:
        return self.connection.dialect.name  # type: ignore[no-any-return]

    async def rows(
        self, compiled: Compiled, plan: ObjectPlan, ids: list[int] | None = None
    ) -> list[Row]:
        """Rows of `plan`'s columns; `ids` for the statement's IDS parameter."""
        make = plan.row._make
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
    """Turns the selections of one operation into plans (see Plans)."""

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
        joins: bool = True, finish: bool = True,
    ) -> ObjectPlan:
        """The plan of an object type's selection. `joins`: whether its to-one relations may
        be read in its own statement; `finish`: lay out and compile now (not when it is to be
        joined into its parent's statement, at an offset known later)."""
        gql_type = self.object_type(gql_type)
        model = MODELS.get(gql_type.name)
        if model is None:
            raise Unsupported(f"type {gql_type.name}")
        plan = ObjectPlan(gql_type.name, model, can_join=joins)
        plan.need(*needs)
        stage: Load | Join | None = None
        lines: Load | None = None
        names = set()
        for key, field_details in self.subfields(gql_type, details):
            name = field_details[0].node.name.value
            names.add(name)
            if name == "__typename":
                plan.fields.append((key, typename(gql_type.name)))
                continue
            field_def = gql_type.fields[name]
            if field_def.args or any(d.node.arguments for d in field_details):
                raise Unsupported(f"arguments on {gql_type.name}.{name}")
            if (gql_type.name, name) in TO_ONE:
                emit = self.to_one(plan, field_def, field_details, name)
            elif (gql_type.name, name) in TO_MANY:
                load, emit = self.to_many(plan, field_def, field_details, name)
                lines = lines or (load if name == "lines" else None)
            elif gql_type.name == "Opportunity" and name == "salesStage":
                stage = stage or self.stages(plan)
                target = self.object_plan(nullable(field_def.type)[0], field_details,
                                          tuple(attributes(models.SalesStage)))
                emit = self.stage_field(plan, stage, target)
            elif gql_type.name == "Opportunity" and name in BY_STAGE:
                stage = stage or self.stages(plan)
                plan.need(*READS.get((gql_type.name, name), ()))
                emit = self.by_stage(plan, stage, field_def, BY_STAGE[name], name in STAGE_ONLY)
            elif gql_type.name == "Quote" and name in QUOTE_TOTALS:
                emit = self.totals(plan, field_def, name)
            else:
                plan.fields.append((key, self.plain(plan, field_def, name)))
                continue
            plan.fields.append((key, emit))
            plan.flat = False  # a relation or a computed field: needs rows of its own
        if gql_type.name == "Quote" and QUOTE_TOTALS & names:
            # the totals read the lines the `lines` field loads (which read what the totals
            # need, see to_many), or load their own
            lines = lines or self.children(plan, LINES, ObjectPlan(
                "QuoteLine", models.QuoteLine, list(LINE_TOTALS)).finish())
            plan.totals = lines
        return plan.finish() if finish else plan

    def plain(self, plan: ObjectPlan, field_def: GraphQLField, name: str) -> Emit:
        """A column, or a resolver of the row alone (the normal path's own function)."""
        definition = field_def.extensions.get(BACKREF)
        if definition is None or not is_leaf_type(nullable(field_def.type)[0]):
            raise Unsupported(f"field {plan.type_name}.{name}")
        resolver = definition.base_resolver
        if resolver is None:
            column = definition.python_name
            if column not in attributes(plan.model):
                raise Unsupported(f"field {plan.type_name}.{name}")
            plan.need(column)
            return lambda code: code.leaf(
                field_def.type, f"row[{plan.column(column)}]", attributes(plan.model)[column]
            )
        if name == "id" and nullable(field_def.type)[0] is GraphQLID:  # node_id(type name)
            plan.need("id")
            return lambda code: code.leaf(
                field_def.type,
                f"{code.const(to_global_id)}({plan.type_name!r}, row[{plan.column('id')}])",
            )
        if (
            resolver.is_async or resolver.info_parameter is not None
            or resolver.self_parameter is not None or resolver.arguments
        ):
            raise Unsupported(f"resolver of {plan.type_name}.{name}")
        function = resolver.wrapped_func
        if isinstance(function, staticmethod):
            function = function.__func__
        plan.need(*READS.get((plan.type_name, name), tuple(attributes(plan.model))))
        plan.flat = False
        return lambda code: code.leaf(field_def.type, f"{code.const(function)}(row)")

    def to_one(
        self, plan: ObjectPlan, field_def: GraphQLField, details: list[FieldDetails], name: str
    ) -> Emit:
        target_name, fk = TO_ONE[(plan.type_name, name)]
        gql_type, optional = nullable(field_def.type)
        kind = KINDS[target_name]
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
            index = plan.column(fk)
            ids = sorted({pk for row in rows if (pk := row[index]) is not None})
            if not ids:
                return {}, []
            found = await run.rows(statement(run), target, ids)
            return {row.id: row for row in found}, found

        load = Load(next(_ids), target, fetch)
        plan.loads.append(load)

        def emit(code: Code) -> str:
            related = code.var(
                f"data[{load.key}].get(row[{plan.column(fk)}])", required=not optional
            )
            built = f"{code.const(target.build)}({related}, run)"
            return f"(None if {related} is None else {built})" if optional else built

        return emit

    def children(self, plan: ObjectPlan, children: Children, target: ObjectPlan) -> Load:
        """The rows of a one-to-many relation for all the rows of `plan`, by parent id."""
        plan.need("id")
        parent_key = children.parent.key
        statement = Statements(
            lambda viewer, ids: children.statement(ids, target.columns, target.joined(viewer))
        )

        async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
            ids = sorted({row[plan.column("id")] for row in rows})
            found = await run.rows(statement(run), target, ids)
            grouped: dict[Any, list[Row]] = {}
            index = target.column(parent_key)
            for child in found:
                grouped.setdefault(child[index], []).append(child)
            return grouped, found

        load = Load(next(_ids), target, fetch)
        plan.loads.append(load)
        return load

    def to_many(
        self, plan: ObjectPlan, field_def: GraphQLField, details: list[FieldDetails], name: str
    ) -> tuple[Load, Emit]:
        _, children = TO_MANY[(plan.type_name, name)]
        list_type, _ = nullable(field_def.type)
        if not isinstance(list_type, GraphQLList):
            raise Unsupported(f"{plan.type_name}.{name}")
        item_type, _ = nullable(list_type.of_type)
        needs = (children.parent.key, *(LINE_TOTALS if children is LINES else ()))
        target = self.object_plan(item_type, details, needs)
        load = self.children(plan, children, target)

        def emit(code: Code) -> str:
            build = code.const(target.build)
            index = plan.column("id")
            return f"[{build}(c, run) for c in data[{load.key}].get(row[{index}], ())]"

        return load, emit

    def stages(self, plan: ObjectPlan) -> Load | Join:
        """The deals' stages: joined to the deals (reference data, no visibility rules), or
        every stage by key (as the stage loader reads them)."""
        plan.need("sales_stage")
        if plan.can_join and all(join.model is not models.SalesStage for join in plan.joins):
            deal_stage = attributes(plan.model)["sales_stage"]
            layout = ObjectPlan("SalesStage", models.SalesStage, list(STAGE_ROW._fields))
            join = Join(models.SalesStage, lambda viewer: models.SalesStage.key == deal_stage,
                        layout)
            plan.joins.append(join)
            return join
        target = ObjectPlan("SalesStage", models.SalesStage, list(STAGE_ROW._fields)).finish()

        statement = Statements(lambda viewer, ids: select(*target.columns))

        async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
            found = await run.rows(statement(run), target)
            return {stage.key: stage for stage in found}, []

        load = Load(next(_ids), target, fetch)
        plan.loads.append(load)
        return load

    def stage_of(self, plan: ObjectPlan, load: Load | Join, code: Code) -> str:
        """The deal's stage row (the resolvers assert that it exists)."""
        if "stage" in code.once:
            return code.once["stage"]
        if isinstance(load, Join):  # a StageRow of the joined columns, one per stage
            start = load.target.offset
            key = code.var(f"row[{start + STAGE_ROW._fields.index('key')}]", required=True)
            row = f"row[{start}:{start + load.target.width}]"
            code.once["stage"] = code.memo(key, f"{code.const(STAGE_ROW._make)}({row})")
        else:
            expr = f"data[{load.key}].get(row[{plan.column('sales_stage')}])"
            code.once["stage"] = code.var(expr, required=True)
        return code.once["stage"]

    def stage_field(self, plan: ObjectPlan, load: Load | Join, target: ObjectPlan) -> Emit:
        def emit(code: Code) -> str:
            stage = self.stage_of(plan, load, code)
            return code.memo(f"{stage}.key", f"{code.const(target.build)}({stage}, run)")

        return emit

    def by_stage(
        self, plan: ObjectPlan, load: Load | Join, field_def: GraphQLField,
        compute: Callable[[Row, Any], Any], stage_only: bool,
    ) -> Emit:
        def emit(code: Code) -> str:
            stage = self.stage_of(plan, load, code)
            value = f"{code.const(compute)}(row, {stage})"
            if stage_only:
                value = code.memo(f"{stage}.key", value)
            return code.leaf(field_def.type, value)

        return emit

    def totals(self, plan: ObjectPlan, field_def: GraphQLField, name: str) -> Emit:
        attribute = strawberry_name(field_def, name)
        plan.need("id")

        def emit(code: Code) -> str:
            assert plan.totals is not None
            lines = f"data[{plan.totals.key}].get(row[{plan.column('id')}], ())"
            totals = code.shared("totals", f"{code.const(quote_rules.totals)}({lines})")
            return code.leaf(field_def.type, f"{totals}.{attribute}")

        return emit


def strawberry_name(field_def: GraphQLField, name: str) -> str:
    definition = field_def.extensions.get(BACKREF)
    return definition.python_name if definition is not None else name


# --- root fields -------------------------------------------------------------------------


async def _opportunity_page(
    run: Run, args: dict[str, Any], plan: ObjectPlan, with_total: bool
) -> tuple[PageQuery, bool]:
    from schema.opportunity import deal_list

    ctx = run.context
    conditions, order, extra_sort, rules = await deal_list(
        ctx.session, args.get("filter"), args.get("order_by")
    )
    query = records.list_query(
        ctx.viewer, "Opportunity",
        page_args(args.get("first"), args.get("after"), args.get("last"), args.get("before")),
        conditions, order, ctx.default_page_size,
        ctx.max_page_size, extra_sort, plan.columns, plan.joined(ctx.viewer), with_total,
    )
    # custom fields' filters and sort keys follow their definitions, which may change
    # and a condition on today's date changes at midnight
    return query, not extra_sort and not (
        rules is not None and (rules.custom_fields or rules.follows_today)
    )


# Root connection fields the planner answers, with how to build their page's statement (and
# whether that statement depends on nothing but the arguments and the viewer).
Reader = Callable[[Run, dict[str, Any], "ObjectPlan", bool], Awaitable[tuple[PageQuery, bool]]]
ROOT_CONNECTIONS: dict[str, Reader] = {
    "opportunities": _opportunity_page,
}


@dataclass
class ConnectionPlan:
    """A root connection: its page, then its nodes' relations, then the JSON."""

    key: str
    field_def: GraphQLField
    node: FieldNode
    node_type: str
    read: Reader
    writers: list[tuple[str, Callable[[Page[Any], dict[str, Any], Run], Any]]]
    node_plans: list[ObjectPlan]
    count: bool
    # page statements compiled, by viewer, dialect and arguments (the first page of a list is
    # asked for again and again)
    pages: OrderedDict[Any, tuple[PageQuery, Compiled]] = field(default_factory=OrderedDict)
    size: int = 256

    async def execute(self, run: Run, schema: strawberry.Schema, variables: VariableValues) -> Any:
        values = get_argument_values(self.field_def, self.node, variables)
        # several node plans (`edges { node }` and `nodes`, say) share one layout, no joins
        model = MODELS[self.node_type]
        plan = (self.node_plans or [ObjectPlan("", model).finish()])[0]
        key = (viewer_key(run.context.viewer), run.dialect, repr(values))
        found = self.pages.get(key)
        if found is None:
            definition = self.field_def.extensions[BACKREF]
            args = convert_arguments(
                values, definition.arguments,
                scalar_registry=schema.schema_converter.scalar_registry, config=schema.config,
            )
            query, reusable = await self.read(run, args, plan, self.count)
            found = query, Compiled.of(query.statement, run.connection.dialect)
            if reusable:
                self.pages[key] = found
                if len(self.pages) > self.size:
                    self.pages.popitem(last=False)
        query, compiled = found
        page = query.page(await compiled.fetch(run.connection), run.context.session)
        width, make = len(plan.columns), plan.row._make
        page.nodes = [make(row[:width]) for row in page.nodes]
        extras: dict[str, Any] = {}
        if self.count:
            extras["count"] = await page.count()
        for plan in self.node_plans:
            if page.nodes:
                await run.load(plan, page.nodes)
        return {key: write(page, extras, run) for key, write in self.writers}


def _connection_plan(planner: Planner, key: str, field_def: GraphQLField,
                     details: list[FieldDetails]) -> ConnectionPlan:
    node = details[0].node
    conn_type = planner.object_type(nullable(field_def.type)[0])
    node_type = nullable(conn_type.fields["nodes"].type)[0]
    node_type = nullable(node_type.of_type)[0]
    writers: list[tuple[str, Callable[[Page[Any], dict[str, Any], Run], Any]]] = []
    node_plans: list[ObjectPlan] = []
    count = False
    edge_type = planner.object_type(
        nullable(nullable(conn_type.fields["edges"].type)[0].of_type)[0]
    )
    selections = 0  # of the nodes (`nodes`, and `node` in each `edges`)
    for _, sub_details in planner.subfields(conn_type, details):
        name = sub_details[0].node.name.value
        selections += name == "nodes"
        if name == "edges":
            selections += sum(
                d[0].node.name.value == "node" for _, d in planner.subfields(edge_type, sub_details)
            )
    joins = selections == 1

    def node_plan(sub_details: list[FieldDetails]) -> ObjectPlan:
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
    shared = [name for plan in node_plans for name in plan.needs]
    for plan in node_plans:
        if len(node_plans) > 1:
            plan.need(*shared)
            plan.needs = sorted(plan.needs, key=shared.index)
        plan.finish()
    return ConnectionPlan(
        key, field_def, node, node_type.name, ROOT_CONNECTIONS[node.name.value],
        writers, node_plans, count,
    )


def typename(name: str) -> Emit:
    return lambda code: repr(name)


def nodes_writer(plan: ObjectPlan) -> Callable[[Page[Any], dict[str, Any], Run], Any]:
    return lambda page, extras, run: [plan.build(row, run) for row in page.nodes]


def node_writer(plan: ObjectPlan) -> Callable[[Row, str, Run], Any]:
    return lambda row, cursor, run: plan.build(row, run)


def _page_info(planner: Planner, conn_type: GraphQLObjectType,
               details: list[FieldDetails]) -> Callable[[Page[Any], dict[str, Any], Run], Any]:
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
           node_plan: Callable[[list[FieldDetails]], ObjectPlan],
           ) -> Callable[[Page[Any], dict[str, Any], Run], Any]:
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
class OperationPlan:
    roots: list[ConnectionPlan]

    async def execute(
        self, context: Context, schema: strawberry.Schema, variables: VariableValues
    ) -> dict[str, Any]:
        connection = await raw.Connection.of(context.session)
        if connection is None:  # a database without a driver path in resolvers/raw.py
            raise Fallback
        run = Run(context, connection)
        return {root.key: await root.execute(run, schema, variables) for root in self.roots}


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
        except Unsupported:
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
        roots = []
        for key, details in grouped.grouped_field_set.items():
            name = details[0].node.name.value
            if name not in ROOT_CONNECTIONS:
                raise Unsupported(f"root field {name}")
            roots.append(_connection_plan(planner, key, query_type.fields[name], details))
        if not roots:
            raise Unsupported("no root field")
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
