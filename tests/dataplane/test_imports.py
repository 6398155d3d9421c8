"""The data plane's modules import each other in one direction only.

Every import in every module of ``portway.dataplane`` counts, wherever it is written:
at the top, under ``if TYPE_CHECKING:`` or inside a function. A cycle through type-only
imports is still a cycle in the design (two modules that each need the other), which is
what the plug-point Protocols (``shared.Shared``, ``upstream.ResponseSink``) avoid.
"""

from __future__ import annotations

import ast
from pathlib import Path

import portway.dataplane

PACKAGE = "portway.dataplane"
ROOT = Path(portway.dataplane.__file__).parent


def module_name(path: Path) -> str:
    return PACKAGE if path.name == "__init__.py" else f"{PACKAGE}.{path.stem}"


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in the file."""
    found: set[str] = set()
    this = module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from .x import y
                parent = this if path.name == "__init__.py" else this.rsplit(".", 1)[0]
                for _ in range(node.level - 1):
                    parent = parent.rsplit(".", 1)[0]
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:  # from portway.dataplane import client
                    found.add(sub)
                elif base in modules:  # from portway.dataplane.client import X
                    found.add(base)
    found.discard(this)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.glob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done:
                cycle = visit(nxt)
                if cycle is not None:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle is not None:
                return cycle
    return None


def test_find_cycle_reports_a_cycle_and_accepts_a_dag() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_type_checking_and_function_level_imports_are_counted(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from portway.dataplane.client import ClientConnection\n"
        "def f():\n"
        "    from portway.dataplane import pool\n"
    )
    modules = {f"{PACKAGE}.client", f"{PACKAGE}.pool", f"{PACKAGE}.mod"}
    assert imports_of(source, modules) == {f"{PACKAGE}.client", f"{PACKAGE}.pool"}


def test_graph_sees_the_real_imports() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.client" in graph[f"{PACKAGE}.server"]
    assert f"{PACKAGE}.conn_state" in graph[f"{PACKAGE}.client"]
    assert len(graph) >= 15


def test_dataplane_modules_import_each_other_without_a_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_conn_state_is_sans_io() -> None:
    # The state machine is tested with values alone: no asyncio, sockets or parser.
    tree = ast.parse((ROOT / "conn_state.py").read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not names & {"asyncio", "socket", "httptools", "uvloop", "ssl", "selectors"}
