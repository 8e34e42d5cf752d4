"""Users and their API tokens."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers import user as users_rules
from resolvers.auth import create_token
from resolvers.errors import ValidationFailed
from server.cli.common import (
    DatabaseUrl,
    err,
    fail,
    run_in_session,
    settings_for,
    validation_message,
)

users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="ADMIN, MANAGER or SALES_REP (any case).")],
    manager: Annotated[str | None, typer.Option(help="The manager's username.")] = None,
    full_name: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user."""
    settings = settings_for(database_url)
    try:
        run_in_session(
            settings,
            lambda s: users_rules.create_user(s, username, role, manager, full_name, email),
        )
    except ValidationFailed as exc:
        fail(validation_message(exc))
    err.print(f"created user {username} ({role.upper()})")


@tokens_app.command("create")
def tokens_create(username: str, database_url: DatabaseUrl = None) -> None:
    """Create an API token for a user and print it (it is shown only once)."""
    settings = settings_for(database_url)

    async def work(session: AsyncSession) -> str | None:
        user = await users_rules.by_username(session, username)
        return None if user is None else await create_token(session, user, "cli")

    token = run_in_session(settings, work)
    if token is None:
        fail(f"no user named {username!r}")
    sys.stdout.write(f"{token}\n")
