"""Sales targets (budgets) per user and period."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Budget
from models.base import utcnow
from resolvers.errors import ErrorCode
from resolvers.forecast import valid_period
from resolvers.permissions import Viewer
from resolvers.validation import Checker


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


async def set_budget(
    session: AsyncSession,
    viewer: Viewer,
    user_id: str,
    year: int,
    period: str,
    number: int,
    amount: Decimal,
) -> Budget:
    """Store (or replace) a target: managers for their team, admins for anyone."""
    c = Checker(session, viewer)
    user = await c.reference("userId", "User", user_id)
    allowed = user is not None and viewer.user.role != "SALES_REP" and viewer.can_edit_owner(
        user.id
    )
    if user is not None and not allowed:
        c.fail("userId", f"You may not set targets for {user.username!r}.",
               ErrorCode.PERMISSION_DENIED)
    problem = valid_period(year, period, number)
    if problem:
        c.fail("number" if "number" in problem else "year", problem, ErrorCode.OUT_OF_RANGE)
    amount_ok = c.required("amount", c.number("amount", amount))
    c.done()
    assert user is not None and amount_ok is not None
    stmt = select(Budget).where(
        Budget.user_id == user.id, Budget.year == year, Budget.period == period,
        Budget.number == number,
    )
    budget = (await session.scalars(stmt.with_for_update())).first()
    if budget is None:
        budget = Budget(user_id=user.id, year=year, period=period, number=number, amount=amount_ok)
        session.add(budget)
    else:
        budget.amount = amount_ok
        budget.updated_at = utcnow()
    await session.flush()
    return budget
