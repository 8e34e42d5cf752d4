"""Human-readable numbers (POT1, ACC1, ...): per-entity counters, increasing, never reused."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from models import NumberSequence

PREFIXES = {
    "Opportunity": "POT",
    "Account": "ACC",
    "Contact": "CON",
    "Lead": "LEA",
    "Campaign": "CAM",
    "Quote": "QUO",
    "Product": "PRO",
}


async def next_number(session: AsyncSession, type_name: str) -> str:
    """Take the next number in the caller's transaction (the row lock serialises writers)."""
    prefix = PREFIXES[type_name]
    value = await session.scalar(
        update(NumberSequence)
        .where(NumberSequence.prefix == prefix)
        .values(next_value=NumberSequence.next_value + 1)
        .returning(NumberSequence.next_value - 1)
    )
    return f"{prefix}{value}"
