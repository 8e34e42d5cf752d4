"""The records that documents, activities and comments hang on: opportunities, accounts,
contacts and leads, named in the link tables by an entity code and a primary key.

The deal room's editing rule lives here: changing or deleting a document or an activity
takes edit rights on a record it is linked to, or, for one that has an owner (an activity's
assignee), edit rights on its owner's records. Its visibility rule (visible through any
visible record it is linked to; an activity through its assignee too) is in
resolvers/kinds.py, with every kind's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Activity, ActivityLink, Comment, Document, DocumentLink
from resolvers.errors import ErrorCode
from resolvers.ids import from_global_id, pk_of
from resolvers.kinds import ENTITY_OF_TYPE, KINDS, LINKED
from resolvers.permissions import Viewer
from resolvers.tx import assign_ids
from resolvers.validation import Checker, FieldPath

Key = tuple[str, int]  # (entity, record id)


def ordered(keys: Iterable[Key]) -> list[Key]:
    """Opportunities, accounts, contacts, then leads; each by id."""
    rank = {entity: i for i, entity in enumerate(LINKED)}
    return sorted(keys, key=lambda key: (rank[key[0]], key[1]))


def entity_of(record: Any) -> str:
    """The entity of a record (or of its model class)."""
    model = record if isinstance(record, type) else type(record)
    return ENTITY_OF_TYPE[model.__name__]


def key_of(record: Any) -> Key:
    return entity_of(record), record.id


def may_edit(viewer: Viewer, record: Any) -> bool:
    return record.deleted_at is None and viewer.can_edit_owner(record.assigned_to_id)


async def load_records(session: AsyncSession, keys: Iterable[Key]) -> dict[Key, Any]:
    """The records (deleted or not) behind link keys: one query per entity."""
    wanted: dict[str, set[int]] = {}
    for entity, pk in keys:
        wanted.setdefault(entity, set()).add(pk)
    found: dict[Key, Any] = {}
    for entity, pks in wanted.items():
        model = LINKED[entity]
        for record in (await session.scalars(select(model).where(model.id.in_(pks)))).all():
            found[(entity, record.id)] = record
    return found


async def linked_keys(
    session: AsyncSession, link: Any, owner_column: Any, owner_id: int
) -> list[Key]:
    stmt = select(link.entity, link.record_id).where(owner_column == owner_id)
    return [(entity, pk) for entity, pk in await session.execute(stmt)]


async def editable_link(
    session: AsyncSession, viewer: Viewer, link: Any, owner_column: Any, owner_id: int
) -> bool:
    """Whether the viewer may edit a record that the document or activity is linked to."""
    keys = await linked_keys(session, link, owner_column, owner_id)
    records = await load_records(session, keys)
    return any(may_edit(viewer, r) for r in records.values())


async def target(
    c: Checker, field: FieldPath, global_id: str | None, *, edit: bool = True
) -> tuple[Key, Any] | None:
    """The record a `...Id`/`recordId` input names, to hang something on: NOT_FOUND unless
    the viewer may see it, INVALID for a type that takes no documents, activities or
    comments, PERMISSION_DENIED (when `edit`) unless the viewer may also change it."""
    if global_id is None:
        return None
    decoded = from_global_id(global_id)
    if decoded is None:
        c.fail(field, f"No record with id {global_id!r}.", ErrorCode.NOT_FOUND)
        return None
    type_name = decoded[0]
    if type_name not in ENTITY_OF_TYPE:
        c.fail(field, f"A {type_name.lower()} takes no documents, activities or comments; "
               "use an opportunity, account, contact or lead.", ErrorCode.INVALID)
        return None
    record = await c.reference(field, type_name, global_id)
    if record is None:
        return None
    if edit and not may_edit(c.viewer, record):
        c.fail(field, f"You may read this {type_name.lower()} but not change it.",
               ErrorCode.PERMISSION_DENIED)
        return None
    return key_of(record), record



async def load_for_edit(
    c: Checker, type_name: str, link: Any, owner_column: Any, global_id: str, field: FieldPath
) -> Any:
    """A document or activity (`type_name`) that the viewer may see (NOT_FOUND otherwise)
    and change (PERMISSION_DENIED otherwise), locked; None after a failure noted in `c`.
    The viewer may change it when they may edit its owner's records (an activity's
    assignee and their managers) or a record it is linked to."""
    kind = KINDS[type_name]
    pk = pk_of(global_id, type_name)
    row = None
    if pk is not None:
        stmt = (
            select(kind.model)
            .where(kind.model.id == pk, *kind.visible(c.viewer))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        row = (await c.session.scalars(stmt)).first()
    label = type_name.lower()
    if row is None:
        c.fail(field, f"No {label} with id {global_id!r}.", ErrorCode.NOT_FOUND)
        return None
    owns = kind.owner is not None and c.viewer.can_edit_owner(getattr(row, kind.owner.key))
    if not owns and not await editable_link(c.session, c.viewer, link, owner_column, row.id):
        whose = "it is not assigned to you or your team, and " if kind.owner is not None else ""
        c.fail(
            field,
            f"You may see this {label} but not change it: {whose}you may change none of the "
            "records it is linked to.",
            ErrorCode.PERMISSION_DENIED,
        )
        return None
    return row


async def carry_over(
    session: AsyncSession, source: Key, targets: Sequence[Key], comments_to: Key | None
) -> None:
    """The history of a converted lead moves with it (vtiger's transfer of related records):
    its documents and activities are linked to every target as well (their link to the lead
    stays, so the lead still shows them), and its comments are copied onto `comments_to`
    with their authors, times and reply threads (the lead keeps its own)."""
    entity, pk = source
    for link, owner in (
        (DocumentLink, DocumentLink.document_id), (ActivityLink, ActivityLink.activity_id),
    ):
        on_source = select(owner).where(link.entity == entity, link.record_id == pk)
        rows = await session.execute(
            select(owner, link.entity, link.record_id).where(owner.in_(on_source))
        )
        have = {(o, e, r) for o, e, r in rows}
        for owner_id in sorted({o for o, e, r in have if (e, r) == source}):
            session.add_all(
                link(**{owner.key: owner_id, "entity": t_entity, "record_id": t_pk})
                for t_entity, t_pk in dict.fromkeys(targets)
                if (owner_id, t_entity, t_pk) not in have
            )
    if comments_to is not None:
        stmt = (
            select(Comment)
            .where(Comment.entity == entity, Comment.record_id == pk)
            .order_by(Comment.id)
        )
        originals = (await session.scalars(stmt)).all()
        copies = {
            c.id: Comment(
                entity=comments_to[0], record_id=comments_to[1], author_id=c.author_id,
                text=c.text, deleted_at=c.deleted_at, created_at=c.created_at,
                updated_at=c.updated_at,
            )
            for c in originals
        }
        session.add_all(copies.values())
        await assign_ids(session)  # the copies' ids, for their replies, before the insert
        for c in originals:
            if c.reply_to_id is not None and c.reply_to_id in copies:
                copies[c.id].reply_to_id = copies[c.reply_to_id].id
    await session.flush()


async def purge_record(session: AsyncSession, key: Key) -> None:
    """Forget a record that is removed for good: its comments go, and so do its document and
    activity links; a document or activity linked to nothing else goes with them (nothing
    could reach it again), one linked to other records stays on those. The bytes of a removed
    document stay in the FileStore, which keeps a file once for every document that has it."""
    entity, pk = key
    await session.execute(delete(Comment).where(Comment.entity == entity, Comment.record_id == pk))
    for model, link, owner in (
        (Document, DocumentLink, DocumentLink.document_id),
        (Activity, ActivityLink, ActivityLink.activity_id),
    ):
        on_record = (link.entity == entity, link.record_id == pk)
        linked = (await session.scalars(select(owner).where(*on_record))).all()
        if not linked:
            continue
        await session.execute(delete(link).where(*on_record))
        await session.execute(
            delete(model).where(model.id.in_(linked), ~exists().where(owner == model.id))
        )

