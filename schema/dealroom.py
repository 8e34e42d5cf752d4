"""The deal room: documents, activities and comments on opportunities, accounts, contacts
and leads (the records implementing DealRoomRecord)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

import strawberry

import models
from resolvers import activities, documents, links
from resolvers.ids import to_global_id
from resolvers.kinds import TYPE_OF_ENTITY
from schema.common import RecordOrder, list_filter, record_spec
from schema.context import Context, Info
from schema.reads import ListSpec, computed, connection, node_id, references, to_one
from schema.relay import Connection, Node, order_pairs, rows_of
from schema.user import User


@strawberry.enum
class ActivityType(Enum):
    CALL = "CALL"
    MEETING = "MEETING"
    TASK = "TASK"
    EMAIL = "EMAIL"


@strawberry.enum
class ActivityStatus(Enum):
    PLANNED = "PLANNED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


def _linked(
    links_of: Callable[[Context], Any],
) -> Callable[[Context, list[Any]], Awaitable[dict[int, list[links.Key]]]]:
    """The records each row is linked to: opportunities, accounts, contacts, then leads, each
    oldest first."""

    async def keys(ctx: Context, rows: list[Any]) -> dict[int, list[links.Key]]:
        ids = [row.id for row in rows]
        found = await links_of(ctx).load_many(ids)
        return {
            pk: [(TYPE_OF_ENTITY[entity], rid) for entity, rid in links.ordered(keys)]
            for pk, keys in zip(ids, found, strict=True)
        }

    return keys


async def _record_of(ctx: Context, rows: list[Any]) -> dict[int, list[links.Key]]:
    return {row.id: [(TYPE_OF_ENTITY[row.entity], row.record_id)] for row in rows}


@strawberry.type(description="A file on one or more records (vtiger's Documents).")
class Document(Node):
    is_type_of = rows_of(models.Document)
    id: strawberry.ID = node_id("Document")
    title: str
    filename: str
    content_type: str
    size: int = strawberry.field(description="In bytes.")
    sha256: str = strawberry.field(description="Of the content, hex.")
    created_at: dt.datetime
    updated_at: dt.datetime

    created_by: User = to_one("User", "created_by_id")

    download_url: str = computed(
        lambda document: f"/documents/{to_global_id('Document', document.id)}", reads=("id",),
        description="GET it with the same bearer token: the bytes, with the content type and "
        "the file name.",
    )

    linked_to: list[Node] = references(
        _linked(lambda ctx: ctx.loaders.document_links),
        description="The records it is on that the viewer may see.",
    )


@strawberry.type(description="A call, meeting, task or email about one or more records.")
class Activity(Node):
    is_type_of = rows_of(models.Activity)
    id: strawberry.ID = node_id("Activity")
    subject: str
    body: str | None
    start_at: dt.datetime | None
    due_at: dt.datetime | None
    completed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    type: ActivityType = computed(lambda activity: ActivityType(activity.type), reads=("type",))
    status: ActivityStatus = computed(
        lambda activity: ActivityStatus(activity.status), reads=("status",)
    )

    assigned_to: User = to_one("User", "assigned_to_id")

    created_by: User = to_one("User", "created_by_id")

    related_to: list[Node] = references(
        _linked(lambda ctx: ctx.loaders.activity_links),
        description="The records it is about that the viewer may see.",
    )


@strawberry.type(description="A remark on a record, possibly answering another one.")
class Comment(Node):
    is_type_of = rows_of(models.Comment)
    id: strawberry.ID = node_id("Comment")
    text: str
    created_at: dt.datetime
    updated_at: dt.datetime

    author: User = to_one("User", "author_id")

    reply_to: Comment | None = to_one(
        "Comment", "reply_to_id",
        description="The comment it answers; null when that one was deleted.",
    )

    record: Node | None = references(
        _record_of, reads=("entity", "record_id"), many=False, description="The record it is on."
    )


@strawberry.interface(
    description="A record with a deal room: documents, activities and comments, oldest first."
)
class DealRoomRecord:
    @connection(
        "Document", Connection[Document], models.DocumentLink.record_id, through_parent=True
    )
    @staticmethod
    async def documents(
        root: strawberry.Parent[Any],
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> ListSpec:
        entity = links.entity_of(root)
        return ListSpec(documents.on_record(entity), spec=("documents", entity))

    @connection(
        "Activity", Connection[Activity], models.ActivityLink.record_id, through_parent=True
    )
    @staticmethod
    async def activities(
        root: strawberry.Parent[Any],
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        status: ActivityStatus | None = None,
    ) -> ListSpec:
        entity = links.entity_of(root)
        wanted = status.value if status is not None else None
        return ListSpec(activities.on_record(entity, wanted),
                        spec=("activities", entity, wanted))

    @connection("Comment", Connection[Comment], models.Comment.record_id, through_parent=True)
    @staticmethod
    async def comments(
        root: strawberry.Parent[Any],
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> ListSpec:
        entity = links.entity_of(root)
        return ListSpec(activities.comments_on_record(entity), spec=("comments", entity))


@strawberry.input
class DocumentFilter:
    search: str | None = strawberry.field(default=None, description="Title or file name.")


@strawberry.input(description="Every given field must hold (AND).")
class ActivityFilter:
    search: str | None = strawberry.field(default=None, description="Subject.")
    assigned_to: list[strawberry.ID] | None = None
    status: list[ActivityStatus] | None = None
    type: list[ActivityType] | None = None
    related_to: strawberry.ID | None = strawberry.field(
        default=None, description="An opportunity, account, contact or lead."
    )


async def _activity_conditions(info: Info, f: ActivityFilter | None) -> list[Any]:
    if f is None:
        return []
    return [
        *await list_filter(info, "Activity", f),
        *activities.filter_conditions(
            [s.value for s in f.status] if f.status is not None else None,
            [t.value for t in f.type] if f.type is not None else None,
            f.related_to,
        ),
    ]


@strawberry.type
class DealRoomQuery:
    @connection(
        "Document", Connection[Document],
        description="Documents the viewer may see (on a record they may see).",
    )
    async def documents(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: DocumentFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> ListSpec:
        return await record_spec(info, "Document", filter, order_by)

    @connection(
        "Activity", Connection[Activity],
        description="Activities the viewer may see: assigned to someone whose records they "
        "may read (themselves, their team), or about a record they may see.",
    )
    async def activities(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: ActivityFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> ListSpec:
        return ListSpec(await _activity_conditions(info, filter), order_pairs(order_by))
