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
from typing import Any

import orjson
from graphql import DocumentNode, OperationType, get_operation_ast

from planner.core import Plans
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
        if document is None or not _is_query(document, operation_name):
            return None
        data = await plans.execute(query, document, operation_name, variables, context)
        if data is None:
            return None
        if plans.mode == "verify":
            result = await plans.schema.execute(
                query, variables, context, operation_name=operation_name
            )
            plans.compare(query, variables, data, result)
            if result.errors:  # a difference already: graphql-core's errors, as it answers
                return None
            data = result.data
        context.log["operation"] = operation_name
        return orjson.dumps({"data": data})



def _is_query(document: DocumentNode, operation_name: str | None) -> bool:
    """The operation to run is a query (mutations and subscriptions are graphql-core's)."""
    operation = get_operation_ast(document, operation_name)
    return operation is not None and operation.operation is OperationType.QUERY
