"""The package's arrows point one way: each layer imports only the layers below it, and no
module imports itself back through others (no import cycle, lazy imports included).

Reads the source (ast), imports nothing: a new module that imports upwards fails here with the
offending line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import streamagent

ROOT = Path(streamagent.__file__).parent

#: lowest first; a module may import its own layer and every layer listed before it
LAYERS: list[set[str]] = [
    {"errors"},
    {"config", "state", "_upstream", "testing"},
    {"accounting"},
    {"llm"},
    {"observability"},
    {"memory"},
    {"streaming"},
    {"tools"},
    {"nodes"},
    {"middleware"},
    {"graphs"},
    {"compat", "cli"},
    {"<top>"},  # streamagent/__init__.py: the curated API
]
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit(module: str) -> str:
    """The layer unit of a module: its first component under ``streamagent``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<top>"


def _imports(path: Path) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "streamagent":
                out.extend((node.lineno, f"streamagent.{a.name}") for a in node.names)
            elif node.module.startswith("streamagent."):
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out.extend(
                (node.lineno, a.name) for a in node.names if a.name.startswith("streamagent.")
            )
    return out


SOURCES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def test_every_package_has_a_layer() -> None:
    units = {_unit(name) for name in SOURCES}
    assert units <= set(RANK), f"give these a layer in LAYERS: {sorted(units - set(RANK))}"


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_imports_point_down(module: str) -> None:
    here = RANK[_unit(module)]
    upward = [
        f"{SOURCES[module].name}:{line} imports {target}"
        for line, target in _imports(SOURCES[module])
        if RANK.get(_unit(target), -1) > here
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {name: set() for name in SOURCES}
    for name, path in SOURCES.items():
        for _line, target in _imports(path):
            # ``from streamagent.x import y`` may name a submodule y or a name in x
            for candidate in (target, target.rsplit(".", 1)[0]):
                if candidate in graph and candidate != name:
                    graph[name].add(candidate)
                    break

    # a package's __init__ re-exporting its own modules is not a cycle worth reporting
    def edges(name: str) -> set[str]:
        return {
            t
            for t in graph[name]
            if not (name.startswith(t + ".") and SOURCES[t].name == "__init__.py")
        }

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges(node)):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            pytest.fail("import cycle: " + " -> ".join(cycle))
