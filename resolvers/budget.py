"""Sales targets (budgets) per user and period."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Budget
from resolvers.permissions import Viewer


async def list_budgets(
    session: AsyncSession, viewer: Viewer, year: int | None, user_id: int | None
) -> Sequence[Budget]:
    """Targets of the viewer and of everyone below them (an admin sees all)."""
    stmt = select(Budget).order_by(Budget.year, Budget.user_id, Budget.period, Budget.number)
    if viewer.team_ids is not None:
        stmt = stmt.where(Budget.user_id.in_(sorted(viewer.team_ids)))
    if year is not None:
        stmt = stmt.where(Budget.year == year)
    if user_id is not None:
        stmt = stmt.where(Budget.user_id == user_id)
    return (await session.scalars(stmt)).all()
