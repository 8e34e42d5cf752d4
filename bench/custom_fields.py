"""Benchmark filtering and ordering opportunities on custom fields at scale.

For each database: create a fresh one, load N opportunities with `dealgraph demo-data`
(timed), add two custom fields through the API as the demo `admin` (a "Region" picklist
and a "Contract length (months)" integer), fill their values on every row with one bulk
UPDATE per field (about 10% and 8% of the rows are left unset), then run the opportunities
queries in-process (`create_app` behind `httpx.ASGITransport`, an admin token, as
bench/run.py and bench/forecast.py do): filtered by the picklist (eq), by an integer range
(min/max), ordered by the integer field, both together, and the next page by cursor; each
`--repeat` times after one warm-up run. It checks every answer, prints min/median/max, the
time of the page's SQL statement alone and its plan (SQLite: EXPLAIN QUERY PLAN;
PostgreSQL: EXPLAIN ANALYZE).

    python bench/custom_fields.py [--opportunities 100000] [--databases sqlite,postgresql]
                                  [--repeat 7] [--pg-url URL] [--keep] [--workdir DIR]
                                  [--json FILE]

See bench/README.md ("Custom fields at scale").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
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
from sqlalchemy import event, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402

from models import User  # noqa: E402
from resolvers.auth import create_token  # noqa: E402
from server.app import create_app  # noqa: E402
from server.settings import Settings  # noqa: E402

console = pipeline.console
BenchError = pipeline.BenchError
PG_DATABASE = "dealgraph_bench_cf"
PAGE = 50

REGIONS = ["North", "South", "Centre", "Islands"]
REGION = "cf_region"
MONTHS = "cf_contract_length_months"
DEFINE = """
mutation D($input: CreateCustomFieldInput!) {
  createCustomField(input: $input) { customField { key } userErrors { field code message } }
}
"""
LIST = f"""
query L($filter: OpportunityFilter, $orderBy: [OpportunityOrder!], $first: Int,
        $after: String) {{
  opportunities(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {{
    __COUNT__
    pageInfo {{ hasNextPage endCursor }}
    edges {{ node {{
      number name amount salesStage {{ key }} assignedTo {{ username }}
      region: customField(key: "{REGION}") {{ value }}
      months: customField(key: "{MONTHS}") {{ value }}
    }} }}
  }}
}}
"""
LOW, HIGH = 12, 24  # the integer range


def fill_statements(dialect: str) -> list[tuple[str, str]]:
    """One bulk UPDATE per field: (what, SQL). Values follow the id, some rows stay unset;
    the stored forms are those the API writes (the option text; a JSON integer)."""
    region = ("CASE id % 4 WHEN 0 THEN 'North' WHEN 1 THEN 'South' WHEN 2 THEN 'Centre' "
              "ELSE 'Islands' END")
    months = "1 + (id * 7919) % 60"
    if dialect == "sqlite":
        def put(key: str, value: str) -> str:
            return f"json_set(custom_fields, '$.{key}', {value})"
    else:
        def put(key: str, value: str) -> str:
            return f"(custom_fields::jsonb || jsonb_build_object('{key}', {value}))::json"
    return [
        (REGION, f"UPDATE opportunities SET custom_fields = {put(REGION, region)} "
                 "WHERE id % 10 <> 0"),
        (MONTHS, f"UPDATE opportunities SET custom_fields = {put(MONTHS, months)} "
                 "WHERE id % 13 <> 0"),
    ]


@dataclass
class Case:
    name: str
    variables: dict[str, Any]
    count: bool = False
    next_page: bool = False  # run with the cursor of the first page

    def check(self, payload: dict[str, Any]) -> str:
        """A one-line description of the answer; raises when it is wrong."""
        connection = payload["data"]["opportunities"]
        nodes = [e["node"] for e in connection["edges"]]
        if len(nodes) != PAGE:
            raise BenchError(f"{self.name}: {len(nodes)} rows, expected {PAGE}")
        f = {c["key"]: c for c in (self.variables.get("filter") or {}).get("customFields", [])}
        regions = [n["region"]["value"] for n in nodes]
        months = [n["months"]["value"] for n in nodes]
        if REGION in f and any(r != f[REGION]["eq"] for r in regions):
            raise BenchError(f"{self.name}: a row outside region {f[REGION]['eq']}")
        if MONTHS in f and any(m is None or not LOW <= m <= HIGH for m in months):
            raise BenchError(f"{self.name}: a row outside {LOW}..{HIGH} months")
        order = self.variables.get("orderBy") or []
        if order:
            descending = order[0]["direction"] == "DESC"
            keyed = [-1 if m is None else m for m in months]
            if keyed != sorted(keyed, reverse=descending):
                raise BenchError(f"{self.name}: rows out of order: {keyed}")
        described = f"{len(nodes)} rows, months {months[0]}..{months[-1]}"
        if self.count:
            described += f", totalCount {connection['totalCount']}"
        return described


def by_months(direction: str) -> list[dict[str, Any]]:
    return [{"field": "CUSTOM_FIELD", "customFieldKey": MONTHS, "direction": direction}]


def cases() -> list[Case]:
    north = {"key": REGION, "eq": "North"}
    span = {"key": MONTHS, "min": LOW, "max": HIGH}
    both = {"customFields": [north, span]}
    return [
        Case("picklist eq", {"filter": {"customFields": [north]}}),
        Case("integer min/max", {"filter": {"customFields": [span]}}),
        Case("order by integer DESC", {"orderBy": by_months("DESC")}),
        Case("order by integer DESC, page 2", {"orderBy": by_months("DESC")}, next_page=True),
        Case("eq + range, order by integer", {"filter": both, "orderBy": by_months("ASC")}),
        Case("eq + range, order, totalCount", {"filter": both, "orderBy": by_months("ASC")},
             count=True),
    ]


@dataclass
class Result:
    case: Case
    times_ms: list[float]
    sql_ms: list[float]
    statements: int
    answer: str
    page_sql: str | None = None
    page_params: Any = None
    plan: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "name": self.case.name, "answer": self.answer,
            "min_ms": round(min(self.times_ms), 1),
            "median_ms": round(statistics.median(self.times_ms), 1),
            "max_ms": round(max(self.times_ms), 1),
            "sql_median_ms": round(statistics.median(self.sql_ms), 1) if self.sql_ms else None,
            "statements": self.statements, "plan": self.plan,
        }


def is_page(statement: str) -> bool:
    flat = " ".join(statement.split()).lower()
    return "from opportunities" in flat and " limit " in flat and "custom_fields" in flat


# --- one database ----------------------------------------------------------------------------


def database_url(kind: str, workdir: Path, pg_url: str) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'custom_fields.db'}"
    return make_url(pg_url).set(database=PG_DATABASE).render_as_string(hide_password=False)


def fresh_database(kind: str, workdir: Path, pg_url: str) -> None:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{workdir / 'custom_fields.db'}{suffix}").unlink(missing_ok=True)
    else:
        drop_pg(pg_url)
        pipeline.pg_admin(pg_url, [f"CREATE DATABASE {PG_DATABASE}"])


def drop_pg(pg_url: str) -> None:
    pipeline.pg_admin(pg_url, [f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"])


async def fill(url: str) -> list[tuple[str, int, float]]:
    """Bulk-fill both fields; (key, rows, seconds) each. PostgreSQL is VACUUM ANALYZEd after
    (the UPDATEs leave a dead version of every row, which autovacuum would clean later)."""
    engine = create_async_engine(url)
    done = []
    try:
        for key, sql in fill_statements(engine.dialect.name):
            started = time.perf_counter()
            async with engine.begin() as connection:
                rows = (await connection.exec_driver_sql(sql)).rowcount
            done.append((key, int(rows), time.perf_counter() - started))
        if engine.dialect.name == "postgresql":
            started = time.perf_counter()
            async with engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.exec_driver_sql("VACUUM (ANALYZE) opportunities")
            done.append(("VACUUM (ANALYZE)", 0, time.perf_counter() - started))
    finally:
        await engine.dispose()
    return done


async def explain(engine: AsyncEngine, statement: str, params: Any) -> list[str]:
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = (await connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", params
            )).all()
            lines = [str(row[3]) for row in rows]
        else:
            rows = (await connection.exec_driver_sql(f"EXPLAIN ANALYZE {statement}",
                                                     params)).all()
            lines = [str(row[0]) for row in rows]
        await connection.rollback()
    return lines


async def measure(url: str, repeat: int) -> tuple[list[Result], list[tuple[str, int, float]]]:
    app = create_app(Settings(database_url=url))
    engine: AsyncEngine = app.state.engine
    captured: list[tuple[str, Any, float]] = []

    def before(conn: Any, _cursor: Any, _statement: str, *_args: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        elapsed = (time.perf_counter() - conn.info.pop("bench_started")) * 1000
        captured.append((statement, parameters, elapsed))

    results: list[Result] = []
    try:
        async with app.state.sessions() as session:
            admin = (await session.scalars(select(User).where(User.username == "admin"))).first()
            if admin is None:
                raise BenchError("the demo data has no `admin` user")
            token = await create_token(session, admin, "bench-custom-fields")
            await session.commit()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1", timeout=600,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:

            async def post(query: str, variables: dict[str, Any]) -> tuple[float, Any]:
                captured.clear()
                started = time.perf_counter()
                response = await client.post("/graphql", json={"query": query,
                                                                "variables": variables})
                elapsed = (time.perf_counter() - started) * 1000
                payload = response.json()
                if response.status_code != 200 or payload.get("errors"):
                    raise BenchError(f"HTTP {response.status_code}: {str(payload)[:500]}")
                return elapsed, payload

            for label, options in (("Region", REGIONS), ("Contract length (months)", None)):
                kind = "PICKLIST" if options else "INTEGER"
                _ms, payload = await post(DEFINE, {"input": {
                    "entity": "OPPORTUNITY", "label": label, "type": kind,
                    **({"options": options} if options else {}),
                }})
                errors = payload["data"]["createCustomField"]["userErrors"]
                if errors:
                    raise BenchError(f"createCustomField {label!r}: {errors}")
            filled = await fill(url)
            for key, rows, seconds in filled:
                console.print(f"  fill {key}: {rows} rows in {seconds:.2f} s", highlight=False)

            event.listen(engine.sync_engine, "before_cursor_execute", before)
            event.listen(engine.sync_engine, "after_cursor_execute", after)
            for case in cases():
                query = LIST.replace("__COUNT__", "totalCount" if case.count else "")
                variables = {"first": PAGE, **case.variables}
                if case.next_page:
                    _ms, first = await post(query, variables)
                    variables["after"] = first["data"]["opportunities"]["pageInfo"]["endCursor"]
                await post(query, variables)  # warm-up
                times, sql_ms = [], []
                page: tuple[str, Any, float] | None = None
                answer = ""
                for _ in range(repeat):
                    elapsed, payload = await post(query, variables)
                    answer = case.check(payload)
                    times.append(elapsed)
                    pages = [c for c in captured if is_page(c[0])]
                    if pages:
                        page = pages[0]
                        sql_ms.append(page[2])
                result = Result(case, times, sql_ms, len(captured), answer,
                                page[0] if page else None, page[1] if page else None)
                console.print(
                    f"  {case.name:32} min {min(times):7.1f} ms  median "
                    f"{statistics.median(times):7.1f} ms  (page SQL "
                    f"{statistics.median(sql_ms) if sql_ms else float('nan'):.1f} ms; {answer})",
                    highlight=False,
                )
                results.append(result)
            event.remove(engine.sync_engine, "before_cursor_execute", before)
            event.remove(engine.sync_engine, "after_cursor_execute", after)
        for result in results:
            if result.page_sql is not None:
                result.plan = await explain(engine, result.page_sql, result.page_params)
    finally:
        await engine.dispose()
    return results, filled


def bench_database(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    dbdir = workdir / kind
    dbdir.mkdir(parents=True, exist_ok=True)
    log = dbdir / "commands.log"
    url = database_url(kind, dbdir, args.pg_url)
    console.rule(f"[bold]{kind}")
    console.print(f"  database: {make_url(url).render_as_string(hide_password=True)}")
    row: dict[str, Any] = {"database": kind, "opportunities": args.opportunities}
    try:
        fresh_database(kind, dbdir, args.pg_url)
        load_s = pipeline.load_demo_data(url, args.opportunities, dbdir, log, args.load_timeout)
        row["load_s"] = round(load_s, 1)
        console.print(f"  demo-data: {args.opportunities} opportunities in {load_s:.1f} s")
        results, filled = asyncio.run(measure(url, args.repeat))
        row["fill"] = [{"what": k, "rows": n, "s": round(s, 2)} for k, n, s in filled]
        row["results"] = [r.row() for r in results]
        for result in results:
            console.print(f"  plan of {result.case.name!r}:", highlight=False)
            for line in result.plan:
                console.print(f"    {line}", highlight=False)
    finally:
        if kind == "postgresql" and not args.keep:
            try:
                drop_pg(args.pg_url)
            except BenchError as exc:
                console.print(f"[yellow]could not drop {PG_DATABASE}:[/yellow] {exc}")
    return row


def summary(rows: list[dict[str, Any]], repeat: int) -> Table:
    table = Table(title=f"opportunities on custom fields, first {PAGE} ({repeat} runs each)")
    for column in ("database", "rows", "query", "min ms", "median ms", "max ms",
                   "page SQL ms", "SQL stmts"):
        table.add_column(column, justify="left" if column in ("database", "query") else "right")
    for row in rows:
        if "error" in row:
            table.add_row(row["database"], "", f"[red]{row['error']}[/red]")
            continue
        for r in row["results"]:
            table.add_row(
                row["database"], f"{row['opportunities']:,}", r["name"], f"{r['min_ms']:.1f}",
                f"{r['median_ms']:.1f}", f"{r['max_ms']:.1f}",
                "" if r["sql_median_ms"] is None else f"{r['sql_median_ms']:.1f}",
                str(r["statements"]),
            )
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark custom-field filters and ordering (see bench/README.md)."
    )
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite",
                        help="comma-separated: sqlite, postgresql (default sqlite)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per query")
    parser.add_argument("--pg-url", default=pipeline.DEFAULT_PG_URL,
                        help=f"PostgreSQL server (default {pipeline.DEFAULT_PG_URL}); "
                             f"the benchmark database is {PG_DATABASE}")
    parser.add_argument("--keep", action="store_true",
                        help=f"keep {PG_DATABASE} and the SQLite file (see --workdir)")
    parser.add_argument("--workdir", type=Path,
                        help="where the SQLite file and logs go (default: a temporary "
                             "directory, removed at the end unless --keep)")
    parser.add_argument("--load-timeout", type=float, default=3600,
                        help="seconds allowed for demo-data")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if args.opportunities < PAGE * 10 or args.repeat < 1:
        parser.error(f"need --opportunities >= {PAGE * 10} and --repeat >= 1")
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
        f"dealgraph custom-field bench: {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}",
        highlight=False,
    )
    rows: list[dict[str, Any]] = []
    temporary = None
    if args.workdir is not None:
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    elif args.keep:
        workdir = Path(tempfile.mkdtemp(prefix="dealgraph-cf-"))
    else:
        temporary = tempfile.TemporaryDirectory(prefix="dealgraph-cf-")
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
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
