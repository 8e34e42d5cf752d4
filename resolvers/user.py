"""Creating users (CLI and admin)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import User
from models.user import ROLES
from resolvers.errors import ErrorCode, FieldError, ValidationFailed


async def by_username(session: AsyncSession, username: str) -> User | None:
    stmt = select(User).where(func.lower(User.username) == username.strip().lower())
    return (await session.scalars(stmt)).first()


async def first_active_admin(session: AsyncSession) -> User | None:
    """Whom a command-line export or import acts as by default: the first active admin."""
    stmt = (
        select(User)
        .where(User.role == "ADMIN", User.is_active.is_(True))
        .order_by(User.id)
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def create_user(
    session: AsyncSession,
    username: str,
    role: str,
    manager_username: str | None = None,
    full_name: str | None = None,
    email: str | None = None,
) -> User:
    """Validate and add a user; every problem is reported at once."""
    errors: list[FieldError] = []
    username = username.strip()
    role = role.strip().upper()
    if not username:
        errors.append(FieldError(["username"], "A username is required.", ErrorCode.REQUIRED))
    elif await by_username(session, username):
        errors.append(
            FieldError(["username"], f"Username {username!r} is taken.", ErrorCode.DUPLICATE)
        )
    if role not in ROLES:
        errors.append(
            FieldError(["role"], f"Role must be one of {', '.join(ROLES)}.", ErrorCode.INVALID)
        )
    manager = None
    if manager_username:
        manager = await by_username(session, manager_username)
        if manager is None:
            errors.append(
                FieldError(
                    ["manager"], f"No user named {manager_username!r}.", ErrorCode.NOT_FOUND
                )
            )
    if errors:
        raise ValidationFailed(errors)
    user = User(
        username=username,
        role=role,
        manager_id=manager.id if manager else None,
        full_name=full_name or username,
        email=email,
    )
    session.add(user)
    await session.flush()
    return user
