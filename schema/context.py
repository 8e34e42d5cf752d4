"""What every GraphQL resolver receives: the request's session, viewer, loaders and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

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


Info = strawberry.Info[Context, None]
