"""Benchmark dealgraph's real server on the SPA's pipeline query, on SQLite and PostgreSQL.

For each database: create a fresh database, load N opportunities with `dealgraph demo-data`
(timed), create an admin token, start `dealgraph serve` (one worker) on a free loopback port,
drive the pipeline query from a separate process (bench/load.py; also wrk via
bench/peer/load.sh when wrk is installed), count the SQL statements one request runs
(in-process, on the same database), print a summary table and clean up.

    python bench/run.py [--opportunities 10000] [--duration 10] [--connections 16]
                        [--databases sqlite,postgresql] [--page-size 50]

See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
PEER = REPO / "bench" / "peer"  # PostGraphile (the peer) and the wrk driver
PIPELINE_QUERY = REPO / "tests" / "queries" / "pipeline.graphql"  # the SPA's pipeline query
PEER_LOAD = PEER / "load.sh"

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
PG_DATABASE = "dealgraph_bench"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


import benchenv  # noqa: E402

benchenv.use_project_python()
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

# Wide enough for the summary table when the output is a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 160)


class BenchError(RuntimeError):
    """A step failed; the message says which and why."""


# --- small helpers -------------------------------------------------------------------------


def dealgraph_command() -> str:
    candidates = (Path(sys.executable).parent / "dealgraph", REPO / ".venv" / "bin" / "dealgraph")
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("dealgraph")
    if found is None:
        raise BenchError("the `dealgraph` console script is not installed (pip install -e .)")
    return found


def subprocess_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DEALGRAPH_DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_logged(
    cmd: list[str], log: Path, timeout: float, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run a command with stdout captured and stderr appended to `log`; fail loudly."""
    with log.open("a") as stderr:
        stderr.write(f"$ {' '.join(cmd)}\n")
        stderr.flush()
        try:
            result = subprocess.run(
                cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=timeout,
                env=env, cwd=cwd, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"`{' '.join(cmd[:3])} ...` timed out after {timeout:.0f}s") from exc
    if result.returncode != 0:
        raise BenchError(
            f"`{' '.join(cmd[:3])} ...` exited with {result.returncode}:\n{tail(log)}"
        )
    return result


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- databases -----------------------------------------------------------------------------


def check_loopback_url(url: str) -> None:
    host = make_url(url).host
    if host not in LOOPBACK:
        raise BenchError(f"refusing a non-loopback database host: {host!r}")


def pg_database_url(base_url: str, name: str = PG_DATABASE) -> str:
    url = make_url(base_url).set(database=name)
    return url.render_as_string(hide_password=False)


def pg_admin(base_url: str, statements: list[str], timeout: float = 60) -> None:
    """Run statements on the `postgres` maintenance database, outside a transaction; each
    statement is allowed `timeout` seconds."""
    url = make_url(base_url)
    psql = shutil.which("psql")
    if psql:
        env = dict(os.environ)
        if url.password:
            env["PGPASSWORD"] = str(url.password)
        base = [
            psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", url.host or "127.0.0.1",
            "-p", str(url.port or 5432), "-U", url.username or "postgres", "-d", "postgres",
        ]
        for statement in statements:
            try:
                result = subprocess.run(
                    [*base, "-c", statement], capture_output=True, text=True, timeout=timeout,
                    env=env, check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise BenchError(f"psql timed out on: {statement}") from exc
            if result.returncode != 0:
                raise BenchError(f"psql failed on {statement!r}: {result.stderr.strip()}")
        return

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def main() -> None:
        engine = create_async_engine(
            url.set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(asyncio.wait_for(main(), timeout * len(statements)))


def pg_drop(base_url: str, name: str = PG_DATABASE, timeout: float = 60) -> None:
    pg_admin(base_url, [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], timeout)


def fresh_database(kind: str, workdir: Path, pg_url: str) -> str:
    if kind == "sqlite":
        path = workdir / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite+aiosqlite:///{path}"
    if kind == "postgresql":
        pg_drop(pg_url)
        pg_admin(pg_url, [f"CREATE DATABASE {PG_DATABASE}"])
        return pg_database_url(pg_url)
    raise BenchError(f"unknown database {kind!r} (sqlite or postgresql)")


# --- the steps -----------------------------------------------------------------------------


def load_demo_data(url: str, opportunities: int, workdir: Path, log: Path, timeout: float) -> float:
    cmd = [
        dealgraph_command(), "demo-data", "--opportunities", str(opportunities), "--seed", "1",
        "--database-url", url,
    ]
    started = time.perf_counter()
    run_logged(cmd, log, timeout, subprocess_env(url), workdir)
    return time.perf_counter() - started


def create_token(url: str, workdir: Path, log: Path) -> str:
    cmd = [dealgraph_command(), "tokens", "create", "admin", "--database-url", url]
    result = run_logged(cmd, log, 120, subprocess_env(url), workdir)
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise BenchError("`dealgraph tokens create admin` printed no token")
    return lines[-1].strip()


class Server:
    """`dealgraph serve` as a subprocess on a free loopback port; output goes to a log file."""

    def __init__(self, url: str, workdir: Path, log: Path, log_level: str | None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = subprocess_env(url)
        if log_level:
            env["DEALGRAPH_LOG_LEVEL"] = log_level
        cmd = [
            dealgraph_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--database-url", url, "--workers", "1",
        ]
        self._log_file = log.open("a")
        self._log_file.write(f"$ {' '.join(cmd)}\n")
        self._log_file.flush()
        self.process = subprocess.Popen(
            cmd, stdout=self._log_file, stderr=subprocess.STDOUT, env=env, cwd=workdir,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float) -> float:
        started = time.perf_counter()
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"the server exited with {self.process.returncode}:\n{tail(self.log)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=1.0).status_code == 200:
                    return time.perf_counter() - started
            time.sleep(0.1)
        raise BenchError(f"the server was not healthy after {timeout:.0f}s:\n{tail(self.log)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log_file.close()


def request_body(page_size: int) -> dict[str, Any]:
    return {"query": PIPELINE_QUERY.read_text(), "variables": {"first": page_size}}


def check_pipeline_answer(status: int, payload: Any, page_size: int, opportunities: int) -> str:
    """A one-line description of the answer; raises when it is not a good pipeline page."""
    if status != 200 or not isinstance(payload, dict) or payload.get("errors"):
        raise BenchError(f"the pipeline query failed (HTTP {status}): {str(payload)[:500]}")
    connection = payload["data"]["opportunities"]
    edges = len(connection["edges"])
    expected = min(page_size, opportunities)
    if edges != expected:
        raise BenchError(f"the pipeline query returned {edges} edges, expected {expected}")
    quotes = sum(len(edge["node"]["quotes"]) for edge in connection["edges"])
    lines = sum(
        len(quote["lines"]) for edge in connection["edges"] for quote in edge["node"]["quotes"]
    )
    return (
        f"totalCount={connection['totalCount']}, {edges} edges, {quotes} quotes, "
        f"{lines} quote lines"
    )


def graphql_plans(app: Any) -> Any:
    """The planner (planner.Plans) behind an app's /graphql route, or None when it is off."""
    route = next(r for r in app.routes if getattr(r, "path", None) == "/graphql")
    return getattr(route.endpoint.app.schema, "plans", None)


def probe_requests(
    url: str, token: str, bodies: dict[str, dict[str, Any]],
    check: Callable[[str, int, Any], str],
) -> dict[str, dict[str, Any]]:
    """Send each request twice in-process (`create_app` behind the ASGI transport) and report,
    per name, the SQL statements of the second (every statement, the token lookup included),
    those of the first (not yet planned; the very first also on a cold engine), and how the
    planner took the second, from its counters (`Plans.stats`): `planned` when
    it answered from a plan, else what its stats counted (unsupported, fallback, failed).
    `check(name, status, payload)` describes an answer or raises BenchError."""
    from server.app import create_app
    from server.settings import Settings

    async def main() -> dict[str, dict[str, Any]]:
        app = create_app(Settings(database_url=url))
        sync_engine = app.state.engine.sync_engine
        plans = graphql_plans(app)
        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        event.listen(sync_engine, "before_cursor_execute", record)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        found: dict[str, dict[str, Any]] = {}
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1", headers=headers, timeout=60
            ) as client:
                for name, body in bodies.items():
                    statements.clear()
                    first = await client.post("/graphql", json=body)
                    cold = len(statements)
                    description = check(name, first.status_code, first.json())
                    statements.clear()
                    before = plans.stats.copy() if plans is not None else None
                    second = await client.post("/graphql", json=body)
                    check(name, second.status_code, second.json())
                    if plans is None:
                        path = "planner off"
                    else:
                        counted = plans.stats - before
                        path = "planned" if counted["planned"] else (
                            ", ".join(sorted(counted)) or "not tried")
                    found[name] = {"statements": len(statements), "cold": cold,
                                   "sql": list(statements), "answer": description,
                                   "path": path}
        finally:
            event.remove(sync_engine, "before_cursor_execute", record)
            await app.state.engine.dispose()
        return found

    return asyncio.run(asyncio.wait_for(main(), 60 + 30 * len(bodies)))


def count_statements(
    url: str, token: str, body: dict[str, Any], page_size: int, opportunities: int
) -> dict[str, Any]:
    """Run the pipeline query in-process (ASGI transport) and count the SQL statements."""
    return probe_requests(
        url, token, {"pipeline": body},
        lambda _name, status, payload: check_pipeline_answer(
            status, payload, page_size, opportunities),
    )["pipeline"]


def run_load(
    server: Server, body_file: Path, token: str, args: argparse.Namespace
) -> dict[str, Any]:
    cmd = [
        sys.executable, str(BENCH / "load.py"), "--url", f"{server.base}/graphql",
        "--body", str(body_file), "--duration", str(args.duration),
        "--connections", str(args.connections), "--warmup", str(args.warmup),
    ]
    env = dict(os.environ)
    env["DEALGRAPH_BENCH_TOKEN"] = token
    cmd += ["--token-env", "DEALGRAPH_BENCH_TOKEN"]
    timeout = args.warmup + args.duration + 60
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"bench/load.py did not finish within {timeout:.0f}s") from exc
    if result.returncode != 0:
        raise BenchError(f"bench/load.py failed:\n{result.stderr[-2000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def run_wrk(
    server: Server, body_file: Path, token: str, args: argparse.Namespace
) -> dict[str, Any] | None:
    """The peer's wrk driver, when wrk is installed: its RESULT line, parsed."""
    if shutil.which("wrk") is None or not PEER_LOAD.exists():
        return None
    cmd = [
        "bash", str(PEER_LOAD), f"{server.base}/graphql", str(body_file),
        f"{max(1, round(args.duration))}s", str(args.connections),
        f"Authorization: Bearer {token}",
    ]
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=args.duration + 150, check=False
        )
    except subprocess.TimeoutExpired:
        console.print("[yellow]wrk timed out[/yellow]")
        return None
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        console.print(f"[yellow]wrk gave no RESULT line:[/yellow] {result.stderr.strip()[:500]}")
        return None
    console.print(f"  wrk: {line}", highlight=False, soft_wrap=True)
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    return {key: float(value) for key, value in fields.items()}


# --- one database --------------------------------------------------------------------------


def bench_database(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"database": kind, "opportunities": args.opportunities}
    dbdir = workdir / kind
    dbdir.mkdir(parents=True, exist_ok=True)
    log = dbdir / "commands.log"
    console.rule(f"[bold]{kind}")
    url = fresh_database(kind, dbdir, args.pg_url)
    console.print(f"  database: {make_url(url).render_as_string(hide_password=True)}")
    server: Server | None = None
    try:
        load_s = load_demo_data(url, args.opportunities, dbdir, log, args.load_timeout)
        row["load_s"] = round(load_s, 2)
        console.print(
            f"  demo-data: {args.opportunities} opportunities in {load_s:.2f} s "
            f"({args.opportunities / load_s:.0f} opportunities/s)"
        )
        token = create_token(url, dbdir, log)

        body = request_body(args.page_size)
        body_file = dbdir / "pipeline.json"
        body_file.write_text(json.dumps(body))

        counted = count_statements(url, token, body, args.page_size, args.opportunities)
        row["statements"] = counted["statements"]
        row["statements_cold"] = counted["cold"]
        row["path"] = counted["path"]
        console.print(f"  answer: {counted['answer']}")
        console.print(
            f"  SQL statements per request: {counted['statements']} "
            f"(first request on a cold engine: {counted['cold']}); planner: {counted['path']}"
        )
        if args.show_sql:
            for statement in counted["sql"]:
                console.print("    " + " ".join(statement.split())[:160], highlight=False)

        server = Server(url, dbdir, dbdir / "server.log", args.server_log_level)
        ready_s = server.wait_healthy(args.server_timeout)
        console.print(f"  server: {server.base} (healthy after {ready_s:.1f} s)")

        load = run_load(server, body_file, token, args)
        row["load"] = load
        console.print(f"  load.py: {json.dumps(load)}", highlight=False, soft_wrap=True)
        wrk = run_wrk(server, body_file, token, args)
        if wrk is not None:
            row["wrk"] = wrk
    finally:
        if server is not None:
            server.stop()
        if kind == "postgresql" and not args.keep_database:
            try:
                pg_drop(args.pg_url)
            except BenchError as exc:
                console.print(f"[yellow]could not drop {PG_DATABASE}:[/yellow] {exc}")
        elif kind == "postgresql":
            console.print(f"  kept database {PG_DATABASE} (--keep-database)")
    return row


# --- the summary ---------------------------------------------------------------------------


def summary_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> Table:
    with_wrk = any("wrk" in row for row in rows)
    table = Table(
        title=(
            f"dealgraph pipeline query: first={args.page_size}, {args.connections} connections, "
            f"{args.duration:g} s"
        )
    )
    for name in ("database", "rows", "load s", "requests", "req/s", "p50 ms",
                 "p90 ms", "p99 ms", "max ms", "errors", "SQL/req"):
        table.add_column(name, justify="left" if name == "database" else "right")
    if with_wrk:
        for name in ("wrk req/s", "wrk p50 ms", "wrk p99 ms", "wrk errors"):
            table.add_column(name, justify="right")
    for row in rows:
        if "error" in row:
            table.add_row(row["database"], str(row["opportunities"]), "[red]failed")
            continue
        load = row["load"]
        cells = [
            row["database"], str(row["opportunities"]), f"{row['load_s']:.2f}",
            str(load["requests"]), f"{load['rps']:.1f}", f"{load['p50_ms']:.1f}",
            f"{load['p90_ms']:.1f}", f"{load['p99_ms']:.1f}", f"{load['max_ms']:.1f}",
            str(load["errors"]), str(row["statements"]),
        ]
        if with_wrk:
            wrk = row.get("wrk")
            if wrk is None:
                cells += ["-", "-", "-", "-"]
            else:
                errors = wrk["non200"] + wrk["graphql_errors"] + wrk["socket_errors"]
                cells += [f"{wrk['req_per_s']:.1f}", f"{wrk['p50_ms']:.1f}",
                          f"{wrk['p99_ms']:.1f}", f"{errors:.0f}"]
        table.add_row(*cells)
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark dealgraph on the SPA pipeline query (see bench/README.md)."
    )
    parser.add_argument("--opportunities", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help=f"PostgreSQL server (default {DEFAULT_PG_URL}); "
                             f"the benchmark database is {PG_DATABASE}")
    parser.add_argument("--keep-database", action="store_true",
                        help=f"leave {PG_DATABASE} in place (e.g. for PostGraphile)")
    parser.add_argument("--load-timeout", type=float, default=1800,
                        help="seconds allowed for demo-data")
    parser.add_argument("--server-timeout", type=float, default=60,
                        help="seconds allowed for the server to become healthy")
    parser.add_argument("--server-log-level", default=None,
                        help="DEALGRAPH_LOG_LEVEL for the server (default: its own)")
    parser.add_argument("--show-sql", action="store_true",
                        help="print the statements of the counted request")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if args.opportunities < 1 or args.connections < 1 or args.duration <= 0:
        parser.error("need --opportunities >= 1, --connections >= 1 and --duration > 0")
    if not 1 <= args.page_size <= 100:
        parser.error("--page-size must be within 1..100 (the server refuses more than 100)")
    for kind in args.databases:
        if kind not in ("sqlite", "postgresql"):
            parser.error(f"unknown database {kind!r} (sqlite or postgresql)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "postgresql" in args.databases:
        try:
            check_loopback_url(args.pg_url)
        except BenchError as exc:
            console.print(f"[red]{exc}[/red]", highlight=False)
            return 2
    if not PIPELINE_QUERY.exists():
        console.print(f"[red]missing {PIPELINE_QUERY}[/red]")
        return 2
    console.print(
        f"dealgraph bench: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (server and load generator share them), "
        f"load average {os.getloadavg()[0]:.2f}, "
        f"wrk {'found' if shutil.which('wrk') else 'not installed'}",
        highlight=False,
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dealgraph-bench-") as tmp:
        for kind in args.databases:
            try:
                rows.append(bench_database(kind, args, Path(tmp)))
            except (BenchError, OSError, ValueError, KeyError, TimeoutError) as exc:
                console.print(f"[red]{kind} failed:[/red] {exc}", highlight=False)
                rows.append({"database": kind, "opportunities": args.opportunities,
                             "error": str(exc).splitlines()[0][:200]})
    console.print()
    console.print(summary_table(rows, args))
    for row in rows:
        if "error" in row:
            console.print(f"[red]{row['database']} failed:[/red] {row['error']}", highlight=False)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
