"""User type and the viewer."""

from __future__ import annotations

from enum import Enum

import strawberry

import models
from schema.common import RecordOrder, list_filter, related, root_list
from schema.context import Info
from schema.relay import Connection, Node, node_id, page_args, rows_of


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

    @strawberry.field
    @staticmethod
    def role(root: strawberry.Parent[models.User]) -> Role:
        return Role(root.role)

    @strawberry.field(description="The user's manager in the role hierarchy.")
    @staticmethod
    async def manager(
        root: strawberry.Parent[models.User], info: Info
    ) -> User | None:
        return await related(info, "User", root.manager_id)  # type: ignore[no-any-return]


@strawberry.input
class UserFilter:
    search: str | None = None
    role: Role | None = None
    is_active: bool | None = None


@strawberry.type
class UserQuery:
    @strawberry.field(description="The user the request's token belongs to.")
    def viewer(self, info: Info) -> User:
        return info.context.viewer.user  # type: ignore[return-value]

    @strawberry.field
    async def users(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: UserFilter | None = None,
        order_by: list[RecordOrder] | None = None,
    ) -> Connection[User]:
        conditions = await list_filter(
            info, "User", filter,
            ("role", filter.role.value if filter and filter.role else None),
            ("is_active", filter.is_active if filter else None),
        )
        return await root_list(
            info, "User", page_args(first, after, last, before), conditions, order_by
        )
