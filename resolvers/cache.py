"""Reference data (picklists, stages, currencies, field definitions, layouts) cached for the
life of one session, so that validating many rows (an import) costs no query per row.
Every mutation starts and ends with an empty cache (schema/mutations/base.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
KEY = "dealgraph.cache"


async def cached(session: AsyncSession, key: Any, load: Callable[[], Awaitable[T]]) -> T:
    store: dict[Any, Any] = session.info.setdefault(KEY, {})
    if key not in store:
        store[key] = await load()
    return store[key]  # type: ignore[no-any-return]


def store(session: AsyncSession) -> dict[Any, Any]:
    return session.info.setdefault(KEY, {})  # type: ignore[no-any-return]


def forget(session: AsyncSession) -> None:
    session.info.pop(KEY, None)
