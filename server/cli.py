"""The `dealgraph` command line."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Opportunity
from resolvers import user as users_rules
from resolvers.auth import create_token
from resolvers.errors import ValidationFailed
from server import migrate as migrations
from server.db import create_engine, create_sessionmaker
from server.logs import logging_config
from server.settings import Settings

app = typer.Typer(help="dealgraph: a GraphQL API for CRM opportunities.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

err = Console(stderr=True)
T = TypeVar("T")

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Overrides DEALGRAPH_DATABASE_URL.", show_default=False),
]


def settings_for(database_url: str | None) -> Settings:
    if database_url:
        # Also for uvicorn workers, which build their own settings from the environment.
        os.environ["DEALGRAPH_DATABASE_URL"] = database_url
    return Settings()


def run_in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction."""

    async def main() -> T:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def validation_message(exc: ValidationFailed) -> str:
    return "; ".join(f"{'.'.join(e.field or [])}: {e.message}" for e in exc.errors)


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Migrate the database to the latest schema."""
    settings = settings_for(database_url)
    migrations.upgrade(settings.database_url)
    err.print("database is at the latest revision")


@app.command()
def schema() -> None:
    """Print the GraphQL schema (SDL)."""
    from schema import print_schema

    sys.stdout.write(print_schema())


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


def load_demo(settings: Settings, opportunities: int, seed: int) -> str:
    """Fill the database with deterministic demo data; returns the admin username."""
    from resolvers.demo import generate

    async def main() -> str:
        engine = create_engine(settings)
        try:
            with Progress(
                TextColumn("demo data"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=err,
            ) as progress:
                task = progress.add_task("opportunities", total=opportunities)
                result = await generate(
                    engine, opportunities, seed, lambda n: progress.update(task, completed=n)
                )
            return str(result.admin_username)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@app.command("demo-data")
def demo_data(
    opportunities: Annotated[int, typer.Option(min=1, help="How many opportunities.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 1,
    database_url: DatabaseUrl = None,
) -> None:
    """Generate deterministic synthetic data at scale (with its own users)."""
    settings = settings_for(database_url)
    migrations.upgrade(settings.database_url)
    load_demo(settings, opportunities, seed)


def database_is_empty(settings: Settings) -> bool:
    async def work(session: AsyncSession) -> bool:
        return not await session.scalar(select(func.count()).select_from(Opportunity))

    return run_in_session(settings, work)


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    database_url: DatabaseUrl = None,
    demo: Annotated[bool, typer.Option(help="Fill an empty database with demo data.")] = False,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Migrate the database and serve /graphql, /healthz and /readyz."""
    import uvicorn

    settings = settings_for(database_url)
    migrations.upgrade(settings.database_url)
    if demo:
        if database_is_empty(settings):
            load_demo(settings, 500, 1)
        admin = "admin"
        token = run_in_session(settings, lambda s: _token_for(s, admin))
        url = f"http://{host}:{port}/graphql"
        err.print(f"\n[bold]Admin token:[/bold] {token}\n")
        err.print(f"GraphiQL: {url} (add the header Authorization: Bearer {token})")
        err.print(
            f"curl -s {url} -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json'"
            " -d '{\"query\": \"{ viewer { username role } }\"}'\n"
        )
    uvicorn.run(
        "server.app:create_app", factory=True, host=host, port=port, workers=workers,
        access_log=False, log_config=logging_config(settings.log_level),
    )


async def _token_for(session: AsyncSession, username: str) -> str:
    user = await users_rules.by_username(session, username)
    if user is None:
        user = await users_rules.create_user(session, username, "ADMIN", full_name="Administrator")
    return await create_token(session, user, "demo")
