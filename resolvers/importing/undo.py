"""Undoing an import: what it created goes, what it overwrote comes back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Account,
    ImportItem,
    ImportJob,
    Opportunity,
    OpportunityContact,
    SalesStage,
    StageChange,
)
from models.base import Base, utcnow
from resolvers import history, opportunity
from resolvers.errors import ErrorCode, FieldError, ValidationFailed
from resolvers.ids import to_global_id
from resolvers.importing.jobs import _let_go, visible_job
from resolvers.permissions import Viewer


def _references_to(table_name: str, skip: tuple[str, ...]) -> list[Any]:
    """The foreign-key columns of other tables that point at `table_name`.id."""
    return [
        fk.parent for t in Base.metadata.sorted_tables if t.name not in skip
        for fk in t.foreign_keys
        if fk.column.table.name == table_name and fk.column.name == "id"
    ]


async def _referenced(
    session: AsyncSession, ids: list[int], columns: list[Any]
) -> set[int]:
    found: set[int] = set()
    for column in columns:
        stmt = select(column).where(column.in_(ids)).distinct()
        found |= {pk for pk in (await session.scalars(stmt)).all() if pk is not None}
    return found


async def undo_import(
    session: AsyncSession, viewer: Viewer, job_id: int, force: bool = False
) -> ImportJob:
    """Remove what the import created and restore what it overwrote. A created deal that
    has been worked on since (changed, quoted, ...) goes to the recycle bin instead, and a
    created account still in use stays: undo loses nobody's later work. An INTERRUPTED job
    is undone like a finished one; a RUNNING one only with `force`."""
    job = await visible_job(session, viewer, job_id)
    problem = None
    gid = to_global_id("ImportJob", job_id)
    if job is None:
        problem = FieldError(["input", "id"], f"No import with id {gid!r}.", ErrorCode.NOT_FOUND)
    elif job.undone_at is not None or (job.status == "RUNNING" and not force):
        state = "it is already undone" if job.undone_at else "it is still running"
        problem = FieldError(["input", "id"], f"The import cannot be undone: {state}.",
                             ErrorCode.INVALID)
    elif (job.options or {}).get("dryRun"):
        problem = FieldError(["input", "id"], "A dry run wrote nothing to undo.",
                             ErrorCode.INVALID)
    if problem:
        raise ValidationFailed([problem])
    assert job is not None
    items = (await session.scalars(
        select(ImportItem).where(ImportItem.job_id == job.id).order_by(ImportItem.id.desc())
    )).all()
    notes: list[str] = []
    created = [i.record_id for i in items if i.kind == "OPPORTUNITY" and i.action == "CREATED"]
    dependents = _references_to("opportunities", ("stage_changes", "opportunity_contacts"))
    binned = 0
    for chunk in range(0, len(created), 500):
        ids = created[chunk:chunk + 500]
        touched = await _referenced(session, ids, dependents)
        touched |= set((await session.scalars(select(Opportunity.id).where(
            Opportunity.id.in_(ids), Opportunity.version > 1))).all())
        doomed = [pk for pk in ids if pk not in touched]
        if touched:
            binned += len(touched)
            await session.execute(
                update(Opportunity).where(Opportunity.id.in_(sorted(touched)),
                                          Opportunity.deleted_at.is_(None))
                .values(deleted_at=utcnow(), updated_at=utcnow(),
                        version=Opportunity.version + 1)
            )
        if doomed:
            await session.execute(delete(StageChange).where(StageChange.opportunity_id.in_(doomed)))
            await session.execute(
                delete(OpportunityContact).where(OpportunityContact.opportunity_id.in_(doomed))
            )
            await session.execute(delete(Opportunity).where(Opportunity.id.in_(doomed)))
    if binned:
        notes.append(f"Undo: {binned} created deal(s) had been changed since the import and "
                     "were moved to the recycle bin instead of deleted.")
    for item in items:
        if item.kind == "OPPORTUNITY" and item.action == "UPDATED":
            await _restore(session, viewer, item.record_id, item.before or {})
    accounts = [i.record_id for i in items if i.kind == "ACCOUNT" and i.action == "CREATED"]
    if accounts:
        in_use = await _referenced(session, accounts, _references_to("accounts", ()))
        unused = [pk for pk in accounts if pk not in in_use]
        if unused:
            await session.execute(delete(Account).where(Account.id.in_(unused)))
        if in_use:
            notes.append(f"Undo: {len(in_use)} created account(s) are in use and were kept.")
    job.status, job.undone_at = "UNDONE", utcnow()
    job.warnings = [*(job.warnings or []), *notes]
    _let_go(job)
    await session.flush()
    return job


async def _restore(
    session: AsyncSession, viewer: Viewer, opp_id: int, before: dict[str, Any]
) -> None:
    opp = await session.get(Opportunity, opp_id)
    if opp is None:
        return
    history.remember(session, opp)
    for column, value in before.items():
        if column == "sales_stage":
            continue
        kind = Opportunity.__table__.c[column].type.python_type
        if value is not None and kind is Decimal:
            value = Decimal(value)
        elif value is not None and kind is dt.date:
            value = dt.date.fromisoformat(value)
        setattr(opp, column, value)
    stage = await session.get(SalesStage, before.get("sales_stage"))
    if stage is not None:
        actual, probability = opp.actual_close_date, opp.probability
        opportunity.apply_stage(session, opp, stage, viewer.user, note="Import undone")
        opp.actual_close_date, opp.probability = actual, probability
    opportunity.touch(session, opp, True, viewer.user, "UNDO")
