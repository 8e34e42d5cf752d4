"""Human-readable numbers (POT1, ACC1, ...): per-entity counters, increasing, never reused."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from models import NumberSequence
from resolvers.cache import store

PREFIXES = {
    "Opportunity": "POT",
    "Account": "ACC",
    "Contact": "CON",
    "Lead": "LEA",
    "Campaign": "CAM",
    "Quote": "QUO",
    "Product": "PRO",
}


async def reserve_numbers(session: AsyncSession, type_name: str, count: int) -> None:
    """Take `count` numbers at once for the next next_number calls of this session."""
    prefix = PREFIXES[type_name]
    end = await session.scalar(
        update(NumberSequence)
        .where(NumberSequence.prefix == prefix)
        .values(next_value=NumberSequence.next_value + count)
        .returning(NumberSequence.next_value)
    )
    assert end is not None
    reserved = store(session).setdefault(("numbers", type_name), [])
    reserved.extend(f"{prefix}{n}" for n in range(end - count, end))


async def next_number(session: AsyncSession, type_name: str) -> str:
    """Take the next number in the caller's transaction (the row lock serialises writers)."""
    reserved = store(session).get(("numbers", type_name))
    if reserved:
        return str(reserved.pop(0))
    prefix = PREFIXES[type_name]
    value = await session.scalar(
        update(NumberSequence)
        .where(NumberSequence.prefix == prefix)
        .values(next_value=NumberSequence.next_value + 1)
        .returning(NumberSequence.next_value - 1)
    )
    return f"{prefix}{value}"
