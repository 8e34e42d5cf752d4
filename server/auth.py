"""Authentication middleware for /graphql and the CSV export: bearer token → viewer, one
session per request, and one structured log line per request."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolvers.auth import authenticate
from resolvers.permissions import load_viewer
from server.settings import Settings

access_log = logging.getLogger("dealgraph.access")


def header(scope: Scope, name: bytes) -> str:
    """A request header's value (the first of that name), or ""."""
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def wants_graphiql(scope: Scope) -> bool:
    """A browser asking for the GraphiQL page: a GET for HTML without a query to run (the same
    test Strawberry makes before it renders the page instead of executing anything)."""
    return (
        scope.get("method") == "GET"
        and "text/html" in header(scope, b"accept")
        and "query" not in QueryParams(scope.get("query_string", b""))
    )


async def _unauthenticated(send: Send, request_id: str, message: str) -> None:
    body = orjson.dumps(
        {"data": None, "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]}
    )
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="dealgraph"'),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """Wraps an ASGI endpoint (the GraphQL app, the CSV export): 401 without a valid token,
    otherwise a session and a viewer in the request state (closed when the response has been
    sent, so a streamed response reads through the same session).

    `anonymous` picks the requests let through without a token, with neither session nor
    viewer: for /graphql, the GraphiQL page (`wants_graphiql`); by default none.
    """

    def __init__(
        self,
        app: ASGIApp,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        anonymous: Callable[[Scope], bool] | None = None,
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.settings = settings
        self.anonymous = anonymous

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = header(scope, b"x-request-id")[:64] or uuid.uuid4().hex
        started = time.perf_counter()
        record: dict[str, Any] = {"request_id": request_id, "method": scope.get("method")}
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if self.anonymous is not None and self.anonymous(scope):  # no session, no viewer
                scope.setdefault("state", {}).update(request_id=request_id, log=record)
                await self.app(scope, receive, send_with_id)
                return
            scheme, _, token = header(scope, b"authorization").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                status = 401
                await _unauthenticated(
                    send, request_id, "Send an API token: `Authorization: Bearer <token>`."
                )
                return
            async with self.sessions() as session:
                user = await authenticate(session, token.strip())
                if user is None:
                    status = 401
                    await _unauthenticated(send, request_id, "The token is unknown or revoked.")
                    return
                record["user"] = user.username
                viewer = await load_viewer(session, user, self.settings.sharing)
                state = scope.setdefault("state", {})
                state.update(session=session, viewer=viewer, request_id=request_id, log=record)
                await self.app(scope, receive, send_with_id)
        finally:
            record["status"] = status
            record["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            access_log.info(json.dumps(record, default=str))
