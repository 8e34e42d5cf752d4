"""Sales stages, picklist values and currencies (reference data, visible to every user)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Currency, PicklistValue, SalesStage
from resolvers.errors import ErrorCode, RequestError
from resolvers.permissions import Viewer
from resolvers.validation import Checker

SALES_STAGE_PICKLIST = "salesStage"


async def sales_stages(session: AsyncSession, include_inactive: bool) -> Sequence[SalesStage]:
    stmt = select(SalesStage).order_by(SalesStage.position, SalesStage.key)
    if not include_inactive:
        stmt = stmt.where(SalesStage.is_active.is_(True))
    return (await session.scalars(stmt)).all()


async def picklist(
    session: AsyncSession, name: str, include_inactive: bool
) -> Sequence[PicklistValue | SalesStage]:
    """The values of a picklist in order; `salesStage` lists the stages (label = name)."""
    if name == SALES_STAGE_PICKLIST:
        return await sales_stages(session, include_inactive)
    stmt = select(PicklistValue).where(PicklistValue.picklist == name)
    if not include_inactive:
        stmt = stmt.where(PicklistValue.is_active.is_(True))
    values = (await session.scalars(stmt.order_by(PicklistValue.position))).all()
    if not values and not await session.scalar(
        select(PicklistValue.id).where(PicklistValue.picklist == name).limit(1)
    ):
        names = await picklist_names(session)
        raise RequestError(f"Unknown picklist {name!r}; known: {', '.join(names)}.")
    return values


async def picklist_names(session: AsyncSession) -> list[str]:
    names = (await session.scalars(select(PicklistValue.picklist).distinct())).all()
    return sorted({SALES_STAGE_PICKLIST, *names})


async def currencies(session: AsyncSession) -> Sequence[Currency]:
    return (await session.scalars(select(Currency).order_by(Currency.code))).all()


async def set_currency_rate(
    session: AsyncSession, viewer: Viewer, code: str, rate: Decimal
) -> Currency:
    """Add a currency or change its rate (admin): units of it that one base unit buys."""
    viewer.require_admin()
    c = Checker(session, viewer)
    code = (code or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        c.fail("code", f"{code!r} is not an ISO 4217 code (three letters).", ErrorCode.INVALID)
    checked = c.number("rate", rate, minimum=Decimal(0), exclusive_minimum=True,
                       maximum=Decimal("999999999999"), places=6)
    currency = await session.get(Currency, code) if code else None
    if currency is not None and currency.is_base and rate != 1:
        c.fail("rate", f"{code} is the base currency; its rate is always 1.", ErrorCode.INVALID)
    c.done()
    if currency is None:
        currency = Currency(code=code, rate=checked, is_base=False)
        session.add(currency)
    else:
        currency.rate = checked  # type: ignore[assignment]
    await session.flush()
    return currency
