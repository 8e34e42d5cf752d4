"""CSV import: upload a file (GraphQL multipart request), poll the job, undo or resume it."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.file_uploads import Upload

from resolvers import importing
from resolvers.errors import ErrorCode, FieldError, ValidationFailed
from resolvers.ids import pk_of
from schema.context import Info
from schema.imports import ImportJob
from schema.mutations.base import UserError, mutate


@strawberry.enum(description="What an import does with a row that matches an existing deal.")
class ImportDuplicates(Enum):
    SKIP = "skip"
    OVERWRITE = "overwrite"
    MERGE = "merge"


@strawberry.enum(description="A field that identifies duplicates (all given must match).")
class ImportMatchField(Enum):
    NUMBER = "number"
    NAME = "name"
    ACCOUNT = "account"
    CAMPAIGN = "campaign"
    ASSIGNED_TO = "assignedTo"
    EXPECTED_CLOSE_DATE = "expectedCloseDate"


@strawberry.input(description="Feed a CSV column to a field (a field key or label), or "
                  "ignore it (field null).")
class ImportColumnMapping:
    column: str
    field: str | None = None


@strawberry.input
class ImportOpportunitiesInput:
    file: Upload = strawberry.field(
        description="The CSV file (a GraphQL multipart request); any of , ; tab |, in UTF-8, "
        "Windows-1252 or ISO-8859-1."
    )
    dry_run: bool = strawberry.field(default=False, description="Report only; write nothing.")
    duplicates: ImportDuplicates = strawberry.field(
        default=ImportDuplicates.SKIP, description="With match: skip, overwrite or merge "
        "(merge fills only empty fields)."
    )
    match: list[ImportMatchField] = strawberry.field(
        default_factory=list, description="The fields that find duplicates; none: no check."
    )
    create_missing_accounts: bool = strawberry.field(
        default=False, description="Create the accounts the file names and nobody has."
    )
    mapping: list[ImportColumnMapping] | None = strawberry.field(
        default=None, description="Overrides the automatic mapping of headers to fields."
    )
    all_or_nothing: bool = strawberry.field(
        default=False, description="Write nothing unless every row passes."
    )


@strawberry.type
class ImportOpportunitiesPayload:
    job: ImportJob | None = strawberry.field(description="Poll it with importJob(id:).")
    user_errors: list[UserError]


@strawberry.input
class UndoImportInput:
    id: strawberry.ID


@strawberry.type
class UndoImportPayload:
    job: ImportJob | None
    user_errors: list[UserError]


@strawberry.input
class ResumeImportInput:
    id: strawberry.ID


@strawberry.type
class ResumeImportPayload:
    job: ImportJob | None = strawberry.field(description="RUNNING again: poll it.")
    user_errors: list[UserError]


def user_errors(refused: ValidationFailed) -> list[UserError]:
    return [UserError(field=e.field, message=e.message, code=e.code) for e in refused.errors]


def _refused(field: str, message: str, code: ErrorCode) -> ValidationFailed:
    return ValidationFailed([FieldError(["input", field], message, code)])


@strawberry.type
class ImportMutation:
    @strawberry.mutation(
        description="Import opportunities from an uploaded CSV file, as yourself (with your "
        "visibility). Returns at once a RUNNING job to poll with importJob(id:)."
    )
    async def import_opportunities(
        self, info: Info, input: ImportOpportunitiesInput
    ) -> ImportOpportunitiesPayload:
        ctx = info.context
        limit = ctx.max_import_bytes
        upload: Any = input.file  # Starlette's UploadFile under the ASGI view

        async def work() -> ImportJob:
            try:
                data = await upload.read(limit + 1)
            finally:
                await upload.close()  # nobody else closes the spooled file
            if len(data) > limit:
                raise _refused("file", f"The file is larger than {limit / 2**20:g} MiB, the "
                               "most an import takes; split it.", ErrorCode.TOO_LONG)
            options = importing.Options(
                dry_run=input.dry_run, duplicates=input.duplicates.value,
                match=tuple(m.value for m in input.match),
                create_missing_accounts=input.create_missing_accounts,
                mapping={m.column: m.field for m in input.mapping or []},
                all_or_nothing=input.all_or_nothing,
            )
            assert ctx.sessions is not None, "the server puts a session factory in the context"
            filename = getattr(upload, "filename", None) or "upload.csv"
            keep = ctx.files.root if ctx.files is not None else None  # for a resume
            job = await importing.submit(
                ctx.sessions, ctx.session, ctx.viewer, data, filename, options, keep
            )
            return job  # type: ignore[return-value]

        # Not in mutate()'s write transaction: the job is committed on a session of its own
        # (a second writer would wait for this one on SQLite), and the import runs in yet
        # others, in the background.
        try:
            job = await work()
        except ValidationFailed as refused:
            return ImportOpportunitiesPayload(job=None, user_errors=user_errors(refused))
        return ImportOpportunitiesPayload(job=job, user_errors=[])

    @strawberry.mutation(
        description="Remove what an import created and restore what it overwrote (deals "
        "changed since go to the recycle bin; accounts in use stay)."
    )
    async def undo_import(self, info: Info, input: UndoImportInput) -> UndoImportPayload:
        ctx = info.context

        async def work() -> ImportJob:
            pk = pk_of(input.id, "ImportJob")
            if pk is None:
                raise _refused("id", f"No import with id {input.id!r}.", ErrorCode.NOT_FOUND)
            job = await importing.undo_import(ctx.session, ctx.viewer, pk)
            return job  # type: ignore[return-value]

        job, errors = await mutate(info, work)
        return UndoImportPayload(job=job, user_errors=errors)

    @strawberry.mutation(
        description="Continue an INTERRUPTED import from its first row not committed, from "
        "the file it kept, as the user who started it; in the background like "
        "importOpportunities. Refused when the job is not interrupted or its file is gone."
    )
    async def resume_import(self, info: Info, input: ResumeImportInput) -> ResumeImportPayload:
        ctx = info.context
        pk = pk_of(input.id, "ImportJob")
        if pk is None:
            refused = _refused("id", f"No import with id {input.id!r}.", ErrorCode.NOT_FOUND)
            return ResumeImportPayload(job=None, user_errors=user_errors(refused))
        assert ctx.sessions is not None, "the server puts a session factory in the context"
        # Like importOpportunities: the job is claimed on a session of its own.
        try:
            job = await importing.submit_resume(ctx.sessions, ctx.viewer, pk)
        except ValidationFailed as refused:
            return ResumeImportPayload(job=None, user_errors=user_errors(refused))
        return ResumeImportPayload(job=job, user_errors=[])  # type: ignore[arg-type]
