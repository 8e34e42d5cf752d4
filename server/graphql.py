"""The GraphQL endpoint: schema with limits and caches, error shaping, the ASGI view."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
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
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from planner import Plans
from resolvers import live
from resolvers.auth import authenticate
from resolvers.dberrors import DatabaseProblem, classify
from resolvers.errors import RequestError
from resolvers.events import Broker
from resolvers.filestore import FileStore
from resolvers.loaders import Loaders
from resolvers.permissions import Viewer, load_viewer
from schema import build_schema
from schema.context import Context
from server.auth import header
from server.settings import Settings

log = logging.getLogger("dealgraph")
access_log = logging.getLogger("dealgraph.access")

INTERNAL = "INTERNAL_SERVER_ERROR"
LIMIT_MARKERS = ("maximum operation depth", "aliases found", "tokens. Parsing aborted")


def _code_for(error: GraphQLError) -> str | None:
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


class PlannedExecution(SchemaExtension):
    """Answers a query from its plan (planner/) when the planner covers it; graphql-core
    resolves everything else. In "verify" mode both run and differences are recorded."""

    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        schema = ctx.schema
        plans = getattr(schema, "plans", None)
        planned = None
        if (
            isinstance(plans, Plans) and isinstance(ctx.context, Context)
            and ctx.context.live is None and ctx.operation_type is OperationType.QUERY
            and ctx.graphql_document is not None and ctx.query is not None
        ):
            try:
                planned = ctx.context.planned if ctx.context.planner_tried else (
                    await plans.execute(ctx.query, ctx.graphql_document, ctx.operation_name,
                                        ctx.variables, ctx.context))
            except Exception as error:  # the database away or busy (Plans.execute): answered
                # as graphql-core answers it, an error for ErrorShaping to turn into a 503
                ctx.result = ExecutionResult(
                    data=None, errors=[GraphQLError(str(error), original_error=error)]
                )
                yield
                return
            if planned is not None and plans.mode == "on":
                ctx.result = ExecutionResult(data=planned, errors=None)
        yield
        if planned is not None and isinstance(plans, Plans) and plans.mode == "verify":
            plans.compare(ctx.query or "", ctx.variables, planned, ctx.result)


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
    schema = build_schema(
        # Factories: Strawberry builds fresh extensions per request; the caches are shared.
        extensions=[
            WebSocketOperation,  # first: the operation's own session around everything else
            lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
            lambda: ParserCache(maxsize=1024),
            lambda: AddValidationRules(limit_rules),
            lambda: ValidationCache(maxsize=1024),
            ErrorShaping,
            PlannedExecution,
        ],
        schema_class=DealgraphSchema,
    )
    if settings.planner != "off":
        schema.plans = Plans(schema, settings.planner)  # type: ignore[attr-defined]
    return schema


# --- the WebSocket ------------------------------------------------------------------------


def bearer_token(params: Mapping[str, Any]) -> str | None:
    """The token of a connection_init payload: {"Authorization": "Bearer <token>"} (any case
    of the key), or {"token": "<token>"}."""
    for key, value in params.items():
        if not isinstance(value, str):
            continue
        if key.lower() == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif key.lower() == "token" and value.strip():
            return value.strip()
    return None


@dataclass
class WebSocketConnection:
    """One WebSocket connection (Strawberry's connection-wide context): who opened it, once
    connection_init has been accepted. Each operation on it runs in a Context of its own
    (see WebSocketOperation)."""

    view: GraphQLApp
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    connection_params: dict[str, Any] | None = None
    viewer: Viewer | None = None
    token: str | None = None

    def operation_context(self, session: AsyncSession) -> Context:
        assert self.viewer is not None and self.token is not None  # after connection_ack
        view, settings = self.view, self.view.settings
        assert view.broker is not None
        return Context(
            session=session,
            viewer=self.viewer,
            loaders=Loaders(
                session, self.viewer, settings.default_page_size, settings.max_page_size
            ),
            default_page_size=settings.default_page_size,
            max_page_size=settings.max_page_size,
            request_id=uuid.uuid4().hex,
            log={"connection_id": self.request_id, "transport": "websocket",
                 "user": self.viewer.user.username},
            live=live.Live(view.broker, self.token, settings.sharing),
            files=view.files,
            sessions=view.sessions,
            max_import_bytes=settings.max_import_bytes,
        )


class WebSocketOperation(SchemaExtension):
    """An operation over the WebSocket gets its own session and context (the connection's
    is shared by all its operations), re-authenticates the connection's token, and logs one
    line when it ends. Over HTTP (where the auth middleware did all this) a subscription is
    refused: they are served over the WebSocket only."""

    async def on_operation(self) -> AsyncIterator[None]:
        connection = self.execution_context.context
        if not isinstance(connection, WebSocketConnection):
            yield
            return
        assert connection.view.sessions is not None
        started = time.perf_counter()
        async with connection.view.sessions() as session:
            context = connection.operation_context(session)
            self.execution_context.context = context
            try:
                yield
            finally:
                context.log["request_id"] = context.request_id
                context.log["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
                access_log.info(json.dumps(context.log, default=str))

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if (
            isinstance(context, Context) and context.live is None
            and self.execution_context.operation_type is OperationType.SUBSCRIPTION
        ):
            raise RequestError(
                "Subscribe over the WebSocket on /graphql (protocol graphql-transport-ws)."
            )
        if isinstance(context, Context) and context.live is not None:
            # The token may have been revoked since the connection was opened.
            viewer = await live.current_viewer(context.session, context.live)
            context.viewer = viewer
            context.loaders = Loaders(
                context.session, viewer, context.default_page_size, context.max_page_size
            )
        yield


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """Sends JSON as text frames: graphql-ws clients refuse binary ones (and the view's
    encode_json gives bytes, for HTTP)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


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
    """Strawberry's ASGI view over the request state that the auth middleware prepared; and
    subscriptions over the WebSocket (graphql-transport-ws), authenticated by the token in
    connection_init, within the connection limits of the settings."""

    websocket_adapter_class = TextWebSocketAdapter

    def __init__(
        self,
        schema: strawberry.Schema,
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
        self.settings = settings
        self.files = FileStore(settings.data_dir, settings.max_upload_bytes)
        self.sessions = sessions  # the WebSocket's operations open their own sessions
        self.broker = broker
        self.connections = 0  # open WebSocket connections in this process

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            plans = getattr(self.schema, "plans", None)
            if (
                isinstance(plans, Plans) and plans.mode != "off" and scope.get("method") == "POST"
                and header(scope, b"content-type").startswith("application/json")
                and "viewer" in scope.get("state", {})
            ):
                body = await _read_body(receive)
                if await self.answer_planned(plans, scope, body, send):
                    return
                receive = _replay(body)
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

    async def answer_planned(
        self, plans: Plans, scope: Scope, body: bytes, send: Send
    ) -> bool:
        """The hot path: a query whose plan is cached (so it was parsed, checked against the
        limits and validated when it first ran) is answered from the plan without Strawberry's
        per-request machinery. False: let Strawberry handle the request — with what the plan
        gave (None when it had no answer), so that the planner does not run twice, and in
        "verify" mode so that graphql-core's answer is compared with this one."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(request, dict):
            return False
        query, variables = request.get("query"), request.get("variables")
        operation_name = request.get("operationName")
        if (
            not isinstance(query, str) or not isinstance(variables, dict | None)
            or not isinstance(operation_name, str | None) or request.get("extensions")
        ):
            return False
        state = scope["state"]
        context = await self.get_context(Request(scope), Response())
        data = await plans.execute_cached(query, operation_name, variables, context)
        if data is None or plans.mode == "verify":
            if query in plans.documents:  # else Strawberry parses, validates and plans it
                state["planned"] = data
            return False
        state["log"]["operation"] = operation_name
        payload = orjson.dumps({"data": data})
        await send({
            "type": "http.response.start", "status": 200,
            "headers": [(b"content-length", str(len(payload)).encode()),
                        (b"content-type", b"application/json")],
        })
        await send({"type": "http.response.body", "body": payload})
        return True

    async def on_ws_connect(self, context: Any) -> UnsetType | dict[str, object] | None:
        """connection_init: the payload's token must be a valid one (else 4403 Forbidden)."""
        assert isinstance(context, WebSocketConnection) and self.sessions is not None
        token = bearer_token(context.connection_params or {})
        if token is None:
            raise ConnectionRejectionError({"message": "Send a token in connection_init."})
        try:
            async with self.sessions() as session:
                user = await authenticate(session, token)
                if user is None:
                    raise ConnectionRejectionError({"message": "The token is unknown or revoked."})
                context.viewer = await load_viewer(session, user, self.settings.sharing)
        except Exception as error:
            problem = classify(error)
            if problem is None:
                raise
            log.warning("%s (connection id %s): %s", problem.code, context.request_id,
                        problem.detail)
            raise ConnectionRejectionError(
                {"message": problem.message, "code": problem.code}
            ) from None
        context.token = token
        acknowledged: UnsetType = UNSET  # a plain connection_ack
        return acknowledged

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        if request.scope["type"] == "websocket":
            return WebSocketConnection(self)  # type: ignore[return-value]
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
            files=self.files,
            sessions=getattr(getattr(request.scope.get("app"), "state", None), "sessions", None),
            max_import_bytes=self.settings.max_import_bytes,
            planner_tried="planned" in state,
            planned=state.get("planned"),
        )

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
