"""Benchmark `dealgraph import opportunities` on a generated Italian vtenext export.

Generates N rows the way an Italian vtenext export looks (Windows-1252, semicolons, CRLF,
decimal comma with thousands dots, dd/mm/yyyy, Italian headers and picklist labels,
assignees by username or full name, some quoted multi-line descriptions holding the
delimiter), then for each database: a fresh one, migrated, with the users, campaigns and
(unless --new-accounts) the accounts the file names; then times the real command

    dealgraph import opportunities FILE --as admin [--create-missing-accounts]

as a subprocess by wall clock (process start, reading, every rule per row, the batched
writes and the job), checks that every row arrived with its first stage change, and prints
rows/s. The machine's load average is printed beside it: other work on the machine shows.

    python bench/import.py [--rows 100000] [--databases sqlite[,postgresql]]
                           [--batch-size 1000] [--new-accounts] [--pg-url URL]
                           [--workdir DIR] [--json FILE]

See bench/README.md ("CSV import").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


import benchenv  # noqa: E402

benchenv.use_project_python()
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

import run as pipeline  # noqa: E402  (bench/run.py: command and database helpers)
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

PG_DATABASE = "dealgraph_bench_import"
HEADER = ("Nome Opportunità;Ammontare;Nome Azienda;Data di chiusura attesa;Tipo;"
          "Prossimo Step;Fonte Lead;Stadio di vendita;Assegnato a;Probabilità (%);"
          "Fonte Campagna;Descrizione")
STAGES = ("In Prospettiva", "Qualificazione", "Da Analizzare", "Proposto il valore",
          "Potere decisionale", "Analisi di percezione", "Proposta/Preventivo Prezzo",
          "Trattativa/Revisione", "Chiuso VINTO")  # vtenext's it_it labels
SOURCES = ("Chiamata a freddo", "Cliente Esistente", "Fiera", "Web Site", "Passaparola",
           "Partner", "Conferenza")
TYPES = ("Nuovo Business", "Business Esistente", "")
REPS = 20
ACCOUNTS = 2000
CAMPAIGNS = 10
console = Console(stderr=True)


def italian_amount(cents: int) -> str:
    whole, part = divmod(cents, 100)
    return f"{whole:,}".replace(",", ".") + f",{part:02d}"


def generate(path: Path, rows: int, seed: int = 1) -> None:
    r = random.Random(seed)
    lines = [HEADER]
    for i in range(rows):
        rep = r.randrange(REPS)
        who = f"rep{rep:02d}" if i % 2 else f"Agente {rep:02d} Rossi"
        day = f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.choice((2026, 2027, 2028))}"
        probability = "" if i % 3 else f"{r.randint(5, 95)}%"
        description = "" if i % 4 else (f'"Nota {i}; prima riga\r\nseconda riga, fine"'
                                        if i % 8 == 0 else f"Nota {i}")
        lines.append(";".join((
            f"Affare {i:06d} – fornitura", italian_amount(r.randint(10_000, 50_000_000)),
            f"Azienda {r.randrange(ACCOUNTS):04d} S.r.l.", day, r.choice(TYPES),
            "Richiamare" if i % 5 == 0 else "", r.choice(SOURCES), r.choice(STAGES), who,
            probability, f"Campagna {r.randrange(CAMPAIGNS)}" if i % 6 == 0 else "",
            description,
        )))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))


def fresh_database(kind: str, workdir: Path, pg_url: str) -> str:
    if kind == "sqlite":
        path = workdir / "import-bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite+aiosqlite:///{path}"
    if kind == "postgresql":
        from sqlalchemy.engine import make_url

        pipeline.check_loopback_url(pg_url)
        pipeline.pg_admin(pg_url, [f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)",
                                   f"CREATE DATABASE {PG_DATABASE}"])
        return make_url(pg_url).set(database=PG_DATABASE).render_as_string(hide_password=False)
    raise pipeline.BenchError(f"unknown database {kind!r} (sqlite or postgresql)")


def seed(url: str, accounts: bool) -> None:
    """Users, campaigns and (unless the import is to create them) the accounts."""
    from sqlalchemy import insert

    import models
    from server.db import create_engine
    from server.settings import Settings

    async def main() -> None:
        engine = create_engine(Settings(database_url=url))
        try:
            async with engine.begin() as connection:
                await connection.execute(insert(models.User), [
                    {"id": 1, "username": "admin", "full_name": "Amministratore", "role": "ADMIN",
                     "is_active": True},
                    *({"id": 2 + n, "username": f"rep{n:02d}", "full_name": f"Agente {n:02d} Rossi",
                       "role": "SALES_REP", "is_active": True} for n in range(REPS)),
                ])
                await connection.execute(insert(models.Campaign), [
                    {"id": 1 + n, "number": f"CAM{n + 1}", "name": f"Campagna {n}",
                     "assigned_to_id": 1, "created_by_id": 1} for n in range(CAMPAIGNS)
                ])
                if accounts:
                    await connection.execute(insert(models.Account), [
                        {"id": 1 + n, "number": f"ACC{n + 1}", "name": f"Azienda {n:04d} S.r.l.",
                         "assigned_to_id": 2 + n % REPS, "created_by_id": 1}
                        for n in range(ACCOUNTS)
                    ])
                await connection.execute(
                    models.NumberSequence.__table__.update()
                    .where(models.NumberSequence.prefix == "CAM").values(next_value=CAMPAIGNS + 1)
                )
                if accounts:
                    await connection.execute(
                        models.NumberSequence.__table__.update()
                        .where(models.NumberSequence.prefix == "ACC")
                        .values(next_value=ACCOUNTS + 1)
                    )
                if connection.dialect.name == "postgresql":
                    for table in ("users", "campaigns", "accounts"):
                        await connection.exec_driver_sql(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                        )
        finally:
            await engine.dispose()

    asyncio.run(main())


def counts(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from server.db import create_engine
    from server.settings import Settings

    async def main() -> dict[str, int]:
        engine = create_engine(Settings(database_url=url))
        try:
            async with engine.connect() as connection:
                return {t: int((await connection.execute(text(f"SELECT count(*) FROM {t}")))
                               .scalar_one())
                        for t in ("opportunities", "stage_changes", "accounts", "import_items")}
        finally:
            await engine.dispose()

    return asyncio.run(main())


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


def bench_database(kind: str, args: argparse.Namespace, workdir: Path, csv: Path
                   ) -> dict[str, Any]:
    log = workdir / f"{kind}.log"
    url = fresh_database(kind, workdir, args.pg_url)
    env = {**pipeline.subprocess_env(url), "DEALGRAPH_IMPORT_BATCH_SIZE": str(args.batch_size)}
    pipeline.run_logged([pipeline.dealgraph_command(), "migrate", "--database-url", url], log,
                        300, env, workdir)
    seed(url, accounts=not args.new_accounts)
    command = [pipeline.dealgraph_command(), "import", "opportunities", str(csv), "--as",
               "admin", "--database-url", url]
    if args.new_accounts:
        command.append("--create-missing-accounts")
    load_before = load_average()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir,
                            timeout=args.timeout, check=False)
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise pipeline.BenchError(f"the import exited with {result.returncode}:\n"
                                  f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    found = counts(url)
    expected_accounts = ACCOUNTS if not args.new_accounts else found["accounts"]
    if (found["opportunities"], found["stage_changes"]) != (args.rows, args.rows) or (
        found["accounts"] != expected_accounts
    ):
        raise pipeline.BenchError(f"unexpected rows after the import: {found}")
    if kind == "postgresql" and not args.keep:
        pipeline.pg_admin(args.pg_url, [f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"])
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "database": kind, "rows": args.rows, "seconds": round(seconds, 2),
        "rows_per_second": round(args.rows / seconds), "cpu_seconds": round(cpu, 2),
        "batch_size": args.batch_size, "new_accounts": args.new_accounts,
        "accounts_after": found["accounts"], "load_before": load_before,
        "load_after": load_average(), "summary": result.stdout.splitlines()[:2],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite",
                        help="comma-separated: sqlite, postgresql (default: sqlite)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--new-accounts", action="store_true",
                        help="no accounts beforehand: the import creates them")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dealgraph-import-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        csv = workdir / "vtenext_opportunita.csv"
        started = time.perf_counter()
        generate(csv, args.rows)
        console.print(f"generated {args.rows:,} rows ({csv.stat().st_size / 2**20:.1f} MiB) "
                      f"in {time.perf_counter() - started:.1f}s")
        results = []
        for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
            console.print(f"importing into {kind} ...")
            try:
                results.append(bench_database(kind, args, workdir, csv))
            except pipeline.BenchError as exc:
                console.print(f"[red]{kind}: {exc}[/red]")
                return 1
    table = Table(title=f"dealgraph import opportunities: {args.rows:,} Italian rows")
    for column in ("database", "seconds", "rows/s", "CPU s", "batch", "accounts",
                   "load avg before", "load avg after"):
        table.add_column(column)
    for r in results:
        table.add_row(r["database"], f"{r['seconds']:.1f}", f"{r['rows_per_second']:,}",
                      f"{r['cpu_seconds']:.1f}", str(r["batch_size"]),
                      "created" if r["new_accounts"] else "existing", r["load_before"],
                      r["load_after"])
    Console().print(table)
    print(json.dumps(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
