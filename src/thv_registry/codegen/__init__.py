"""Python code generation from sqlc: typed query functions over psycopg.

``task gen`` runs ``sqlc generate``, which checks every query in ``database/queries`` against the
schema that the migrations build and writes its analysis as JSON (sqlc.yaml's ``gen.json``
output); then ``python -m thv_registry.codegen`` turns that JSON into the package
``thv_registry.queries``: one module per query file, a frozen dataclass per result row and a
function per query. sqlc does the SQL checking (a query naming a dropped column fails there,
with sqlc's message); this package only writes Python.
"""

from __future__ import annotations

import json
from pathlib import Path

from .render import GENERATED_MARK, render_modules
from .request import CodegenError, Request, parse_request

__all__ = ["CodegenError", "GENERATED_MARK", "generate", "load_request", "write_package"]


def load_request(path: Path) -> Request:
    """Read and parse sqlc's ``codegen_request.json``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CodegenError(
            f"cannot read the codegen request {path}: {exc.strerror}",
            hint="Run `sqlc generate` first (`task gen` does both steps).",
        ) from exc
    except json.JSONDecodeError as exc:
        raise CodegenError(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from exc
    return parse_request(data)


def query_file_headers(request: Request, root: Path) -> dict[str, list[str]]:
    """Leading comment lines of each query file, in sqlc's form (the text after ``--``)."""
    headers: dict[str, list[str]] = {}
    for filename in {q.filename for q in request.queries}:
        for base in request.query_paths:
            path = root / base
            candidate = path / filename if path.is_dir() else path
            if candidate.name == filename and candidate.is_file():
                headers[filename] = _leading_comments(candidate.read_text(encoding="utf-8"))
                break
    return headers


def _leading_comments(text: str) -> list[str]:
    lines: list[str] = []
    for line in text.splitlines():
        if not line.startswith("--") or line.startswith("-- name:"):
            break
        lines.append(line[2:])
    return lines


def generate(request: Request, root: Path) -> dict[str, str]:
    """File name (``servers.py``, ``aio/servers.py``) -> source of the generated package (not
    yet formatted by ruff)."""
    return render_modules(request, query_file_headers(request, root))


def write_package(files: dict[str, str], out: Path) -> list[Path]:
    """Write the files into ``out``; remove generated modules that are no longer produced."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in sorted(files.items()):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for stale in sorted(out.rglob("*.py")):
        name = stale.relative_to(out).as_posix()
        if name not in files and stale.read_text(encoding="utf-8").startswith(GENERATED_MARK):
            stale.unlink()
    return written
