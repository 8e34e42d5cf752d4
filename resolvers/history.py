"""Field history of deals: every change of a tracked field, whatever path made it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import FieldChange, Opportunity
from models.base import utcnow
from resolvers import events
from resolvers.cache import store
from resolvers.ids import to_global_id

TRACKED = {
    "amount": "amount",
    "sales_stage": "salesStage",
    "probability": "probability",
    "expected_close_date": "expectedCloseDate",
    "actual_close_date": "actualCloseDate",
    "assigned_to_id": "assignedTo",
    "account_id": "account",
    "campaign_id": "campaign",
}
SOURCES = ("MUTATION", "QUOTE_SYNC", "IMPORT", "CONVERSION", "UNDO")
# Tracked references: stored as database ids, shown to clients as global ids.
REFERENCES = {"assignedTo": "User", "account": "Account", "campaign": "Campaign"}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _values(opp: Opportunity) -> dict[str, Any]:
    values = {name: _plain(getattr(opp, column)) for column, name in TRACKED.items()}
    for key, value in (opp.custom_fields or {}).items():
        values[key] = value
    return values


def shown(field: str, value: Any) -> Any:
    """A stored value as clients see it: a reference as its global id."""
    type_name = REFERENCES.get(field)
    if type_name is not None and isinstance(value, int):
        return to_global_id(type_name, value)
    return value


def remember(session: AsyncSession, opp: Opportunity) -> None:
    """Note a deal's tracked values when it is loaded for a change (and, for its live
    events, its assignee before the change)."""
    store(session)[("history", opp.id)] = _values(opp)
    events.loaded(session, opp)


def set_source(session: AsyncSession, source: str) -> None:
    """Which path the following writes come from (imports, undo), until the session ends."""
    store(session)["history_source"] = source


def record(
    session: AsyncSession, opp: Opportunity, actor_id: int, source: str | None = None
) -> bool:
    """Add a FieldChange for each tracked field that differs from what was remembered;
    returns whether any did."""
    known = store(session)
    before = known.get(("history", opp.id))
    if before is None:
        return False
    after = _values(opp)
    source = source or known.get("history_source", "MUTATION")
    changed = False
    now = utcnow()  # one write, one instant for all its changes
    for field in sorted(set(before) | set(after)):
        if before.get(field) != after.get(field):
            session.add(FieldChange(
                opportunity_id=opp.id, field=field, old_value=before.get(field),
                new_value=after.get(field), source=source, changed_by_id=actor_id,
                changed_at=now,
            ))
            changed = True
    known[("history", opp.id)] = after
    return changed
