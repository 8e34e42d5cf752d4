"""Errors of the GraphQL endpoint: a code on every error (extensions.code), faults masked
behind the request id and logged with their trace."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from resolvers.dberrors import classify
from resolvers.errors import RequestError
from schema.context import Context

log = logging.getLogger("dealgraph")

INTERNAL = "INTERNAL_SERVER_ERROR"
LIMIT_MARKERS = ("maximum operation depth", "aliases found", "tokens. Parsing aborted")


def code_for(error: GraphQLError) -> str | None:
    """The extensions.code of an error that is not a fault, or None for a fault."""
    original = error.original_error
    if isinstance(original, RequestError):
        return original.code
    problem = classify(original)
    if problem is not None:  # the database away or busy: a 503 (server/auth.py)
        return problem.code
    if original is None and (error.extensions or {}).get("code") == INTERNAL:
        return INTERNAL  # shaped already (a streamed result passes the shaping twice)
    if original is not None and not isinstance(original, GraphQLError):
        return None
    if any(marker in error.message for marker in LIMIT_MARKERS):
        return "QUERY_LIMIT_EXCEEDED"
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.message.startswith("Variable"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def shape_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """Give every error a code; replace a fault by a generic message and the request id."""
    code = code_for(error)
    if code is None:
        return GraphQLError(
            f"Internal server error (request id {request_id}).",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": INTERNAL, "requestId": request_id},
        )
    if (error.extensions or {}).get("code") == code:
        return error
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )


class ErrorShaping(SchemaExtension):
    """Codes on every error, faults masked; also notes the operation name for the log."""

    def on_operation(self) -> Iterator[None]:
        yield
        ctx = self.execution_context
        context = ctx.context
        request_id = context.request_id if isinstance(context, Context) else ""
        if isinstance(context, Context):
            context.log["operation"] = ctx.operation_name
        result = ctx.result
        errors = getattr(result, "errors", None)
        problem = next((p for e in errors or () if (p := classify(e.original_error))), None)
        if result is not None and problem is not None:
            # the whole answer is the database's refusal (GraphQLApp.process_result makes it
            # a 503); a read may be retried, a write that may have reached it may not
            problem.after_write = ctx.operation_type is not OperationType.QUERY
            result.errors = [GraphQLError(
                problem.message, original_error=problem,
                extensions={"code": problem.code, "requestId": request_id},
            )]
        elif result is not None and errors:
            result.errors = [shape_error(e, request_id) for e in errors]
            if isinstance(context, Context):
                context.log["errors"] = len(result.errors)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """The same for every result of a subscription, before it is sent."""
        context = self.execution_context.context
        request_id = context.request_id if isinstance(context, Context) else ""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [shape_error(e, request_id) for e in errors]
        yield


class LoggingSchema(strawberry.Schema):
    """The schema class: faults logged with their trace and request id, expected errors at
    debug level."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        context = execution_context.context if execution_context else None
        if isinstance(context, Context) and context.comparing:
            return
        request_id = context.request_id if isinstance(context, Context) else ""
        for error in errors:
            if code_for(error) is None:
                log.error(
                    "unexpected error in %s (request id %s): %s",
                    ".".join(map(str, error.path or [])) or "operation",
                    request_id,
                    error.message,
                    exc_info=error.original_error,
                )
            else:
                log.debug("graphql error: %s", error.message)
