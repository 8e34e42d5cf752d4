"""Engine and session factory; SQLite gets WAL, a busy timeout and foreign keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from server.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    return create_async_engine(url, pool_size=settings.pool_size, max_overflow=settings.pool_size)

def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))

class RequestSession(AsyncSession):
    """One request's session. GraphQL resolves sibling fields concurrently and DataLoaders
    dispatch their batches as separate tasks, but a session runs one statement at a time:
    statements queue on a lock instead of failing with "concurrent operations". A statement
    once started runs to its end even if its field is cancelled (graphql-core cancels the
    siblings of a failed non-null field), so the connection is never left mid-statement."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._statement_lock = asyncio.Lock()

    async def _serialised(self, run: Callable[[], Awaitable[Any]]) -> Any:
        async def locked() -> Any:
            async with self._statement_lock:
                return await run()

        return await asyncio.shield(locked())

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await self._serialised(lambda: super(RequestSession, self).execute(*args, **kwargs))

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return await self._serialised(lambda: super(RequestSession, self).scalar(*args, **kwargs))

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return await self._serialised(lambda: super(RequestSession, self).get(*args, **kwargs))

    async def close(self) -> None:
        async with self._statement_lock:  # after any statement still running
            await super().close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=RequestSession, expire_on_commit=False)
