"""The audit of configuration changes (custom fields, picklists, layouts) and of other admin
actions (purging the recycle bin), for admins."""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry

import models
from resolvers import audit as rules
from schema.context import Info
from schema.reads import computed, node_id, to_one, value_field
from schema.relay import Connection, Node, page_args, rows_of
from schema.scalars import JSON
from schema.user import User


@strawberry.enum(description="What a configuration change was about.")
class ConfigurationChangeKind(Enum):
    CUSTOM_FIELD = "CUSTOM_FIELD"
    PICKLIST = "PICKLIST"
    LAYOUT = "LAYOUT"
    RECYCLE_BIN = "RECYCLE_BIN"




@strawberry.type(
    description="One change of configuration: who changed what, when, from what to what."
)
class ConfigurationChange(Node):
    is_type_of = rows_of(models.ConfigurationChange)
    id: strawberry.ID = node_id("ConfigurationChange")
    kind: ConfigurationChangeKind = computed(
        lambda change: ConfigurationChangeKind(change.kind), reads=("kind",)
    )
    scope: str = strawberry.field(
        description="The entity (OPPORTUNITY, ...) or the picklist name (salesStage, ...)."
    )
    key: str | None = strawberry.field(
        description="The custom field's or picklist value's key, or the number of the record "
        "purged from the recycle bin; null for a whole layout."
    )
    action: str = strawberry.field(
        description="CREATE, UPDATE, ACTIVATE, DEACTIVATE, ..., PURGE (from the recycle bin)."
    )
    before: JSON | None = strawberry.field(description="The state before; null on CREATE.")
    after: JSON | None = strawberry.field(description="The state after.")
    changed_by: User = to_one("User", "changed_by_id", description="Who changed it.")
    changed_at: dt.datetime


@strawberry.type
class AuditQuery:
    @value_field(description="Configuration changes, newest first (admin only).")
    async def configuration_changes(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        kind: ConfigurationChangeKind | None = None,
    ) -> Connection[ConfigurationChange]:
        ctx = info.context
        page = await rules.configuration_changes(
            ctx.session, ctx.viewer, kind.value if kind else None,
            page_args(first, after, last, before), ctx.default_page_size, ctx.max_page_size,
        )
        return Connection(page=page)
