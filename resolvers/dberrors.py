"""The database away or busy: how the drivers say so, and what a client is told.

A connection the server closed (PostgreSQL restarted, `pg_terminate_backend`), a database that
refuses connections, or an SQLite file that cannot be opened is DATABASE_UNAVAILABLE; an
SQLite lock held beyond the busy timeout (by another process) is DATABASE_BUSY. Both answer
HTTP 503 with Retry-After (server/auth.py): the client may try again. Neither is a fault of
the server, so neither is logged with a traceback.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

UNAVAILABLE = "DATABASE_UNAVAILABLE"
BUSY = "DATABASE_BUSY"


class DatabaseProblem(Exception):
    """The database could not serve a request: a top-level error (`code`), HTTP 503."""

    code = UNAVAILABLE
    message = "The database is unavailable; try again in a moment."

    def __init__(self, detail: str = "") -> None:
        super().__init__(self.message)
        self.detail = detail  # the driver's words, for the log
        # Set once the request's mutation may have reached the database: not retried then.
        self.after_write = False


class DatabaseUnavailable(DatabaseProblem):
    pass


class DatabaseBusy(DatabaseProblem):
    code = BUSY
    message = "The database is busy with other writes; try again in a moment."


# asyncpg's words for a connection that is gone (the server closed it, or is shutting down
# or starting up); by name, so that nothing here imports the PostgreSQL driver.
_ASYNCPG_GONE = {
    "ConnectionDoesNotExistError", "AdminShutdownError", "CrashShutdownError",
    "CannotConnectNowError", "ConnectionFailureError", "ClientCannotConnectError",
    "SQLClientUnableToEstablishSQLConnectionError", "ConnectionRejectionError",
    "TooManyConnectionsError",
}
_CLOSED = ("connection is closed", "connection was closed", "underlying connection is closed")
# asyncpg's protocol stuck in a state that only a dead connection gets to: 1 failed, 2 consuming
# an error (a FATAL one, e.g. pg_terminate_backend's, that came while the connection was idle:
# is_closed() says False until the socket's end is read), 4 terminating.
_STUCK = ("another operation (1)", "another operation (2)", "another operation (4)")
_SQLITE_BUSY = ("database is locked", "database table is locked")
_SQLITE_GONE = ("unable to open database file", "disk i/o error")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (SQLAlchemy's `orig`) and what caused it."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None,
                 current.__cause__, current.__context__]


def classify(error: BaseException | None) -> DatabaseProblem | None:
    """What `error` says about the database, or None when it is about something else."""
    if error is None:
        return None
    for cause in _chain(error):
        if isinstance(cause, DatabaseProblem):
            return cause
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return DatabaseUnavailable(str(cause.orig))
        message = str(cause).lower()
        if isinstance(cause, sa_exc.DisconnectionError | ConnectionError | socket.gaierror):
            return DatabaseUnavailable(str(cause))
        if isinstance(cause, sqlite3.OperationalError):
            if message.startswith(_SQLITE_BUSY):
                return DatabaseBusy(str(cause))
            if message.startswith(_SQLITE_GONE):
                return DatabaseUnavailable(str(cause))
        name = type(cause).__name__
        if type(cause).__module__.startswith("asyncpg"):
            if (
                name in _ASYNCPG_GONE
                or (name == "InterfaceError" and any(words in message for words in _CLOSED))
                or (name == "InternalClientError" and any(words in message for words in _STUCK))
            ):
                return DatabaseUnavailable(str(cause))
            if name == "LockNotAvailableError":  # beyond a lock_timeout
                return DatabaseBusy(str(cause))
    return None
