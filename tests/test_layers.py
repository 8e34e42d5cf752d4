"""Layers import one way (server → planner → schema → resolvers → models, with demo/ between
server/ and resolvers/), the rule modules import one another without a circle, and the
GraphQL layer holds shape while the rules and their SQL live in resolvers/ (issue 14, item 7).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.conftest import root

pytestmark = pytest.mark.no_database

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
        if (sql := sql_in(path.read_text()))
    }
    assert found == {}


# --- the layers ----------------------------------------------------------------------------

# What each layer may import besides itself. demo/ (the demo data generator) sits between
# server/ (the CLI runs it) and resolvers/ (whose helpers it calls), beside planner/ and
# schema/: nothing below server/ imports it, and it imports neither the planner nor the schema.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "server": frozenset({"planner", "schema", "demo", "resolvers", "models"}),
    "planner": frozenset({"schema", "resolvers", "models"}),
    "schema": frozenset({"resolvers", "models"}),
    "demo": frozenset({"resolvers", "models"}),
    "resolvers": frozenset({"models"}),
    "models": frozenset(),
}
Imports = list[tuple[int, str]]  # (line, imported project module)
Graph = dict[str, Imports]  # module -> what it imports


def module_name(path: Path) -> str:
    parts = path.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, name: str, is_package: bool, known: Iterable[str]) -> Imports:
    """Every project module a module's source imports, anywhere in it (inside functions and
    `if TYPE_CHECKING:` too), with its line: `from a import b` names the module a.b when
    there is one, else a; relative imports are resolved against `name`."""
    known = set(known)
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a module a.b: a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append((node.lineno, target))
    return found


def import_graph(base: Path, layers: Iterable[str]) -> Graph:
    paths = {module_name(p.relative_to(base)): p for layer in layers
             for p in sorted((base / layer).rglob("*.py"))}
    return {
        name: imports_of(path.read_text(), name, path.name == "__init__.py", paths)
        for name, path in paths.items()
    }


def upward_imports(graph: Graph, may_import: dict[str, frozenset[str]]) -> list[str]:
    """Each import that goes against the layers, naming the module, the line and what it
    imports."""
    return [
        f"{name} line {line} imports {target}: {layer}/ may import only from "
        f"{', '.join(sorted(may_import[layer])) or 'nothing else'}"
        for name, found in graph.items()
        for line, target in found
        if (layer := name.split(".")[0]) != (other := target.split(".")[0])
        and other in may_import and other not in may_import[layer]
    ]


def cycles(graph: Graph, within: str) -> list[list[str]]:
    """One shortest import cycle through each circle (strongly connected set) of the
    modules of the package `within`, module by module, the first module repeated last."""
    edges = {
        name: sorted({t for _, t in found if t.split(".")[0] == within})
        for name, found in graph.items() if name.split(".")[0] == within
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, []):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            circle = set()
            while (w := stack.pop()) != v:
                circle.add(w)
            circle.add(v)
            if len(circle) > 1 or v in edges.get(v, []):
                circles.append(circle)

    for v in sorted(edges):
        if v not in index:
            connect(v)
    found = []
    for circle in circles:
        start = min(circle)
        paths = {start: [start]}
        queue = [start]
        while queue:  # breadth first: the shortest way back to the start
            v = queue.pop(0)
            nxt = [w for w in edges[v] if w in circle]
            if start in nxt:
                found.append([*paths[v], start])
                break
            for w in nxt:
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    queue.append(w)
    return sorted(found)


def fake_package(tmp_path: Path, modules: dict[str, str]) -> Path:
    for name, source in modules.items():
        path = tmp_path / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return tmp_path


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    # given a rule module that reaches up into the schema from inside a function, and a
    # schema module importing the rules (downward: allowed)
    base = fake_package(tmp_path, {
        "resolvers.__init__": "",
        "resolvers.rules": "def f():\n    from schema.types import T\n",
        "schema.__init__": "",
        "schema.types": "from resolvers import rules\nT = 1\n",
        "models.__init__": "",
    })
    # when the imports are checked
    found = upward_imports(import_graph(base, ["resolvers", "schema", "models"]), MAY_IMPORT)
    # then the upward one is named, with its line, and only it
    assert found == [
        "resolvers.rules line 2 imports schema.types: resolvers/ may import only from models"
    ]


def test_the_cycle_check_sees_a_circle(tmp_path: Path) -> None:
    # given a -> b -> c -> a (c's import inside a function, relative), d -> a outside the
    # circle, and e importing itself through its package
    base = fake_package(tmp_path, {
        "resolvers.__init__": "",
        "resolvers.a": "from resolvers import b\n",
        "resolvers.b": "import resolvers.c\n",
        "resolvers.c": "def f():\n    from . import a\n",
        "resolvers.d": "from resolvers.a import x\n",
        "resolvers.e": "from resolvers import e\n",
    })
    # when the rule modules are checked, then the circle is reported module by module
    assert cycles(import_graph(base, ["resolvers"]), "resolvers") == [
        ["resolvers.a", "resolvers.b", "resolvers.c", "resolvers.a"],
    ]
    # and without c's import there is none
    (base / "resolvers" / "c.py").write_text("")
    assert cycles(import_graph(base, ["resolvers"]), "resolvers") == []


def test_layers_import_one_way() -> None:
    graph = import_graph(root(), MAY_IMPORT)
    # the graph is the real one: the CLI reaches the demo data from inside a function
    assert "demo.data" in {t for _, t in graph["server.cli.serve"]}
    assert upward_imports(graph, MAY_IMPORT) == []


def test_no_import_cycle_among_the_rule_modules() -> None:
    graph = import_graph(root(), MAY_IMPORT)
    assert "resolvers.kinds" in {t for _, t in graph["resolvers.validation"]}
    assert cycles(graph, "resolvers") == []


def test_the_kinds_registry_imports_no_rule_module() -> None:
    # resolvers/kinds.py is the bottom of the rule layer: models and permission helpers only
    graph = import_graph(root(), MAY_IMPORT)
    assert {t for _, t in graph["resolvers.kinds"]} <= {"models", "resolvers.permissions"}
