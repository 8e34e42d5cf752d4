"""Authentication middleware for /graphql and the CSV export: bearer token → viewer, one
session per request, and one structured log line per request."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.exc import PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolvers.dberrors import UNAVAILABLE, DatabaseProblem, DatabaseUnavailable, classify
from resolvers.tokens import verified_viewer
from server.settings import Settings

log = logging.getLogger("dealgraph")
access_log = logging.getLogger("dealgraph.access")
REPLAYABLE_BYTES = 1024 * 1024  # a body up to this size is kept, to retry its request


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


async def _json_error(
    send: Send, status: int, message: str, extensions: dict[str, str],
    headers: list[tuple[bytes, bytes]],
) -> None:
    """A GraphQL-shaped JSON error, answered instead of the app."""
    body = orjson.dumps({"data": None, "errors": [{"message": message, "extensions": extensions}]})
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), *headers],
    })
    await send({"type": "http.response.body", "body": body})


async def _unauthenticated(send: Send, request_id: str, message: str) -> None:
    await _json_error(send, 401, message, {"code": "UNAUTHENTICATED"}, [
        (b"www-authenticate", b'Bearer realm="dealgraph"'), (b"x-request-id", request_id.encode()),
    ])


async def _refused(send: Send, problem: DatabaseProblem, request_id: str) -> None:
    """503: the database is away or busy; the client may try again in a moment."""
    await _json_error(
        send, 503, problem.message, {"code": problem.code, "requestId": request_id},
        [(b"retry-after", b"1")],
    )


class _Body:
    """The request body as the app reads it, kept (up to REPLAYABLE_BYTES) so that the
    request can run again."""

    def __init__(self, receive: Receive) -> None:
        self.upstream = receive
        self.chunks: list[bytes] = []
        self.size = 0
        self.read = False  # the app has asked for the body
        self.complete = False  # ... and it is all in `chunks`

    async def receive(self) -> Message:
        message = await self.upstream()
        if message["type"] == "http.request":
            self.read = True
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size <= REPLAYABLE_BYTES:
                self.chunks.append(chunk)
                self.complete = not message.get("more_body", False)
        return message

    def replay(self) -> Receive | None:
        """A receive for a second run, or None if the body is no longer to be had."""
        if not self.read:
            return self.upstream
        if not self.complete:
            return None
        pending = [b"".join(self.chunks)]

        async def receive() -> Message:
            if pending:
                return {"type": "http.request", "body": pending.pop(), "more_body": False}
            return await self.upstream()  # (a disconnect)

        return receive


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
        responded = False  # the response has begun: nothing else can be answered

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        async def serve(receive: Receive) -> None:
            nonlocal status
            async with self.sessions() as session:
                try:
                    viewer = await verified_viewer(session, token.strip(), self.settings.sharing)
                    if viewer is None:
                        status = 401
                        await _unauthenticated(send, request_id, "The token is unknown or revoked.")
                        return
                    record["user"] = viewer.user.username
                    state = scope.setdefault("state", {})
                    state.update(session=session, viewer=viewer, request_id=request_id, log=record)
                    await self.app(scope, receive, send_with_id)
                except Exception as error:
                    if isinstance(classify(error), DatabaseUnavailable):
                        # its connection is not to be pooled again (resolvers/raw.py, or
                        # SQLAlchemy, may have discarded it already)
                        with contextlib.suppress(PendingRollbackError):
                            await session.invalidate()
                    raise

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
            body = _Body(receive)
            try:
                await serve(body.receive)
            except Exception as error:
                problem = classify(error)
                again = body.replay()
                if (
                    problem is None or responded or problem.code != UNAVAILABLE
                    or problem.after_write or again is None
                ):
                    raise
                # A connection that died under a read (or before a write reached the
                # database) has been discarded: once more, on a fresh one.
                log.info("database connection lost (request id %s): %s; retrying once",
                         request_id, problem.detail)
                await serve(again)
        except Exception as error:
            problem = classify(error)
            if problem is None or responded:  # a fault, or too late for another answer
                raise
            await _refused(send_with_id, problem, request_id)
            log.warning("%s (request id %s): %s", problem.code, request_id, problem.detail)
        finally:
            record["status"] = status
            record["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            access_log.info(orjson.dumps(record, default=str).decode())
