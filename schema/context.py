"""What every GraphQL resolver receives: the request's session, viewer, loaders and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers.filestore import FileStore
from resolvers.live import Live
from resolvers.loaders import Loaders
from resolvers.permissions import Viewer


@dataclass
class Context:
    session: AsyncSession
    viewer: Viewer
    loaders: Loaders
    default_page_size: int = 20
    max_page_size: int = 100
    request_id: str = ""
    log: dict[str, Any] = field(default_factory=dict)
    live: Live | None = None  # an operation over the WebSocket: what subscriptions follow
    files: FileStore | None = None  # uploaded documents (DEALGRAPH_DATA_DIR)
    # Sessions of their own, for work that outlives the request (a background import).
    sessions: async_sessionmaker[AsyncSession] | None = None
    max_import_bytes: int = 50 * 1024 * 1024
    # Verify mode's second answer (graphql-core's, compared with the plan's): not the one
    # served, so its faults are not logged (server/errors.py)
    comparing: bool = False


Info = strawberry.Info[Context, None]
