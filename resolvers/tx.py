"""Transactions for writes."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

# Read by the SQLite "begin" listener (server/db.py); ignored by other databases.
WRITE = {"sqlite_begin": "BEGIN IMMEDIATE"}


async def begin_write(session: AsyncSession) -> None:
    """Start a write transaction: SQLite takes its write lock now, so concurrent writers
    queue on the busy timeout instead of failing when they upgrade a read transaction."""
    if session.in_transaction():
        await session.commit()
    await session.connection(execution_options=WRITE)
