"""Layers import one way (server → schema → resolvers → models): the GraphQL layer holds
shape, the rules and their SQL live in resolvers/ (issue 14, item 7)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import root

pytestmark = pytest.mark.no_database

# The read executor compiles the declared reads into statements: its SQL is its job.
EXECUTOR = Path("planner/core.py")
# Session calls that send SQL.
SQL_CALLS = {"execute", "scalar", "scalars", "stream", "stream_scalars"}


def sql_in(source: str) -> list[str]:
    """What in a module's source builds or sends SQL: sqlalchemy imports other than the
    session types, and session calls that run a statement."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            modules = []
        found += [
            f"line {node.lineno}: import {m}" for m in modules
            if m.split(".")[0] == "sqlalchemy" and m != "sqlalchemy.ext.asyncio"
        ]
        if (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CALLS
        ):
            found.append(f"line {node.lineno}: .{node.func.attr}()")
    return found


def test_the_check_sees_sql() -> None:
    # given a module shaped like render() before the move
    source = (
        "from sqlalchemy import select\n"
        "async def render(session):\n"
        "    return await session.execute(select(1))\n"
    )
    # then both the statement and its execution are found
    assert sql_in(source) == ["line 1: import sqlalchemy", "line 3: .execute()"]
    assert sql_in("from sqlalchemy.ext.asyncio import AsyncSession\n") == []


def test_schema_modules_hold_no_sql() -> None:
    modules = sorted((root() / "schema").rglob("*.py"))
    assert Path("schema/customization.py") in [m.relative_to(root()) for m in modules]
    found = {
        str(path.relative_to(root())): sql
        for path in modules
        if path.relative_to(root()) != EXECUTOR and (sql := sql_in(path.read_text()))
    }
    assert found == {}
