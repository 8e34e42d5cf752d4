"""The GraphQL endpoint: schema with limits and caches, error shaping, the ASGI view."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionContext, ExecutionResult

from resolvers.errors import RequestError
from resolvers.loaders import Loaders
from schema import build_schema
from schema.context import Context
from server.settings import Settings

log = logging.getLogger("dealgraph")

INTERNAL = "INTERNAL_SERVER_ERROR"
LIMIT_MARKERS = ("maximum operation depth", "aliases found", "tokens. Parsing aborted")


def _code_for(error: GraphQLError) -> str | None:
    """The extensions.code of an error that is not a fault, or None for a fault."""
    original = error.original_error
    if isinstance(original, RequestError):
        return original.code
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
    code = _code_for(error)
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
        if result is not None and errors:
            result.errors = [shape_error(e, request_id) for e in errors]
            if isinstance(context, Context):
                context.log["errors"] = len(result.errors)


class DealgraphSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log faults with their trace and request id; expected errors at debug level."""
        context = execution_context.context if execution_context else None
        request_id = context.request_id if isinstance(context, Context) else ""
        for error in errors:
            if _code_for(error) is None:
                log.error(
                    "unexpected error in %s (request id %s): %s",
                    ".".join(map(str, error.path or [])) or "operation",
                    request_id,
                    error.message,
                    exc_info=error.original_error,
                )
            else:
                log.debug("graphql error: %s", error.message)


def create_schema(settings: Settings) -> strawberry.Schema:
    # The limit rules are built once: the validation cache is keyed by the rule classes,
    # and Strawberry's limiter extensions build new classes every time they are constructed.
    limit_rules = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    return build_schema(
        # Factories: Strawberry builds fresh extensions per request; the caches are shared.
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
            lambda: ParserCache(maxsize=1024),
            lambda: AddValidationRules(limit_rules),
            lambda: ValidationCache(maxsize=1024),
            ErrorShaping,
        ],
        schema_class=DealgraphSchema,
    )


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view over the request state that the auth middleware prepared."""

    def __init__(self, schema: strawberry.Schema, settings: Settings) -> None:
        super().__init__(schema, graphql_ide="graphiql")
        self.settings = settings

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        state = request.scope.get("state", {})
        if "viewer" not in state and request.scope["type"] == "http":
            # Only the GraphiQL page gets here unauthenticated (see server.auth); Strawberry
            # asks for a context before it decides to render the page, which runs nothing.
            return None  # type: ignore[return-value]
        session, viewer = state["session"], state["viewer"]
        return Context(
            session=session,
            viewer=viewer,
            loaders=Loaders(
                session, viewer, self.settings.default_page_size, self.settings.max_page_size
            ),
            default_page_size=self.settings.default_page_size,
            max_page_size=self.settings.max_page_size,
            request_id=state["request_id"],
            log=state["log"],
        )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """Codes for errors raised before ErrorShaping could see them: a parse error or a
        token limit aborts the operation hooks."""
        if result.errors:
            state = request.scope.get("state", {})
            request_id = state.get("request_id", "")
            result.errors = [
                e if (e.extensions or {}).get("code") else shape_error(e, request_id)
                for e in result.errors
            ]
            if "log" in state:
                state["log"]["errors"] = len(result.errors)
        return await super().process_result(request, result)

    def encode_json(self, data: Any) -> bytes:
        return orjson.dumps(data)
