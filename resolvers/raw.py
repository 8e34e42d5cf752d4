"""Statements compiled once and run on the driver's own connection (asyncpg, aiosqlite) under
a session's: for the reads every request makes (the token's user, the planner's statements),
without SQLAlchemy's per-statement work (building, cache keys, execution contexts, result
objects). The statements are SQLAlchemy's, built by the same functions as everywhere else;
only their execution is lighter. Each one is announced to the engine's before_cursor_execute
listeners (the statement counters of the tests and the benchmarks), without cursor or context.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Integer, Numeric, String, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.dberrors import DatabaseUnavailable, classify

# The ids of a batch (a relation's parents, say) as one parameter whatever their number, so
# that the statement's text, compiled once, serves every request: an array on PostgreSQL, a
# JSON array (json_each) on SQLite. Pass the ids as `ids=[...]` to Compiled.fetch.
_UNNEST = func.unnest(bindparam("ids", [], type_=ARRAY(Integer)))
_JSON_EACH = func.json_each(bindparam("ids", "[]", type_=String)).table_valued("value")
IDS: dict[str, Any] = {
    "postgresql": select(_UNNEST).scalar_subquery(),
    "sqlite": select(_JSON_EACH.c.value).scalar_subquery(),
}


@dataclass(frozen=True)
class ParentIds:
    """The same as a table `parents` (column `value`) that each parent's page is read against:
    by a LATERAL subquery with its LIMIT (PostgreSQL), or, without LATERAL (SQLite), by a
    correlated `id IN (... LIMIT)` per parent."""

    table: Any
    lateral: bool


IDS_TABLE: dict[str, ParentIds] = {
    "postgresql": ParentIds(
        _UNNEST.table_valued("value").render_derived(name="parents"), lateral=True),
    "sqlite": ParentIds(_JSON_EACH.alias("parents"), lateral=False),
}
_IDS_VALUE: dict[str, Callable[[Sequence[int]], Any]] = {
    "postgresql": list,
    "sqlite": lambda ids: orjson.dumps(list(ids)).decode(),
}


async def _asyncpg_fetch(connection: Any, sql: str, params: Sequence[Any]) -> Sequence[Any]:
    return await connection.fetch(sql, *params)  # type: ignore[no-any-return]


async def _sqlite_fetch(connection: Any, sql: str, params: Sequence[Any]) -> Sequence[Any]:
    # on the sqlite3 connection under aiosqlite's, from this thread (server/db.py opens it
    # with check_same_thread=False): a hop to aiosqlite's thread and back costs more than
    # these short reads, and makes the thread and the event loop take turns at the GIL
    return connection._conn.execute(sql, params).fetchall()  # type: ignore[no-any-return]


# How the driver under each dialect runs a statement's text and gives its rows (as tuples, or
# asyncpg's Records).
_FETCH: dict[str, Callable[[Any, str, Sequence[Any]], Awaitable[Sequence[Any]]]] = {
    "postgresql": _asyncpg_fetch,
    "sqlite": _sqlite_fetch,
}
NUMERIC_OID = 1700  # asyncpg reads NUMERIC columns as Decimal: SQLAlchemy converts nothing


@dataclass(frozen=True)
class Connection:
    """A session's connection (in its transaction, if one has begun) and the driver's under it."""

    sync: Any  # SQLAlchemy's
    driver: Any
    dialect: Any

    @staticmethod
    def dialect_of(session: AsyncSession) -> Any:
        """The session's dialect, or None for one without a driver path here."""
        bind = session.bind
        return None if bind is None or bind.dialect.name not in _FETCH else bind.dialect

    @classmethod
    async def of(cls, session: AsyncSession) -> Connection | None:
        """None for a dialect without a driver path here."""
        dialect = cls.dialect_of(session)
        if dialect is None:
            return None
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        return cls(connection.sync_connection, driver, dialect)


def _invalidate(sync: Any, error: BaseException) -> None:
    """What SQLAlchemy does when its own statements meet a dead connection (these bypass it):
    the connection is discarded instead of going back to the pool, and so is every pooled
    connection opened before it (a server restart took them all)."""
    if sync.invalidated:
        return
    sync.engine.pool._invalidate(sync.connection, error, _checkin=False)
    sync.invalidate(error)


@dataclass(frozen=True)
class Compiled:
    """A statement compiled once for one dialect: its text, its parameters' values in order
    (those named in `slots` given on each run), and the conversions SQLAlchemy applies to its
    result's columns (dates, decimals and booleans on SQLite, UTC instants everywhere)."""

    dialect: str
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, str, Callable[[Any], Any] | None], ...]
    convert: tuple[tuple[int, Callable[[Any], Any]], ...]

    @classmethod
    def of(cls, statement: Any, dialect: Any, slots: Sequence[str] = ("ids",)) -> Compiled:
        """`slots`: the bound parameters whose values each run gives (`ids`: see IDS)."""
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        values = compiled.construct_params()
        names = compiled.positiontup or ()
        processors = {}
        for name in names:  # an IN list's values are named after it: "x_1_1" for "x_1"
            base = name if name in compiled.binds else name.rpartition("_")[0]
            if base in compiled._bind_processors:
                processors[name] = compiled._bind_processors[base]
        params = tuple(
            processors[name](values[name]) if name in processors else values[name]
            for name in names
        )
        convert = []
        for index, column in enumerate(statement.selected_columns):
            coltype = NUMERIC_OID if isinstance(column.type, Numeric) else None
            process = column.type._cached_result_processor(dialect, coltype)
            if process is not None:
                convert.append((index, process))
        return cls(
            dialect.name, compiled.string, params,
            tuple(
                (i, name, None if name == "ids" else processors.get(name))
                for i, name in enumerate(names) if name in slots
            ),
            tuple(convert),
        )

    async def fetch(self, connection: Connection, **values: Any) -> list[Any]:
        """The rows; `values` for the slots."""
        params: Sequence[Any] = self.params
        if self.slots:
            params = list(params)
            for at, name, process in self.slots:
                value = values[name]
                if name == "ids":
                    value = _IDS_VALUE[self.dialect](value)
                params[at] = value if process is None else process(value)
        sync = connection.sync
        if sync.dispatch.before_cursor_execute:
            sync.dispatch.before_cursor_execute(sync, None, self.sql, params, None, False)
        try:
            found = await _FETCH[self.dialect](connection.driver, self.sql, params)
        except Exception as error:
            problem = classify(error)
            if problem is None:
                raise
            if isinstance(problem, DatabaseUnavailable):
                _invalidate(sync, error)
            raise problem from error
        if not self.convert:
            return found  # type: ignore[return-value]
        rows = []
        for row in found:
            values_ = list(row)
            for index, process in self.convert:
                values_[index] = process(values_[index])
            rows.append(values_)
        return rows
