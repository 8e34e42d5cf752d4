"""Serving: the server itself, its GraphQL schema, and the demo data it can start with."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Opportunity
from resolvers import user as users_rules
from resolvers.auth import create_token
from server import migrate as migrations
from server.cli.common import DatabaseUrl, err, run_in_session, settings_for
from server.db import create_engine
from server.logs import logging_config
from server.settings import Settings


def schema() -> None:
    """Print the GraphQL schema (SDL)."""
    from schema import print_schema

    sys.stdout.write(print_schema())


def load_demo(settings: Settings, opportunities: int, seed: int) -> str:
    """Fill the database with deterministic demo data; returns the admin username."""
    from demo.data import generate

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
            # Fresh planner statistics (and, on PostgreSQL, the visibility map for index-only
            # scans) for the bulk-loaded rows, rather than waiting for autovacuum.
            if engine.dialect.name == "postgresql":
                async with engine.connect() as connection:
                    autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                    await autocommit.exec_driver_sql("VACUUM ANALYZE")
            else:
                async with engine.begin() as connection:
                    await connection.exec_driver_sql("ANALYZE")
            return str(result.admin_username)
        finally:
            await engine.dispose()

    return asyncio.run(main())



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


def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    database_url: DatabaseUrl = None,
    demo: Annotated[bool, typer.Option(help="Fill an empty database with demo data.")] = False,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Migrate the database and serve /graphql, /export/opportunities.csv, /healthz
    and /readyz."""
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
