"""What admins customise: custom field definitions, form layouts, and the audit of changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow

CUSTOMIZABLE = ("OPPORTUNITY", "ACCOUNT", "CONTACT", "LEAD")
FIELD_TYPES = (
    "TEXT", "TEXTAREA", "INTEGER", "DECIMAL", "CURRENCY", "PERCENT", "DATE", "DATETIME",
    "BOOLEAN", "EMAIL", "URL", "PHONE", "PICKLIST", "MULTI_PICKLIST",
)


class CustomFieldDefinition(Base):
    """A field an admin added to an entity; values live in the record's custom_fields JSON."""

    __tablename__ = "custom_field_definitions"
    __table_args__ = (UniqueConstraint("entity", "key", name="entity_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(16))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[list[str] | None] = mapped_column(JSON)
    default_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    help_text: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(default=0)
    # Lead fields only: {"OPPORTUNITY": "cf_x", "ACCOUNT": ..., "CONTACT": ...}
    maps_to: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


class Layout(Base):
    """An entity's form: ordered blocks of field keys with per-field overrides."""

    __tablename__ = "layouts"

    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    blocks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


class ConfigurationChange(Base):
    """Who changed which definition, picklist value or layout, when, from what to what."""

    __tablename__ = "configuration_changes"
    __table_args__ = (Index("ix_configuration_changes_changed_at", "changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # CUSTOM_FIELD | PICKLIST | LAYOUT
    scope: Mapped[str] = mapped_column(String(64))  # the entity or the picklist name
    key: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
