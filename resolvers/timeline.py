"""Timelines: what happened to an opportunity, an account (its own events and its deals') or
a lead, newest first, as one keyset-paged list.

The page is chosen in SQL: a UNION ALL of (parent, kind, id, at) rows from every source —
stage changes, field changes, activities (through their links), comments, documents
(through their links), quotes and lead conversions — ranked per parent by (at DESC, kind,
id DESC), so the timelines of a whole page of parents cost one query. The items of the page
are then loaded with one query per kind. Cursors are (at, kind, id).

Visibility: a visible record shows what hangs on it (its documents, activities, comments);
an account shows its deals' events only for the deals the viewer may see; a quote needs its
deal visible; a conversion its lead. Deleted items are left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Subquery,
    and_,
    func,
    literal,
    select,
    union,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Account,
    Activity,
    ActivityLink,
    Comment,
    Contact,
    Document,
    DocumentLink,
    FieldChange,
    Lead,
    Opportunity,
    Quote,
    StageChange,
)
from resolvers.kinds import KINDS as RECORD_KINDS
from resolvers.kinds import owned
from resolvers.pagination import (
    Page,
    PageArgs,
    SortKey,
    _keyset,
    decode_cursor,
    page_size,
)
from resolvers.permissions import Viewer

KINDS = (
    "STAGE_CHANGE", "FIELD_CHANGE", "ACTIVITY", "COMMENT", "DOCUMENT", "QUOTE",
    "LEAD_CONVERSION",
)
PARENTS = ("Opportunity", "Account", "Lead")
SIGNATURE = "timeline"
MODELS: dict[str, Any] = {
    "STAGE_CHANGE": StageChange, "FIELD_CHANGE": FieldChange, "ACTIVITY": Activity,
    "COMMENT": Comment, "DOCUMENT": Document, "QUOTE": Quote,
}


@dataclass(frozen=True)
class LeadConverted:
    """A lead's conversion as a timeline item: the lead (which names what it became) and who
    converted it (the creator of the deal or contact it created; None when unknown)."""

    lead: Lead
    converted_by_id: int | None


@dataclass(frozen=True)
class _Maps:
    """Subqueries (record, parent) from the parents to what their timelines draw on."""

    deals: Subquery | None  # the deals whose events belong to the parent
    records: list[tuple[str, Subquery]]  # (entity, records) whose deal room belongs to it
    own: Subquery  # the parents themselves


def _maps(parent_type: str, ids: list[int], viewer: Viewer) -> _Maps:
    if parent_type == "Opportunity":
        deals = (
            select(Opportunity.id.label("record"), Opportunity.id.label("parent"))
            .where(Opportunity.id.in_(ids))
            .subquery()
        )
        return _Maps(deals, [("OPPORTUNITY", deals)], deals)
    if parent_type == "Account":
        own = (
            select(Account.id.label("record"), Account.id.label("parent"))
            .where(Account.id.in_(ids))
            .subquery()
        )
        deals = (
            select(Opportunity.id.label("record"), Opportunity.account_id.label("parent"))
            .where(Opportunity.account_id.in_(ids), *owned(Opportunity, viewer))
            .subquery()
        )
        return _Maps(deals, [("ACCOUNT", own), ("OPPORTUNITY", deals)], own)
    lead = (
        select(Lead.id.label("record"), Lead.id.label("parent"))
        .where(Lead.id.in_(ids))
        .subquery()
    )
    return _Maps(None, [("LEAD", lead)], lead)


# A source of one kind's items: the joins from the item's table to the parents it belongs
# to, and the parent column they reach.
Source = tuple[Callable[[Select[Any]], Select[Any]], Any]


def _via(records: Subquery, column: Any, entity: str | None = None) -> Source:
    """Joined to the parents' records where `column` names one (and, for comments, the
    entity column says which kind of record)."""

    def join(stmt: Select[Any]) -> Select[Any]:
        on = records.c.record == column
        if entity is not None:
            on = and_(Comment.entity == entity, on)
        return stmt.join(records, on)

    return join, records.c.parent


def _via_link(link: Any, owner: Any, model: Any, entity: str, records: Subquery) -> Source:
    """Through a link table (documents and activities hang on records by links)."""

    def join(stmt: Select[Any]) -> Select[Any]:
        return stmt.join(link, owner == model.id).join(
            records, and_(link.entity == entity, link.record_id == records.c.record)
        )

    return join, records.c.parent


def _branch(
    kind: str, model: Any, at: Any, sources: Sequence[Source], *where: Any
) -> Select[Any]:
    """(parent, kind, id, at) of one kind's items; an item reached from several sources of
    the same parent (an activity on an account and on its deal) comes once."""
    columns = (literal(kind, String).label("kind"), model.id.label("id"), at.label("at"))
    if len(sources) == 1:
        join, parent = sources[0]
        return join(select(parent.label("parent"), *columns).select_from(model)).where(*where)
    pairs = union(*(
        join(select(model.id.label("item"), parent.label("parent")).select_from(model))
        for join, parent in sources
    )).subquery()
    return (
        select(pairs.c.parent.label("parent"), *columns)
        .join_from(model, pairs, pairs.c.item == model.id)
        .where(*where)
    )


def _branches(
    parent_type: str, ids: list[int], viewer: Viewer, kinds: Sequence[str]
) -> list[Select[Any]]:
    m = _maps(parent_type, ids, viewer)
    deals = m.deals
    out: list[Select[Any]] = []
    history: tuple[tuple[str, Any], ...] = (
        ("STAGE_CHANGE", StageChange), ("FIELD_CHANGE", FieldChange),
    )
    for kind, model in history:
        if kind in kinds and deals is not None:
            source = _via(deals, model.opportunity_id)
            out.append(_branch(kind, model, model.changed_at, [source]))
    linked: tuple[tuple[str, Any, Any, Any], ...] = (
        ("ACTIVITY", ActivityLink, ActivityLink.activity_id, Activity),
        ("DOCUMENT", DocumentLink, DocumentLink.document_id, Document),
    )
    for kind, link, owner, model in linked:
        if kind in kinds:
            sources = [_via_link(link, owner, model, entity, records)
                       for entity, records in m.records]
            out.append(_branch(
                kind, model, model.created_at, sources, model.deleted_at.is_(None)
            ))
    if "COMMENT" in kinds:
        for entity, records in m.records:  # a comment sits on one record: no duplicates
            source = _via(records, Comment.record_id, entity)
            out.append(_branch(
                "COMMENT", Comment, Comment.created_at, [source], Comment.deleted_at.is_(None)
            ))
    if "QUOTE" in kinds and deals is not None:
        sources = [_via(deals, Quote.opportunity_id)]
        if parent_type == "Account":
            sources.append(_via(m.own, Quote.account_id))
        out.append(_branch(
            "QUOTE", Quote, Quote.created_at, sources, *RECORD_KINDS["Quote"].visible(viewer)
        ))
    if "LEAD_CONVERSION" in kinds:
        sources = {
            "Opportunity": [_via(m.own, Lead.converted_opportunity_id)],
            "Account": [_via(m.own, Lead.converted_account_id)]
            + ([_via(deals, Lead.converted_opportunity_id)] if deals is not None else []),
            "Lead": [_via(m.own, Lead.id)],
        }[parent_type]
        out.append(_branch(
            "LEAD_CONVERSION", Lead, Lead.converted_at, sources,
            Lead.is_converted.is_(True), Lead.converted_at.is_not(None),
            *owned(Lead, viewer),
        ))
    return out


def _keys(timeline: Subquery) -> list[SortKey]:
    return [
        SortKey(timeline.c.at, descending=True),
        SortKey(timeline.c.kind),
        SortKey(timeline.c.id, descending=True),
    ]


async def _items(
    session: AsyncSession, wanted: dict[str, set[int]]
) -> dict[tuple[str, int], Any]:
    """The page's items, one query per kind."""
    found: dict[tuple[str, int], Any] = {}
    for kind, pks in wanted.items():
        if kind == "LEAD_CONVERSION":
            converter = func.coalesce(Opportunity.created_by_id, Contact.created_by_id)
            stmt = (
                select(Lead, converter)
                .outerjoin(Opportunity, Opportunity.id == Lead.converted_opportunity_id)
                .outerjoin(Contact, Contact.id == Lead.converted_contact_id)
                .where(Lead.id.in_(sorted(pks)))
            )
            for lead, by in (await session.execute(stmt)).all():
                found[(kind, lead.id)] = LeadConverted(lead, by)
            continue
        model = MODELS[kind]
        for row in (await session.scalars(select(model).where(model.id.in_(sorted(pks))))).all():
            found[(kind, row.id)] = row
    return found


async def timelines(
    session: AsyncSession,
    viewer: Viewer,
    parent_type: str,
    parent_ids: Sequence[int],
    args: PageArgs,
    kinds: Sequence[str] | None,
    default_size: int,
    max_size: int,
) -> dict[int, Page[Any]]:
    """The same page of the timelines of several parents of one type (visible ones)."""
    size, backwards = page_size(args, default_size, max_size)
    ids = sorted(set(parent_ids))
    branches = _branches(parent_type, ids, viewer, kinds if kinds is not None else KINDS)
    if not branches:
        return {pid: _empty() for pid in parent_ids}
    timeline = union_all(*branches).subquery("timeline")
    keys = _keys(timeline)
    conditions: list[ColumnElement[bool]] = []
    if args.after:
        conditions.append(_keyset(keys, decode_cursor(args.after, SIGNATURE, keys), True))
    if args.before:
        conditions.append(_keyset(keys, decode_cursor(args.before, SIGNATURE, keys), False))
    order = [(k.expr.desc() if k.descending != backwards else k.expr.asc()) for k in keys]
    rank = func.row_number().over(partition_by=timeline.c.parent, order_by=order).label("rank")
    ranked = (
        select(timeline.c.parent, timeline.c.kind, timeline.c.id, timeline.c.at, rank)
        .where(*conditions)
        .subquery("ranked")
    )
    stmt = (
        select(ranked.c.parent, ranked.c.kind, ranked.c.id, ranked.c.at)
        .where(ranked.c.rank <= size + 1)
        .order_by(ranked.c.parent, ranked.c.rank)
    )
    grouped: dict[int, list[Any]] = {pid: [] for pid in parent_ids}
    for row in (await session.execute(stmt)).all():
        grouped.setdefault(row.parent, []).append(row)
    wanted: dict[str, set[int]] = {}
    for rows in grouped.values():
        for row in rows[:size]:
            wanted.setdefault(row.kind, set()).add(row.id)
    items = await _items(session, wanted)

    counts: dict[int, int] | None = None
    counting = asyncio.Lock()  # sibling totalCount fields share one COUNT

    async def count_for(parent_id: int) -> int:
        nonlocal counts
        async with counting:
            if counts is None:
                result = await session.execute(
                    select(timeline.c.parent, func.count()).group_by(timeline.c.parent)
                )
                counts = {pid: int(n) for pid, n in result}
        return counts.get(parent_id, 0)

    pages: dict[int, Page[Any]] = {}
    for pid, rows in grouped.items():
        more = len(rows) > size
        rows = rows[:size]
        if backwards:
            rows.reverse()
        present = [r for r in rows if (r.kind, r.id) in items]
        pages[pid] = Page(
            nodes=[items[(r.kind, r.id)] for r in present],
            keys=[(r.at, r.kind, r.id) for r in present], signature=SIGNATURE,
            has_next_page=more if not backwards else bool(args.before),
            has_previous_page=more if backwards else bool(args.after),
            count=lambda pid=pid: count_for(pid),  # type: ignore[misc]
        )
    return pages


def _empty() -> Page[Any]:
    async def zero() -> int:
        return 0

    return Page(nodes=[], keys=[], signature=SIGNATURE, has_next_page=False,
                has_previous_page=False, count=zero)
