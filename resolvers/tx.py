"""Transactions for writes."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.dberrors import DatabaseBusy

# Read by the SQLite "begin" listener (server/db.py); ignored by other databases.
WRITE = {"sqlite_begin": "BEGIN IMMEDIATE"}
# An SQLite connection's busy timeout in seconds (its pool record's info, from server/db.py).
BUSY_TIMEOUT = "dealgraph.busy_timeout"

# SQLite: one writer at a time per engine and event loop (see begin_write).
_turns: weakref.WeakKeyDictionary[Engine, weakref.WeakKeyDictionary[Any, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)
_TURN = "dealgraph.write_turn"  # session.info: the turn its transaction holds


async def begin_write(session: AsyncSession) -> None:
    """Start a write transaction: SQLite takes its write lock with the transaction's first
    statement (BEGIN IMMEDIATE), so concurrent writers queue instead of failing when they
    upgrade a read transaction.

    On SQLite the writers of this process also take turns (in order, on an asyncio lock held
    until the transaction ends): SQLite's busy handler wakes its waiters by polling, in no
    order, so under 16 writers one could wait beyond the busy timeout and fail with "database
    is locked". A writer gives up after the busy timeout (DatabaseBusy: the client retries);
    so does the BEGIN IMMEDIATE when another process holds the lock (resolvers/dberrors.py)."""
    if session.in_transaction():
        await session.commit()
    connection = await session.connection(execution_options=WRITE)
    if connection.dialect.name == "sqlite":
        wait = connection.info.get(BUSY_TIMEOUT, 5.0)  # (an engine not from server/db.py)
        await _take_turn(session, connection.engine.sync_engine, wait)


async def _take_turn(session: AsyncSession, engine: Engine, wait: float) -> None:
    loops = _turns.setdefault(engine, weakref.WeakKeyDictionary())
    turn = loops.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    try:
        await asyncio.wait_for(turn.acquire(), wait)
    except TimeoutError:
        raise DatabaseBusy(f"no turn to write within {wait:g}s") from None
    if not session.in_transaction():  # (it ended while this writer waited)
        turn.release()
        return
    info = session.sync_session.info
    if _TURN not in info:  # the first write of this session: pass the turn on when it ends
        event.listen(session.sync_session, "after_transaction_end", _pass_turn)
    info[_TURN] = turn


def _pass_turn(session: Any, transaction: Any) -> None:
    if transaction.parent is None:  # the session's transaction, not a savepoint
        turn = session.info.get(_TURN)
        if turn is not None:
            session.info[_TURN] = None
            turn.release()


async def assign_ids(session: AsyncSession) -> None:
    """Give pending new rows their primary keys in bulk before a large flush.

    With keys known, the flush writes each table with one executemany instead of one
    INSERT ... RETURNING per row. PostgreSQL hands out the keys from the table's sequence;
    SQLite continues from the highest key under the write lock the transaction holds.
    """
    pending: dict[Any, list[Any]] = {}
    for obj in session.new:
        table = getattr(type(obj), "__table__", None)
        if table is not None and "id" in table.c and getattr(obj, "id", None) is None:
            pending.setdefault(table, []).append(obj)
    for table, objs in pending.items():
        with session.no_autoflush:  # the rows must stay pending until they have their keys
            ids = await _next_ids(session, table, len(objs))
        for obj, pk in zip(objs, ids, strict=True):
            obj.id = pk


async def _next_ids(session: AsyncSession, table: Any, n: int) -> list[int]:
    if session.get_bind().dialect.name == "postgresql":
        sql = "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"
        result = await session.execute(text(sql), {"t": table.name, "n": n})
        return [int(pk) for pk in result.scalars()]
    start = (await session.scalar(select(func.max(table.c.id)))) or 0
    return list(range(start + 1, start + n + 1))
