"""Who sees and edits what: vtiger's sharing model (PRIVATE/PUBLIC) over the role hierarchy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from models import User
from resolvers.errors import Forbidden


@dataclass(frozen=True)
class Viewer:
    """The authenticated user with the owner ids whose records they may edit.

    `team_ids` is None for an administrator (no restriction).
    """

    user: User
    team_ids: frozenset[int] | None
    sharing: str = "PRIVATE"

    @property
    def is_admin(self) -> bool:
        return self.user.role == "ADMIN"

    @property
    def readable_owner_ids(self) -> frozenset[int] | None:
        """Owner ids whose records the viewer may read; None means every owner."""
        return None if self.sharing == "PUBLIC" else self.team_ids

    def can_read_owner(self, owner_id: int) -> bool:
        ids = self.readable_owner_ids
        return ids is None or owner_id in ids

    def can_edit_owner(self, owner_id: int) -> bool:
        return self.team_ids is None or owner_id in self.team_ids

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden()


def subordinates(user_id: int, edges: Iterable[tuple[int, int | None]]) -> set[int]:
    """Everyone below user_id in the manager hierarchy, user_id included (cycle-safe)."""
    reports: dict[int, list[int]] = {}
    for uid, manager_id in edges:
        if manager_id is not None:
            reports.setdefault(manager_id, []).append(uid)
    seen = {user_id}
    stack = [user_id]
    while stack:
        for uid in reports.get(stack.pop(), ()):
            if uid not in seen:
                seen.add(uid)
                stack.append(uid)
    return seen


async def load_viewer(session: AsyncSession, user: User, sharing: str) -> Viewer:
    if user.role == "ADMIN":
        return Viewer(user=user, team_ids=None, sharing=sharing)
    if user.role == "MANAGER":
        edges = (await session.execute(select(User.id, User.manager_id))).all()
        return Viewer(user=user, team_ids=frozenset(subordinates(user.id, edges)), sharing=sharing)
    return Viewer(user=user, team_ids=frozenset({user.id}), sharing=sharing)


def readable(owner_column: Any, viewer: Viewer) -> ColumnElement[bool]:
    """SQL condition: the record's owner is one the viewer may read."""
    ids = viewer.readable_owner_ids
    return true() if ids is None else owner_column.in_(sorted(ids))
