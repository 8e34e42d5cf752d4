"""Every SPA query shape in bench/shapes/, dealgraph beside PostGraphile, in one run.

For each dataset size, on PostgreSQL (`dealgraph_peer_<N>`, filled and analysed as by
bench/peer.py): dealgraph and PostGraphile 5 on the same rows; for every shape both answers
are checked to be the same rows (ids, numbers and key values in order), then wrk drives each
shape on dealgraph and on PostGraphile in alternating rounds; the server processes' CPU time
is read from /proc around every run. Then one connection alone for the single-request
latency, the SQL statements and the planner's path of each dealgraph request (in-process, the
planner's own stats) and, at the first size, a cProfile of dealgraph on its slowest shape.
Then dealgraph alone on SQLite, the same rows and shapes.

    python bench/shapes.py [--sizes 10000,100000] [--rounds 3] [--duration 10]
                           [--connections 16] [--shapes pipeline,viewer] [--json FILE]
    python bench/shapes.py --sizes 2000 --duration 3 --rounds 1        # a quick look

See bench/README.md ("Every query shape") and bench/shapes/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import cProfile
import io
import json
import os
import platform
import pstats
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import benchenv

benchenv.use_project_python()

import httpx  # noqa: E402
import peer  # noqa: E402  (bench/peer.py: PostGraphile, wrk, the databases)
import run as pipeline  # noqa: E402  (bench/run.py: demo data, tokens, dealgraph's server)
from rich.table import Table  # noqa: E402

console = pipeline.console
BenchError = pipeline.BenchError
Target = peer.Target
SHAPES = peer.SHAPES
TWIN = ".postgraphile.graphql"
# A shape's dealgraph query lives beside its twin, except where tests read it too.
ELSEWHERE = {"pipeline": pipeline.PIPELINE_QUERY}
FIRST = {"pipeline": 50}  # `first` of a shape that declares $first; 20 for the others
DEFAULT_FIRST = 20

# --- the shapes ----------------------------------------------------------------------------


@dataclass
class Shape:
    name: str
    query: str  # dealgraph's
    twin: str  # PostGraphile's
    variables: dict[str, Any]
    unordered: frozenset[str] = field(default_factory=frozenset)  # dealgraph's field names
    twin_unordered: frozenset[str] = field(default_factory=frozenset)


def unordered_fields(query: str) -> frozenset[str]:
    """The fields named by `# unordered: a b` comment lines: lists compared as sets."""
    names = [name for line in query.splitlines()
             if (found := re.match(r"\s*#\s*unordered:\s*(.*)", line))
             for name in re.split(r"[\s,]+", found.group(1).split("(")[0]) if name]
    return frozenset(names)


def load_shapes(only: list[str] | None) -> list[Shape]:
    """Every NAME.postgraphile.graphql in bench/shapes/ with its dealgraph NAME.graphql."""
    shapes: list[Shape] = []
    names = sorted(path.name[: -len(TWIN)] for path in SHAPES.glob(f"*{TWIN}"))
    orphans = sorted(path.stem for path in SHAPES.glob("*.graphql")
                     if not path.name.endswith(TWIN) and path.stem not in names)
    if orphans:
        raise BenchError(f"shapes without a PostGraphile twin ({TWIN}): {', '.join(orphans)}")
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise BenchError(f"unknown shapes {', '.join(unknown)}; there are {', '.join(names)}")
    for name in names:
        if only and name not in only:
            continue
        source = ELSEWHERE.get(name, SHAPES / f"{name}.graphql")
        if not source.exists():
            raise BenchError(f"shape {name}: missing {source}")
        query, twin = source.read_text(), (SHAPES / f"{name}{TWIN}").read_text()
        variables = {"first": FIRST.get(name, DEFAULT_FIRST)} if "$first" in query else {}
        shapes.append(Shape(name, query, twin, variables, unordered_fields(query),
                            unordered_fields(twin)))
    if not shapes:
        raise BenchError(f"no shapes in {SHAPES}")
    return shapes


# --- the same rows -------------------------------------------------------------------------

# Leaves compared between the two answers, in document order; the others (cursors, computed
# figures PostGraphile has no column for, timestamps in two formats) are left out.
COMPARED = frozenset({
    "id", "number", "name", "username", "fullName", "firstName", "lastName", "email", "company",
    "title", "amount", "quantity", "listPrice", "discountPercent", "taxPercent", "unitPrice",
    "totalCount", "code", "subject", "stage", "role", "key", "probability", "expectedCloseDate",
    "validUntil", "isActive", "isSynced", "isConverted", "status", "industry", "city",
    "currency", "hasNextPage", "leadSource",
})
# dealgraph's field ↔ PostGraphile's: a campaign's deal count is a totalCount there; a stage
# change's `toStage` is the stage key itself.
ALIASES = {"opportunityCount": "totalCount", "toStage": "key"}
WRAPPERS = frozenset({"nodes", "edges", "node"})  # inside a connection: not the field's name
NUMERIC = re.compile(r"-?\d+(\.\d+)?")


def canonical_id(value: str) -> str:
    """`Type:pk` from dealgraph's global id (base64url of `Type:pk`) and from PostGraphile's
    (base64 of `["Type", pk]`); the value itself when it is neither."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return value
    if raw.startswith("["):
        try:
            kind, *pk = json.loads(raw)
        except (ValueError, TypeError):
            return value
        return f"{kind}:{':'.join(str(part) for part in pk)}"
    return raw if ":" in raw else value


def canonical(key: str, value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if key == "id" and isinstance(value, str):
        return canonical_id(value)
    text = str(value)
    if NUMERIC.fullmatch(text):
        return str(Decimal(text).normalize())
    return text


def rows(value: Any, unordered: frozenset[str], key: str = "", path: str = "") -> list[str]:
    """An answer as `field=value` tokens in document order (objects and lists flattened, so
    `nodes(ids:)` and aliased `node`s give the same tokens); a list whose field path (names
    from the root, `nodes`/`edges`/`node` left out) ends with an entry of `unordered` (`a.b`
    or `b`) is sorted by its items' tokens."""
    if isinstance(value, list):
        items = [rows(item, unordered, key, path) for item in value]
        if any(path == name or path.endswith(f".{name}") for name in unordered):
            items.sort()
        return [token for item in items for token in item]
    if isinstance(value, dict):
        return [token for k, v in value.items()
                for token in rows(v, unordered, k, path if k in WRAPPERS else f"{path}.{k}")]
    key = ALIASES.get(key, key)
    return [f"{key}={canonical(key, value)}"] if key in COMPARED else []


def first_difference(mine: list[str], theirs: list[str]) -> str | None:
    if mine == theirs:
        return None
    at = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
              min(len(mine), len(theirs)))
    return (f"{len(mine)} vs {len(theirs)} compared values; from value {at}: "
            f"{mine[at:at + 3]} vs {theirs[at:at + 3]}")


def answer_data(label: str, status: int, payload: Any) -> dict[str, Any]:
    if status != 200 or not isinstance(payload, dict) or payload.get("errors") \
            or not isinstance(payload.get("data"), dict):
        raise BenchError(f"{label}: HTTP {status}: {str(payload)[:500]}")
    return dict(payload["data"])


def shape_rows(shape: Shape, data: dict[str, Any], twin: bool = False) -> list[str]:
    tokens = rows(data, shape.twin_unordered if twin else shape.unordered)
    if not any(t.startswith(("id=", "number=", "username=")) for t in tokens):
        raise BenchError(f"{shape.name}: the answer holds no rows: {str(data)[:300]}")
    return tokens


def summary_of(tokens: list[str]) -> str:
    numbers = [t.split("=", 1)[1] for t in tokens if t.startswith(("number=", "username="))]
    head = f"{numbers[0]} .. {numbers[-1]}" if numbers else "-"
    return f"{len(tokens)} values, {len(numbers)} numbered rows ({head})"


# --- measuring -----------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (Linux /proc)."""
    total = 0
    for each in [pid, *peer.descendants(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS


@dataclass
class Side:
    """One server's request for one shape, and the process whose CPU time it costs."""

    target: Target
    pid: int


def wait_idle(pid: int, timeout: float = 60.0, step: float = 0.25) -> float:
    """Until the server has finished what the last run left it (wrk stops waiting at the end
    of a run, the server goes on with the requests in flight): its CPU time stops growing
    (under 10% of a CPU for `step`). Returns the seconds waited."""
    started = time.monotonic()
    last = cpu_seconds(pid)
    while time.monotonic() < started + timeout:
        time.sleep(step)
        now = cpu_seconds(pid)
        if now - last < step / 10:
            break
        last = now
    return time.monotonic() - started


def measured(side: Side, seconds: int, connections: int) -> dict[str, float]:
    """A wrk run with the server's CPU milliseconds per request (its CPU time while wrk ran
    ÷ the answers), then PostgreSQL's and the server's leftovers finished before the next."""
    before = cpu_seconds(side.pid)
    run = peer.wrk_run(replace(side.target, database=None), seconds, connections)
    used = cpu_seconds(side.pid) - before
    run["cpu_ms_per_request"] = 1000 * used / run["requests"] if run["requests"] else 0.0
    if side.target.database:
        peer.quiesce(side.target.database)
    run["drain_s"] = round(wait_idle(side.pid), 2)
    return run


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = ("req_per_s", "p50_ms", "p99_ms", "cpu_ms_per_request")
    found = {key: peer.median_of(runs, key) for key in keys}
    found["errors"] = sum(run["errors"] for run in runs)
    found["requests"] = sum(run["requests"] for run in runs)
    return found


def bench_sides(
    sides: dict[str, dict[str, Side]], args: argparse.Namespace, title: str
) -> dict[str, dict[str, Any]]:
    """Warm-up, then --rounds rounds of every shape on each side in turn (dealgraph, peer,
    dealgraph, peer ...), then one connection alone: medians per shape and side."""
    for by_side in sides.values():
        for side in by_side.values():
            warm = measured(side, args.warmup, args.connections)
            if warm["errors"]:
                console.print(f"[yellow]  warm-up of {side.target.label}:[/yellow] "
                              f"{peer.error_text(warm)}", highlight=False)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {key: [] for key in by_side} for name, by_side in sides.items()}
    for number in range(1, args.rounds + 1):
        console.print(f"  {title}: round {number}/{args.rounds} (load average "
                      f"{os.getloadavg()[0]:.2f})", highlight=False)
        for name, by_side in sides.items():
            cells = []
            for key, side in by_side.items():
                run = measured(side, args.duration, args.connections)
                runs[name][key].append(run)
                cells.append(f"{side.target.label} {run['req_per_s']:.0f} req/s p99 "
                             f"{run['p99_ms']:.1f} ms errors {peer.error_text(run)}"
                             + ("" if run["requests"] else
                                " [red](no answer within the run: try a longer --duration)[/red]"))
            console.print(f"    {name}: " + "; ".join(cells), highlight=False)
    found: dict[str, dict[str, Any]] = {}
    for name, by_side in sides.items():
        found[name] = {}
        for key, side in by_side.items():
            alone = measured(side, args.latency_duration, 1)
            found[name][key] = {**median_run(runs[name][key]), "rounds": runs[name][key],
                                "single": alone}
    return found


def goal(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    ratio = mine["req_per_s"] / theirs["req_per_s"] if theirs["req_per_s"] else float("inf")
    errors = mine["errors"] + theirs["errors"]
    return {"ratio": ratio, "errors": errors, "holds": bool(
        ratio >= peer.GOAL_RATIO and mine["p99_ms"] <= theirs["p99_ms"] and errors == 0)}


# --- the profile ---------------------------------------------------------------------------


def profile(url: str, token: str, shape: Shape, requests: int, top: int = 25) -> str:
    """cProfile of `requests` sequential requests of one shape, in-process (create_app behind
    the ASGI transport: the app, the planner, the driver; not uvicorn's HTTP parsing)."""
    from server.app import create_app
    from server.settings import Settings

    body = {"query": shape.query, "variables": shape.variables}
    profiler = cProfile.Profile()

    async def main() -> float:
        app = create_app(Settings(database_url=url))
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                         headers=headers, timeout=60) as client:
                for _ in range(3):  # warm: plans cached, connections open
                    answer = await client.post("/graphql", json=body)
                    answer_data(shape.name, answer.status_code, answer.json())
                started = time.perf_counter()
                profiler.enable()
                for _ in range(requests):
                    await client.post("/graphql", json=body)
                profiler.disable()
                return time.perf_counter() - started
        finally:
            await app.state.engine.dispose()

    elapsed = asyncio.run(asyncio.wait_for(main(), 60 + requests))
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"{requests} requests of {shape.name} in {elapsed:.2f} s "
              f"({1000 * elapsed / requests:.1f} ms each, under cProfile)\n"
              f"own time by package: {package_shares(stats)}\n")
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(top)
    text = out.getvalue().replace(f"{pipeline.REPO}/", "")
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"\S*/site-packages/", "", text))


def package_shares(stats: pstats.Stats, top: int = 8) -> str:
    """Own (exclusive) time per top-level package, the largest first, as shares."""
    by_package: dict[str, float] = {}
    for (filename, _line, _name), row in stats.stats.items():  # type: ignore[attr-defined]
        path = Path(filename)
        if "site-packages" in path.parts:
            package = path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
        elif path.is_relative_to(pipeline.REPO):
            package = f"dealgraph {path.relative_to(pipeline.REPO).parts[0]}"
        elif filename.startswith("<") or filename == "~":
            package = "built-in"
        else:
            module = path.stem if path.parent.name.startswith("python") else path.parent.name
            package = f"stdlib {module}"
        by_package[package] = by_package.get(package, 0.0) + row[2]
    total = sum(by_package.values()) or 1.0
    ranked = sorted(by_package.items(), key=lambda item: -item[1])[:top]
    return ", ".join(f"{name} {100 * seconds / total:.0f}%" for name, seconds in ranked)


# --- one dataset size ----------------------------------------------------------------------


def write_body(path: Path, query: str, variables: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"query": query, "variables": variables}))
    return path


def probe(url: str, token: str, shapes: list[Shape]) -> dict[str, dict[str, Any]]:
    """SQL statements and the planner's path of each shape's dealgraph request."""
    by_name = {shape.name: shape for shape in shapes}
    found = pipeline.probe_requests(
        url, token, {s.name: {"query": s.query, "variables": s.variables} for s in shapes},
        lambda name, status, payload: summary_of(
            shape_rows(by_name[name], answer_data(name, status, payload))),
    )
    for info in found.values():
        info.pop("sql")
    return found


def start_dealgraph(url: str, workdir: Path) -> tuple[pipeline.Server, str]:
    log = workdir / "commands.log"
    token = pipeline.create_token(url, workdir, log)
    server = pipeline.Server(url, workdir, workdir / "dealgraph.log", "WARNING")
    return server, f"Authorization: Bearer {token}"


def postgresql_size(
    size: int, shapes: list[Shape], args: argparse.Namespace, workdir: Path,
    record: dict[str, Any], with_profile: bool,
) -> dict[str, list[str]]:
    """dealgraph and PostGraphile on PostgreSQL; returns dealgraph's rows per shape."""
    server: pipeline.Server | None = None
    other: peer.PeerServer | None = None
    log = workdir / "commands.log"
    try:
        url = peer.prepare_database(size, args, workdir, log, record)
        record["deleted"] = peer.deleted_rows(url)
        hidden = {table: n for table, n in record["deleted"].items() if n}
        if hidden:
            console.print(f"[yellow]  soft-deleted rows (dealgraph hides them, the PostGraphile "
                          f"twins show them; a shape that meets one fails the check): "
                          f"{hidden}[/yellow]", highlight=False)
        server, header = start_dealgraph(url, workdir)
        console.print(f"  dealgraph: {server.base} (healthy after "
                      f"{server.wait_healthy(args.server_timeout):.1f} s)")
        other = peer.PeerServer(url, workdir, workdir / "postgraphile.log")
        console.print(f"  PostGraphile: {other.base} (answering after "
                      f"{other.wait_ready(args.peer_timeout):.1f} s)")
        token = header.split()[-1]

        sides: dict[str, dict[str, Side]] = {}
        found: dict[str, list[str]] = {}
        record["shapes"] = {}
        for shape in shapes:
            mine = Target("dealgraph", "dealgraph", f"{server.base}/graphql",
                          write_body(workdir / f"{shape.name}.json", shape.query,
                                     shape.variables), header, database=url)
            theirs = Target("peer", "PostGraphile", f"{other.base}/graphql",
                            write_body(workdir / f"{shape.name}.peer.json", shape.twin,
                                       shape.variables), database=url)
            found[shape.name] = shape_rows(shape, peer.post(mine))
            difference = first_difference(found[shape.name],
                                          shape_rows(shape, peer.post(theirs), twin=True))
            if difference:
                raise BenchError(f"shape {shape.name}: PostGraphile does not return dealgraph's "
                                 f"rows: {difference}")
            console.print(f"  {shape.name}: the same rows on both "
                          f"({summary_of(found[shape.name])})", highlight=False)
            record["shapes"][shape.name] = {"rows": summary_of(found[shape.name])}
            sides[shape.name] = {"dealgraph": Side(mine, server.process.pid),
                                 "peer": Side(theirs, other.process.pid)}
        for name, info in probe(url, token, shapes).items():
            record["shapes"][name].update(info)

        for name, figures in bench_sides(sides, args, f"{size} deals, PostgreSQL").items():
            record["shapes"][name].update(figures)
            record["shapes"][name]["goal"] = goal(figures["dealgraph"], figures["peer"])
        console.print(postgresql_table(size, record, args))
        if with_profile and args.profile_requests:
            slowest = min(shapes, key=lambda s: record["shapes"][s.name]["dealgraph"]
                          ["req_per_s"])
            console.print(f"  profile of dealgraph on its slowest shape, {slowest.name}:")
            record["profile"] = {"shape": slowest.name,
                                 "text": profile(url, token, slowest, args.profile_requests)}
            console.print(record["profile"]["text"], highlight=False, markup=False,
                          soft_wrap=True)
        return found
    finally:
        if other is not None:
            other.stop()
        if server is not None:
            server.stop()
        if "database" in record:
            if args.keep_databases:
                console.print(f"  kept {record['database']} (--keep-databases)")
            elif record.get("created") or record.get("reused"):
                peer.drop_database(args, record["database"])


def sqlite_size(
    size: int, shapes: list[Shape], args: argparse.Namespace, workdir: Path,
    record: dict[str, Any], postgresql_rows: dict[str, list[str]],
) -> None:
    """dealgraph alone on SQLite, the same demo data and shapes."""
    url = pipeline.fresh_database("sqlite", workdir, args.pg_url)
    record["load_s"] = round(pipeline.load_demo_data(url, size, workdir, workdir / "commands.log",
                                                     args.load_timeout), 2)
    console.print(f"  demo-data: {size} opportunities in {record['load_s']:.1f} s")
    server, header = start_dealgraph(url, workdir)
    try:
        console.print(f"  dealgraph: {server.base} (healthy after "
                      f"{server.wait_healthy(args.server_timeout):.1f} s)")
        sides: dict[str, dict[str, Side]] = {}
        record["shapes"] = {}
        for shape in shapes:
            mine = Target("dealgraph", "dealgraph", f"{server.base}/graphql",
                          write_body(workdir / f"{shape.name}.json", shape.query,
                                     shape.variables), header)
            tokens = shape_rows(shape, peer.post(mine))
            # Text orders follow each database's collation: a difference is reported, not fatal.
            difference = (first_difference(tokens, postgresql_rows[shape.name])
                          if shape.name in postgresql_rows else None)
            record["shapes"][shape.name] = {"rows": summary_of(tokens),
                                            "as_on_postgresql": difference or "same"}
            note = f"; not as on PostgreSQL: {difference}" if difference else ""
            console.print(f"  {shape.name}: {summary_of(tokens)}{note}", highlight=False)
            sides[shape.name] = {"dealgraph": Side(mine, server.process.pid)}
        for name, info in probe(url, header.split()[-1], shapes).items():
            record["shapes"][name].update(info)
        for name, figures in bench_sides(sides, args, f"{size} deals, SQLite").items():
            record["shapes"][name].update(figures)
    finally:
        server.stop()


# --- tables --------------------------------------------------------------------------------


def cells(figures: dict[str, Any]) -> list[str]:
    return [f"{figures['req_per_s']:.1f}", f"{figures['p99_ms']:.1f}"]


def postgresql_table(size: int, record: dict[str, Any], args: argparse.Namespace) -> Table:
    table = Table(title=f"{size} deals, PostgreSQL: medians of {args.rounds} rounds of "
                        f"{args.duration} s, {args.connections} connections",
                  title_justify="left")
    for name in ("shape", "dealgraph req/s", "p99 ms", "PostGraphile req/s", "p99 ms", "ratio",
                 "goal", "CPU ms/req", "peer CPU ms/req", "SQL/req", "planner", "errors"):
        table.add_column(name, justify="left" if name in ("shape", "planner") else "right")
    for name, shape in record["shapes"].items():
        mine, theirs, verdict = shape["dealgraph"], shape["peer"], shape["goal"]
        table.add_row(
            name, *cells(mine), *cells(theirs), f"{verdict['ratio']:.2f}×",
            "[green]yes" if verdict["holds"] else "[red]no",
            f"{mine['cpu_ms_per_request']:.2f}", f"{theirs['cpu_ms_per_request']:.2f}",
            str(shape["statements"]), shape["path"], f"{verdict['errors']:.0f}")
    return table


def sqlite_table(size: int, record: dict[str, Any], args: argparse.Namespace) -> Table:
    table = Table(title=f"{size} deals, SQLite, dealgraph alone: medians of {args.rounds} "
                        f"rounds of {args.duration} s, {args.connections} connections",
                  title_justify="left")
    for name in ("shape", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "SQL/req", "planner",
                 "errors"):
        table.add_column(name, justify="left" if name in ("shape", "planner") else "right")
    for name, shape in record["shapes"].items():
        mine = shape["dealgraph"]
        table.add_row(name, f"{mine['req_per_s']:.1f}", f"{mine['p50_ms']:.1f}",
                      f"{mine['p99_ms']:.1f}", f"{mine['cpu_ms_per_request']:.2f}",
                      str(shape["statements"]), shape["path"], f"{mine['errors']:.0f}")
    return table


def latency_table(size: int, record: dict[str, Any], args: argparse.Namespace) -> Table:
    table = Table(title=f"{size} deals, one connection ({args.latency_duration} s each): "
                        "single-request latency, ms, and the server's CPU ms per request",
                  title_justify="left")
    for name in ("shape", "dealgraph PG p50", "p99", "CPU ms", "PostGraphile p50", "p99",
                 "CPU ms", "dealgraph SQLite p50", "p99", "CPU ms"):
        table.add_column(name, justify="left" if name == "shape" else "right")
    postgresql = record.get("postgresql", {}).get("shapes", {})
    sqlite = record.get("sqlite", {}).get("shapes", {})
    for name in dict.fromkeys([*postgresql, *sqlite]):
        row = [name]
        for shapes, key in ((postgresql, "dealgraph"), (postgresql, "peer"),
                            (sqlite, "dealgraph")):
            single = shapes.get(name, {}).get(key, {}).get("single")
            row += ([f"{single['p50_ms']:.1f}", f"{single['p99_ms']:.1f}",
                     f"{single['cpu_ms_per_request']:.2f}"] if single else ["-", "-", "-"])
        table.add_row(*row)
    return table


def sizes_table(records: list[dict[str, Any]]) -> Table:
    table = Table(title="the goal by size (dealgraph ≥ 1.5× PostGraphile's req/s, p99 no "
                        "worse, no errors): ratio per shape", title_justify="left")
    names = list(dict.fromkeys(name for r in records
                               for name in r.get("postgresql", {}).get("shapes", {})))
    table.add_column("deals", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for record in records:
        shapes = record.get("postgresql", {}).get("shapes", {})
        row = [str(record["opportunities"])]
        for name in names:
            verdict = shapes.get(name, {}).get("goal")
            row.append("-" if verdict is None else
                       f"[{'green' if verdict['holds'] else 'red'}]{verdict['ratio']:.2f}×")
        table.add_row(*row)
    return table


# --- main ----------------------------------------------------------------------------------


def bench_size(size: int, first: bool, shapes: list[Shape], args: argparse.Namespace,
               workdir: Path, record: dict[str, Any]) -> None:
    postgresql_rows: dict[str, list[str]] = {}
    if "postgresql" in args.databases:
        console.rule(f"[bold]{size} deals: PostgreSQL, dealgraph and PostGraphile")
        sizedir = workdir / f"{size}-postgresql"
        sizedir.mkdir(parents=True, exist_ok=True)
        record["postgresql"] = {}
        postgresql_rows = postgresql_size(size, shapes, args, sizedir, record["postgresql"],
                                          first)
    if "sqlite" in args.databases:
        console.rule(f"[bold]{size} deals: SQLite, dealgraph alone")
        sizedir = workdir / f"{size}-sqlite"
        sizedir.mkdir(parents=True, exist_ok=True)
        record["sqlite"] = {}
        sqlite_size(size, shapes, args, sizedir, record["sqlite"], postgresql_rows)
        console.print(sqlite_table(size, record["sqlite"], args))
    console.print(latency_table(size, record, args))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Every SPA query shape, dealgraph vs PostGraphile (see bench/README.md)."
    )
    parser.add_argument("--sizes", type=peer.int_list, default=[10_000, 100_000],
                        help="dataset sizes, comma-separated (default 10000,100000)")
    parser.add_argument("--shapes", default="",
                        help="comma-separated shape names (default: every one in bench/shapes)")
    parser.add_argument("--databases", default="postgresql,sqlite",
                        help="postgresql (both servers) and/or sqlite (dealgraph alone)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--latency-duration", type=int, default=5,
                        help="seconds of the one-connection run per shape and server")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per request")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--profile-requests", type=int, default=50,
                        help="requests of the slowest shape under cProfile (0: no profile)")
    parser.add_argument("--keep-databases", action="store_true",
                        help=f"leave the {peer.DATABASE_PREFIX}<N> databases in place")
    parser.add_argument("--reuse", action="store_true",
                        help="use an existing database that holds exactly N opportunities")
    parser.add_argument("--pg-url", default=pipeline.DEFAULT_PG_URL,
                        help=f"PostgreSQL server (default {pipeline.DEFAULT_PG_URL})")
    parser.add_argument("--load-timeout", type=float, default=3600)
    parser.add_argument("--server-timeout", type=float, default=60)
    parser.add_argument("--peer-timeout", type=float, default=300)
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    args.sizes = list(dict.fromkeys(args.sizes))
    args.shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not args.sizes or min(args.sizes) < 5:
        parser.error("--sizes needs integers >= 5 (node_lookup reads deals 1, 2, 3 and 5)")
    if not args.databases or set(args.databases) - {"postgresql", "sqlite"}:
        parser.error("--databases takes postgresql and/or sqlite")
    if min(args.rounds, args.connections, args.warmup, args.latency_duration) < 1 \
            or args.profile_requests < 0:
        parser.error("need --rounds, --connections, --warmup, --latency-duration >= 1 and "
                     "--profile-requests >= 0")
    if not 1 <= args.duration <= 100:
        parser.error("--duration must be within 1..100 s (load.sh stops wrk after 120 s)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, peer.on_sigterm)
    try:
        shapes = load_shapes(args.shapes)
        pipeline.check_loopback_url(args.pg_url)
        for needed in (peer.PEER_SERVER, peer.PEER_LOAD):
            if not needed.exists():
                raise BenchError(f"missing {needed}")
        if shutil.which("wrk") is None:
            raise BenchError("wrk is not installed (apt-get install -y wrk)")
    except BenchError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        return 2
    console.print(
        f"every shape: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (servers, databases and wrk share them), load average "
        f"{os.getloadavg()[0]:.2f}; sizes {args.sizes}, shapes "
        f"{', '.join(s.name for s in shapes)}; {args.rounds} rounds of {args.duration} s, "
        f"{args.connections} connections",
        highlight=False,
    )
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "settings": {key: str(value) if isinstance(value, Path) else value
                     for key, value in vars(args).items()},
        "shapes": {s.name: {"dealgraph": s.query, "postgraphile": s.twin,
                            "variables": s.variables} for s in shapes},
        "sizes": [],
    }
    status = 0
    try:
        with tempfile.TemporaryDirectory(prefix="dealgraph-shapes-") as tmp:
            for index, size in enumerate(args.sizes):
                record: dict[str, Any] = {"opportunities": size}
                report["sizes"].append(record)
                try:
                    bench_size(size, index == 0, shapes, args, Path(tmp), record)
                except (BenchError, OSError, ValueError, KeyError, TimeoutError) as exc:
                    console.print(f"[red]{size} deals failed:[/red] {exc}", highlight=False)
                    record["error"] = str(exc)
                    status = 1
        if len(args.sizes) > 1 and "postgresql" in args.databases:
            console.print(sizes_table(report["sizes"]))
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
