"""User type and the viewer."""

from __future__ import annotations

from enum import Enum

import strawberry

import models
from schema.common import RecordOrder, record_spec
from schema.context import Info
from schema.reads import ListSpec, computed, connection, node_id, the_viewer, to_one
from schema.relay import Connection, Node, rows_of


@strawberry.enum
class Role(Enum):
    ADMIN = "ADMIN"
    MANAGER = "MANAGER"
    SALES_REP = "SALES_REP"


@strawberry.type
class User(Node):
    is_type_of = rows_of(models.User)
    id: strawberry.ID = node_id("User")
    username: str
    full_name: str
    email: str | None
    is_active: bool

    role: Role = computed(lambda user: Role(user.role), reads=("role",))

    manager: User | None = to_one(
        "User", "manager_id", description="The user's manager in the role hierarchy."
    )


@strawberry.input
class UserFilter:
    search: str | None = None
    role: Role | None = None
    is_active: bool | None = None


@strawberry.type
class UserQuery:
    viewer: User = the_viewer(description="The user the request's token belongs to.")

    @connection("User", Connection[User])
    async def users(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: UserFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> ListSpec:
        return await record_spec(
            info, "User", filter, order_by,
            ("role", filter.role.value if filter and filter.role else None),
            ("is_active", filter.is_active if filter else None),
        )
