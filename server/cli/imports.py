"""CSV import: run one, resume an interrupted one, undo one."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
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
from sqlalchemy.ext.asyncio import AsyncSession

from models import ImportJob, User
from resolvers import events, importing
from resolvers import user as users_rules
from resolvers.errors import ValidationFailed
from resolvers.ids import pk_of
from resolvers.permissions import load_viewer
from resolvers.tx import begin_write
from server.cli.common import DatabaseUrl, err, fail, settings_for
from server.db import create_engine, create_sessionmaker

import_app = typer.Typer(help="Import records from CSV; resume or undo an import.",
                         no_args_is_help=True)
FailedRows = Annotated[
    Path | None,
    typer.Option(metavar="FILE", show_default=False,
                 help="Write the failed rows, with an error column, to FILE."),
]


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
