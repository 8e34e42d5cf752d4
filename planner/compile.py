"""Planner: an operation's selections turned into plans, from the fields' read declarations
(schema/reads.py); connections' shapes and writers; records of several kinds."""


from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLField,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    is_leaf_type,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_subfields,
)
from graphql.execution.values import VariableValues
from sqlalchemy import and_, select

from planner.plans import (
    BACKREF,
    ArgumentsKey,
    Code,
    Emit,
    Fallback,
    Join,
    Load,
    ObjectPlan,
    Row,
    Run,
    Statements,
    Unsupported,
    _ids,
    attributes,
    declaration_of,
    fallback,
    leaf,
    leaves,
    model_of,
    nullable,
    reference_row,
    viewer_key,
)
from resolvers import records
from resolvers.ids import to_global_id
from resolvers.kinds import KINDS, Kind
from resolvers.loaders import Children
from resolvers.pagination import ManyPageQuery, Page, many_counts, many_page_query
from resolvers.permissions import Viewer
from resolvers.raw import IDS, IDS_TABLE, Compiled
from schema.reads import (
    Batched,
    ByKey,
    ChildList,
    Computed,
    EdgeLink,
    Listing,
    NodeId,
    Paged,
    PerType,
    RecordRefs,
    Reduced,
    ToOne,
    page_args_of,
)


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
        """A value per row from the source's own statement for all the rows (compiled once
        per kind of viewer, the ids as its parameter)."""
        plan.need("id")
        load = plan.batches.get(source)
        if load is None:
            statement = Statements(source.statement)

            async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
                get = plan.getter("id")
                ids = sorted({get(row) for row in rows})
                found = await statement(run).fetch(await run.connection(), ids=ids)
                return source.collect(found), []

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

    def edge_link(self, nodes: ObjectPlan, field_def: GraphQLField, decl: EdgeLink
                  ) -> EdgeWriter:
        """An edge's field from the link between the connection's parent and the node (read
        for every node at once: see EdgeLink)."""
        relation = decl.relation
        target = ObjectPlan("", relation.model, [relation.parent.key, decl.match, *decl.reads])
        load = self.children(nodes, relation, target.finish())
        serialize = leaf(field_def.type)
        get_match = operator.attrgetter(decl.match)
        by_pair = next(_ids)  # the run's links by (node id, match), made at the first edge

        def value(row: Row, cursor: str | None, run: Run, extras: dict[str, Any]) -> Any:
            if "parent" not in extras:
                raise Fallback  # a root connection's edges have no parent to link to
            links = run.data.get(by_pair)
            if links is None:
                links = run.data[by_pair] = {}
                for node_id, found in run.data[load.key].items():
                    for link in found:  # the first link of a pair, as graphql-core takes it
                        links.setdefault((node_id, get_match(link)), link)
            return serialize(decl.function(links.get((row[nodes.column("id")], extras["parent"]))))

        return value

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

        return page_of(plan, load, shape)

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
        arguments_key = ArgumentsKey(node)

        async def fetch(rows: list[Row], run: Run) -> tuple[Any, list[Row]]:
            get = plan.getter("id")
            ids = sorted({get(row) for row in rows})
            key = (viewer_key(run.context.viewer), run.dialect, arguments_key(run.variables))
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
                    page_args_of(args),
                    ctx.default_page_size, ctx.max_page_size, node_plan.columns,
                    node_plan.joined(viewer), IDS_TABLE.get(run.dialect),
                )
                dialect = run.sql_dialect
                found = (query, Compiled.of(query.statement, dialect), Compiled.of(
                    many_counts(decl.parent, parents, where), dialect) if shape.count else None)
                if spec.reusable:
                    pages[key] = found
                    if len(pages) > 256:
                        pages.popitem(last=False)
            query, compiled, counting = found
            connection = await run.connection()
            counts: dict[int, int] = {}
            if counting is not None:
                counts = {pid: int(n) for pid, n in await counting.fetch(connection, ids=ids)}

            async def count(pid: int) -> int:
                return counts.get(pid, 0)

            by_parent = query.pages(await compiled.fetch(connection, ids=ids), ids, count,
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

        return page_of(plan, load, shape)


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


def page_of(plan: ObjectPlan, load: Load, shape: ConnectionShape) -> Emit:
    """A connection below a row, from the (page, count) its load found for the row's id."""

    def emit(code: Code) -> str:
        parent = code.var(plan.read("id"))
        found = code.var(f"data[{load.key}][{parent}]")
        extras = f"{{'count': {found}[1], 'parent': {parent}}}"
        return f"{code.const(shape.write)}({found}[0], {extras}, run)"

    return emit


def typename(name: str) -> Emit:
    return lambda code: repr(name)


def nodes_writer(plan: Any) -> Writer:
    return lambda page, extras, run: [plan.build(row, run) for row in page.nodes]


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


EdgeWriter = Callable[[Row, str | None, Run, dict[str, Any]], Any]


def _edges(planner: Planner, edge_type: GraphQLObjectType, details: list[FieldDetails],
           node_plan: Callable[[list[FieldDetails]], Any]) -> Writer:
    fields: list[tuple[str, EdgeWriter]] = []
    selected = list(planner.subfields(edge_type, details))
    plans = {key: node_plan(d) for key, d in selected if d[0].node.name.value == "node"}
    links = [d for _, d in selected if isinstance(
        declaration_of(edge_type, d[0].node.name.value), EdgeLink)]
    nodes = next(iter(plans.values()), None) or (node_plan([]) if links else None)
    for key, sub_details in selected:
        name = sub_details[0].node.name.value
        decl = declaration_of(edge_type, name)
        if name == "cursor":
            fields.append((key, lambda row, cursor, run, extras: cursor))
        elif name == "node":
            fields.append((key, built_by(plans[key])))
        elif name == "__typename":
            fields.append((key, lambda row, cursor, run, extras: edge_type.name))
        elif isinstance(decl, EdgeLink) and isinstance(nodes, ObjectPlan):
            fields.append((key, planner.edge_link(nodes, edge_type.fields[name], decl)))
        else:
            raise Unsupported(f"{edge_type.name}.{name}")
    with_cursors = any(d[0].node.name.value == "cursor" for _, d in selected)

    def write(page: Page[Any], extras: dict[str, Any], run: Run) -> Any:
        cursors = page.cursors if with_cursors else [None] * len(page.nodes)
        return [
            {key: value(row, cursor, run, extras) for key, value in fields}
            for row, cursor in zip(page.nodes, cursors, strict=True)
        ]

    return write


def built_by(plan: Any) -> EdgeWriter:
    return lambda row, cursor, run, extras: plan.build(row, run)


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
