"""The engine is a library: it imports nothing from the CLI or the authoring tools, and no text
it produces names a command or a flag of the CLI (``cli/hints.py`` words that advice)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import thv_registry.migrations.engine as engine

ENGINE = Path(engine.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def _modules() -> list[Path]:
    modules = sorted(ENGINE.glob("*.py"))
    assert len(modules) > 5
    return modules


def test_the_engine_imports_neither_the_cli_nor_the_tools() -> None:
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("thv_registry.cli", "thv_registry.migrations.tools")), (
                    f"{path.name} imports {name}"
                )


def test_no_engine_string_names_a_cli_command_or_flag() -> None:
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            if id(node) in docstrings:
                continue
            text = node.value
            assert "thv-registry-api " not in text and not FLAG.search(text), (
                f"{path.name}:{node.lineno}: {text!r}"
            )
