"""The GraphQL endpoint: the schema with its limits and caches, and the ASGI view (HTTP, and
subscriptions over the WebSocket) in front of the planner's door."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import lru_cache
from typing import Any

import orjson
import strawberry
from graphql import ASTValidationRule, DocumentNode, GraphQLError, parse, specified_rules
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.schema import validate_document
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from planner import Plans
from planner.door import Door
from resolvers.dberrors import DatabaseProblem
from resolvers.events import Broker
from resolvers.filestore import FileStore
from resolvers.loaders import Loaders
from schema import build_schema
from schema.context import Context
from server.auth import header
from server.errors import ErrorShaping, LoggingSchema, shape_error
from server.settings import Settings
from server.websocket import TextWebSocketAdapter, WebSocketConnection, WebSocketOperation

CACHE_SIZE = 1024  # distinct query texts parsed and validated once


class DealgraphSchema(LoggingSchema):
    plans: Plans | None = None  # None with DEALGRAPH_PLANNER=off
    door: Door | None = None


class Documents:
    """Each distinct query text parsed (within the token limit) and validated (with the
    depth and alias limits) once, for Strawberry's operations and for the planner's door."""

    def __init__(self, max_tokens: int, limit_rules: list[type[ASTValidationRule]]) -> None:
        self.max_tokens = max_tokens
        self.rules = (*specified_rules, *limit_rules)
        self.schema: strawberry.Schema | None = None  # once built
        self.parsed = lru_cache(maxsize=CACHE_SIZE)(self._parse)
        self.errors = lru_cache(maxsize=CACHE_SIZE)(self._validate)

    def _parse(self, query: str) -> DocumentNode:
        return parse(query, max_tokens=self.max_tokens)  # a GraphQLError is not kept

    def _validate(self, query: str) -> tuple[GraphQLError, ...]:
        assert self.schema is not None
        return tuple(validate_document(self.schema._schema, self.parsed(query), self.rules))

    def prepare(self, query: str) -> DocumentNode | None:
        """The door's: the document of a valid query text, else None."""
        try:
            return None if self.errors(query) else self.parsed(query)
        except GraphQLError:
            return None


class Prepared(SchemaExtension):
    """Strawberry's parsing and validation, from the Documents cache."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.query is not None:
            ctx.graphql_document = self.documents.parsed(ctx.query)
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.query is not None:
            ctx.pre_execution_errors = list(self.documents.errors(ctx.query))
        yield


def create_schema(settings: Settings) -> DealgraphSchema:
    # The limit rules are built once (Strawberry's limiter extensions build new classes every
    # time they are constructed).
    documents = Documents(settings.max_tokens, [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ])
    schema = build_schema(
        # Factories: Strawberry builds fresh extensions per request; the caches are shared.
        extensions=[
            WebSocketOperation,  # first: the operation's own session around everything else
            lambda: Prepared(documents),
            ErrorShaping,
        ],
        schema_class=DealgraphSchema,
    )
    assert isinstance(schema, DealgraphSchema)
    documents.schema = schema
    if settings.planner != "off":
        schema.plans = Plans(schema, settings.planner)
        schema.door = Door(schema.plans, documents.prepare)
    return schema


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    """A receive that gives the body already read, then waits (for a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view over the request state that the auth middleware prepared,
    behind the planner's door; and subscriptions over the WebSocket (graphql-transport-ws),
    authenticated by the token in connection_init, within the connection limits of the
    settings."""

    websocket_adapter_class = TextWebSocketAdapter

    def __init__(
        self,
        schema: DealgraphSchema,
        settings: Settings,
        *,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        broker: Broker | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            multipart_uploads_enabled=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(
                seconds=settings.ws_connection_init_timeout_seconds
            ),
            max_subscriptions_per_connection=settings.ws_max_subscriptions_per_connection,
            allowed_origins=settings.ws_allowed_origins,
        )
        self.door = schema.door
        self.settings = settings
        self.files = FileStore(settings.data_dir, settings.max_upload_bytes)
        self.sessions = sessions  # the WebSocket's operations open their own sessions
        self.broker = broker
        self.connections = 0  # open WebSocket connections in this process

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            if self.door is not None and "viewer" in scope.get("state", {}):
                rest = await self._through_door(self.door, scope, receive, send)
                if rest is None:
                    return
                receive = rest
            await super().__call__(scope, receive, send)
            return
        if self.sessions is None or self.connections >= self.settings.ws_max_connections:
            websocket = WebSocket(scope, receive=receive, send=send)
            await websocket.accept(subprotocol=await self.pick_websocket_subprotocol(websocket))
            await websocket.close(1013, "Too many connections; try again later.")
            return
        self.connections += 1
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.connections -= 1

    async def _through_door(
        self, door: Door, scope: Scope, receive: Receive, send: Send
    ) -> Receive | None:
        """None once the door has answered; else the receive for Strawberry's view."""
        method, payload = scope.get("method"), None
        if method == "POST" and header(scope, b"content-type").startswith("application/json"):
            body = await _read_body(receive)
            payload = await door.answer(body, self.context(scope))
            receive = _replay(body)
        elif method == "GET":
            params = QueryParams(scope.get("query_string", b""))
            if "query" in params:
                payload = await door.answer_get(params, self.context(scope))
        if payload is None:
            return receive
        await send({
            "type": "http.response.start", "status": 200,
            "headers": [(b"content-length", str(len(payload)).encode()),
                        (b"content-type", b"application/json")],
        })
        await send({"type": "http.response.body", "body": payload})
        return None

    async def on_ws_connect(self, context: Any) -> UnsetType | dict[str, object] | None:
        assert isinstance(context, WebSocketConnection)
        await context.accept()
        acknowledged: UnsetType = UNSET  # a plain connection_ack
        return acknowledged

    def context(self, scope: Scope) -> Context:
        """The Context of an authenticated HTTP request (the auth middleware's state)."""
        state = scope["state"]
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
            files=self.files,
            sessions=getattr(getattr(scope.get("app"), "state", None), "sessions", None),
            max_import_bytes=self.settings.max_import_bytes,
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        if request.scope["type"] == "websocket":
            assert self.sessions is not None and self.broker is not None
            return WebSocketConnection(  # type: ignore[return-value]
                self.settings, self.sessions, self.broker, self.files
            )
        if "viewer" not in request.scope.get("state", {}) and request.scope["type"] == "http":
            # Only the GraphiQL page gets here unauthenticated (see server.auth); Strawberry
            # asks for a context before it decides to render the page, which runs nothing.
            return None  # type: ignore[return-value]
        return self.context(request.scope)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """Codes for errors raised before ErrorShaping could see them: a parse error or a
        token limit aborts the operation hooks. The database away or busy: raised, for the
        auth middleware to retry the request or answer 503."""
        for error in result.errors or ():
            if isinstance(error.original_error, DatabaseProblem):
                raise error.original_error
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
