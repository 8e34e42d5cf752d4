"""The deal room: documents, activities, comments and the field history of deals."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Timestamps, UTCDateTime, utcnow

LINKABLE = ("OPPORTUNITY", "ACCOUNT", "CONTACT", "LEAD")
ACTIVITY_TYPES = ("CALL", "MEETING", "TASK", "EMAIL")


class Document(Timestamps, Base):
    """A file's metadata; the bytes live under DEALGRAPH_DATA_DIR by SHA-256 (stored once)."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DocumentLink(Base):
    """A document attached to a record (one document may sit on several)."""

    __tablename__ = "document_links"
    __table_args__ = (Index("ix_document_links_record", "entity", "record_id"),)

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Activity(Timestamps, Base):
    """A call, meeting, task or email about one or more records."""

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="PLANNED")
    start_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    assigned_to_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ActivityLink(Base):
    __tablename__ = "activity_links"
    __table_args__ = (Index("ix_activity_links_record", "entity", "record_id"),)

    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_id: Mapped[int] = mapped_column(primary_key=True)


class Comment(Timestamps, Base):
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_record", "entity", "record_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int]
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id"))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class FieldChange(Base):
    """One tracked field of a deal changing value: who, when, from what to what, by which path."""

    __tablename__ = "field_changes"
    __table_args__ = (Index("ix_field_changes_opportunity", "opportunity_id", "changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id"))
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="MUTATION")
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
