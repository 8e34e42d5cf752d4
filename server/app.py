"""The ASGI app factory: /graphql (GraphiQL in a browser), /export/opportunities.csv,
/documents/{id} (a document's file), /healthz and /readyz."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute, request_response

from resolvers import events, importing
from resolvers.filestore import FileStore
from resolvers.tokens import CACHE, CHANNEL, TokenCache
from server.auth import AuthMiddleware, wants_graphiql
from server.db import create_engine, create_sessionmaker
from server.documents import document_download
from server.export import opportunities_csv
from server.migrate import is_at_head
from server.settings import Settings
from server.view import GraphQLApp, create_schema

log = logging.getLogger("dealgraph.server")


async def _recover_imports(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Import jobs left RUNNING by a process that is gone become INTERRUPTED (resumable)."""
    try:
        await importing.recover_interrupted(sessions)
    except Exception as exc:  # noqa: BLE001 - a database not migrated yet, say: not fatal
        log.warning("could not check for interrupted import jobs: %s", exc)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    # No log line names its caller's file and line: the lookup walks the stack on every
    # record, the access log's among them (the logging HOWTO's "Optimization").
    logging._srcfile = None
    logging.logMultiprocessing = False
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    # Live updates: what a write commits is published through this process's broker.
    broker = events.Broker(settings.database_url, settings.ws_queue_size)
    # Verified tokens, kept a few seconds; on PostgreSQL only while the broker's connection
    # hears what may refuse one (resolvers/tokens.py).
    tokens = None
    if settings.token_cache_seconds > 0:
        tokens = TokenCache(settings.token_cache_seconds, needs_listener=broker.dsn is not None)
        broker.watch(CHANNEL, tokens.heard, tokens.listening)
    sessions.configure(info={events.BROKER: broker, CACHE: tokens})
    graphql = AuthMiddleware(
        GraphQLApp(create_schema(settings), settings, sessions=sessions, broker=broker),
        sessions, settings, anonymous=wants_graphiql,
    )
    export = AuthMiddleware(request_response(opportunities_csv), sessions, settings)
    files = FileStore(settings.data_dir, settings.max_upload_bytes)
    download = AuthMiddleware(request_response(document_download(files)), sessions, settings)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        """Ready when the database answers and its schema is at the latest migration."""
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                at_head = await connection.run_sync(is_at_head, settings.database_url)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, 503)
        if not at_head:
            return JSONResponse({"status": "unavailable", "reason": "migrations pending"}, 503)
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # What exists now (modules, the schema, models, compiled plans' machinery) lives as
        # long as the process: frozen, a full garbage collection no longer walks it (some
        # 150,000 objects, tens of ms during which every request in flight waits).
        gc.collect()
        gc.freeze()
        await _recover_imports(sessions)
        broker.start()  # (PostgreSQL) the token cache is used once it listens
        yield
        await broker.close()
        await engine.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),  # subscriptions (graphql-transport-ws)
            Route("/export/opportunities.csv", export, methods=["GET"]),
            Route("/documents/{id}", download, methods=["GET"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.broker = broker
    app.state.tokens = tokens
    return app
