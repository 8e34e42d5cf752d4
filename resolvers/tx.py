"""Transactions for writes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

# Read by the SQLite "begin" listener (server/db.py); ignored by other databases.
WRITE = {"sqlite_begin": "BEGIN IMMEDIATE"}


async def begin_write(session: AsyncSession) -> None:
    """Start a write transaction: SQLite takes its write lock now, so concurrent writers
    queue on the busy timeout instead of failing when they upgrade a read transaction."""
    if session.in_transaction():
        await session.commit()
    await session.connection(execution_options=WRITE)


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
