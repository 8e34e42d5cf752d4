"""The `dealgraph` command line."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import ImportJob, Opportunity, User
from resolvers import events, importing
from resolvers import user as users_rules
from resolvers.auth import create_token
from resolvers.errors import ValidationFailed
from resolvers.permissions import load_viewer
from resolvers.tx import begin_write
from server import migrate as migrations
from server.db import create_engine, create_sessionmaker
from server.logs import logging_config
from server.settings import Settings

app = typer.Typer(help="dealgraph: a GraphQL API for CRM opportunities.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
export_app = typer.Typer(help="Export records as CSV.", no_args_is_help=True)
app.add_typer(export_app, name="export")
import_app = typer.Typer(help="Import records from CSV; resume or undo an import.",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")

err = Console(stderr=True)
T = TypeVar("T")

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Overrides DEALGRAPH_DATABASE_URL.", show_default=False),
]
FailedRows = Annotated[
    Path | None,
    typer.Option(metavar="FILE", show_default=False,
                 help="Write the failed rows, with an error column, to FILE."),
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


# --- export ------------------------------------------------------------------------------


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
    from resolvers import exporting
    from resolvers.errors import RequestError

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


# --- import ------------------------------------------------------------------------------


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0
        rate = task.completed / elapsed if elapsed > 0 else 0
        return Text(f"{rate:,.0f} rows/s")


def _unusable(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)


def _read_mapping(path: Path) -> dict[str, str | None]:
    """A JSON object: CSV header -> field key (or label); null or "" ignores the column."""
    try:
        mapping = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        _unusable(f"cannot read {path}: {exc.strerror or exc}")
    except ValueError as exc:
        _unusable(f"the mapping {path} is not valid JSON: {exc}")
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in mapping.items()
    ):
        _unusable(f'the mapping {path} must be a JSON object like {{"Header": "fieldKey"}}')
    return mapping


async def _acting_user(session: AsyncSession, as_user: str | None) -> User:
    if as_user is None:
        user = await users_rules.first_active_admin(session)
        if user is None:
            _unusable("there is no active admin to act as; pass --as USERNAME")
    else:
        user = await users_rules.by_username(session, as_user)
        if user is None or not user.is_active:
            _unusable(f"there is {'no' if user is None else 'no active'} user named {as_user!r}")
    return user


def _print_report(report: importing.Report, filename: str, options: importing.Options) -> None:
    delimiter = {"\t": "tab"}.get(report.delimiter, repr(report.delimiter))
    lines = [
        f"{filename}: {report.total:,} rows ({report.encoding}, delimiter {delimiter})",
        f"created {report.created:,}, updated {report.updated:,}, "
        f"skipped {report.skipped:,}, failed {report.failed:,}",
        *(f"warning: {w}" for w in report.warnings),
        *(f"line {i.line}, column {i.column}: {i.message}" if i.column
          else f"line {i.line}: {i.message}" for i in report.errors),
    ]
    if options.dry_run:
        lines.append("dry run: nothing was written")
    elif not report.written:
        lines.append(f"all or nothing: {report.failed:,} rows failed, so nothing was written")
    if report.job_id is not None and report.written and not options.dry_run:
        lines.append(f"import {report.job_id} (undo with: dealgraph import undo {report.job_id})")
    sys.stdout.write("".join(f"{line}\n" for line in lines))


@import_app.command("opportunities")
def import_opportunities(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The CSV file.")],
    as_user: Annotated[
        str | None,
        typer.Option("--as", metavar="USERNAME", show_default=False,
                     help="Import as this user, with their visibility "
                     "(default: the first active admin)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would happen; write nothing.")
    ] = False,
    duplicates: Annotated[
        str, typer.Option(metavar="skip|overwrite|merge",
                          help="What to do with a row matching an existing deal (--match).")
    ] = "skip",
    match: Annotated[
        str | None,
        typer.Option(metavar="FIELD,...", show_default=False,
                     help=f"Fields that find duplicates: {', '.join(importing.MATCHABLE)}."),
    ] = None,
    create_missing_accounts: Annotated[
        bool, typer.Option("--create-missing-accounts", help="Create unknown accounts by name.")
    ] = False,
    mapping: Annotated[
        Path | None,
        typer.Option(metavar="MAPPING.json", show_default=False,
                     help='Header -> field, overriding the automatic mapping: '
                     '{"Nome": "name", "Extra": null}.'),
    ] = None,
    all_or_nothing: Annotated[
        bool, typer.Option("--all-or-nothing", help="Write nothing unless every row passes.")
    ] = False,
    failed_rows: FailedRows = None,
    batch_size: Annotated[
        int, typer.Option(min=1, envvar="DEALGRAPH_IMPORT_BATCH_SIZE",
                          help="Rows per committed batch.")
    ] = 1000,
    database_url: DatabaseUrl = None,
) -> None:
    """Import opportunities from CSV (vtiger/vtenext exports, Italian or English, any of
    , ; tab |). Exit code 0: every row imported; 1: rows failed (or, all or nothing,
    nothing was written); 2: the file or the options are unusable."""
    settings = settings_for(database_url)
    try:
        data = file.read_bytes()
    except OSError as exc:
        _unusable(f"cannot read {file}: {exc.strerror or exc}")
    options = importing.Options(
        dry_run=dry_run, duplicates=duplicates.strip().lower(),
        match=tuple(m.strip() for m in (match or "").split(",") if m.strip()),
        create_missing_accounts=create_missing_accounts,
        mapping=_read_mapping(mapping) if mapping else {},
        all_or_nothing=all_or_nothing, batch_size=batch_size,
    )
    if options.problems():
        _unusable("; ".join(message for _, message in options.problems()))
    try:
        table = importing.read_table(data)
    except importing.UnusableInput as exc:
        _unusable(f"{file}: {exc}")
    # What is loaded so far lives as long as the process: the collector need not go through
    # it again and again while the import churns through objects (~10% of its time).
    gc.freeze()

    async def main() -> importing.Report:
        engine = create_engine(settings)
        sessions = create_sessionmaker(engine)
        try:
            await importing.recover_interrupted(sessions)  # jobs of killed imports
            async with sessions() as session:
                viewer = await load_viewer(session, await _acting_user(session, as_user),
                                           settings.sharing)
                await importing.preflight(session, viewer, table, options)
            with _progress_bar() as progress:
                if options.dry_run:
                    return await importing.import_opportunities(
                        sessions, viewer, table, options, file.name, progress
                    )
                job = await importing.create_job(
                    sessions, viewer, file.name, options, len(table.rows),
                    importing.Source.of(file.resolve(), data),
                )
                return await importing.run_job(
                    sessions, viewer, table, options, file.name, job.id, progress
                )
        finally:
            await engine.dispose()

    try:
        report = asyncio.run(main())
    except importing.UnusableInput as exc:
        _unusable(f"{file}: {exc}")
    except KeyboardInterrupt:
        _interrupted()
    _report_and_exit(report, file.name, options, failed_rows)


@contextmanager
def _progress_bar() -> Iterator[Callable[[importing.Report], None]]:
    with Progress(
        TextColumn("importing"), BarColumn(), MofNCompleteColumn(), RowsPerSecond(),
        TimeElapsedColumn(), console=err, transient=True,
    ) as bar:
        task = bar.add_task("rows", total=None)

        def progress(report: importing.Report) -> None:
            bar.update(task, total=report.total, completed=report.processed)

        yield progress


def _interrupted() -> NoReturn:
    err.print("interrupted: the batches committed so far stay; the import is INTERRUPTED "
              "(see `dealgraph import resume` and `dealgraph import undo`)")
    raise typer.Exit(130)


def _report_and_exit(
    report: importing.Report, filename: str, options: importing.Options,
    failed_rows: Path | None,
) -> None:
    _print_report(report, filename, options)
    if failed_rows is not None and report.failed_rows_csv:
        try:
            failed_rows.write_text(report.failed_rows_csv, encoding="utf-8-sig", newline="")
        except OSError as exc:
            fail(f"cannot write {failed_rows}: {exc.strerror or exc}")
        sys.stdout.write(f"failed rows written to {failed_rows}\n")
    if report.failed or not report.written and not options.dry_run:
        raise typer.Exit(1)


@import_app.command("resume")
def import_resume(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The import's number or id.")],
    as_user: Annotated[
        str | None,
        typer.Option("--as", metavar="USERNAME", show_default=False,
                     help="Act as this user (default: the first active admin); the import "
                     "goes on as the user who started it."),
    ] = None,
    failed_rows: FailedRows = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Continue an interrupted import from its first row not committed, reading the file it
    was started with again (it must not have changed). Exit codes as for `import
    opportunities`."""
    settings = settings_for(database_url)
    pk = _job_pk(job_id)

    async def main() -> tuple[importing.Report, ImportJob, importing.Options]:
        engine = create_engine(settings)
        sessions = create_sessionmaker(engine)
        try:
            async with sessions() as session:
                viewer = await load_viewer(session, await _acting_user(session, as_user),
                                           settings.sharing)
            claim = await importing.claim_resume(sessions, viewer, pk)
            job = claim.job
            with _progress_bar() as progress:
                report = await importing.run_job(
                    sessions, claim.viewer, claim.table, claim.options, job.filename, job.id,
                    progress, claim.resumed,
                )
            return report, job, claim.options
        finally:
            await engine.dispose()

    try:
        report, job, options = asyncio.run(main())
    except ValidationFailed as exc:
        fail("; ".join(e.message for e in exc.errors))
    except KeyboardInterrupt:
        _interrupted()
    _report_and_exit(report, job.filename, options, failed_rows)


def _job_pk(job_id: str) -> int:
    from resolvers.ids import pk_of

    pk = int(job_id) if job_id.isdigit() else pk_of(job_id, "ImportJob")
    if pk is None:
        _unusable(f"{job_id!r} is not an import id")
    return pk


@import_app.command("undo")
def import_undo(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The import's number or id.")],
    as_user: Annotated[
        str | None,
        typer.Option("--as", metavar="USERNAME", show_default=False,
                     help="Act as this user (default: the first active admin)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also undo an import still marked as running "
                           "(one run from another host whose process was killed).")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Remove what an import created and restore what it overwrote (an interrupted one
    too)."""
    settings = settings_for(database_url)
    pk = _job_pk(job_id)

    async def main() -> ImportJob:
        engine = create_engine(settings)
        try:
            await importing.recover_interrupted(create_sessionmaker(engine))
            async with create_sessionmaker(engine)() as session:
                await begin_write(session)  # SQLite: the write lock first
                viewer = await load_viewer(session, await _acting_user(session, as_user),
                                           settings.sharing)
                job = await importing.undo_import(session, viewer, pk, force=force)
                await events.commit(session)  # and tell live subscribers (PostgreSQL)
                return job
        finally:
            await engine.dispose()

    try:
        job = asyncio.run(main())
    except ValidationFailed as exc:
        fail("; ".join(e.message for e in exc.errors))
    notes = [w for w in job.warnings or [] if w.startswith("Undo:")]
    sys.stdout.write("".join(f"{line}\n" for line in [
        f"import {job.id} ({job.filename}) undone: {job.created:,} created deals removed, "
        f"{job.updated:,} overwritten deals restored", *notes,
    ]))
