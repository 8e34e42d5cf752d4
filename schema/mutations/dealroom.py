"""Deal room mutations: documents (upload, link, unlink, delete), activities and comments."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry
from strawberry.file_uploads import Upload

from resolvers import activities as activity_rules
from resolvers import documents as document_rules
from resolvers.errors import RequestError
from resolvers.filestore import FileStore
from resolvers.ids import to_global_id
from schema.context import Context, Info
from schema.dealroom import Activity, ActivityStatus, ActivityType, Comment, Document
from schema.mutations.base import UserError, mutate, provided

UNSET = strawberry.UNSET


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """Enum members as their values, for the resolvers."""
    return {k: v.value if isinstance(v, ActivityType | ActivityStatus) else v
            for k, v in data.items()}


def _files(context: Context) -> FileStore:
    if context.files is None:  # pragma: no cover - the server always configures it
        raise RuntimeError("no file store configured")
    return context.files


def _deleted(type_name: str, row: Any) -> strawberry.ID | None:
    return None if row is None else strawberry.ID(to_global_id(type_name, row.id))


@strawberry.input(description="A GraphQL multipart request (the file as a separate part).")
class UploadDocumentInput:
    file: Upload
    title: str | None = strawberry.field(default=UNSET, description="Defaults to the file name.")
    opportunity_id: strawberry.ID | None = UNSET
    account_id: strawberry.ID | None = UNSET
    contact_id: strawberry.ID | None = UNSET
    lead_id: strawberry.ID | None = UNSET


@strawberry.input
class LinkDocumentInput:
    document_id: strawberry.ID
    record_id: strawberry.ID = strawberry.field(
        description="An opportunity, account, contact or lead."
    )


@strawberry.input
class UnlinkDocumentInput:
    document_id: strawberry.ID
    record_id: strawberry.ID


@strawberry.input
class DeleteDocumentInput:
    id: strawberry.ID


@strawberry.input
class CreateActivityInput:
    type: ActivityType
    subject: str
    related_to_ids: list[strawberry.ID] = strawberry.field(
        description="Opportunities, accounts, contacts or leads; at least one."
    )
    body: str | None = UNSET
    start_at: dt.datetime | None = UNSET
    due_at: dt.datetime | None = UNSET
    status: ActivityStatus | None = strawberry.field(default=UNSET, description="PLANNED.")
    assigned_to_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="Defaults to you."
    )


@strawberry.input
class UpdateActivityInput:
    id: strawberry.ID
    type: ActivityType | None = UNSET
    subject: str | None = UNSET
    body: str | None = UNSET
    start_at: dt.datetime | None = UNSET
    due_at: dt.datetime | None = UNSET
    status: ActivityStatus | None = UNSET
    assigned_to_id: strawberry.ID | None = UNSET
    related_to_ids: list[strawberry.ID] | None = strawberry.field(
        default=UNSET,
        description="Replaces the records it is about (links to records you may not see stay).",
    )


@strawberry.input
class CompleteActivityInput:
    id: strawberry.ID


@strawberry.input
class DeleteActivityInput:
    id: strawberry.ID


@strawberry.input
class CreateCommentInput:
    record_id: strawberry.ID = strawberry.field(
        description="An opportunity, account, contact or lead."
    )
    text: str
    reply_to_id: strawberry.ID | None = strawberry.field(
        default=UNSET, description="A comment on the same record."
    )


@strawberry.input
class UpdateCommentInput:
    id: strawberry.ID
    text: str


@strawberry.input
class DeleteCommentInput:
    id: strawberry.ID


@strawberry.type
class DocumentPayload:
    document: Document | None
    user_errors: list[UserError]


@strawberry.type
class UploadDocumentPayload(DocumentPayload):
    pass


@strawberry.type
class LinkDocumentPayload(DocumentPayload):
    pass


@strawberry.type
class UnlinkDocumentPayload(DocumentPayload):
    pass


@strawberry.type
class ActivityPayload:
    activity: Activity | None
    user_errors: list[UserError]


@strawberry.type
class CreateActivityPayload(ActivityPayload):
    pass


@strawberry.type
class UpdateActivityPayload(ActivityPayload):
    pass


@strawberry.type
class CompleteActivityPayload(ActivityPayload):
    pass


@strawberry.type
class CommentPayload:
    comment: Comment | None
    user_errors: list[UserError]


@strawberry.type
class CreateCommentPayload(CommentPayload):
    pass


@strawberry.type
class UpdateCommentPayload(CommentPayload):
    pass


@strawberry.type
class DeletedPayload:
    deleted_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type
class DeleteDocumentPayload(DeletedPayload):
    pass


@strawberry.type
class DeleteActivityPayload(DeletedPayload):
    pass


@strawberry.type
class DeleteCommentPayload(DeletedPayload):
    pass


@strawberry.type
class DealRoomMutation:
    @strawberry.mutation(
        description="Upload a file onto a record (at most the server's upload limit, 25 MiB "
        "by default); the same bytes are stored once."
    )
    async def upload_document(
        self, info: Info, input: UploadDocumentInput
    ) -> UploadDocumentPayload:
        ctx = info.context
        upload: Any = input.file
        if not hasattr(upload, "file") or not hasattr(upload, "filename"):
            raise RequestError(
                "`file` must be a file part of a multipart request (the GraphQL multipart "
                "request spec: operations, map, then the file)."
            )
        files = _files(ctx)
        data = provided(input, "file")
        try:
            async with files.spooled(upload.file) as spool:
                document, errors = await mutate(
                    info,
                    lambda: document_rules.upload_document(
                        ctx.session, ctx.viewer, files, upload, spool, data
                    ),
                )
        finally:
            await upload.close()  # the request's own temporary copy
        return UploadDocumentPayload(document=document, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Show the document on another record too.")
    async def link_document(self, info: Info, input: LinkDocumentInput) -> LinkDocumentPayload:
        ctx = info.context
        document, errors = await mutate(
            info,
            lambda: document_rules.link_document(
                ctx.session, ctx.viewer, input.document_id, input.record_id
            ),
        )
        return LinkDocumentPayload(document=document, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Take the document off one record (not its last).")
    async def unlink_document(
        self, info: Info, input: UnlinkDocumentInput
    ) -> UnlinkDocumentPayload:
        ctx = info.context
        document, errors = await mutate(
            info,
            lambda: document_rules.unlink_document(
                ctx.session, ctx.viewer, input.document_id, input.record_id
            ),
        )
        return UnlinkDocumentPayload(document=document, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Move the document to the recycle bin.")
    async def delete_document(
        self, info: Info, input: DeleteDocumentInput
    ) -> DeleteDocumentPayload:
        ctx = info.context
        document, errors = await mutate(
            info, lambda: document_rules.delete_document(ctx.session, ctx.viewer, input.id)
        )
        return DeleteDocumentPayload(deleted_id=_deleted("Document", document), user_errors=errors)

    @strawberry.mutation
    async def create_activity(
        self, info: Info, input: CreateActivityInput
    ) -> CreateActivityPayload:
        ctx = info.context
        data = _plain(provided(input))
        activity, errors = await mutate(
            info, lambda: activity_rules.create_activity(ctx.session, ctx.viewer, data)
        )
        return CreateActivityPayload(activity=activity, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Change the given fields.")
    async def update_activity(
        self, info: Info, input: UpdateActivityInput
    ) -> UpdateActivityPayload:
        ctx = info.context
        data = _plain(provided(input, "id"))
        activity, errors = await mutate(
            info, lambda: activity_rules.update_activity(ctx.session, ctx.viewer, input.id, data)
        )
        return UpdateActivityPayload(activity=activity, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Mark it done (completedAt: now); done already: no change.")
    async def complete_activity(
        self, info: Info, input: CompleteActivityInput
    ) -> CompleteActivityPayload:
        ctx = info.context
        activity, errors = await mutate(
            info, lambda: activity_rules.complete_activity(ctx.session, ctx.viewer, input.id)
        )
        return CompleteActivityPayload(activity=activity, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Move the activity to the recycle bin.")
    async def delete_activity(
        self, info: Info, input: DeleteActivityInput
    ) -> DeleteActivityPayload:
        ctx = info.context
        activity, errors = await mutate(
            info, lambda: activity_rules.delete_activity(ctx.session, ctx.viewer, input.id)
        )
        return DeleteActivityPayload(deleted_id=_deleted("Activity", activity), user_errors=errors)

    @strawberry.mutation
    async def create_comment(self, info: Info, input: CreateCommentInput) -> CreateCommentPayload:
        ctx = info.context
        data = provided(input)
        comment, errors = await mutate(
            info, lambda: activity_rules.create_comment(ctx.session, ctx.viewer, data)
        )
        return CreateCommentPayload(comment=comment, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Its author only.")
    async def update_comment(self, info: Info, input: UpdateCommentInput) -> UpdateCommentPayload:
        ctx = info.context
        data = provided(input, "id")
        comment, errors = await mutate(
            info, lambda: activity_rules.update_comment(ctx.session, ctx.viewer, input.id, data)
        )
        return UpdateCommentPayload(comment=comment, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Its author or an admin; replies stay.")
    async def delete_comment(self, info: Info, input: DeleteCommentInput) -> DeleteCommentPayload:
        ctx = info.context
        comment, errors = await mutate(
            info, lambda: activity_rules.delete_comment(ctx.session, ctx.viewer, input.id)
        )
        return DeleteCommentPayload(deleted_id=_deleted("Comment", comment), user_errors=errors)
