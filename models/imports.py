"""CSV import jobs: their progress and report, and what they changed (for undo)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class ImportJob(Base):
    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(16), default="OPPORTUNITY")
    filename: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(default=0)
    processed: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    failed_rows_csv: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    undone_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The process that runs (or ran) it, to tell a job whose process is gone (INTERRUPTED).
    runner_pid: Mapped[int | None]
    runner_host: Mapped[str | None] = mapped_column(String(255))
    runner_started: Mapped[str | None] = mapped_column(String(64))
    # The file, to resume an interrupted job: the command's own file, or a copy of an upload
    # in DEALGRAPH_DATA_DIR that the job owns (`source_kept`, removed once the job ends).
    source_path: Mapped[str | None] = mapped_column(Text)
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    source_kept: Mapped[bool] = mapped_column(default=False, server_default=false())


class ImportItem(Base):
    """A record an import created or overwrote; `before` holds the overwritten values."""

    __tablename__ = "import_items"
    __table_args__ = (
        Index("ix_import_items_job", "job_id", "kind"),
        Index("ix_import_items_record", "kind", "record_id"),  # a purge finds a deal's items
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id"))
    kind: Mapped[str] = mapped_column(String(16))  # OPPORTUNITY | ACCOUNT
    record_id: Mapped[int]
    action: Mapped[str] = mapped_column(String(16))  # CREATED | UPDATED
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
