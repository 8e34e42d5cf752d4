"""CSV import jobs: their progress and report (importJob), polled while they run."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import strawberry

import models
from resolvers import importing
from resolvers.ids import pk_of
from schema.context import Info
from schema.reads import computed, node_id, to_one, value_field
from schema.relay import Node, rows_of
from schema.scalars import JSON
from schema.user import User


@strawberry.enum(description="Where an import job is.")
class ImportJobStatus(Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"
    UNDONE = "UNDONE"


@strawberry.type(description="A row an import refused: its line in the file, the column at "
                 "fault (null when the row as a whole is) and why.")
class ImportRowError:
    line: int
    column: str | None
    message: str


def _live(job: models.ImportJob) -> importing.Report | None:
    """The report of a job running in this process: fresher than its row."""
    return importing.LIVE.get(job.id) if job.status == "RUNNING" else None


def _count(name: str, description: str) -> Any:
    def count(job: models.ImportJob) -> int:
        live = _live(job)
        return int(getattr(live if live is not None else job, name))

    return computed(count, reads=("id", "status", name), description=description)


def _warnings(root: models.ImportJob) -> list[str]:
    live = _live(root)
    return list(live.warnings if live is not None else root.warnings or [])


def _errors(root: models.ImportJob) -> list[ImportRowError]:
    live = _live(root)
    if live is not None:
        return [ImportRowError(line=i.line, column=i.column, message=i.message)
                for i in live.errors[:1000]]
    return [ImportRowError(line=e["line"], column=e.get("column"), message=e["message"])
            for e in root.errors or []]


@strawberry.type(description="A CSV import: poll it with importJob(id:) while it runs; its "
                 "report once it ends; undoImport takes back what it wrote.")
class ImportJob(Node):
    is_type_of = rows_of(models.ImportJob)
    id: strawberry.ID = node_id("ImportJob")
    status: ImportJobStatus = computed(
        lambda job: ImportJobStatus(job.status), reads=("status",),
        description="RUNNING, then DONE (rows may have failed: see failed and errors) or "
        "FAILED (nothing written by an all-or-nothing import, or it broke off); INTERRUPTED "
        "when its process was stopped or is gone (what its batches committed stays: "
        "resumeImport continues it, undoImport takes it back); UNDONE.",
    )
    filename: str
    total: int = _count("total", "Data rows in the file.")
    processed: int = _count("processed", "Rows processed so far.")
    created: int = _count("created", "Deals created.")
    updated: int = _count("updated", "Existing deals overwritten or merged into.")
    skipped: int = _count("skipped", "Duplicates skipped (or merges with nothing to fill).")
    failed: int = _count("failed", "Rows refused (not written): see errors.")
    warnings: list[str] = computed(
        _warnings, reads=("id", "status", "warnings"),
        description="Columns ignored (unknown or read-only), and notes.",
    )
    errors: list[ImportRowError] = computed(
        _errors, reads=("id", "status", "errors"),
        description="Why rows failed, by line and column (the first 1000).",
    )
    failed_rows_csv: str | None = strawberry.field(
        description="The failed rows as read, with an `Import error` column: fix them and "
        "import the file again. Null when no row failed."
    )
    options: JSON = strawberry.field(description="The options the import ran with.")
    created_by: User = to_one("User", "created_by_id")
    created_at: dt.datetime
    finished_at: dt.datetime | None
    undone_at: dt.datetime | None


@strawberry.type
class ImportQuery:
    @value_field(description="An import job: yours, or any for an admin; else null.")
    async def import_job(self, info: Info, id: strawberry.ID) -> ImportJob | None:
        pk = pk_of(id, "ImportJob")
        if pk is None:
            return None
        job = await importing.visible_job(info.context.session, info.context.viewer, pk)
        return job  # type: ignore[return-value]
