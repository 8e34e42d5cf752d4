"""Communication on records: activities (calls, meetings, tasks, emails) and comments.

An activity relates to one or more opportunities, accounts, contacts or leads. It is visible
to whoever may read its assignee's records (the assignee, their managers, admins; everyone
under PUBLIC sharing) and through any record it relates to that is visible (and not
deleted): the rule is in resolvers/kinds.py. Creating one takes edit rights on every
record it relates to; changing, completing or deleting it takes edit rights on its
assignee's records (the assignee and their managers, as in vtiger's Calendar) or on one of
its records.
A comment sits on one record and is visible with it; writing one takes edit rights on the
record, changing its text is for its author alone, deleting it for its author or an admin.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Activity, ActivityLink, Comment
from models.base import utcnow
from models.dealroom import ACTIVITY_TYPES
from resolvers import links
from resolvers.errors import ErrorCode
from resolvers.ids import from_global_id, pk_of
from resolvers.kinds import ENTITY_OF_TYPE, KINDS
from resolvers.permissions import Viewer
from resolvers.validation import Checker

STATUSES = ("PLANNED", "COMPLETED", "CANCELLED")
MAX_RELATED = 50
BODY_LIMIT = 10_000
COMMENT_LIMIT = 10_000


def on_record(entity: str, status: str | None = None) -> list[ColumnElement[bool]]:
    """The activities of one visible record (parent column ActivityLink.record_id)."""
    where = [
        ActivityLink.activity_id == Activity.id,
        ActivityLink.entity == entity,
        Activity.deleted_at.is_(None),
    ]
    if status is not None:
        where.append(Activity.status == status)
    return where


def filter_conditions(
    statuses: Sequence[str] | None, types: Sequence[str] | None, related_to: str | None
) -> list[ColumnElement[bool]]:
    """The activities list's own filters (search and assignee are the shared ones)."""
    where: list[ColumnElement[bool]] = []
    if statuses is not None:
        where.append(Activity.status.in_(statuses))
    if types is not None:
        where.append(Activity.type.in_(types))
    if related_to is not None:
        decoded = from_global_id(related_to)
        entity = ENTITY_OF_TYPE.get(decoded[0], "") if decoded else ""
        pk = decoded[1] if decoded else -1
        where.append(Activity.id.in_(
            select(ActivityLink.activity_id).where(
                ActivityLink.entity == entity, ActivityLink.record_id == pk
            )
        ))
    return where


def comments_on_record(entity: str) -> list[ColumnElement[bool]]:
    """The comments of one visible record (parent column Comment.record_id)."""
    return [Comment.entity == entity, Comment.deleted_at.is_(None)]


# --- activities ----------------------------------------------------------------------------


def _instant(c: Checker, field: str, value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        c.fail(field, f"{field} needs a UTC offset (e.g. 2027-03-31T09:00:00+02:00).",
               ErrorCode.INVALID)
        return None
    return None if value is None else value.astimezone(dt.UTC)


def _status(c: Checker, value: str | None, required: bool) -> str | None:
    if value is None:
        if required:
            c.fail("status", "Status is required.", ErrorCode.REQUIRED)
        return None
    if value not in STATUSES:  # pragma: no cover - the GraphQL enum admits only these
        c.fail("status", f"Unknown status {value!r}.", ErrorCode.INVALID)
        return None
    return value


async def _related(
    c: Checker, ids: Sequence[str] | None, *, required: bool
) -> list[links.Key] | None:
    """The records an activity relates to: each visible and editable by the viewer."""
    if ids is None:
        if required:
            c.fail("relatedToIds", "Related to ids is required.", ErrorCode.REQUIRED)
        return None
    if not ids:
        c.fail("relatedToIds", "Name at least one record the activity is about.",
               ErrorCode.REQUIRED)
        return None
    if len(ids) > MAX_RELATED:
        c.fail("relatedToIds", f"At most {MAX_RELATED} records; got {len(ids)}.",
               ErrorCode.OUT_OF_RANGE)
        return None
    keys = []
    for i, gid in enumerate(ids):
        found = await links.target(c, ("relatedToIds", str(i)), gid)
        if found is not None:
            keys.append(found[0])
    return list(dict.fromkeys(keys))


async def _values(c: Checker, data: dict[str, Any], creating: bool) -> dict[str, Any]:
    """Checked column values for the given fields (on create, every required one)."""
    values: dict[str, Any] = {}
    if creating or "type" in data:
        kind = c.required("type", data.get("type"))
        if kind is not None and kind not in ACTIVITY_TYPES:  # pragma: no cover - enum
            c.fail("type", f"Unknown activity type {kind!r}.", ErrorCode.INVALID)
        values["type"] = kind
    if creating or "subject" in data:
        values["subject"] = c.text("subject", data.get("subject"), required=True)
    if "body" in data:
        values["body"] = c.text("body", data["body"], max_length=BODY_LIMIT)
    for name, graphql in (("start_at", "startAt"), ("due_at", "dueAt")):
        if name in data:
            values[name] = _instant(c, graphql, data[name])
    if "status" in data and (not creating or data["status"] is not None):
        values["status"] = _status(c, data["status"], required=True)
    if "assigned_to_id" in data and (not creating or data["assigned_to_id"] is not None):
        user = await c.assignee("assignedToId", c.required("assignedToId", data["assigned_to_id"]))
        values["assigned_to_id"] = user.id if user else None
    return values


def _check_times(c: Checker, start: dt.datetime | None, due: dt.datetime | None) -> None:
    if start is not None and due is not None and due < start:
        c.fail("dueAt", "The due time is before the start time.", ErrorCode.INVALID)


def _set_status(activity: Activity, status: str) -> None:
    """COMPLETED stamps completedAt (once); leaving it clears the stamp."""
    if status == "COMPLETED" and activity.status != "COMPLETED":
        activity.completed_at = utcnow()
    elif status != "COMPLETED":
        activity.completed_at = None
    activity.status = status


async def create_activity(session: AsyncSession, viewer: Viewer, data: dict[str, Any]) -> Activity:
    c = Checker(session, viewer)
    values = await _values(c, data, creating=True)
    related = await _related(c, data.get("related_to_ids"), required=True)
    _check_times(c, values.get("start_at"), values.get("due_at"))
    c.done()
    assert related
    status = values.pop("status", None) or "PLANNED"
    assignee = values.pop("assigned_to_id", None) or viewer.user.id
    activity = Activity(
        **values, assigned_to_id=assignee, created_by_id=viewer.user.id, status="PLANNED"
    )
    _set_status(activity, status)
    session.add(activity)
    await session.flush()
    session.add_all(
        ActivityLink(activity_id=activity.id, entity=entity, record_id=pk)
        for entity, pk in related
    )
    await session.flush()
    return activity


async def _for_edit(c: Checker, global_id: str) -> Activity | None:
    return await links.load_for_edit(  # type: ignore[no-any-return]
        c, "Activity", ActivityLink, ActivityLink.activity_id, global_id, "id"
    )


async def update_activity(
    session: AsyncSession, viewer: Viewer, global_id: str, data: dict[str, Any]
) -> Activity:
    """Change the given fields. `relatedToIds` replaces the records the viewer may see
    (links to records hidden from them stay); a record added or removed takes edit rights."""
    c = Checker(session, viewer)
    activity = await _for_edit(c, global_id)
    values = await _values(c, data, creating=False)
    wanted = None
    if "related_to_ids" in data:
        wanted = await _related(c, data["related_to_ids"], required=True)
    current: dict[links.Key, Any] = {}
    if activity is not None:
        keys = await links.linked_keys(session, ActivityLink, ActivityLink.activity_id,
                                       activity.id)
        records = await links.load_records(session, keys)
        current = {
            key: r for key, r in records.items()
            if r.deleted_at is None and viewer.can_read_owner(r.assigned_to_id)
        }
        if wanted is not None:
            for key in current.keys() - set(wanted):
                record = current[key]
                if not links.may_edit(viewer, record):
                    c.fail(
                        "relatedToIds",
                        f"You may not take the activity off {key[0].lower()} {record.number}, "
                        "which you may read but not change.",
                        ErrorCode.PERMISSION_DENIED,
                    )
        _check_times(
            c, values.get("start_at", activity.start_at), values.get("due_at", activity.due_at)
        )
    c.done()
    assert activity is not None
    status = values.pop("status", None)
    for column, value in values.items():
        setattr(activity, column, value)
    if status is not None:
        _set_status(activity, status)
    changed = session.is_modified(activity)
    if wanted is not None:
        gone = current.keys() - set(wanted)
        for entity, pk in gone:
            await session.execute(
                delete(ActivityLink).where(
                    ActivityLink.activity_id == activity.id, ActivityLink.entity == entity,
                    ActivityLink.record_id == pk,
                )
            )
        existing = set(
            await links.linked_keys(session, ActivityLink, ActivityLink.activity_id, activity.id)
        )
        added = [key for key in wanted if key not in existing]
        session.add_all(
            ActivityLink(activity_id=activity.id, entity=entity, record_id=pk)
            for entity, pk in added
        )
        changed = changed or bool(gone or added)
    if changed:
        activity.updated_at = utcnow()
    await session.flush()
    return activity


async def complete_activity(session: AsyncSession, viewer: Viewer, global_id: str) -> Activity:
    """Mark it done (completedAt now); an activity already completed stays as it is."""
    c = Checker(session, viewer)
    activity = await _for_edit(c, global_id)
    c.done()
    assert activity is not None
    if activity.status != "COMPLETED":
        _set_status(activity, "COMPLETED")
        activity.updated_at = utcnow()
        await session.flush()
    return activity


async def delete_activity(session: AsyncSession, viewer: Viewer, global_id: str) -> Activity:
    """To the recycle bin: it vanishes from every list; its links stay."""
    c = Checker(session, viewer)
    activity = await _for_edit(c, global_id)
    c.done()
    assert activity is not None
    activity.deleted_at = utcnow()
    await session.flush()
    return activity


# --- comments ------------------------------------------------------------------------------


async def _comment(c: Checker, global_id: str | None, field: str) -> Comment | None:
    """A comment the viewer may see (NOT_FOUND otherwise), locked."""
    if global_id is None:
        return None
    pk = pk_of(global_id, "Comment")
    found = None
    if pk is not None:
        stmt = (
            select(Comment)
            .where(Comment.id == pk, *KINDS["Comment"].visible(c.viewer))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        found = (await c.session.scalars(stmt)).first()
    if found is None:
        c.fail(field, f"No comment with id {global_id!r}.", ErrorCode.NOT_FOUND)
    return found


async def create_comment(session: AsyncSession, viewer: Viewer, data: dict[str, Any]) -> Comment:
    c = Checker(session, viewer)
    found = await links.target(c, "recordId", c.required("recordId", data.get("record_id")))
    text = c.text("text", data.get("text"), required=True, max_length=COMMENT_LIMIT)
    parent = await _comment(c, data.get("reply_to_id"), "replyToId")
    if found is not None and parent is not None and (parent.entity, parent.record_id) != found[0]:
        c.fail("replyToId", "A reply must be on the same record as the comment it answers.",
               ErrorCode.INVALID)
    c.done()
    assert found is not None and text is not None
    (entity, pk), _ = found
    comment = Comment(
        entity=entity, record_id=pk, author_id=viewer.user.id, text=text,
        reply_to_id=parent.id if parent else None,
    )
    session.add(comment)
    await session.flush()
    return comment


async def _record_editable(session: AsyncSession, viewer: Viewer, comment: Comment) -> bool:
    records = await links.load_records(session, [(comment.entity, comment.record_id)])
    record = records.get((comment.entity, comment.record_id))
    return record is not None and links.may_edit(viewer, record)


async def update_comment(
    session: AsyncSession, viewer: Viewer, global_id: str, data: dict[str, Any]
) -> Comment:
    """Only the author changes the text, and only while they may change the record."""
    c = Checker(session, viewer)
    comment = await _comment(c, global_id, "id")
    text = c.text("text", data.get("text"), required=True, max_length=COMMENT_LIMIT)
    if comment is not None:
        if comment.author_id != viewer.user.id:
            c.fail("id", "Only its author may change a comment.", ErrorCode.PERMISSION_DENIED)
        elif not await _record_editable(session, viewer, comment):
            c.fail("id", "You may read this record but not change it.",
                   ErrorCode.PERMISSION_DENIED)
    c.done()
    assert comment is not None and text is not None
    if comment.text != text:
        comment.text = text
        comment.updated_at = utcnow()
        await session.flush()
    return comment


async def delete_comment(session: AsyncSession, viewer: Viewer, global_id: str) -> Comment:
    """Its author (while they may change the record) or an admin; replies stay."""
    c = Checker(session, viewer)
    comment = await _comment(c, global_id, "id")
    if comment is not None and not viewer.is_admin:
        if comment.author_id != viewer.user.id:
            c.fail("id", "Only its author or an administrator may delete a comment.",
                   ErrorCode.PERMISSION_DENIED)
        elif not await _record_editable(session, viewer, comment):
            c.fail("id", "You may read this record but not change it.",
                   ErrorCode.PERMISSION_DENIED)
    c.done()
    assert comment is not None
    comment.deleted_at = utcnow()
    await session.flush()
    return comment
