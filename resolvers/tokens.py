"""The viewers of verified tokens, kept a few seconds per process, so that a request does not
look its token up in the database every time.

An entry is dropped as soon as its token may be refused:
- in this process, when a session of the app commits a change to api_tokens or users (the
  session events below; the cache rides in the session factory's `info`, as the broker does);
- in every process on PostgreSQL, when the database announces such a change, whoever made it
  (migration 0014's triggers NOTIFY on CHANNEL; the events broker's LISTEN connection hears
  it). While that connection is down a notification could be missed: the cache is then
  emptied and not used.
On SQLite, a change made by another process (the CLI, a second worker) is seen when the entry
expires: TTL_SECONDS bounds it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from models import ApiToken, User
from resolvers.auth import attach, authenticate, columns_of, hash_token
from resolvers.permissions import Viewer, load_viewer

CHANNEL = "dealgraph_tokens"  # payload: a token's hash, or "*" for any change to users
CACHE = "dealgraph.tokens"  # session.info (from the session factory): this app's TokenCache
CHANGED = "dealgraph.tokens.changed"  # session.info: this transaction wrote tokens or users
# Long enough that a busy token is looked up once in thousands of requests, short enough that
# a change no notification announces (SQLite across processes) is seen within seconds (the
# server's DEALGRAPH_TOKEN_CACHE_SECONDS).
TTL_SECONDS = 10.0
MAX_ENTRIES = 10_000
TABLES = frozenset({User.__tablename__, ApiToken.__tablename__})


@dataclass(frozen=True)
class Entry:
    expires: float
    user: dict[str, Any]  # the user's column values
    team_ids: frozenset[int] | None


class TokenCache:
    """Verified tokens by hash. `active` is False while invalidations could be missed (no
    LISTEN connection yet, or it was lost): then every request looks its token up."""

    def __init__(self, ttl: float = TTL_SECONDS, *, needs_listener: bool = False) -> None:
        self.ttl = ttl
        self.entries: dict[str, Entry] = {}
        self.active = not needs_listener
        self.generation = 0  # bumped by every invalidation (a lookup under way is not kept)

    def get(self, token_hash: str) -> Entry | None:
        entry = self.entries.get(token_hash) if self.active else None
        if entry is not None and entry.expires <= time.monotonic():
            self.entries.pop(token_hash, None)
            return None
        return entry

    def put(self, token_hash: str, generation: int, viewer: Viewer) -> None:
        """Keep a viewer looked up since `generation` (unless something changed meanwhile)."""
        if not self.active or generation != self.generation:
            return
        if len(self.entries) >= MAX_ENTRIES:
            self.entries.pop(next(iter(self.entries)))
        self.entries[token_hash] = Entry(
            time.monotonic() + self.ttl, columns_of(viewer.user), viewer.team_ids
        )

    def drop(self, token_hash: str) -> None:
        self.generation += 1
        self.entries.pop(token_hash, None)

    def clear(self) -> None:
        self.generation += 1
        self.entries.clear()

    def heard(self, payload: str) -> None:
        """A notification on CHANNEL."""
        if payload == "*":
            self.clear()
        else:
            self.drop(payload)

    def listening(self, listening: bool) -> None:
        """The LISTEN connection is up (what was missed before is forgotten) or lost."""
        self.clear()
        self.active = listening


async def verified_viewer(session: AsyncSession, token: str, sharing: str) -> Viewer | None:
    """The viewer of a valid token (bound to `session`), else None; from the cache of the
    session's app when it has one."""
    cache = session.info.get(CACHE)
    if not isinstance(cache, TokenCache):
        return await _look_up(session, token, sharing)
    token_hash = hash_token(token)
    entry = cache.get(token_hash)
    if entry is not None:
        return Viewer(user=attach(session, entry.user), team_ids=entry.team_ids, sharing=sharing)
    generation = cache.generation
    viewer = await _look_up(session, token, sharing)
    if viewer is not None:
        cache.put(token_hash, generation, viewer)
    return viewer


async def _look_up(session: AsyncSession, token: str, sharing: str) -> Viewer | None:
    user = await authenticate(session, token)
    return None if user is None else await load_viewer(session, user, sharing)


# --- what a session changes -----------------------------------------------------------------


def _note(session: Session) -> None:
    if isinstance(session.info.get(CACHE), TokenCache):
        session.info[CHANGED] = True


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    if any(
        isinstance(obj, User | ApiToken)
        for objects in (session.new, session.dirty, session.deleted) for obj in objects
    ):
        _note(session)


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    table = getattr(state.statement, "table", None)  # an INSERT, UPDATE or DELETE
    if (state.is_insert or state.is_update or state.is_delete) and getattr(
        table, "name", None
    ) in TABLES:
        _note(state.session)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(CHANGED, False):
        cache = session.info.get(CACHE)
        if isinstance(cache, TokenCache):
            cache.clear()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(CHANGED, None)

