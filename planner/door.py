"""The one door into planned execution: an HTTP request's body (or a GET's query string) and
context in, the response body out; or None when the request is to go through Strawberry and
graphql-core (not a plain query, not valid, or not one the planner answers).

The server calls it before Strawberry's view (measured on the pipeline page, an extension
answering through `execution_context.result` spends some 20 % more CPU per request than this:
the view's parsing of the request and the extension hooks). In "verify" mode (the test
suite's) graphql-core answers too, through the same schema, and the planner's answer is
compared with it, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import orjson
from graphql import DocumentNode, OperationType, get_operation_ast

from planner.cache import PlannerFault, Plans
from schema.context import Context

# query text → its document, once parsed and validated with the server's limits; None when
# it is not valid (the server's function: it owns the limits)
Prepare = Callable[[str], DocumentNode | None]


class Door:
    def __init__(self, plans: Plans, prepare: Prepare) -> None:
        self.plans = plans
        self.prepare = prepare

    async def answer(self, body: bytes, context: Context) -> bytes | None:
        """The JSON response to a POSTed GraphQL request that the planner answers, else None
        (then nothing has been written, and the request may go to graphql-core)."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return await self._answer(request, context) if isinstance(request, dict) else None

    async def answer_get(self, params: Mapping[str, str], context: Context) -> bytes | None:
        """The same for a GET's query string (`variables` as JSON text)."""
        request: dict[str, Any] = dict(params)
        if "variables" in request:
            try:
                request["variables"] = orjson.loads(request["variables"])
            except orjson.JSONDecodeError:
                return None
        return await self._answer(request, context)

    async def resolved(self, query: str, variables: dict[str, Any] | None, context: Context,
                       operation_name: str | None) -> Any:
        """Verify mode: graphql-core's answer, with loaders of its own (so that neither path's
        statements depend on what the other one cached), its faults not logged (the answer
        served logs them)."""
        return await self.plans.schema.execute(
            query, variables,
            replace(context, loaders=context.loaders.fresh(), comparing=True),
            operation_name=operation_name,
        )

    async def _answer(self, request: dict[str, Any], context: Context) -> bytes | None:
        query, variables = request.get("query"), request.get("variables")
        operation_name = request.get("operationName")
        if (
            not isinstance(query, str) or not isinstance(variables, dict | None)
            or not isinstance(operation_name, str | None) or request.get("extensions")
        ):
            return None
        plans = self.plans
        document = plans.documents.get(query) or self.prepare(query)
        if document is None:
            return None  # not valid: graphql-core's errors
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None  # mutations and subscriptions are graphql-core's
        try:
            data = await plans.execute(query, document, operation_name, variables, context)
        except PlannerFault as fault:  # verify mode
            plans.fault(query, variables, fault, await self.resolved(
                query, variables, context, operation_name))
            return None
        if data is None:
            return None
        if plans.mode == "verify":
            result = await self.resolved(query, variables, context, operation_name)
            if not plans.same(data, result):  # the rows may have moved between the two reads
                # (a background job writing): the planned read once more, after graphql-core's
                data = await plans.execute(query, document, operation_name, variables, context)
            plans.compare(query, variables, data, result)
            if result.errors:  # a difference already: graphql-core's errors, as it answers
                return None
            data = result.data
        context.log["operation"] = operation.name.value if operation.name else None
        return orjson.dumps({"data": data})
