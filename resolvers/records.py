"""Visibility, lookup by id and the paged lists of every entity type."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Account,
    Activity,
    Budget,
    Campaign,
    Comment,
    ConfigurationChange,
    Contact,
    Document,
    ImportJob,
    Lead,
    Opportunity,
    Product,
    Quote,
    User,
)
from resolvers import activities, documents, opportunity
from resolvers.ids import from_global_id, pk_of
from resolvers.pagination import PageArgs, PageQuery, SortKey, outer_joined, page_query
from resolvers.permissions import Viewer, readable
from resolvers.text import contains


def _owned(model: Any) -> Callable[[Viewer], list[ColumnElement[bool]]]:
    return lambda viewer: [model.deleted_at.is_(None), readable(model.assigned_to_id, viewer)]


def _quotes(viewer: Viewer) -> list[ColumnElement[bool]]:
    visible_deals = select(Opportunity.id).where(*opportunity.visible_conditions(viewer))
    return [Quote.deleted_at.is_(None), Quote.opportunity_id.in_(visible_deals)]


@dataclass(frozen=True)
class Kind:
    """How one entity type is found, shown and listed."""

    model: Any
    visible: Callable[[Viewer], list[ColumnElement[bool]]]
    search: tuple[Any, ...]
    order: dict[str, Any] = field(default_factory=dict)
    owner: Any = None
    # The number of all the records the viewer may see, when cheaper than counting them.
    total: Callable[[Viewer], Any] | None = None


KINDS: dict[str, Kind] = {
    "Opportunity": Kind(
        Opportunity, opportunity.visible_conditions, (Opportunity.name, Opportunity.number),
        opportunity.ORDER_FIELDS, Opportunity.assigned_to_id, opportunity.visible_total,
    ),
    "Account": Kind(
        Account, _owned(Account), (Account.name, Account.number, Account.city),
        {"NAME": Account.name}, Account.assigned_to_id,
    ),
    "Contact": Kind(
        Contact, _owned(Contact),
        (Contact.first_name, Contact.last_name, Contact.email, Contact.number),
        {"NAME": Contact.last_name}, Contact.assigned_to_id,
    ),
    "Lead": Kind(
        Lead, _owned(Lead),
        (Lead.first_name, Lead.last_name, Lead.company, Lead.email, Lead.number),
        {"NAME": Lead.last_name}, Lead.assigned_to_id,
    ),
    "Campaign": Kind(
        Campaign, lambda viewer: [Campaign.deleted_at.is_(None)],
        (Campaign.name, Campaign.number), {"NAME": Campaign.name}, Campaign.assigned_to_id,
    ),
    "Product": Kind(
        Product, lambda viewer: [Product.deleted_at.is_(None)],
        (Product.name, Product.code, Product.number), {"NAME": Product.name},
    ),
    "Quote": Kind(Quote, _quotes, (Quote.subject, Quote.number), {"NAME": Quote.subject}),
    "Budget": Kind(
        Budget, lambda viewer: [true() if viewer.team_ids is None
                                else Budget.user_id.in_(sorted(viewer.team_ids))], (),
    ),
    "User": Kind(
        User, lambda viewer: [true()], (User.username, User.full_name, User.email),
        {"NAME": User.username},
    ),
    # The audit of configuration changes: admins only (the list refuses anyone else first).
    "ConfigurationChange": Kind(
        ConfigurationChange, lambda viewer: [true() if viewer.is_admin else false()], (),
        {"CHANGED_AT": ConfigurationChange.changed_at},
    ),
    # The deal room: visible through the records they are linked to.
    "Document": Kind(
        Document, documents.visible_conditions, (Document.title, Document.filename),
        {"NAME": Document.title},
    ),
    "Activity": Kind(
        Activity, activities.visible_conditions, (Activity.subject,),
        {"NAME": Activity.subject}, Activity.assigned_to_id,
    ),
    "Comment": Kind(Comment, activities.comment_visible_conditions, (Comment.text,)),
    # CSV import jobs: their creator's, and every one for an admin.
    "ImportJob": Kind(
        ImportJob, lambda viewer: [true() if viewer.is_admin
                                   else ImportJob.created_by_id == viewer.user.id], (),
    ),
}
for _kind in KINDS.values():
    if hasattr(_kind.model, "created_at"):
        _kind.order.setdefault("CREATED_AT", _kind.model.created_at)
        _kind.order.setdefault(
            "UPDATED_AT", getattr(_kind.model, "updated_at", _kind.model.created_at)
        )


def visible_by_id(
    kind: Kind, viewer: Viewer, ids: Sequence[int] | Any, columns: Sequence[Any] | None = None,
    joins: Sequence[tuple[Any, Any]] = (),
) -> Any:
    """The statement for the records with these ids (or an expanding parameter) that the viewer
    may see: ORM objects, or rows of `columns` with `joins`."""
    return outer_joined(select(*(columns or [kind.model])), kind.model, joins).where(
        kind.model.id.in_(ids), *kind.visible(viewer)
    )


def node_keys(global_ids: Sequence[str]) -> list[tuple[str, int] | None]:
    """The (kind, id) each global id names (None: not a record's)."""
    return [
        d if (d := from_global_id(gid)) is not None and d[0] in KINDS else None
        for gid in global_ids
    ]


async def get_by_keys(
    session: AsyncSession, viewer: Viewer, keys: Sequence[tuple[str, int] | None]
) -> list[Any]:
    """Records by (kind, id), in order; None for anything the viewer may not see."""
    wanted: dict[str, list[int]] = {}
    for key in keys:
        if key is not None:
            wanted.setdefault(key[0], []).append(key[1])
    found: dict[tuple[str, int], Any] = {}
    for type_name, pks in wanted.items():
        for record in (await session.scalars(visible_by_id(KINDS[type_name], viewer, pks))).all():
            found[(type_name, record.id)] = record
    return [None if key is None else found.get(key) for key in keys]


@dataclass(frozen=True)
class ListFilter:
    """The filters every other list shares: free-text search and owner, plus exact matches."""

    search: str | None = None
    assigned_to: tuple[str, ...] | None = None
    equals: tuple[tuple[str, Any], ...] = ()


def list_conditions(kind: Kind, f: ListFilter | None) -> list[ColumnElement[bool]]:
    if f is None:
        return []
    c: list[ColumnElement[bool]] = []
    if f.search:
        c.append(contains(f.search, *kind.search))
    if f.assigned_to is not None and kind.owner is not None:
        c.append(kind.owner.in_([pk for g in f.assigned_to if (pk := pk_of(g, "User"))]))
    for attr, value in f.equals:
        if value is not None:
            c.append(getattr(kind.model, attr) == value)
    return c


def sort_keys(
    type_name: str,
    order: tuple[tuple[str, bool], ...] | None,
    extra: dict[str, Any] | None = None,
) -> tuple[list[SortKey], str]:
    """Sort keys for (field, descending) pairs, and the cursor signature they imply;
    `extra` holds expressions for names beyond the type's fields (custom fields)."""
    order = order or (("CREATED_AT", False),)
    fields = {**KINDS[type_name].order, **(extra or {})}
    keys = [SortKey(fields[name], desc) for name, desc in order]
    return keys, type_name + ":" + ",".join(f"{n}{'-' if d else '+'}" for n, d in order)


def list_query(
    viewer: Viewer,
    type_name: str,
    args: PageArgs,
    conditions: list[ColumnElement[bool]],
    order: tuple[tuple[str, bool], ...] | None,
    default_size: int,
    max_size: int,
    extra_sort: dict[str, Any] | None = None,
    columns: Sequence[Any] | None = None,
    joins: Sequence[tuple[Any, Any]] = (),
    with_total: bool = False,
) -> PageQuery:
    """The statement of a page of visible records of one type matching `conditions`, in
    `order` then id (ORM objects, or rows of `columns` with `joins`; see page_query)."""
    kind = KINDS[type_name]
    keys, signature = sort_keys(type_name, order, extra_sort)
    where = [*kind.visible(viewer), *conditions]
    total = kind.total(viewer) if kind.total is not None and not conditions else None
    return page_query(
        kind.model, where, keys, signature, args, default_size, max_size, columns, joins,
        with_total, total,
    )
