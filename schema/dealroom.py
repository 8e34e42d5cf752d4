"""The deal room: documents, activities and comments on opportunities, accounts, contacts
and leads (the records implementing DealRoomRecord)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from enum import Enum
from typing import Any

import strawberry

import models
from resolvers import activities, documents, links
from resolvers.ids import to_global_id
from resolvers.kinds import TYPE_OF_ENTITY
from resolvers.pagination import PageArgs
from schema.common import RecordOrder, list_filter, related, root_list
from schema.context import Info
from schema.relay import Connection, Node, node_id, page_args, rows_of
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


async def _records(info: Info, keys: Sequence[links.Key]) -> list[Any]:
    """The linked records the viewer may see: opportunities, accounts, contacts, then leads,
    each oldest first (batched per type)."""
    found = await asyncio.gather(
        *(related(info, TYPE_OF_ENTITY[entity], pk) for entity, pk in links.ordered(keys))
    )
    return [r for r in found if r is not None]


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

    @strawberry.field
    @staticmethod
    async def created_by(root: strawberry.Parent[models.Document], info: Info) -> User:
        return await related(info, "User", root.created_by_id)  # type: ignore[no-any-return]

    @strawberry.field(
        description="GET it with the same bearer token: the bytes, with the content type and "
        "the file name."
    )
    @staticmethod
    def download_url(root: strawberry.Parent[models.Document]) -> str:
        return f"/documents/{to_global_id('Document', root.id)}"

    @strawberry.field(description="The records it is on that the viewer may see.")
    @staticmethod
    async def linked_to(root: strawberry.Parent[models.Document], info: Info) -> list[Node]:
        return await _records(info, await info.context.loaders.document_links.load(root.id))


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

    @strawberry.field
    @staticmethod
    def type(root: strawberry.Parent[models.Activity]) -> ActivityType:
        return ActivityType(root.type)

    @strawberry.field
    @staticmethod
    def status(root: strawberry.Parent[models.Activity]) -> ActivityStatus:
        return ActivityStatus(root.status)

    @strawberry.field
    @staticmethod
    async def assigned_to(root: strawberry.Parent[models.Activity], info: Info) -> User:
        return await related(info, "User", root.assigned_to_id)  # type: ignore[no-any-return]

    @strawberry.field
    @staticmethod
    async def created_by(root: strawberry.Parent[models.Activity], info: Info) -> User:
        return await related(info, "User", root.created_by_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The records it is about that the viewer may see.")
    @staticmethod
    async def related_to(root: strawberry.Parent[models.Activity], info: Info) -> list[Node]:
        return await _records(info, await info.context.loaders.activity_links.load(root.id))


@strawberry.type(description="A remark on a record, possibly answering another one.")
class Comment(Node):
    is_type_of = rows_of(models.Comment)
    id: strawberry.ID = node_id("Comment")
    text: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @strawberry.field
    @staticmethod
    async def author(root: strawberry.Parent[models.Comment], info: Info) -> User:
        return await related(info, "User", root.author_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The comment it answers; null when that one was deleted.")
    @staticmethod
    async def reply_to(root: strawberry.Parent[models.Comment], info: Info) -> Comment | None:
        return await related(info, "Comment", root.reply_to_id)  # type: ignore[no-any-return]

    @strawberry.field(description="The record it is on.")
    @staticmethod
    async def record(root: strawberry.Parent[models.Comment], info: Info) -> Node | None:
        type_name = TYPE_OF_ENTITY[root.entity]
        return await related(info, type_name, root.record_id)  # type: ignore[no-any-return]


async def _below(
    info: Info, type_name: str, parent_column: Any, root: Any, conditions: list[Any],
    args: PageArgs, spec: tuple[Any, ...],
) -> Connection[Any]:
    page = await info.context.loaders.relation_page(
        type_name, parent_column, root.id, conditions, None, args, spec,
        through_visible_parent=True,
    )
    return Connection(page=page)


@strawberry.interface(
    description="A record with a deal room: documents, activities and comments, oldest first."
)
class DealRoomRecord:
    @strawberry.field
    @staticmethod
    async def documents(
        root: strawberry.Parent[Any],
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Document]:
        entity = links.entity_of(root)
        return await _below(
            info, "Document", models.DocumentLink.record_id, root, documents.on_record(entity),
            page_args(first, after, last, before), ("documents", entity),
        )

    @strawberry.field
    @staticmethod
    async def activities(
        root: strawberry.Parent[Any],
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        status: ActivityStatus | None = None,
    ) -> Connection[Activity]:
        entity = links.entity_of(root)
        wanted = status.value if status is not None else None
        return await _below(
            info, "Activity", models.ActivityLink.record_id, root,
            activities.on_record(entity, wanted), page_args(first, after, last, before),
            ("activities", entity, wanted),
        )

    @strawberry.field
    @staticmethod
    async def comments(
        root: strawberry.Parent[Any],
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Comment]:
        entity = links.entity_of(root)
        return await _below(
            info, "Comment", models.Comment.record_id, root,
            activities.comments_on_record(entity), page_args(first, after, last, before),
            ("comments", entity),
        )


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
    @strawberry.field(description="Documents the viewer may see (on a record they may see).")
    async def documents(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: DocumentFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> Connection[Document]:
        return await root_list(
            info, "Document", page_args(first, after, last, before),
            await list_filter(info, "Document", filter), order_by,
        )

    @strawberry.field(
        description="Activities the viewer may see: assigned to someone whose records they "
        "may read (themselves, their team), or about a record they may see."
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
    ) -> Connection[Activity]:
        return await root_list(
            info, "Activity", page_args(first, after, last, before),
            await _activity_conditions(info, filter), order_by,
        )
