"""What every command shares: the error console, the --database-url option, settings, one
committed transaction, and failing with a message."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.errors import ValidationFailed
from server.db import create_engine, create_sessionmaker
from server.settings import Settings

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
