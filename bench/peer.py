"""dealgraph and PostGraphile side by side on PostgreSQL, on the SPA's pipeline query.

For each dataset size: a fresh PostgreSQL database `dealgraph_peer_<N>` filled with `dealgraph
demo-data --opportunities N --seed 1` (timed, then VACUUM (ANALYZE)), an admin token, `dealgraph
serve` (one worker) and PostGraphile 5 (bench/peer/postgraphile.sh, started after the
load because it introspects the schema at start), each on a free loopback port. Both answers
are checked to be the same page (opportunity numbers in order, amounts, totalCount, quote
numbers and line counts per deal), then wrk (bench/peer/load.sh) drives dealgraph, the
PostGraphile request and a PostGraphile variant without the `deletedAt` condition, alternating,
for --rounds rounds. It prints a table per round, the medians, the ratio dealgraph/peer and
whether the goal holds (dealgraph ≥ 1.5× the faster peer variant's req/s, and a p99 no worse
than it, with no error in dealgraph's runs or in those of the request compared with). After
each run it waits until PostgreSQL has finished that run's statements (cancelling stragglers
after 3 s), so that a slow request left running does not slow the next server's run. At the
first size it also sweeps dealgraph's page size.

    python bench/peer.py [--sizes 10000] [--rounds 3] [--duration 10] [--connections 16]
                         [--page-size 50] [--page-sizes 5,20,50,100] [--warmup 2]
                         [--keep-databases] [--reuse] [--no-peer] [--json FILE]

    python bench/peer.py --sizes 10000,100000,1000000 --keep-databases --reuse   # the sweep

See bench/README.md ("Side by side with PostGraphile").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


import benchenv  # noqa: E402

benchenv.use_project_python()
sys.path.insert(0, str(BENCH))

import httpx  # noqa: E402
import run as pipeline  # noqa: E402  (bench/run.py: database, command and server helpers)
from rich.table import Table  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

console = pipeline.console
BenchError = pipeline.BenchError
PEER_SERVER = pipeline.PEER / "postgraphile.sh"
PEER_LOAD = pipeline.PEER_LOAD
DATABASE_PREFIX = "dealgraph_peer_"
GOAL_RATIO = 1.5
# Tables whose soft-deleted rows dealgraph hides and PostGraphile would show.
SOFT_DELETE_TABLES = (
    "opportunities", "quotes", "accounts", "campaigns", "products", "contacts", "leads"
)

SHAPES = BENCH / "shapes"  # the SPA's query shapes and their PostGraphile twins
# The same fields and rows as tests/queries/pipeline.graphql, in PostGraphile 5's names (the
# stored columns only: dealgraph's computed fields have the stage's columns instead). Quotes
# carry no `deletedAt` condition: the column is not indexed, so PostGraphile refuses it.
PEER_QUERY_FILE = SHAPES / "pipeline.postgraphile.graphql"
PEER_CONDITION = ", condition: {deletedAt: null}"


def peer_query(condition: bool) -> str:
    """The PostGraphile pipeline request, with or without the condition on deals."""
    query = PEER_QUERY_FILE.read_text()
    if PEER_CONDITION not in query:
        raise BenchError(f"{PEER_QUERY_FILE} no longer holds {PEER_CONDITION.strip(', ')!r}")
    return query if condition else query.replace(PEER_CONDITION, "", 1)


@dataclass
class Target:
    """One endpoint and request driven by wrk."""

    key: str  # dealgraph, peer, peer_nocond
    label: str
    url: str
    body_file: Path
    header: str | None = None
    database: str | None = None  # quiesced after each run (see quiesce)


@dataclass
class Page:
    """What the equivalence check compares of one answer."""

    total: int
    numbers: list[str]
    amounts: list[Decimal]
    quotes: list[list[str]]
    lines: list[list[int]]


# --- databases -----------------------------------------------------------------------------


def pg_fetch(url: str, sql: str, timeout: float = 120) -> list[tuple[Any, ...]]:
    """Rows of one statement on one database (AUTOCOMMIT, so VACUUM works too)."""

    async def main() -> list[tuple[Any, ...]]:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                result = await connection.execute(text(sql))
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(asyncio.wait_for(main(), timeout))


def database_exists(pg_url: str, name: str) -> bool:
    maintenance = pipeline.pg_database_url(pg_url, "postgres")
    return bool(pg_fetch(maintenance, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"))


def opportunity_count(url: str) -> int:
    """All rows of `opportunities`; 0 when the table does not exist yet."""
    if not pg_fetch(url, "SELECT to_regclass('public.opportunities')")[0][0]:
        return 0
    return int(pg_fetch(url, "SELECT count(*) FROM opportunities")[0][0])


def deleted_rows(url: str) -> dict[str, int]:
    counts = ", ".join(
        f"(SELECT count(*) FROM {table} WHERE deleted_at IS NOT NULL)"
        for table in SOFT_DELETE_TABLES
    )
    row = pg_fetch(url, f"SELECT {counts}")[0]
    return {table: int(n) for table, n in zip(SOFT_DELETE_TABLES, row, strict=True)}


def prepare_database(
    size: int, args: argparse.Namespace, workdir: Path, log: Path, record: dict[str, Any]
) -> str:
    """The database for `size` deals, filled (or reused); returns its SQLAlchemy URL."""
    name = f"{DATABASE_PREFIX}{size}"
    url = pipeline.pg_database_url(args.pg_url, name)
    record["database"] = name
    console.print(f"  database: {make_url(url).render_as_string(hide_password=True)}")
    if args.reuse and database_exists(args.pg_url, name):
        existing = opportunity_count(url)
        if existing == size:
            record["reused"] = True
            console.print(f"  reused: it holds {existing} opportunities (--reuse)")
        else:
            console.print(f"  it holds {existing} opportunities, not {size}: filling it afresh")
    if not record.get("reused"):
        pipeline.pg_drop(args.pg_url, name, timeout=600)
        pipeline.pg_admin(args.pg_url, [f"CREATE DATABASE {name}"])
        record["created"] = True
        load_s = pipeline.load_demo_data(url, size, workdir, log, args.load_timeout)
        record["load_s"] = round(load_s, 2)
        console.print(
            f"  demo-data: {size} opportunities in {load_s:.1f} s ({size / load_s:.0f}/s)"
        )
    started = time.perf_counter()
    pg_fetch(url, "VACUUM (ANALYZE)", timeout=1800)
    record["vacuum_analyze_s"] = round(time.perf_counter() - started, 2)
    console.print(f"  VACUUM (ANALYZE): {record['vacuum_analyze_s']:.1f} s")
    return url


def drop_database(args: argparse.Namespace, name: str) -> None:
    try:
        pipeline.pg_drop(args.pg_url, name, timeout=600)
        console.print(f"  dropped {name}")
    except (BenchError, OSError, TimeoutError) as exc:
        console.print(f"[yellow]could not drop {name}:[/yellow] {exc}", highlight=False)


# --- PostGraphile --------------------------------------------------------------------------


class PeerServer:
    """postgraphile.sh (foreground) in its own process group on a free loopback port."""

    def __init__(self, url: str, workdir: Path, log: Path) -> None:
        self.port = pipeline.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        dsn = make_url(url).set(drivername="postgres").render_as_string(hide_password=False)
        cmd = ["bash", str(PEER_SERVER), dsn, str(self.port)]
        self._log_file = log.open("a")
        self._log_file.write(f"$ {' '.join(cmd)}\n")
        self._log_file.flush()
        self.process = subprocess.Popen(
            cmd, stdout=self._log_file, stderr=subprocess.STDOUT, cwd=workdir,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float) -> float:
        """Until POST /graphql answers a trivial query (first use installs Node and
        PostGraphile, hence the long default timeout)."""
        started = time.perf_counter()
        while time.perf_counter() < started + timeout:
            if self.process.poll() is not None:
                raise BenchError(
                    f"PostGraphile exited with {self.process.returncode}:\n"
                    f"{pipeline.tail(self.log)}"
                )
            with contextlib.suppress(httpx.HTTPError, ValueError):
                answer = httpx.post(
                    f"{self.base}/graphql", json={"query": "{ __typename }"}, timeout=2.0
                )
                if answer.status_code == 200 and "data" in answer.json():
                    return time.perf_counter() - started
            time.sleep(0.2)
        raise BenchError(
            f"PostGraphile did not answer within {timeout:.0f}s:\n{pipeline.tail(self.log)}"
        )

    def stop(self) -> None:
        """SIGTERM to the group (the script execs node), SIGKILL after 15 s."""
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self._log_file.close()


# --- the equivalence check -----------------------------------------------------------------


def post(target: Target, timeout: float = 120) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if target.header:
        key, value = target.header.split(":", 1)
        headers[key] = value.strip()
    try:
        answer = httpx.post(
            target.url, content=target.body_file.read_bytes(), headers=headers, timeout=timeout
        )
        payload = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise BenchError(f"{target.label}: the request failed: {exc}") from exc
    if answer.status_code != 200 or not isinstance(payload, dict) or payload.get("errors"):
        raise BenchError(
            f"{target.label}: HTTP {answer.status_code}: {str(payload)[:500]}"
        )
    return dict(payload["data"])


def dealgraph_page(data: dict[str, Any]) -> Page:
    connection = data["opportunities"]
    nodes = [edge["node"] for edge in connection["edges"]]
    return Page(
        total=int(connection["totalCount"]),
        numbers=[node["number"] for node in nodes],
        amounts=[Decimal(node["amount"]) for node in nodes],
        quotes=[[quote["number"] for quote in node["quotes"]] for node in nodes],
        lines=[[len(quote["lines"]) for quote in node["quotes"]] for node in nodes],
    )


def peer_page(data: dict[str, Any]) -> Page:
    connection = data["allOpportunities"]
    nodes = [edge["node"] for edge in connection["edges"]]
    quotes = [node["quotesByOpportunityId"]["nodes"] for node in nodes]
    return Page(
        total=int(connection["totalCount"]),
        numbers=[node["number"] for node in nodes],
        amounts=[Decimal(node["amount"]) for node in nodes],
        quotes=[[quote["number"] for quote in deal] for deal in quotes],
        lines=[[len(quote["quoteLinesByQuoteId"]["nodes"]) for quote in deal]
               for deal in quotes],
    )


def differences(mine: Page, theirs: Page) -> list[str]:
    """What differs between two pages, empty when they are the same rows."""
    found: list[str] = []
    if mine.total != theirs.total:
        found.append(f"totalCount {mine.total} vs {theirs.total}")
    if mine.numbers != theirs.numbers:
        pairs = zip(mine.numbers, theirs.numbers, strict=False)
        at = next((i for i, (a, b) in enumerate(pairs) if a != b),
                  min(len(mine.numbers), len(theirs.numbers)))
        found.append(f"opportunity numbers differ from row {at} "
                     f"({len(mine.numbers)} vs {len(theirs.numbers)} rows; "
                     f"{mine.numbers[at:at + 3]} vs {theirs.numbers[at:at + 3]})")
        return found
    for name in ("amounts", "quotes", "lines"):
        a, b = getattr(mine, name), getattr(theirs, name)
        bad = [i for i in range(len(a)) if a[i] != b[i]]
        if bad:
            i = bad[0]
            found.append(f"{name} differ on {len(bad)} deals, first {mine.numbers[i]}: "
                         f"{a[i]} vs {b[i]}")
    return found


def check_equivalence(
    dealgraph: Target, peers: list[Target], page_size: int, record: dict[str, Any]
) -> list[Target]:
    """Fail unless dealgraph and the PostGraphile request return the same page; returns the
    peer targets to measure (the variant is dropped, loudly, when its rows differ)."""
    mine = dealgraph_page(post(dealgraph))
    expected = min(page_size, mine.total)
    if len(mine.numbers) != expected:
        raise BenchError(f"dealgraph returned {len(mine.numbers)} deals, expected {expected}")
    record["page"] = {
        "totalCount": mine.total, "deals": len(mine.numbers),
        "quotes": sum(len(q) for q in mine.quotes),
        "quote_lines": sum(sum(n) for n in mine.lines),
        "first": mine.numbers[:1], "last": mine.numbers[-1:],
    }
    console.print(
        f"  page: totalCount={mine.total}, {len(mine.numbers)} deals "
        f"({mine.numbers[0] if mine.numbers else '-'} .. "
        f"{mine.numbers[-1] if mine.numbers else '-'}), {record['page']['quotes']} quotes, "
        f"{record['page']['quote_lines']} quote lines",
        highlight=False,
    )
    kept: list[Target] = []
    record["equivalence"] = {}
    for peer in peers:
        found = differences(mine, peer_page(post(peer)))
        record["equivalence"][peer.key] = found or "same"
        if not found:
            console.print(f"  {peer.label}: the same page (numbers, order, amounts, "
                          "totalCount, quotes and lines per deal)", highlight=False)
            kept.append(peer)
        elif peer.key == "peer":
            raise BenchError(f"{peer.label} does not return dealgraph's page: "
                             + "; ".join(found))
        else:
            console.print(f"[yellow]  {peer.label} returns other rows, not measured:[/yellow] "
                          + "; ".join(found), highlight=False)
    return kept


# --- load ----------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """The processes below `pid`, deepest first (Linux /proc; empty elsewhere)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            for child in (task / "children").read_text().split():
                found = [*descendants(int(child)), int(child), *found]
    return found


def wrk_run(target: Target, seconds: int, connections: int) -> dict[str, float]:
    """One run of bench/peer/load.sh: its RESULT line as numbers, plus `errors`."""
    cmd = ["bash", str(PEER_LOAD), target.url, str(target.body_file), f"{seconds}s",
           str(connections)]
    if target.header:
        cmd.append(target.header)
    process = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=seconds + 150)
    except BaseException as exc:
        # An interrupt or a timeout: stop load.sh and what it started (`timeout` moves itself
        # and wrk to a process group of their own, so they are found through /proc).
        for pid in [*descendants(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise BenchError(f"load.sh on {target.label} did not finish") from exc
        raise
    line = next((x for x in stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise BenchError(f"load.sh on {target.label} gave no RESULT line (exit "
                         f"{process.returncode}): {stderr.strip()[:500]}")
    fields = {key: float(value) for key, value in
              (part.split("=", 1) for part in line.split()[1:])}
    fields["errors"] = fields["non200"] + fields["graphql_errors"] + fields["socket_errors"]
    if target.database:
        quiesce(target.database)
    return fields


ACTIVE = ("FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
          "AND pid <> pg_backend_pid()")


def quiesce(url: str, grace: float = 3.0) -> None:
    """Let the statements of a finished run end before the next run starts: wrk stops
    waiting at the end of its run, but PostgreSQL goes on with what it was asked (a slow
    request takes seconds) and would slow the next server's run. After `grace` seconds the
    stragglers are cancelled."""
    deadline = time.monotonic() + grace
    while pg_fetch(url, f"SELECT count(*) {ACTIVE}")[0][0]:
        if time.monotonic() > deadline:
            pg_fetch(url, f"SELECT pg_cancel_backend(pid) {ACTIVE}")
            time.sleep(0.5)
            return
        time.sleep(0.2)


def error_text(run: dict[str, float]) -> str:
    if not run["errors"]:
        return "0"
    return (f"[red]{run['non200']:.0f} non-200, {run['graphql_errors']:.0f} graphql, "
            f"{run['socket_errors']:.0f} socket[/red]")


def round_table(title: str, targets: list[Target], runs: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("server", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                 "errors"):
        table.add_column(name, justify="left" if name == "server" else "right")
    for target in targets:
        run = runs[target.key]
        table.add_row(
            target.label, f"{run['requests']:.0f}", f"{run['req_per_s']:.1f}",
            f"{run['p50_ms']:.1f}", f"{run['p90_ms']:.1f}", f"{run['p99_ms']:.1f}",
            f"{run['max_ms']:.1f}", error_text(run),
        )
    return table


def median_of(runs: list[dict[str, float]], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def measure_rounds(
    size: int, targets: list[Target], args: argparse.Namespace, record: dict[str, Any]
) -> dict[str, Any]:
    """Warm-up, then --rounds rounds of the targets in turn; returns the summary."""
    for target in targets:
        warm = wrk_run(target, args.warmup, args.connections)
        if warm["errors"]:
            console.print(f"[yellow]  warm-up of {target.label}:[/yellow] {error_text(warm)}")
    console.print(f"  warm-up: {args.warmup} s of each", highlight=False)
    rounds: list[dict[str, Any]] = []
    record["rounds"] = rounds
    for number in range(1, args.rounds + 1):
        load = os.getloadavg()[0]
        runs = {target.key: wrk_run(target, args.duration, args.connections)
                for target in targets}
        rounds.append({"load_average": round(load, 2), **runs})
        console.print(round_table(
            f"{size} deals, first={args.page_size}, round {number}/{args.rounds} "
            f"({args.duration} s each, {args.connections} connections, "
            f"load average {load:.2f} before)", targets, runs))
    summary: dict[str, Any] = {}
    for target in targets:
        runs_of = [r[target.key] for r in rounds]
        summary[target.key] = {
            "label": target.label,
            "req_per_s": median_of(runs_of, "req_per_s"),
            "p50_ms": median_of(runs_of, "p50_ms"),
            "p99_ms": median_of(runs_of, "p99_ms"),
            "errors": sum(run["errors"] for run in runs_of),
        }
    peers = [t.key for t in targets if t.key != "dealgraph"]
    mine = summary["dealgraph"]
    for key in peers:
        summary[key]["ratio"] = mine["req_per_s"] / summary[key]["req_per_s"]
    if peers:
        # The conservative comparison: the faster peer variant's req/s, the lower peer p99.
        faster = max(peers, key=lambda k: float(summary[k]["req_per_s"]))
        steadier = min(peers, key=lambda k: float(summary[k]["p99_ms"]))
        ratio = float(summary[faster]["ratio"])
        peer_p99 = float(summary[steadier]["p99_ms"])
        # errors of dealgraph or of the request compared with: a comparison is void then
        errors = float(mine["errors"]) + float(summary[faster]["errors"])
        summary["headline"] = {
            "against": faster,
            "ratio": ratio,
            "p99_ms": mine["p99_ms"],
            "peer_p99_ms": peer_p99,
            "peer_p99_of": steadier,
            "errors": errors,
            "goal": ratio >= GOAL_RATIO and mine["p99_ms"] <= peer_p99 and errors == 0,
        }
    record["summary"] = summary
    return summary


def print_summary(size: int, targets: list[Target], summary: dict[str, Any],
                  args: argparse.Namespace) -> None:
    table = Table(title=f"{size} deals: median of {args.rounds} rounds", title_justify="left")
    for name in ("server", "req/s", "p50 ms", "p99 ms", "errors", "dealgraph ÷ this"):
        table.add_column(name, justify="left" if name == "server" else "right")
    for target in targets:
        row = summary[target.key]
        ratio = f"{row['ratio']:.2f}×" if "ratio" in row else "-"
        table.add_row(target.label, f"{row['req_per_s']:.1f}", f"{row['p50_ms']:.1f}",
                      f"{row['p99_ms']:.1f}", f"{row['errors']:.0f}", ratio)
    console.print(table)
    headline = summary.get("headline")
    if headline is None:
        return
    verdict = "[green]holds[/green]" if headline["goal"] else "[red]does not hold[/red]"
    against = summary[headline["against"]]["label"]
    p99_of = summary[headline["peer_p99_of"]]["label"]
    console.print(
        f"  goal: dealgraph ≥ {GOAL_RATIO}× the faster PostGraphile request's req/s, a p99 no "
        f"higher than the lower PostGraphile p99, no errors in dealgraph's runs or the "
        f"compared request's: {verdict}\n"
        f"    req/s: dealgraph ÷ {against} = {headline['ratio']:.2f}×\n"
        f"    p99: dealgraph {headline['p99_ms']:.1f} ms, {p99_of} "
        f"{headline['peer_p99_ms']:.1f} ms\n"
        f"    errors: {headline['errors']:.0f}",
        highlight=False,
    )


def page_size_sweep(
    dealgraph: Target, token_header: str, workdir: Path, args: argparse.Namespace,
    record: dict[str, Any],
) -> None:
    rows: list[dict[str, Any]] = []
    record["page_sizes"] = rows
    for page_size in args.page_sizes:
        body_file = workdir / f"dealgraph-{page_size}.json"
        body_file.write_text(json.dumps(pipeline.request_body(page_size)))
        target = Target("dealgraph", "dealgraph", dealgraph.url, body_file, token_header)
        page = dealgraph_page(post(target))
        if len(page.numbers) != min(page_size, page.total):
            raise BenchError(f"first={page_size}: {len(page.numbers)} deals returned")
        run = wrk_run(target, args.duration, args.connections)
        rows.append({"page_size": page_size, **run})
    table = Table(title=f"dealgraph by page size ({args.duration} s each, "
                        f"{args.connections} connections)", title_justify="left")
    for name in ("first", "req/s", "deals/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(str(row["page_size"]), f"{row['req_per_s']:.1f}",
                      f"{row['req_per_s'] * row['page_size']:.0f}", f"{row['p50_ms']:.1f}",
                      f"{row['p99_ms']:.1f}", error_text(row))
    console.print(table)


def sizes_table(records: list[dict[str, Any]], args: argparse.Namespace) -> Table:
    table = Table(title=f"by dataset size (first={args.page_size}, medians of {args.rounds} "
                        f"runs of {args.duration} s)", title_justify="left")
    for name in ("deals", "load s", "dealgraph req/s", "p50 ms", "p99 ms", "peer req/s",
                 "peer p99 ms", "ratio", "goal"):  # peer: the faster req/s, the lower p99
        table.add_column(name, justify="right")
    for record in records:
        summary = record.get("summary")
        load = "reused" if record.get("reused") else f"{record.get('load_s', 0):.0f}"
        if summary is None:
            table.add_row(str(record["opportunities"]), load, "[red]failed")
            continue
        mine = summary["dealgraph"]
        cells = [str(record["opportunities"]), load, f"{mine['req_per_s']:.1f}",
                 f"{mine['p50_ms']:.1f}", f"{mine['p99_ms']:.1f}"]
        headline = summary.get("headline")
        if headline is None:
            cells += ["-", "-", "-", "-"]
        else:
            peer = summary[headline["against"]]
            cells += [f"{peer['req_per_s']:.1f}", f"{headline['peer_p99_ms']:.1f}",
                      f"{headline['ratio']:.2f}×",
                      "[green]yes" if headline["goal"] else "[red]no"]
        table.add_row(*cells)
    return table


# --- one dataset size ----------------------------------------------------------------------


def bench_size(
    size: int, first: bool, args: argparse.Namespace, workdir: Path, record: dict[str, Any]
) -> None:
    console.rule(f"[bold]{size} deals")
    sizedir = workdir / str(size)
    sizedir.mkdir(parents=True, exist_ok=True)
    log = sizedir / "commands.log"
    server: pipeline.Server | None = None
    peer: PeerServer | None = None
    try:
        url = prepare_database(size, args, sizedir, log, record)
        record["deleted"] = deleted_rows(url)
        hidden = {table: n for table, n in record["deleted"].items() if n}
        if hidden:
            console.print(f"[yellow]  soft-deleted rows (hidden by dealgraph, shown by "
                          f"PostGraphile unless a condition says otherwise): {hidden}[/yellow]",
                          highlight=False)
            if hidden.get("quotes"):
                console.print("[yellow]  the PostGraphile requests have no condition on quotes "
                              "(quotes.deleted_at is not indexed): a page holding a deleted "
                              "quote fails the check below[/yellow]")
        else:
            console.print(f"  soft-deleted rows: none in {', '.join(SOFT_DELETE_TABLES)}")
        token = pipeline.create_token(url, sizedir, log)
        header = f"Authorization: Bearer {token}"

        server = pipeline.Server(url, sizedir, sizedir / "dealgraph.log", "WARNING")
        ready = server.wait_healthy(args.server_timeout)
        console.print(f"  dealgraph: {server.base} (healthy after {ready:.1f} s)")
        body = sizedir / "dealgraph.json"
        body.write_text(json.dumps(pipeline.request_body(args.page_size)))
        dealgraph = Target(
            "dealgraph", "dealgraph", f"{server.base}/graphql", body, header, database=url
        )
        targets = [dealgraph]

        if first or not args.no_peer:
            peer = PeerServer(url, sizedir, sizedir / "postgraphile.log")
            ready = peer.wait_ready(args.peer_timeout)
            console.print(f"  PostGraphile: {peer.base} (answering after {ready:.1f} s)")
            peers: list[Target] = []
            for key, label, condition in (
                ("peer", "PostGraphile", True),
                ("peer_nocond", "PostGraphile, no deletedAt condition", False),
            ):
                peer_body = sizedir / f"{key}.json"
                peer_body.write_text(json.dumps({"query": peer_query(condition),
                                                 "variables": {"first": args.page_size}}))
                peers.append(
                    Target(key, label, f"{peer.base}/graphql", peer_body, database=url)
                )
            targets += check_equivalence(dealgraph, peers, args.page_size, record)
        else:
            console.print("  PostGraphile: not measured (--no-peer)")

        summary = measure_rounds(size, targets, args, record)
        print_summary(size, targets, summary, args)
        if first and args.page_sizes:
            page_size_sweep(dealgraph, header, sizedir, args, record)
    finally:
        if peer is not None:
            peer.stop()
        if server is not None:
            server.stop()
        if "database" in record:
            if args.keep_databases:
                console.print(f"  kept {record['database']} (--keep-databases)")
            elif record.get("created") or record.get("reused"):
                drop_database(args, record["database"])


# --- main ----------------------------------------------------------------------------------


def int_list(value: str) -> list[int]:
    if value.strip().lower() in ("", "none", "0"):
        return []
    try:
        return [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {value!r}") from exc


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="dealgraph vs PostGraphile on the pipeline query (see bench/README.md)."
    )
    parser.add_argument("--sizes", type=int_list, default=[10_000],
                        help="dataset sizes, comma-separated (e.g. 10000,100000,1000000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--page-size", type=int, default=50, help="`first` of the comparison")
    parser.add_argument("--page-sizes", type=int_list, default=[5, 20, 50, 100],
                        help="dealgraph's page-size sweep at the first size ('none': skip it)")
    parser.add_argument("--no-peer", action="store_true",
                        help="sizes after the first: measure dealgraph alone")
    parser.add_argument("--keep-databases", action="store_true",
                        help=f"leave the {DATABASE_PREFIX}<N> databases in place")
    parser.add_argument("--reuse", action="store_true",
                        help="use an existing database that holds exactly N opportunities")
    parser.add_argument("--pg-url", default=pipeline.DEFAULT_PG_URL,
                        help=f"PostgreSQL server (default {pipeline.DEFAULT_PG_URL})")
    parser.add_argument("--load-timeout", type=float, default=3600,
                        help="seconds allowed for demo-data")
    parser.add_argument("--server-timeout", type=float, default=60,
                        help="seconds allowed for dealgraph to become healthy")
    parser.add_argument("--peer-timeout", type=float, default=300,
                        help="seconds allowed for PostGraphile to answer (first use installs it)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    args.sizes = list(dict.fromkeys(args.sizes))
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes needs positive integers")
    if args.rounds < 1 or args.connections < 1 or args.warmup < 1:
        parser.error("need --rounds >= 1, --connections >= 1 and --warmup >= 1")
    if not 1 <= args.duration <= 100:
        parser.error("--duration must be within 1..100 s (load.sh stops wrk after 120 s)")
    for page_size in [args.page_size, *args.page_sizes]:
        if not 1 <= page_size <= 100:
            parser.error("page sizes must be within 1..100 (dealgraph refuses more than 100)")
    return args


def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that the servers are stopped and the databases dropped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        pipeline.check_loopback_url(args.pg_url)
        for needed in (pipeline.PIPELINE_QUERY, PEER_QUERY_FILE, PEER_SERVER, PEER_LOAD):
            if not needed.exists():
                raise BenchError(f"missing {needed}")
        if shutil.which("wrk") is None:
            raise BenchError("wrk is not installed (apt-get install -y wrk)")
    except BenchError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        return 2
    console.print(
        f"dealgraph vs PostGraphile: {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs (both servers, PostgreSQL and wrk "
        f"share them), load average {os.getloadavg()[0]:.2f}; sizes {args.sizes}, "
        f"{args.rounds} rounds of {args.duration} s, {args.connections} connections",
        highlight=False,
    )
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "settings": {key: str(value) if isinstance(value, Path) else value
                     for key, value in vars(args).items()},
        "peer_query": peer_query(True),
        "sizes": [],
    }
    status = 0
    try:
        with tempfile.TemporaryDirectory(prefix="dealgraph-peer-") as tmp:
            for index, size in enumerate(args.sizes):
                record: dict[str, Any] = {"opportunities": size}
                report["sizes"].append(record)
                try:
                    bench_size(size, index == 0, args, Path(tmp), record)
                except (BenchError, OSError, ValueError, KeyError, TimeoutError) as exc:
                    console.print(f"[red]{size} deals failed:[/red] {exc}", highlight=False)
                    record["error"] = str(exc)
                    status = 1
        if len(args.sizes) > 1:
            console.print(sizes_table(report["sizes"], args))
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        report["interrupted"] = True
        status = 130
    finally:
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
