"""The root fields' plans: connections, records by key, the viewer, values; an operation's
plan."""


from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import strawberry
from graphql import (
    FieldNode,
    GraphQLField,
)
from graphql.execution.collect_fields import (
    FieldDetails,
)
from graphql.execution.values import VariableValues

from planner.compile import ConnectionShape, KindPlans, Planner
from planner.plans import (
    BACKREF,
    ArgumentsKey,
    Fallback,
    ObjectPlan,
    Run,
    nullable,
    viewer_key,
)
from resolvers import raw, records
from resolvers.kinds import KINDS
from resolvers.pagination import PageQuery
from resolvers.raw import Compiled
from schema.context import Context
from schema.reads import (
    Listing,
    Records,
    call_resolver,
    page_args_of,
)


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

    def __post_init__(self) -> None:
        self.arguments_key = ArgumentsKey(self.node)

    async def execute(self, run: Run) -> Any:
        shape = self.shape
        # several node plans (`edges { node }` and `nodes`, say) share one layout, no joins
        plan = (shape.node_plans or [
            ObjectPlan("", KINDS[self.listing.kind].model).finish()])[0]
        key = (viewer_key(run.context.viewer), run.dialect, self.arguments_key(run.variables))
        found = self.pages.get(key)
        if found is None:
            args = run.arguments(self.field_def, self.node)
            ctx = run.context
            spec = await self.listing.spec(ctx, args)
            query = records.list_query(
                ctx.viewer, self.listing.kind,
                page_args_of(args),
                spec.conditions, spec.order, ctx.default_page_size, ctx.max_page_size,
                spec.extra_sort, plan.columns, plan.joined(ctx.viewer), shape.count,
            )
            found = query, Compiled.of(query.statement, run.sql_dialect)
            if spec.reusable:
                self.pages[key] = found
                if len(self.pages) > self.size:
                    self.pages.popitem(last=False)
        query, compiled = found
        page = query.page(await compiled.fetch(await run.connection()), run.context.session)
        width, make = len(plan.columns), plan.make
        page.nodes = [make(row[:width]) for row in page.nodes]
        extras: dict[str, Any] = {}
        if shape.count:
            extras["count"] = await page.count()
        for plan in shape.node_plans:
            if page.nodes:
                await run.load(plan, page.nodes)
        return shape.write(page, extras, run)


# --- operations ---------------------------------------------------------------------------


@dataclass
class Constant:
    key: str
    value: Any

    async def execute(self, run: Run) -> Any:
        return self.value


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
        dialect = raw.Connection.dialect_of(context.session)
        if dialect is None:  # a database without a driver path in resolvers/raw.py
            raise Fallback
        run = Run(context, dialect, schema, variables)
        return {root.key: await root.execute(run) for root in self.roots}
