"""The installed `dealgraph` command, end to end: migrate, create a user and a token, serve
over real HTTP; `serve --demo` on an empty database. Every subprocess runs with a timeout.

These tests use their own database: a fresh SQLite file, or, when
DEALGRAPH_TEST_DATABASE_URL points at PostgreSQL, a separate `<dbname>_serve` database
created and dropped here (the session fixtures own the test database itself).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import TEST_DATABASE_URL

pytestmark = pytest.mark.no_database

DEALGRAPH = str(Path(sys.executable).parent / "dealgraph")
COMMAND_TIMEOUT = 120  # seconds, for one short command
STARTUP_TIMEOUT = 120  # seconds until /healthz answers (includes --demo data generation)
TOKEN = re.compile(r"dg_[A-Za-z0-9_-]{20,}")

VIEWER = "query Viewer { viewer { username role } }"


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment without any DEALGRAPH_ setting of the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALGRAPH_")}
    env.update(COLUMNS="200", NO_COLOR="1", DEALGRAPH_DATA_DIR=str(tmp_path / "data"))
    return env


@pytest.fixture
async def serve_database_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database for the command line: SQLite in tmp_path or `<dbname>_serve`."""
    if not (TEST_DATABASE_URL and TEST_DATABASE_URL.startswith("postgresql")):
        yield f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
        return
    url = make_url(TEST_DATABASE_URL)
    name = f"{url.database}_serve"
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def dealgraph(
    *args: str, env: dict[str, str], cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [DEALGRAPH, *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=COMMAND_TIMEOUT, check=False,
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A `dealgraph serve` subprocess, its output in files (a full pipe would block it)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path, self.stderr_path = cwd / "serve.out", cwd / "serve.err"
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.process = subprocess.Popen(
                [DEALGRAPH, "serve", "--port", str(self.port), *args],
                env=env, cwd=cwd, stdout=out, stderr=err,
            )

    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"server did not answer /healthz in {STARTUP_TIMEOUT}s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


@pytest.fixture
def serve(cli_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(list(args), cli_env, tmp_path)
        servers.append(server)
        server.wait_until_healthy()
        return server

    yield start
    for server in servers:
        server.stop()


def ask_viewer(server: Server, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{server.url}/graphql", json={"query": VIEWER}, headers=headers, timeout=30
    )


def test_migrate_create_a_user_and_a_token_then_serve_over_http(
    serve_database_url, cli_env, tmp_path, serve
):
    # given: a migrated database with a user and a token, made by the command line
    db = ["--database-url", serve_database_url]
    dealgraph("migrate", *db, env=cli_env, cwd=tmp_path)
    dealgraph("users", "create", "alice", "--role", "sales_rep", *db, env=cli_env, cwd=tmp_path)
    created = dealgraph("tokens", "create", "alice", *db, env=cli_env, cwd=tmp_path)
    token = created.stdout.strip()

    # when
    server = serve(*db)
    answer = ask_viewer(server, token)
    anonymous = ask_viewer(server, None)
    ready = httpx.get(f"{server.url}/readyz", timeout=10)

    # then
    assert created.stdout == f"{token}\n"  # only the token, on stdout
    assert TOKEN.fullmatch(token)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"data": {"viewer": {"username": "alice", "role": "SALES_REP"}}}
    assert answer.headers["x-request-id"]
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert ready.status_code == 200
    server.stop()
    assert server.process.returncode is not None


def test_users_create_refuses_an_unknown_role(serve_database_url, cli_env, tmp_path):
    # given
    db = ["--database-url", serve_database_url]
    dealgraph("migrate", *db, env=cli_env, cwd=tmp_path)

    # when
    refused = dealgraph(
        "users", "create", "bob", "--role", "emperor", *db, env=cli_env, cwd=tmp_path,
        check=False,
    )
    token = dealgraph("tokens", "create", "bob", *db, env=cli_env, cwd=tmp_path, check=False)

    # then: nothing was created
    assert refused.returncode != 0
    assert "ADMIN, MANAGER, SALES_REP" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert token.returncode != 0
    assert token.stdout == ""
    assert "bob" in token.stderr


def test_users_create_accepts_any_case_and_a_manager(serve_database_url, cli_env, tmp_path):
    # given
    db = ["--database-url", serve_database_url]
    dealgraph("migrate", *db, env=cli_env, cwd=tmp_path)

    # when
    boss = dealgraph("users", "create", "carol", "--role", "Manager", *db, env=cli_env,
                     cwd=tmp_path)
    rep = dealgraph("users", "create", "dave", "--role", "SALES_REP", "--manager", "carol",
                    *db, env=cli_env, cwd=tmp_path)
    orphan = dealgraph("users", "create", "erin", "--role", "sales_rep", "--manager", "nobody",
                       *db, env=cli_env, cwd=tmp_path, check=False)

    # then
    assert boss.returncode == rep.returncode == 0
    assert orphan.returncode != 0
    assert "nobody" in orphan.stderr


def test_serve_demo_fills_an_empty_database_and_prints_a_working_admin_token(
    serve_database_url, cli_env, tmp_path, serve
):
    # when
    server = serve("--demo", "--database-url", serve_database_url)
    match = re.search(r"Admin token:\s*(" + TOKEN.pattern + ")", server.output())

    # then
    assert match, server.output()
    token = match.group(1)
    assert token not in server.stdout_path.read_text()  # printed on stderr
    answer = ask_viewer(server, token)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["viewer"]["role"] == "ADMIN"
    deals = httpx.post(
        f"{server.url}/graphql", json={"query": "{ opportunities { totalCount } }"},
        headers={"Authorization": f"Bearer {token}"}, timeout=30,
    )
    assert deals.json()["data"]["opportunities"]["totalCount"] > 0
