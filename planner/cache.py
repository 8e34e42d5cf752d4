"""Plans by operation: compiled once, cached, executed; the statistics and verify mode."""


from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any

import orjson
import strawberry
from graphql import (
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    FragmentDefinitionNode,
    OperationType,
    VariableNode,
    get_operation_ast,
    visit,
)
from graphql.execution.collect_fields import (
    FragmentDetails,
    collect_fields,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.language import Visitor

from planner.compile import Planner, connection_shape
from planner.plans import Fallback, Unsupported, declaration_of, log
from planner.roots import (
    ConnectionPlan,
    Constant,
    OperationPlan,
    RootPlan,
    records_plan,
    value_plan,
    viewer_plan,
)
from resolvers.dberrors import classify
from resolvers.errors import RequestError
from schema.context import Context
from schema.reads import (
    Listing,
    Records,
    TheViewer,
    Value,
)


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


class PlannerFault(Exception):
    """Verify mode: a plan failed (its cause); the door sees whether graphql-core fails too."""


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
                raise PlannerFault(exc) from exc  # the door compares with graphql-core's
            return None
        self.stats["planned"] += 1
        return data

    def fault(self, query: str, variables: dict[str, Any] | None, fault: PlannerFault,
              result: Any) -> None:
        """Verify mode: the plan failed; a difference unless graphql-core failed too (a rule's
        own fault fails both ways)."""
        if not getattr(result, "errors", None):
            self.mismatches.append({"query": query, "variables": variables,
                                    "planned": repr(fault.__cause__), "resolved": None})

    @staticmethod
    def same(planned: dict[str, Any] | None, result: Any) -> bool:
        """Verify mode: the plan's JSON is graphql-core's, byte for byte (order too)."""
        return not getattr(result, "errors", None) and (
            orjson.dumps(planned) == orjson.dumps(getattr(result, "data", None)))

    def compare(
        self, query: str, variables: dict[str, Any] | None, planned: dict[str, Any] | None,
        result: Any,
    ) -> None:
        """Verify mode: a difference is recorded (and logged)."""
        errors = getattr(result, "errors", None)
        resolved = getattr(result, "data", None)
        if not self.same(planned, result):
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
