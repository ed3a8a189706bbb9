"""The import graph shows DESIGN.md's layers: no circle between modules, the library below
``cli/`` and ``api/`` imports neither, the migration engine imports none of the authoring tools,
and only ``cli/`` and ``api/`` know the command line or HTTP."""

from __future__ import annotations

import ast
from pathlib import Path

import thv_registry

PKG = Path(thv_registry.__file__).parent
SRC = PKG.parent


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in PKG.rglob("*.py")}


def _imports(module: str, path: Path) -> set[str]:
    """Modules of the package that ``module`` imports, lazily or not (TYPE_CHECKING aside)."""
    tree = ast.parse(path.read_text(), str(path))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            submodules = {f"{origin}.{a.name}" for a in node.names} & MODULES.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(origin)
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[1:3]) if parts[1:2] == ["migrations"] else ".".join(parts[1:2])


def test_no_circle_between_modules() -> None:
    assert _cycles() == []


def test_the_library_imports_neither_the_cli_nor_the_api() -> None:
    front = {"cli", "api", "__main__"}
    wrong = [
        f"{m} -> {d}"
        for m, deps in GRAPH.items()
        if _layer(m) not in front
        for d in deps
        if _layer(d) in {"cli", "api"}
    ]
    assert wrong == []


def test_the_api_does_not_import_the_cli() -> None:
    wrong = [
        f"{m} -> {d}"
        for m, deps in GRAPH.items()
        if _layer(m) == "api"
        for d in deps
        if _layer(d) == "cli"
    ]
    assert wrong == []


def test_the_engine_imports_no_tool() -> None:
    wrong = [
        f"{m} -> {d}"
        for m, deps in GRAPH.items()
        if _layer(m) == "migrations.engine"
        for d in deps
        if _layer(d) == "migrations.tools"
    ]
    assert wrong == []


def test_only_the_front_ends_import_click_or_starlette() -> None:
    wrong = []
    for module, path in MODULES.items():
        layer = _layer(module)
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top == "click" and layer != "cli":
                    wrong.append(f"{module} imports click")
                if top in {"starlette", "uvicorn"} and layer not in {"api", "cli"}:
                    wrong.append(f"{module} imports {top}")
    assert wrong == []
