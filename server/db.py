"""Engine and session factory; SQLite gets WAL, a busy timeout and foreign keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import event, exc, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from resolvers.tx import BUSY_TIMEOUT
from server.settings import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    pool: dict[str, Any] = {"pool_size": settings.pool_size, "max_overflow": settings.pool_size}
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            pool = {}  # one connection, which SQLAlchemy shares
        # resolvers/raw.py reads on the connection from the event loop's thread (its
        # statements are short, indexed and bounded; the rest goes through aiosqlite's thread)
        engine = create_async_engine(url, connect_args={"check_same_thread": False}, **pool)
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    engine = create_async_engine(url, **pool)
    if engine.dialect.driver == "asyncpg":
        _configure_asyncpg(engine)
    return engine


def _configure_asyncpg(engine: AsyncEngine) -> None:
    # An INSERT of many rows goes as multi-row statements of up to 1000 rows (as psycopg2's
    # dialect does), not as one execution per row: the statement-level triggers of migration
    # 0010 then run once per thousand deals (the demo data, a CSV import).
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # NUMERIC in text form: Decimal(text) costs 60% of asyncpg's binary decoding (a
        # pipeline page reads some 500 of them), and gives the same values, scale included.
        dbapi_connection.run_async(lambda connection: connection.set_type_codec(
            "numeric", encoder=str, decoder=Decimal, schema="pg_catalog", format="text"
        ))

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A connection the server closed (a restart, pg_terminate_backend) is known to be
        # closed once the event loop has read its end: never hand it out. The pool then
        # replaces it, and every connection older than it (they went the same way). Free, unlike
        # pool_pre_ping's round trip per checkout; what this misses (a connection that died
        # since) fails its first statement, is invalidated there and the request retried
        # (resolvers/raw.py, server/auth.py).
        if dbapi_connection.driver_connection.is_closed():
            raise exc.InvalidatePoolError("the database server closed the connection")


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        record.info[BUSY_TIMEOUT] = busy_timeout_ms / 1000  # resolvers/tx.py waits as long
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # SQLAlchemy's transaction sends its BEGIN (or the `sqlite_begin` execution option's, e.g.
    # BEGIN IMMEDIATE) with its first statement, and its ROLLBACK only once one was sent (a
    # deferred BEGIN takes neither lock nor snapshot before a statement anyway): a request that
    # reads through resolvers/raw.py alone waits for no round trip to aiosqlite's thread.
    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.info["begin"] = connection.get_execution_options().get("sqlite_begin", "BEGIN")

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _on_execute(connection: Any, cursor: Any, *_: Any) -> None:
        if cursor is not None and "begin" in connection.info:  # (raw.py's have no cursor)
            cursor.execute(connection.info.pop("begin"))

    @event.listens_for(sync_engine, "commit")
    @event.listens_for(sync_engine, "rollback")
    def _on_end(connection: Any) -> None:
        connection.info.pop("begin", None)

    dialect = sync_engine.dialect
    do_rollback = dialect.do_rollback

    def rollback_begun(dbapi_connection: Any) -> None:
        if dbapi_connection.driver_connection.in_transaction:
            do_rollback(dbapi_connection)

    dialect.do_rollback = rollback_begun  # type: ignore[method-assign]


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
