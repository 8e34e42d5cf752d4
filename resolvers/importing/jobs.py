"""Import jobs: created, run (in the background or by the command), recorded, found
interrupted, resumed."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import ImportJob, User
from models.base import utcnow
from resolvers import processes
from resolvers.errors import ErrorCode, FieldError, ValidationFailed
from resolvers.ids import to_global_id
from resolvers.importing.importer import (
    Issue,
    Options,
    Progress,
    Report,
    _errors_json,
    _notify,
    import_opportunities,
    preflight,
)
from resolvers.importing.reading import Table, UnusableInput, read_table
from resolvers.permissions import Viewer, load_viewer
from resolvers.tx import begin_write

log = logging.getLogger("dealgraph.import")

# Reports of the imports running in this process, by job id (what importJob shows while the
# job's own row is behind: an all-or-nothing import writes it only at the end).
LIVE: dict[int, Report] = {}


def options_json(options: Options) -> dict[str, Any]:
    return {
        "dryRun": options.dry_run, "duplicates": options.duplicates,
        "match": list(options.match), "createMissingAccounts": options.create_missing_accounts,
        "allOrNothing": options.all_or_nothing, "mapping": dict(options.mapping),
        "batchSize": options.batch_size,
    }


def options_of(stored: dict[str, Any]) -> Options:
    """The options a job ran with (options_json read back)."""
    return Options(
        dry_run=bool(stored.get("dryRun")), duplicates=stored.get("duplicates", "skip"),
        match=tuple(stored.get("match") or ()),
        create_missing_accounts=bool(stored.get("createMissingAccounts")),
        mapping=dict(stored.get("mapping") or {}),
        all_or_nothing=bool(stored.get("allOrNothing")),
        batch_size=int(stored.get("batchSize") or 1000),
    )


@dataclass(frozen=True)
class Source:
    """The file of a job, to resume it: a path and the SHA-256 of what was imported; `kept`
    when the file is a copy of an upload that the job owns."""

    path: str
    sha256: str
    kept: bool = False

    @staticmethod
    def of(path: str | Path, data: bytes, kept: bool = False) -> Source:
        return Source(str(path), hashlib.sha256(data).hexdigest(), kept)


def _run_by_this_process(job: ImportJob) -> None:
    runner = processes.current()
    job.runner_pid, job.runner_host, job.runner_started = runner.pid, runner.host, runner.started


async def start_job(
    session: AsyncSession, viewer: Viewer, filename: str, options: Options, total: int = 0,
    source: Source | None = None,
) -> ImportJob:
    job = ImportJob(
        filename=filename[:255], status="RUNNING", total=total, created_by_id=viewer.user.id,
        options=options_json(options), warnings=[], errors=[],
    )
    _run_by_this_process(job)
    if source is not None:
        job.source_path, job.source_sha256, job.source_kept = (
            source.path, source.sha256, source.kept)
    session.add(job)
    await session.flush()
    return job


def finish_job(job: ImportJob, report: Report, status: str = "DONE") -> None:
    job.status = status
    job.total, job.processed = report.total, report.processed
    job.created, job.updated = report.created, report.updated
    job.skipped, job.failed = report.skipped, report.failed
    job.warnings = list(report.warnings)
    job.errors = _errors_json(report)
    job.failed_rows_csv = report.failed_rows_csv
    job.finished_at = utcnow()


async def create_job(
    sessions: async_sessionmaker[AsyncSession], viewer: Viewer, filename: str,
    options: Options, total: int, source: Source | None = None,
    upload: bytes | None = None, keep_dir: Path | None = None,
) -> ImportJob:
    """A RUNNING job, committed on its own session (it outlives a rolled-back import). With
    `upload` and `keep_dir`, the uploaded bytes are kept there (for a resume) until the job
    ends."""
    async with sessions() as session:
        await begin_write(session)
        job = await start_job(session, viewer, filename, options, total, source)
        if upload is not None and keep_dir is not None:
            try:
                path = await asyncio.to_thread(_keep, keep_dir, job.id, upload)
            except OSError as exc:
                log.warning("import job %s: the upload cannot be kept in %s (%s)", job.id,
                            keep_dir, exc)
                job.warnings = [f"The upload could not be kept ({exc.strerror or exc}): "
                                "this import cannot be resumed if it is interrupted."]
            else:
                job.source_path, job.source_sha256, job.source_kept = (
                    str(path), hashlib.sha256(upload).hexdigest(), True)
        await session.commit()
        return job


def _keep(directory: Path, job_id: int, data: bytes) -> Path:
    """DIR/imports/job-ID.csv, written whole (a temporary file renamed into place)."""
    folder = directory.resolve() / "imports"  # absolute: a resume may run elsewhere
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"job-{job_id}.csv"
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)
    return path


def _let_go(job: ImportJob) -> None:
    """Remove the job's own copy of its upload (a command's file is the user's: it stays)."""
    if job.source_kept and job.source_path:
        Path(job.source_path).unlink(missing_ok=True)
    if job.source_kept:
        job.source_path, job.source_kept = None, False


async def run_job(
    sessions: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    table: Table,
    options: Options,
    filename: str,
    job_id: int,
    progress: Progress | None = None,
    resumed: Report | None = None,
) -> Report:
    """Run the import of a created (or resumed) job and record its outcome: DONE (rows may
    have failed), FAILED when nothing was written (all-or-nothing) or the import broke off,
    INTERRUPTED when it was cancelled (a shutdown, Ctrl-C): resumable."""
    report = Report(job_id=job_id, total=len(table.rows), encoding=table.encoding,
                    delimiter=table.delimiter)
    if resumed is not None:
        report.processed, report.created, report.updated = (
            resumed.processed, resumed.created, resumed.updated)
        report.skipped, report.failed = resumed.skipped, resumed.failed
        report.warnings, report.errors = list(resumed.warnings), list(resumed.errors)
    status = "FAILED"

    async def track(live: Report) -> None:
        nonlocal report
        report = LIVE[job_id] = live
        await _notify(progress, live)

    try:
        report = await import_opportunities(
            sessions, viewer, table, options, filename, track, job_id, resumed
        )
        status = "DONE" if report.written or options.dry_run else "FAILED"
    except UnusableInput as unusable:
        report.warnings.append(str(unusable))
        await _finish(sessions, job_id, report, status)
        raise
    except (Exception, asyncio.CancelledError) as exc:
        cancelled = isinstance(exc, asyncio.CancelledError)
        if cancelled:
            status = "INTERRUPTED"
            report.warnings.append(_interrupted(job_id, report, "it was cancelled"))
        else:
            log.exception("import job %s broke off", job_id)
            report.warnings.append(f"The import broke off ({type(exc).__name__}); the "
                                   "batches committed before stay (undo removes them).")
        await asyncio.shield(_finish(sessions, job_id, report, status, committed=cancelled))
        raise
    finally:
        LIVE.pop(job_id, None)
    await _finish(sessions, job_id, report, status)
    return report


def _interrupted(job_id: int, report: Report | ImportJob, why: str) -> str:
    return (f"Interrupted ({why}) after {report.processed:,} of {report.total:,} rows: "
            f"what was committed stays ({report.created:,} created, {report.updated:,} "
            f"updated, {report.skipped:,} skipped, {report.failed:,} failed). Resume it "
            f"(dealgraph import resume {job_id}, or resumeImport) or undo it.")


# The imports running in the background of this process (a task must be referenced
# until it ends, or it may be collected mid-way).
TASKS: set[asyncio.Task[Report]] = set()


def _forget_task(task: asyncio.Task[Report]) -> None:
    TASKS.discard(task)
    if not task.cancelled():
        task.exception()  # recorded on the job and logged by run_job already


def _in_background(job_id: int, work: Coroutine[Any, Any, Report]) -> None:
    task = asyncio.get_running_loop().create_task(work, name=f"import job {job_id}")
    TASKS.add(task)
    task.add_done_callback(_forget_task)


async def submit(
    sessions: async_sessionmaker[AsyncSession],
    session: AsyncSession,
    viewer: Viewer,
    data: bytes,
    filename: str,
    options: Options,
    keep_dir: Path | None = None,
) -> ImportJob:
    """Check the file and the options (ValidationFailed on ["input", <option>] when they are
    unusable), create the job (keeping the upload in `keep_dir` for a resume) and run the
    import in the background; poll the job."""
    try:
        table = read_table(data)
        await preflight(session, viewer, table, options)
    except UnusableInput as unusable:
        raise ValidationFailed([FieldError(["input", unusable.field], str(unusable),
                                           ErrorCode.INVALID)]) from None
    job = await create_job(sessions, viewer, filename, options, len(table.rows),
                           upload=data, keep_dir=keep_dir)
    _in_background(job.id, run_job(sessions, viewer, table, options, filename, job.id))
    return job


async def _finish(
    sessions: async_sessionmaker[AsyncSession], job_id: int, report: Report, status: str,
    committed: bool = False,
) -> None:
    """Record a job's outcome. An interrupted job keeps the counts of what its batches
    committed (`committed`: the report may be ahead of them, by a batch rolled back)."""
    async with sessions() as session:
        await begin_write(session)
        job = await session.get(ImportJob, job_id)
        if job is not None:
            if committed:
                job.status, job.finished_at = status, utcnow()
                job.warnings = [*(job.warnings or []), report.warnings[-1]]
            else:
                finish_job(job, report, status)
            if status != "INTERRUPTED":
                _let_go(job)
        await session.commit()


async def recover_interrupted(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    """Mark INTERRUPTED the jobs left RUNNING by a process that is gone (killed, crashed,
    rebooted), with what they had committed; their ids. Run when a server starts and when
    the command starts an import. A job run from another host is left alone: this one
    cannot tell whether its process lives."""
    async with sessions() as session:
        running = (await session.execute(
            select(ImportJob.id, ImportJob.runner_pid, ImportJob.runner_host,
                   ImportJob.runner_started).where(ImportJob.status == "RUNNING")
        )).all()
        gone = {pk: (pid, host) for pk, pid, host, started in running
                if processes.is_gone(pid, host, started)}
        if not gone:
            return []
        await begin_write(session)
        jobs = (await session.scalars(
            select(ImportJob).where(ImportJob.id.in_(sorted(gone)),
                                    ImportJob.status == "RUNNING")
            .with_for_update().execution_options(populate_existing=True)
        )).all()
        marked = []
        for job in jobs:
            if (job.runner_pid, job.runner_host) != gone[job.id]:
                continue  # resumed meanwhile, by a live process
            job.status, job.finished_at = "INTERRUPTED", utcnow()
            why = f"its process, {job.runner_pid} on {job.runner_host}, is gone"
            job.warnings = [*(job.warnings or []), _interrupted(job.id, job, why)]
            marked.append(job.id)
        await session.commit()
    for pk in marked:
        log.warning("import job %s was interrupted (its process is gone): marked INTERRUPTED",
                    pk)
    return marked


@dataclass
class Resumption:
    """An interrupted job claimed to run again: from row `resumed.processed` of `table`."""

    job: ImportJob
    viewer: Viewer
    table: Table
    options: Options
    resumed: Report


async def claim_resume(
    sessions: async_sessionmaker[AsyncSession], viewer: Viewer, job_id: int
) -> Resumption:
    """Take an INTERRUPTED job back to RUNNING, by this process, with its file read again
    (ValidationFailed on ["input", "id"] when it cannot be: not found, not interrupted, the
    file gone or changed). It runs as the user who started it, with their visibility."""
    await recover_interrupted(sessions)
    gid = to_global_id("ImportJob", job_id)

    def refused(message: str, code: ErrorCode = ErrorCode.INVALID) -> ValidationFailed:
        return ValidationFailed([FieldError(["input", "id"], message, code)])

    async with sessions() as session:
        await begin_write(session)
        job = await visible_job(session, viewer, job_id)
        if job is None:
            raise refused(f"No import with id {gid!r}.", ErrorCode.NOT_FOUND)
        if job.status != "INTERRUPTED":
            state = {"RUNNING": "it is still running", "UNDONE": "it is undone"}.get(
                job.status, f"it is {job.status.lower()}, not interrupted")
            raise refused(f"The import cannot be resumed: {state}.")
        if not job.source_path:
            raise refused("The import cannot be resumed: it kept no file. Import the rows "
                          f"after the first {job.processed:,} again instead.", ErrorCode.NOT_FOUND)
        try:
            data = await asyncio.to_thread(Path(job.source_path).read_bytes)
        except OSError as exc:
            raise refused(f"The import cannot be resumed: its file {job.source_path} is gone "
                          f"({exc.strerror or exc}). Import the rows after the first "
                          f"{job.processed:,} again instead.", ErrorCode.NOT_FOUND) from None
        if hashlib.sha256(data).hexdigest() != job.source_sha256:
            raise refused(f"The import cannot be resumed: its file {job.source_path} has "
                          "changed since the import began.")
        try:
            table = read_table(data)
        except UnusableInput as unusable:  # pragma: no cover - it was read once already
            raise refused(f"The import cannot be resumed: {unusable}") from None
        creator = await session.get(User, job.created_by_id)
        assert creator is not None
        runs_as = viewer if creator.id == viewer.user.id else await load_viewer(
            session, creator, viewer.sharing)
        resumed = Report(
            job_id=job.id, total=len(table.rows), processed=job.processed,
            created=job.created, updated=job.updated, skipped=job.skipped, failed=job.failed,
            warnings=[*(job.warnings or []), _resuming(job, table, viewer)],
            errors=[Issue(e["line"], e.get("column"), e["message"]) for e in job.errors or []],
            encoding=table.encoding, delimiter=table.delimiter,
        )
        job.status, job.finished_at, job.warnings = "RUNNING", None, resumed.warnings
        _run_by_this_process(job)
        await session.commit()
        return Resumption(job, runs_as, table, options_of(job.options or {}), resumed)


def _resuming(job: ImportJob, table: Table, viewer: Viewer) -> str:
    at = table.rows[job.processed][0] if job.processed < len(table.rows) else None
    where = f"at line {at} (row {job.processed + 1:,})" if at else "past the last row"
    return f"Resumed {where} by {viewer.user.username}."


async def resume(
    sessions: async_sessionmaker[AsyncSession], viewer: Viewer, job_id: int,
    progress: Progress | None = None,
) -> Report:
    """Resume an interrupted job and run it to its end (the command)."""
    claim = await claim_resume(sessions, viewer, job_id)
    return await run_job(sessions, claim.viewer, claim.table, claim.options,
                         claim.job.filename, claim.job.id, progress, claim.resumed)


async def submit_resume(
    sessions: async_sessionmaker[AsyncSession], viewer: Viewer, job_id: int
) -> ImportJob:
    """Resume an interrupted job in the background (resumeImport); poll it."""
    claim = await claim_resume(sessions, viewer, job_id)
    _in_background(claim.job.id, run_job(
        sessions, claim.viewer, claim.table, claim.options, claim.job.filename, claim.job.id,
        resumed=claim.resumed,
    ))
    return claim.job


async def visible_job(session: AsyncSession, viewer: Viewer, job_id: int) -> ImportJob | None:
    job = await session.get(ImportJob, job_id)
    if job is None or not (viewer.is_admin or job.created_by_id == viewer.user.id):
        return None
    return job

