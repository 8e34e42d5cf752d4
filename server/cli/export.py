"""CSV export."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from resolvers import exporting
from resolvers import user as users_rules
from resolvers.errors import RequestError
from resolvers.permissions import load_viewer
from server.cli.common import DatabaseUrl, fail, run_in_session, settings_for

export_app = typer.Typer(help="Export records as CSV.", no_args_is_help=True)


@export_app.command("opportunities")
def export_opportunities(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to FILE (default: stdout)."),
    ] = None,
    filter_json: Annotated[
        str | None,
        typer.Option(
            "--filter-json", metavar="JSON", show_default=False,
            help='The GraphQL OpportunityFilter as JSON, e.g. \'{"isClosed": false}\'.',
        ),
    ] = None,
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as", metavar="USERNAME", show_default=False,
            help="Export what this user may see (default: the first active admin).",
        ),
    ] = None,
    labels: Annotated[
        bool, typer.Option("--labels", help="Head columns with English labels, not keys.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Export the opportunities a user may see as CSV (RFC 4180, UTF-8, a header row)."""
    settings = settings_for(database_url)
    try:
        f = None if filter_json is None else exporting.filter_from_json(filter_json)
    except RequestError as exc:
        fail(str(exc))

    async def work(session: AsyncSession) -> None:
        if settings.database_url.startswith("postgresql"):  # one snapshot for the whole file
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        if as_user is None:
            user = await users_rules.first_active_admin(session)
            if user is None:
                raise RequestError("There is no active admin to export as; pass --as USERNAME.")
        else:
            user = await users_rules.by_username(session, as_user)
            if user is None or not user.is_active:
                state = "no user" if user is None else "no active user"
                raise RequestError(f"There is {state} named {as_user!r}.")
        viewer = await load_viewer(session, user, settings.sharing)
        async for chunk in exporting.export_csv(session, viewer, f, labels):
            out.write(chunk.encode())
        out.flush()

    # A file appears only once complete: the rows go to a hidden sibling, renamed at the end.
    partial = None if output is None else output.with_name(f".{output.name}.part")
    try:
        out = sys.stdout.buffer if partial is None else partial.open("wb")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    done = False
    try:
        run_in_session(settings, work)
        done = True
    except RequestError as exc:
        fail(str(exc))
    except BrokenPipeError:  # `| head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    finally:
        if partial is not None:
            out.close()
            if done and output is not None:
                partial.replace(output)
            else:
                partial.unlink(missing_ok=True)
