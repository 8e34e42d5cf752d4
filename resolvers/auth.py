"""Bearer tokens: random secrets shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from models import ApiToken, User
from resolvers import raw

TOKEN_PREFIX = "dg_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(session: AsyncSession, user: User, name: str = "") -> str:
    """Store a new token for `user` and return the secret (the only time it is seen)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), name=name))
    await session.flush()
    return token


_COLUMNS = {a.key: a.columns[0] for a in inspect(User).column_attrs}
_TOKEN_USER = (
    select(*_COLUMNS.values())
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(
        ApiToken.token_hash == bindparam("token_hash", ""),
        ApiToken.revoked_at.is_(None),
        User.is_active.is_(True),
    )
)
_compiled: dict[str, raw.Compiled] = {}
_USER = inspect(User)


async def authenticate(session: AsyncSession, token: str) -> User | None:
    """The active user owning a valid, unrevoked token, else None. Every request asks: its
    statement is compiled once (resolvers/raw.py) and its row becomes the session's User."""
    token_hash = hash_token(token)
    connection = await raw.Connection.of(session)
    if connection is None:
        stmt = _TOKEN_USER.params(token_hash=token_hash).with_only_columns(User)
        return (await session.scalars(stmt)).first()
    compiled = _compiled.get(connection.dialect.name)
    if compiled is None:
        compiled = _compiled[connection.dialect.name] = raw.Compiled.of(
            _TOKEN_USER, connection.dialect, ("token_hash",)
        )
    rows = await compiled.fetch(connection, token_hash=token_hash)
    if not rows:
        return None
    return attach(session, dict(zip(_COLUMNS, rows[0], strict=True)))


def attach(session: AsyncSession, columns: dict[str, Any]) -> User:
    """A User of `session` made of its column values, without a statement."""
    known = session.sync_session.identity_map.get(
        _USER.identity_key_from_primary_key((columns["id"],))
    )
    if isinstance(known, User):
        return known
    user = _USER.class_manager.new_instance()  # a User without __init__ nor attribute events
    user.__dict__.update(columns)  # as loaded from a row: no change to flush
    make_transient_to_detached(user)
    session.sync_session.add(user)  # persistent, in the session's identity map
    return user


def columns_of(user: User) -> dict[str, Any]:
    """A user's column values (what `attach` takes)."""
    return {key: getattr(user, key) for key in _COLUMNS}
