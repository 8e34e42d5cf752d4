"""GraphQL over the WebSocket (graphql-transport-ws): the connection's token, checked at
connection_init; a session and context of its own for each operation; text frames."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.types.graphql import OperationType

from resolvers import live
from resolvers.auth import authenticate
from resolvers.dberrors import classify
from resolvers.errors import RequestError
from resolvers.events import Broker
from resolvers.filestore import FileStore
from resolvers.loaders import Loaders
from resolvers.permissions import Viewer, load_viewer
from schema.context import Context
from server.settings import Settings

log = logging.getLogger("dealgraph")
access_log = logging.getLogger("dealgraph.access")


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

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    broker: Broker
    files: FileStore
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    connection_params: dict[str, Any] | None = None
    viewer: Viewer | None = None
    token: str | None = None

    async def accept(self) -> None:
        """connection_init: the payload's token must be a valid one (else 4403 Forbidden)."""
        token = bearer_token(self.connection_params or {})
        if token is None:
            raise ConnectionRejectionError({"message": "Send a token in connection_init."})
        try:
            async with self.sessions() as session:
                user = await authenticate(session, token)
                if user is None:
                    raise ConnectionRejectionError({"message": "The token is unknown or revoked."})
                self.viewer = await load_viewer(session, user, self.settings.sharing)
        except Exception as error:
            problem = classify(error)
            if problem is None:
                raise
            log.warning("%s (connection id %s): %s", problem.code, self.request_id,
                        problem.detail)
            raise ConnectionRejectionError(
                {"message": problem.message, "code": problem.code}
            ) from None
        self.token = token

    def operation_context(self, session: AsyncSession) -> Context:
        assert self.viewer is not None and self.token is not None  # after connection_ack
        settings = self.settings
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
            live=live.Live(self.broker, self.token, settings.sharing),
            files=self.files,
            sessions=self.sessions,
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
        started = time.perf_counter()
        async with connection.sessions() as session:
            context = connection.operation_context(session)
            self.execution_context.context = context
            try:
                yield
            finally:
                context.log["request_id"] = context.request_id
                context.log["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
                access_log.info(orjson.dumps(context.log, default=str).decode())

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
