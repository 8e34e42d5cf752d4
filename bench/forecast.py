"""Benchmark the forecast and budget-attainment queries at scale, on SQLite and PostgreSQL.

For each database: create a fresh one, load N opportunities with `dealgraph demo-data`
(timed), set quarterly targets for every rep, then run the GraphQL queries of the Monday
dashboard in-process (`create_app` behind `httpx.ASGITransport`, real tokens for the demo
users `admin`, `manager1` and `rep1`) --repeat times each, print min/median/max, the time of
the grouped SQL statement alone, and the query plan of that statement (SQLite: EXPLAIN QUERY
PLAN; PostgreSQL: EXPLAIN (ANALYZE, BUFFERS)), captured as the resolver emitted it and
explained with the same parameters.

    python bench/forecast.py [--opportunities 1000000] [--databases sqlite,postgresql]
                             [--repeat 5] [--keep] [--reuse] [--workdir DIR] [--json FILE]

See bench/README.md ("Forecast and attainment at scale").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


import benchenv  # noqa: E402

benchenv.use_project_python()
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import run as pipeline  # noqa: E402  (bench/run.py: database and command helpers)
from rich.table import Table  # noqa: E402
from sqlalchemy import delete, event, func, insert, inspect, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402

from models import Budget, Opportunity, User  # noqa: E402
from resolvers.auth import create_token  # noqa: E402
from resolvers.dates import today  # noqa: E402
from resolvers.forecast import period_range  # noqa: E402
from server.app import create_app  # noqa: E402
from server.settings import Settings  # noqa: E402

console = pipeline.console
BenchError = pipeline.BenchError
PG_DATABASE = "dealgraph_bench_fc"
VIEWERS = ("admin", "manager1", "rep1")

FIGURES = "count amount weightedAmount openAmount wonAmount lostAmount"
FORECAST_QUERY = f"""
query Forecast($groupBy: [ForecastDimension!]!, $period: PeriodUnit!,
               $filter: OpportunityFilter) {{
  forecast(groupBy: $groupBy, period: $period, filter: $filter, currency: "EUR") {{
    currency
    buckets {{ period stage {{ key name }} assignedTo {{ username fullName }} {FIGURES} }}
    totals {{ {FIGURES} }}
  }}
}}
"""
ATTAINMENT_QUERY = """
query Attainment($year: Int!, $number: Int!) {
  budgetAttainment(year: $year, period: QUARTER, number: $number) {
    target closedWon commit bestCase pipeline weightedPipeline gap attainmentPercent
    bestBand forecastBand worstBand
  }
}
"""


@dataclass
class Case:
    name: str
    viewer: str
    query: str
    variables: dict[str, Any]
    dashboard: bool = False


@dataclass
class Result:
    case: Case
    first_ms: float
    times_ms: list[float]
    sql_ms: list[float]
    statements: int
    answer: str
    main_sql: str | None
    main_params: Any
    plan: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "name": self.case.name, "viewer": self.case.viewer, "answer": self.answer,
            "first_ms": round(self.first_ms, 1),
            "min_ms": round(min(self.times_ms), 1),
            "median_ms": round(statistics.median(self.times_ms), 1),
            "max_ms": round(max(self.times_ms), 1),
            "sql_median_ms": round(statistics.median(self.sql_ms), 1) if self.sql_ms else None,
            "statements": self.statements, "dashboard": self.case.dashboard,
            "sql": " ".join(self.main_sql.split()) if self.main_sql else None,
            "parameters": repr(self.main_params),
            "access": access_paths(self.plan),
            "plan": self.plan,
        }


def cases(year: int, quarter: int) -> list[Case]:
    start, end = period_range(year, "QUARTER", quarter)
    this_quarter = {"expectedCloseDateFrom": start.isoformat(),
                    "expectedCloseDateTo": end.isoformat()}
    by_quarter = {"groupBy": ["PERIOD", "STAGE"], "period": "QUARTER"}
    attainment = {"year": year, "number": quarter}
    return [
        Case("forecast PERIOD,STAGE by QUARTER", "admin", FORECAST_QUERY, by_quarter),
        Case("forecast PERIOD,STAGE by QUARTER", "manager1", FORECAST_QUERY, by_quarter),
        Case("forecast PERIOD,STAGE by QUARTER", "rep1", FORECAST_QUERY, by_quarter),
        Case("forecast STAGE, this quarter", "manager1", FORECAST_QUERY,
             {"groupBy": ["STAGE"], "period": "QUARTER", "filter": this_quarter}, True),
        Case("forecast ASSIGNEE, this quarter", "manager1", FORECAST_QUERY,
             {"groupBy": ["ASSIGNEE"], "period": "QUARTER", "filter": this_quarter}, True),
        Case("forecast ASSIGNEE, this quarter", "admin", FORECAST_QUERY,
             {"groupBy": ["ASSIGNEE"], "period": "QUARTER", "filter": this_quarter}),
        Case("budgetAttainment, this quarter", "manager1", ATTAINMENT_QUERY, attainment, True),
        Case("budgetAttainment, this quarter", "rep1", ATTAINMENT_QUERY, attainment),
    ]


# --- plans ---------------------------------------------------------------------------------

ACCESS_PATTERNS = (
    re.compile(r"\b(SCAN \w+(?: USING (?:COVERING )?INDEX \w+)?)"),
    re.compile(r"\b(SEARCH \w+ USING (?:COVERING |INTEGER PRIMARY KEY)?(?:INDEX \w+)?)"),
    re.compile(r"\b((?:Parallel )?Seq Scan on \w+)"),
    re.compile(r"\b((?:Parallel )?Index (?:Only )?Scan using \w+ on \w+)"),
    re.compile(r"\b(Bitmap Index Scan on \w+)"),
)


def access_paths(plan: list[str]) -> list[str]:
    """How the plan reads opportunities: the scans and index searches it names."""
    found: list[str] = []
    for line in plan:
        for pattern in ACCESS_PATTERNS:
            for match in pattern.findall(line):
                if "opportunit" in match and match not in found:
                    found.append(match)
    return found


def sqlite_tree(rows: list[Any]) -> list[str]:
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + str(detail))
    return lines


async def explain(engine: AsyncEngine, statement: str, params: Any) -> list[str]:
    """The plan of `statement` with the parameters the resolver used."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            result = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
            lines = sqlite_tree(list(result.all()))
        else:
            result = await connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params
            )
            lines = [str(row[0]) for row in result.all()]
        await connection.rollback()
    return lines


# --- the database --------------------------------------------------------------------------


def database_url(kind: str, workdir: Path, pg_url: str, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'forecast.db'}"
    return make_url(pg_url).set(database=name).render_as_string(hide_password=False)


def fresh_database(kind: str, workdir: Path, pg_url: str, name: str) -> None:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{workdir / 'forecast.db'}{suffix}").unlink(missing_ok=True)
    else:
        drop_pg(pg_url, name)
        pipeline.pg_admin(pg_url, [f"CREATE DATABASE {name}"])


def drop_pg(pg_url: str, name: str) -> None:
    """DROP DATABASE waits for a checkpoint, which can take minutes on a busy server after a
    million-row load: allowed 10 minutes (bench/run.py's helper gives psql one)."""

    async def main() -> None:
        url = make_url(pg_url).set(database="postgres")
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await engine.dispose()

    try:
        asyncio.run(asyncio.wait_for(main(), 600))
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        raise BenchError(f"could not drop {name}: {exc}") from exc


def pg_exists(pg_url: str, name: str) -> bool:
    async def main() -> bool:
        url = make_url(pg_url).set(database="postgres")
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                found = await connection.scalar(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"),
                    {"name": name},
                )
        finally:
            await engine.dispose()
        return found is not None

    return asyncio.run(main())


def count_opportunities(url: str) -> int:
    """Deals in a kept database; 0 when it has no schema yet (any other failure is raised, so
    that --reuse never reloads a database it merely failed to read)."""

    async def main() -> int:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                exists = await connection.run_sync(
                    lambda sync: inspect(sync).has_table("opportunities")
                )
                if not exists:
                    return 0
                return int(await connection.scalar(select(func.count(Opportunity.id))) or 0)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def vacuum_analyze(url: str) -> float:
    """PostgreSQL: VACUUM (ANALYZE) the database, the state autovacuum reaches a little after
    a bulk load (statistics, visibility map); done explicitly so plans do not depend on when
    autovacuum last ran."""

    async def main() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql("VACUUM (ANALYZE)")
        finally:
            await engine.dispose()

    started = time.perf_counter()
    asyncio.run(asyncio.wait_for(main(), 1800))
    return time.perf_counter() - started


def migrate(url: str, workdir: Path, log: Path) -> float:
    cmd = [pipeline.dealgraph_command(), "migrate", "--database-url", url]
    started = time.perf_counter()
    pipeline.run_logged(cmd, log, 3600, pipeline.subprocess_env(url), workdir)
    return time.perf_counter() - started


def opportunity_indexes(url: str) -> list[str]:
    async def main() -> list[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                if engine.dialect.name == "sqlite":
                    rows = await connection.exec_driver_sql(
                        "SELECT name FROM sqlite_master WHERE type = 'index' "
                        "AND tbl_name = 'opportunities' ORDER BY name"
                    )
                else:
                    rows = await connection.exec_driver_sql(
                        "SELECT indexname FROM pg_indexes WHERE tablename = 'opportunities' "
                        "ORDER BY indexname"
                    )
                return [str(row[0]) for row in rows]
        finally:
            await engine.dispose()

    return asyncio.run(main())


SIZED = ("opportunities", "ix_opportunities_owner_close_date", "ix_opportunities_owner_forecast")


def relation_sizes(url: str, names: list[str]) -> dict[str, float]:
    """On-disk size in MB of the table and the forecast-related indexes that exist."""

    async def main() -> dict[str, float]:
        engine = create_async_engine(url)
        sizes: dict[str, float] = {}
        try:
            async with engine.connect() as connection:
                for name in names:
                    if engine.dialect.name == "sqlite":
                        sql = "SELECT pgsize FROM dbstat WHERE name = ? AND aggregate = 1"
                        value = await connection.exec_driver_sql(sql, (name,))
                    else:
                        sql = "SELECT pg_relation_size($1::regclass)"
                        value = await connection.exec_driver_sql(sql, (name,))
                    size = value.scalar()
                    if size is not None:
                        sizes[name] = round(int(size) / 2**20, 1)
        except Exception as exc:  # noqa: BLE001 - sizes are informative only
            console.print(f"  [yellow]no sizes:[/yellow] {exc}", highlight=False)
        finally:
            await engine.dispose()
        return sizes

    return asyncio.run(main())


# --- in-process queries --------------------------------------------------------------------


async def prepare_users(app: Any, year: int, quarter: int) -> dict[str, str]:
    """Quarterly targets for every rep (none for managers: theirs roll up the team's), and a
    token per viewer."""
    async with app.state.sessions() as session:
        users = {u.username: u for u in (await session.scalars(select(User))).all()}
        missing = [name for name in VIEWERS if name not in users]
        if missing:
            raise BenchError(f"demo users missing: {', '.join(missing)}")
        reps = sorted(
            (u for u in users.values() if u.role == "SALES_REP"), key=lambda u: u.id
        )
        await session.execute(
            delete(Budget).where(
                Budget.year == year, Budget.period == "QUARTER", Budget.number == quarter
            )
        )
        await session.execute(insert(Budget), [
            {"user_id": rep.id, "year": year, "period": "QUARTER", "number": quarter,
             "amount": 1_500_000 + 100_000 * (i % 5)}
            for i, rep in enumerate(reps)
        ])
        tokens = {
            name: await create_token(session, users[name], "bench-forecast") for name in VIEWERS
        }
        await session.commit()
    return tokens


def describe(case: Case, status: int, payload: Any) -> str:
    if status != 200 or not isinstance(payload, dict) or payload.get("errors"):
        raise BenchError(f"{case.name} ({case.viewer}) failed: HTTP {status} {str(payload)[:500]}")
    data = payload["data"]
    if "forecast" in data:
        forecast = data["forecast"]
        return (f"{len(forecast['buckets'])} buckets, {forecast['totals']['count']} deals, "
                f"{forecast['totals']['amount']} EUR")
    attainment = data["budgetAttainment"]
    if attainment is None:
        raise BenchError(f"{case.name} ({case.viewer}) returned null")
    return (f"target {attainment['target']}, won {attainment['closedWon']}, "
            f"pipeline {attainment['pipeline']}")


def is_main(statement: str) -> bool:
    """The grouped aggregate over opportunities (forecast or attainment)."""
    flat = " ".join(statement.split()).lower()
    return "from opportunities" in flat and "group by" in flat


async def measure(url: str, repeat: int, year: int, quarter: int) -> list[Result]:
    app = create_app(Settings(database_url=url))
    engine: AsyncEngine = app.state.engine
    captured: list[tuple[str, Any, float]] = []

    def before(conn: Any, _cursor: Any, _statement: str, *_args: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        elapsed = (time.perf_counter() - conn.info.pop("bench_started")) * 1000
        captured.append((statement, parameters, elapsed))

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
    results: list[Result] = []
    try:
        tokens = await prepare_users(app, year, quarter)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1", timeout=600
        ) as client:

            async def post(case: Case) -> tuple[float, str]:
                body = {"query": case.query, "variables": case.variables}
                headers = {"Authorization": f"Bearer {tokens[case.viewer]}"}
                captured.clear()
                started = time.perf_counter()
                response = await client.post("/graphql", json=body, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                return elapsed, describe(case, response.status_code, response.json())

            for case in cases(year, quarter):
                first_ms, answer = await post(case)
                times, sql = [], []
                main: tuple[str, Any, float] | None = None
                for _ in range(repeat):
                    elapsed, _answer = await post(case)
                    times.append(elapsed)
                    mains = [c for c in captured if is_main(c[0])]
                    if mains:
                        main = mains[0]
                        sql.append(main[2])
                result = Result(case, first_ms, times, sql, len(captured), answer,
                                main[0] if main else None, main[1] if main else None)
                console.print(
                    f"  {case.name:34} {case.viewer:9} median "
                    f"{statistics.median(times):8.1f} ms  ({answer})", highlight=False,
                )
                results.append(result)
        for result in results:
            if result.main_sql is not None:
                result.plan = await explain(engine, result.main_sql, result.main_params)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
        event.remove(engine.sync_engine, "after_cursor_execute", after)
        await engine.dispose()
    return results


# --- one database --------------------------------------------------------------------------


def bench_database(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    dbdir = workdir / kind
    dbdir.mkdir(parents=True, exist_ok=True)
    log = dbdir / "commands.log"
    url = database_url(kind, dbdir, args.pg_url, args.pg_database)
    console.rule(f"[bold]{kind}")
    console.print(f"  database: {make_url(url).render_as_string(hide_password=True)}")
    row: dict[str, Any] = {"database": kind}
    try:
        existing = 0
        if args.reuse and (kind == "sqlite" or pg_exists(args.pg_url, args.pg_database)):
            existing = count_opportunities(url)
        if existing:
            row["migrate_s"] = round(migrate(url, dbdir, log), 2)
            row["opportunities"] = existing
            console.print(f"  reused: {existing} opportunities; "
                          f"`dealgraph migrate` took {row['migrate_s']:.2f} s")
        else:
            fresh_database(kind, dbdir, args.pg_url, args.pg_database)
            load_s = pipeline.load_demo_data(url, args.opportunities, dbdir, log,
                                             args.load_timeout)
            row["load_s"] = round(load_s, 2)
            row["opportunities"] = args.opportunities
            console.print(f"  demo-data: {args.opportunities} opportunities in {load_s:.1f} s "
                          f"({args.opportunities / load_s:.0f}/s)")
        if kind == "postgresql":
            row["vacuum_analyze_s"] = round(vacuum_analyze(url), 2)
            console.print(f"  VACUUM (ANALYZE): {row['vacuum_analyze_s']:.1f} s")
        if kind == "sqlite":
            row["file_mb"] = round((dbdir / "forecast.db").stat().st_size / 2**20)
        row["indexes"] = opportunity_indexes(url)
        console.print(f"  indexes on opportunities: {', '.join(row['indexes'])}", highlight=False)
        sized = [SIZED[0], *(name for name in SIZED[1:] if name in row["indexes"])]
        row["sizes_mb"] = relation_sizes(url, sized)
        console.print(f"  sizes (MB): {row['sizes_mb']}", highlight=False)
        row["load_average"] = round(os.getloadavg()[0], 2)
        console.print(f"  load average before the queries: {row['load_average']:.2f}")
        day = today()
        year, quarter = day.year, (day.month - 1) // 3 + 1
        row["period"] = f"{year}-Q{quarter}"
        results = asyncio.run(measure(url, args.repeat, year, quarter))
        row["results"] = [r.row() for r in results]
        print_plans(results, args.show_sql)
    finally:
        if kind == "postgresql":
            if args.keep:
                console.print(f"  kept database {args.pg_database} (--keep)")
            else:
                try:
                    drop_pg(args.pg_url, args.pg_database)
                except BenchError as exc:
                    console.print(f"[yellow]could not drop {args.pg_database}:[/yellow] {exc}")
    return row


def print_plans(results: list[Result], show_sql: bool) -> None:
    shown: dict[str, str] = {}
    for result in results:
        title = f"{result.case.name} ({result.case.viewer})"
        console.print(f"\n  [bold]plan: {title}[/bold]")
        if result.main_sql is None:
            console.print("    (no grouped statement captured)")
            continue
        flat = " ".join(result.main_sql.split())
        if show_sql:
            if flat in shown:
                console.print(f"    SQL as for {shown[flat]}; parameters {result.main_params}",
                              highlight=False, soft_wrap=True)
            else:
                console.print(f"    SQL: {flat}", highlight=False, soft_wrap=True)
                console.print(f"    parameters: {result.main_params}", highlight=False,
                              soft_wrap=True)
                shown[flat] = title
        for line in result.plan:
            console.print(f"    {line}", highlight=False, soft_wrap=True)


# --- the summary ---------------------------------------------------------------------------


def summary(rows: list[dict[str, Any]], repeat: int) -> Table:
    table = Table(title=f"dealgraph forecast benchmark (in-process, {repeat} runs each)")
    for name in ("database", "query", "viewer", "first ms", "min ms", "median ms", "max ms",
                 "SQL ms", "stmts", "reads opportunities via"):
        table.add_column(name, justify="left" if name in (
            "database", "query", "viewer", "reads opportunities via") else "right")
    for row in rows:
        if "error" in row:
            table.add_row(row["database"], "[red]failed", "")
            continue
        for r in row["results"]:
            table.add_row(
                row["database"], r["name"], r["viewer"], f"{r['first_ms']:.0f}",
                f"{r['min_ms']:.0f}", f"{r['median_ms']:.0f}", f"{r['max_ms']:.0f}",
                "-" if r["sql_median_ms"] is None else f"{r['sql_median_ms']:.0f}",
                str(r["statements"]), "; ".join(r["access"]),
            )
        dashboard = [r for r in row["results"] if r["dashboard"]]
        table.add_row(row["database"], "[bold]dashboard (3 queries, manager1)", "manager1", "",
                      "", f"{sum(r['median_ms'] for r in dashboard):.0f}", "", "", "", "")
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark forecast and budgetAttainment at scale (see bench/README.md)."
    )
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query")
    parser.add_argument("--pg-url", default=pipeline.DEFAULT_PG_URL,
                        help=f"PostgreSQL server (default {pipeline.DEFAULT_PG_URL})")
    parser.add_argument("--pg-database", default=PG_DATABASE,
                        help=f"the benchmark database on it, dropped and re-created "
                             f"(default {PG_DATABASE})")
    parser.add_argument("--keep", action="store_true",
                        help="keep the PostgreSQL database and the SQLite file (see --workdir)")
    parser.add_argument("--reuse", action="store_true",
                        help="use the kept databases when they hold opportunities: "
                             "`dealgraph migrate` (timed) instead of a fresh load")
    parser.add_argument("--workdir", type=Path,
                        help="where the SQLite file and logs go (default: a temporary "
                             "directory, removed at the end unless --keep)")
    parser.add_argument("--load-timeout", type=float, default=3600,
                        help="seconds allowed for demo-data")
    parser.add_argument("--show-sql", action="store_true",
                        help="print each explained statement and its parameters")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if args.opportunities < 1 or args.repeat < 1:
        parser.error("need --opportunities >= 1 and --repeat >= 1")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.pg_database):
        parser.error("--pg-database must be a lower-case SQL identifier")
    for kind in args.databases:
        if kind not in ("sqlite", "postgresql"):
            parser.error(f"unknown database {kind!r} (sqlite or postgresql)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "postgresql" in args.databases:
        try:
            pipeline.check_loopback_url(args.pg_url)
        except BenchError as exc:
            console.print(f"[red]{exc}[/red]", highlight=False)
            return 2
    console.print(
        f"dealgraph forecast bench: {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}, today {today().isoformat()}",
        highlight=False,
    )
    rows: list[dict[str, Any]] = []
    temporary = None
    if args.workdir is not None:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    elif args.keep:
        workdir = Path(tempfile.mkdtemp(prefix="dealgraph-forecast-"))
    else:
        temporary = tempfile.TemporaryDirectory(prefix="dealgraph-forecast-")
        workdir = Path(temporary.name)
    try:
        for kind in args.databases:
            try:
                rows.append(bench_database(kind, args, workdir))
            except (BenchError, OSError, ValueError, KeyError, TimeoutError) as exc:
                console.print(f"[red]{kind} failed:[/red] {exc}", highlight=False)
                rows.append({"database": kind, "error": str(exc).splitlines()[0][:200]})
    finally:
        if temporary is not None:
            temporary.cleanup()
        elif args.keep:
            console.print(f"kept {workdir} (--keep)")
    console.print()
    console.print(summary(rows, args.repeat))
    for row in rows:
        if "error" not in row:
            loaded = (f"loaded in {row['load_s']:.1f} s" if "load_s" in row
                      else f"reused, migrate {row['migrate_s']:.1f} s")
            console.print(f"{row['database']}: {row['opportunities']} opportunities, {loaded}"
                          + (f", {row['file_mb']} MB" if "file_mb" in row else "")
                          + (f", VACUUM (ANALYZE) {row['vacuum_analyze_s']:.1f} s"
                             if "vacuum_analyze_s" in row else ""), highlight=False)
        else:
            console.print(f"[red]{row['database']} failed:[/red] {row['error']}",
                          highlight=False)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
