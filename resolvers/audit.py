"""The audit of configuration changes (custom fields, picklists, layouts): who, when, what."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import ConfigurationChange
from resolvers.pagination import Page, PageArgs
from resolvers.permissions import Viewer
from resolvers.records import list_query


def record_change(
    session: AsyncSession,
    viewer: Viewer,
    kind: str,
    scope: str,
    key: str | None,
    action: str,
    before: Any,
    after: Any,
) -> None:
    """Add one audit row in the caller's transaction (so a refused change leaves none)."""
    session.add(
        ConfigurationChange(
            kind=kind, scope=scope, key=key, action=action, before=before, after=after,
            changed_by_id=viewer.user.id,
        )
    )


async def configuration_changes(
    session: AsyncSession,
    viewer: Viewer,
    kind: str | None,
    args: PageArgs,
    default_size: int,
    max_size: int,
) -> Page[ConfigurationChange]:
    """A page of the audit, newest first (admin only)."""
    viewer.require_admin()
    conditions = [] if kind is None else [ConfigurationChange.kind == kind]
    return await list_query(
        viewer, "ConfigurationChange", args, conditions, (("CHANGED_AT", True),),
        default_size, max_size,
    ).read(session)
