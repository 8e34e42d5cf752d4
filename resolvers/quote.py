"""Quote totals from their lines, rounded per line as the contract says."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Opportunity, OpportunityContact, Quote, QuoteLine, User
from models.base import utcnow
from resolvers import opportunity
from resolvers.errors import ErrorCode
from resolvers.ids import pk_of, to_global_id
from resolvers.kinds import KINDS
from resolvers.money import HUNDRED, ZERO, cents
from resolvers.numbering import next_number
from resolvers.opportunity import touch
from resolvers.permissions import Viewer
from resolvers.validation import Checker


def line_net_total(line: QuoteLine) -> Decimal:
    return cents(line.quantity * line.list_price * (1 - line.discount_percent / HUNDRED))


def line_tax(line: QuoteLine, net_total: Decimal) -> Decimal:
    """round(line netTotal × taxPercent / 100, 2), given the line's netTotal."""
    return cents(net_total * line.tax_percent / HUNDRED)


class QuoteTotals(NamedTuple):
    subtotal: Decimal
    discount_total: Decimal
    net_total: Decimal
    tax_total: Decimal
    grand_total: Decimal


def totals(lines: Iterable[QuoteLine]) -> QuoteTotals:
    subtotal = net = tax = ZERO
    for line in lines:
        line_net = line_net_total(line)
        subtotal += cents(line.quantity * line.list_price)
        net += line_net
        tax += line_tax(line, line_net)
    return QuoteTotals(subtotal, subtotal - net, net, tax, net + tax)


# Writing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    product_id: str
    quantity: Decimal
    list_price: Decimal | None = None
    discount_percent: Decimal | None = None
    tax_percent: Decimal | None = None
    description: str | None = None


async def _lines(c: Checker, lines: list[LineInput] | None) -> list[QuoteLine]:
    """Validated lines; list price and tax default to the product's."""
    if not lines:
        c.fail("lines", "A quote needs at least one product line.", ErrorCode.REQUIRED)
        return []
    result = []
    for i, line in enumerate(lines):
        at = ("lines", str(i))
        product = await c.reference([*at, "productId"], "Product", line.product_id)
        if product is not None and not product.is_active:
            c.fail([*at, "productId"], f"Product {product.name!r} is no longer sold.",
                   ErrorCode.INACTIVE)
        quantity = c.number([*at, "quantity"], line.quantity, exclusive_minimum=True, places=3)
        price = c.number([*at, "listPrice"], line.list_price)
        discount = c.percent([*at, "discountPercent"], line.discount_percent)
        tax = c.percent([*at, "taxPercent"], line.tax_percent)
        description = c.text([*at, "description"], line.description, max_length=1000)
        if product is None or quantity is None:
            continue
        result.append(
            QuoteLine(
                position=i, product_id=product.id, quantity=quantity,
                list_price=price if price is not None else product.unit_price,
                discount_percent=discount if discount is not None else Decimal("0.00"),
                tax_percent=tax if tax is not None else product.tax_percent,
                description=description,
            )
        )
    return result


async def _synced_quote(session: AsyncSession, opportunity_id: int) -> Quote | None:
    """The deal's synced quote as committed (read under the deal's lock)."""
    stmt = (
        select(Quote)
        .where(
            Quote.opportunity_id == opportunity_id, Quote.is_synced.is_(True),
            Quote.deleted_at.is_(None),
        )
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).first()


async def _set_sync(
    session: AsyncSession,
    opp: Opportunity,
    quote: Quote,
    sync: bool,
    lines: list[QuoteLine],
    actor: User,
) -> None:
    """Make `quote` the deal's synced quote (its netTotal becomes the amount) or unsync it
    (the amount stays, typed by hand from now on)."""
    if sync:
        current = await _synced_quote(session, opp.id)
        if current is not None and current.id != quote.id:
            current.is_synced = False
            await session.flush()  # one synced quote per deal (partial unique index)
        quote.is_synced = True
        opp.amount = totals(lines).net_total
        opp.amount_source = "QUOTE"
    elif quote.is_synced:
        quote.is_synced = False
        opp.amount_source = "MANUAL"
    touch(session, opp, False, actor, "QUOTE_SYNC")


async def _quote_for_edit(
    session: AsyncSession, viewer: Viewer, global_id: str, field: str = "id"
) -> tuple[Quote, Opportunity]:
    """A quote whose deal the viewer may edit (NOT_FOUND when they may not see it), read
    once the deal is locked: every write to a deal's quotes holds that lock, so what is
    read here (isSynced above all) stays true until this transaction ends."""
    c = Checker(session, viewer)
    pk = pk_of(global_id, "Quote")
    # A quote never moves to another deal, so its deal can be found before the lock.
    deal_id = None
    if pk is not None:
        deal_id = await session.scalar(
            select(Quote.opportunity_id).where(
                Quote.id == pk, *KINDS["Quote"].visible(viewer),
            )
        )
    opp: Opportunity | None = None
    quote: Quote | None = None
    if deal_id is not None:
        opp = await opportunity.load_for_edit(
            session, viewer, to_global_id("Opportunity", deal_id), field=field
        )
        stmt = (
            select(Quote)
            .where(Quote.id == pk, Quote.deleted_at.is_(None))
            .execution_options(populate_existing=True)
        )
        quote = (await session.scalars(stmt)).first()  # gone if deleted while we waited
    if quote is None:
        c.fail(field, f"No quote with id {global_id!r}.", ErrorCode.NOT_FOUND)
    c.done()
    assert quote is not None and opp is not None
    return quote, opp


async def _current_lines(session: AsyncSession, quote: Quote) -> list[QuoteLine]:
    stmt = select(QuoteLine).where(QuoteLine.quote_id == quote.id).order_by(QuoteLine.position)
    return list((await session.scalars(stmt)).all())


async def create_quote(session: AsyncSession, viewer: Viewer, data: dict[str, Any]) -> Quote:
    """A quote with product lines; without `sync` it becomes the synced one when the deal
    has none yet, so the deal's amount is calculated from its lines."""
    opp = await opportunity.load_for_edit(
        session, viewer, data["opportunity_id"], field="opportunityId"
    )
    c = Checker(session, viewer)
    subject = c.text("subject", data.get("subject"), required=True)
    stage = await c.picklist("stage", "quoteStage", data.get("stage")) or "CREATED"
    lines = await _lines(c, data.get("lines"))
    c.done()
    primary = (
        await session.scalars(
            select(OpportunityContact.contact_id).where(
                OpportunityContact.opportunity_id == opp.id, OpportunityContact.is_primary
            )
        )
    ).first()
    quote = Quote(
        number=await next_number(session, "Quote"), subject=subject, stage=stage,
        valid_until=data.get("valid_until"), opportunity_id=opp.id, account_id=opp.account_id,
        contact_id=primary, is_synced=False, created_by_id=viewer.user.id,
    )
    session.add(quote)
    await session.flush()
    for line in lines:
        line.quote_id = quote.id
        session.add(line)
    sync = data.get("sync")
    if sync is None:
        sync = await _synced_quote(session, opp.id) is None
    if sync:
        await _set_sync(session, opp, quote, True, lines, viewer.user)
    await session.flush()
    return quote


async def update_quote(
    session: AsyncSession, viewer: Viewer, global_id: str, data: dict[str, Any]
) -> Quote:
    """Change the given fields; `lines` replaces every line (and a synced quote's deal
    amount follows)."""
    quote, opp = await _quote_for_edit(session, viewer, global_id)
    c = Checker(session, viewer)
    if "subject" in data:
        quote.subject = c.text("subject", data["subject"], required=True) or quote.subject
    if "stage" in data:
        stage = await c.picklist("stage", "quoteStage", data["stage"])
        quote.stage = stage or quote.stage
    if "valid_until" in data:
        quote.valid_until = data["valid_until"]
    lines = await _lines(c, data["lines"]) if "lines" in data else None
    c.done()
    if lines is not None:
        for old in await _current_lines(session, quote):
            await session.delete(old)
        await session.flush()
        for line in lines:
            line.quote_id = quote.id
            session.add(line)
        if quote.is_synced:
            await _set_sync(session, opp, quote, True, lines, viewer.user)
    quote.updated_at = utcnow()
    await session.flush()
    return quote


async def delete_quote(session: AsyncSession, viewer: Viewer, global_id: str) -> Quote:
    """Soft-delete; a synced quote's deal keeps its amount, now typed by hand."""
    quote, opp = await _quote_for_edit(session, viewer, global_id)
    await _set_sync(session, opp, quote, False, [], viewer.user)
    quote.deleted_at = utcnow()
    await session.flush()
    return quote


async def sync_quote(
    session: AsyncSession, viewer: Viewer, global_id: str, sync: bool
) -> Quote:
    quote, opp = await _quote_for_edit(session, viewer, global_id, field="quoteId")
    lines = await _current_lines(session, quote)
    await _set_sync(session, opp, quote, sync, lines, viewer.user)
    quote.updated_at = utcnow()
    await session.flush()
    return quote
