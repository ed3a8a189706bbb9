"""Check a migration set without a database: names, pairs, SQL syntax, and squawk's rules.

Every file (up and down) is read through the :class:`~.source.Source`, decoded and split with
the PostgreSQL parser; problems of the set as a whole (duplicate versions, stray files, a
missing down file, gaps) are reported beside them. The up files are then given to squawk
(the ``squawk`` binary of the ``squawk-cli`` package) for its migration-safety rules. The
result is a :class:`LintReport`; nothing is printed and nothing raises for a finding.

Levels: ``error`` (the set cannot be trusted: syntax errors, source problems, a missing down
file, which this project's convention forbids, a file without statements), ``warning``
(squawk's rules, files that will not behave the same under golang-migrate), ``info`` (gaps in
the numbering).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from thv_registry.errors import SourceError
from thv_registry.migrations.engine import sqlfile
from thv_registry.migrations.engine.model import MigrationFile
from thv_registry.migrations.engine.source import FILE_NAME_PATTERN, Source
from thv_registry.migrations.engine.steps import is_unwritten_template

__all__ = ["Finding", "LintReport", "lint", "find_squawk", "SQUAWK_DOCS", "OFF_BY_DEFAULT"]

Level = Literal["error", "warning", "info"]
SQUAWK_DOCS = "https://squawkhq.com/docs/"
SQUAWK_TIMEOUT_S = 60
_SEQUENTIAL_MAX = 10**6  # versions below this are a sequential set, where gaps are worth a note
#: squawk rules not applied unless included: the runner bounds every step itself (lock_timeout
#: on each transactional step, statement_timeout when one is configured), so a SET in every
#: file would be noise, and would bound only that file's step
OFF_BY_DEFAULT = frozenset({"require-lock-timeout", "require-statement-timeout"})
SQUAWK_CONFIG = ".squawk.toml"


@dataclass(frozen=True)
class Finding:
    """One problem: where (file, 1-based line and column, when known), what, and how to fix it."""

    level: Level
    rule: str  #: ``syntax``, ``source``, ``missing-down``, ``numbering-gap``, or a squawk rule
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    help: str | None = None
    url: str | None = None

    @property
    def location(self) -> str:
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)


@dataclass(frozen=True)
class LintReport:
    origin: str  #: the migration set checked
    findings: tuple[Finding, ...]
    files: int  #: number of files read
    squawk: str | None  #: the squawk binary used, or None when it was not found
    #: the squawk configuration whose ``excluded_paths`` applied (squawk reads it for its
    #: other settings itself), and the up files it excluded from squawk's rules
    squawk_config: str | None = None
    excluded: tuple[str, ...] = ()
    off_rules: tuple[str, ...] = ()  #: squawk rules off (``OFF_BY_DEFAULT`` not included)

    def count(self, level: Level) -> int:
        return sum(1 for f in self.findings if f.level == level)

    @property
    def ok(self) -> bool:
        """No errors (warnings and notes allowed)."""
        return self.count("error") == 0


def lint(
    source_or_dir: Source | Path | None,
    *,
    pg_version: str | None = None,
    squawk: bool = True,
    include: Collection[str] = (),
) -> LintReport:
    """Check the set in ``source_or_dir`` (a directory, a loaded Source, or None: embedded).

    :param pg_version: passed to squawk's ``--pg-version`` (e.g. ``16``): rules that depend on
        the server version then judge for it.
    :param squawk: run squawk's rules (when the binary is there).
    :param include: squawk rules to apply although they are off: one of ``OFF_BY_DEFAULT``, or
        one of squawk's opt-in rules (passed as ``--include``).
    A directory that does not exist raises ``SourceError``; everything else is a finding.
    The ``.squawk.toml`` that squawk finds from the migrations directory (in it or above it)
    configures its rules; its ``excluded_paths`` (globs matched against the file names in the
    migrations directory) are applied here, since squawk ignores them for text on stdin.
    """
    findings: list[Finding] = []
    origin, files = _files(source_or_dir, findings)
    parsed: list[tuple[MigrationFile, sqlfile.SqlFile]] = []
    for file, is_up in files:
        result = _parse(file, findings)
        if result is not None and is_up:
            parsed.append((file, result))
    binary = find_squawk() if squawk else None
    if squawk and binary is None:
        findings.append(
            Finding(
                "warning",
                "squawk-missing",
                "squawk was not found (next to the Python interpreter or on PATH), so its "
                "migration-safety rules were not checked",
                help="Install it with 'pip install squawk-cli' in this environment.",
            )
        )
    off = OFF_BY_DEFAULT - set(include)
    config, excluded = None, []
    if binary is not None:
        cwd = _root(source_or_dir)
        config, patterns = _squawk_config(cwd)
        extra = sorted(set(include) - OFF_BY_DEFAULT)
        for file, result in parsed:
            name = _base_name(file.origin)
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
                excluded.append(file.origin)
                continue
            found = _squawk(binary, file.origin, result, pg_version, cwd, extra)
            findings.extend(f for f in found if f.rule not in off)
    findings.sort(key=lambda f: (f.file or "", f.line or 0, f.column or 0))  # stable
    return LintReport(
        origin, tuple(findings), len(files), binary, config, tuple(excluded), tuple(sorted(off))
    )


def _root(source_or_dir: Source | Path | None) -> Path | None:
    """The migrations directory on disk (squawk's working directory), when there is one."""
    if isinstance(source_or_dir, Path):
        return source_or_dir
    if source_or_dir is None:
        from thv_registry.database import embedded_migrations

        root = embedded_migrations()
        return root if isinstance(root, Path) else None
    return None


def _squawk_config(root: Path | None) -> tuple[str | None, list[str]]:
    """The ``.squawk.toml`` squawk would read from ``root`` (or above), and its excluded paths."""
    import tomllib

    if root is None:
        return None, []
    for directory in (root.absolute(), *root.absolute().parents):
        path = directory / SQUAWK_CONFIG
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                return str(path), []  # squawk itself reports a broken file
            patterns = data.get("excluded_paths", [])
            return str(path), [str(p) for p in patterns] if isinstance(patterns, list) else []
    return None, []


def _base_name(origin: str) -> str:
    return origin.replace("\\", "/").rsplit("/", 1)[-1]


def find_squawk() -> str | None:
    """The squawk binary installed with this Python (squawk-cli wheel), else the one on PATH."""
    name = "squawk.exe" if os.name == "nt" else "squawk"
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("squawk")


# ---- the set --------------------------------------------------------------------------------


def _files(
    source_or_dir: Source | Path | None, findings: list[Finding]
) -> tuple[str, list[tuple[MigrationFile, bool]]]:
    """The files to read, as (file, is_up); set-level problems are added to ``findings``."""
    if isinstance(source_or_dir, Source):
        source = source_or_dir
    elif source_or_dir is None:
        source = Source.embedded()
    else:
        try:
            source = Source.from_directory(source_or_dir)
        except SourceError as exc:
            if not source_or_dir.is_dir():
                raise
            findings.extend(Finding("error", "source", p, file=exc.origin) for p in exc.problems)
            return str(source_or_dir), _named_files(source_or_dir)
    files: list[tuple[MigrationFile, bool]] = []
    for m in source.migrations:
        files.append((m.up, True))
        if m.down is not None:
            files.append((m.down, False))
        else:
            expected = f"{m.up.origin.rsplit('/', 1)[-1].removesuffix('.up.sql')}.down.sql"
            findings.append(
                Finding(
                    "error",
                    "missing-down",
                    f"version {m.version} ({m.name}) has no down file; this project's "
                    "convention is a down file for every up file",
                    file=m.up.origin,
                    help=f"Add {expected} that undoes exactly what the up file does.",
                )
            )
    findings.extend(_gaps(source))
    return source.origin, files


def _named_files(directory: Path) -> list[tuple[MigrationFile, bool]]:
    """Files whose names look like migrations, to check their SQL even when the set is invalid."""
    files = []
    for path in sorted(directory.iterdir()):
        match = FILE_NAME_PATTERN.match(path.name)
        if match and path.is_file():
            files.append((MigrationFile(str(path), path), match["direction"] == "up"))
    return files


def _gaps(source: Source) -> list[Finding]:
    versions = [m.version for m in source.migrations]
    if not versions or versions[-1] >= _SEQUENTIAL_MAX:
        return []  # timestamp versions: gaps are the norm
    notes = []
    for before, after in zip(versions, versions[1:], strict=False):
        if after > before + 1:
            missing = f"{before + 1}" if after == before + 2 else f"{before + 1}-{after - 1}"
            notes.append(
                Finding(
                    "info",
                    "numbering-gap",
                    f"versions jump from {before} to {after} ({missing} unused); gaps are "
                    "legal, but in a sequential set they often mean a file was lost or renamed",
                    file=source.get(after).up.origin,  # type: ignore[union-attr]
                )
            )
    return notes


# ---- one file -------------------------------------------------------------------------------


def _parse(file: MigrationFile, findings: list[Finding]) -> sqlfile.SqlFile | None:
    try:
        data = file.read_bytes()
    except OSError as exc:
        findings.append(
            Finding("error", "source", f"cannot read the file: {exc.strerror}", file=file.origin)
        )
        return None
    try:
        text = sqlfile.decode(data, file.origin)
        parsed = sqlfile.parse(text, file.origin)
    except SourceError as exc:
        findings.extend(_located(p, file.origin, exc.hint) for p in exc.problems)
        return None
    if is_unwritten_template(parsed, text):
        findings.append(
            Finding(
                "error",
                "empty-file",
                "the file still holds only the template create wrote (no SQL statement); up and "
                "down refuse to run it, since it would move the version without changing anything",
                file.origin,
                help="Write the migration's SQL in it.",
            )
        )
    elif not parsed.statements and file.origin.endswith(".up.sql"):
        findings.append(
            Finding(
                "warning",
                "empty-file",
                "the up file has no SQL statement: it moves the version without changing anything",
                file.origin,
                help="Write the migration's SQL, or say in a comment why this version is empty.",
            )
        )
    elif len(parsed.statements) > 1:
        for statement in parsed.statements:
            if statement.non_transactional:
                findings.append(_own_file(file.origin, statement))
    return parsed


def _own_file(origin: str, statement: sqlfile.Statement) -> Finding:
    head = " ".join(statement.text.split()[:4])
    return Finding(
        "warning",
        "own-file",
        f"'{head} ...' cannot run inside a transaction block, and golang-migrate sends a whole "
        "file as one query, which PostgreSQL runs as one transaction: this file fails there",
        file=origin,
        line=statement.line,
        column=statement.column,
        help="Give the statement a migration file of its own; this tool runs either form, "
        "golang-migrate only that one (unless its x-multi-statement option is set).",
    )


def _located(problem: str, origin: str, hint: str | None) -> Finding:
    """A sqlfile problem ``origin:line:col: message`` (or a plain one) as a finding."""
    rest = problem.removeprefix(f"{origin}:")
    line, _, rest2 = rest.partition(":")
    column, _, message = rest2.partition(": ")
    if rest != problem and line.isdigit() and column.isdigit():
        return Finding("error", "syntax", message, origin, int(line), int(column), help=hint)
    return Finding("error", "source", problem, file=origin, help=hint)


def _squawk(
    binary: str,
    origin: str,
    parsed: sqlfile.SqlFile,
    pg_version: str | None,
    cwd: Path | None,
    include: Collection[str] = (),
) -> list[Finding]:
    """Run squawk on one file's text; its lines and byte columns are 0-based."""
    command = [binary, "--reporter", "json", "--stdin-filepath", origin]
    for rule in include:
        command += ["--include", rule]
    if pg_version:
        command += ["--pg-version", pg_version]
    if parsed.runs_in_transaction:
        command.append("--assume-in-transaction")  # as both runners execute such a file
    try:
        done = subprocess.run(
            command,
            input=parsed.text.encode(),
            capture_output=True,
            cwd=cwd,  # squawk finds a .squawk.toml in this directory or above it
            timeout=SQUAWK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [_squawk_failed(origin, str(exc))]
    try:
        reported = json.loads(done.stdout or b"[]") if done.returncode in (0, 1) else None
    except ValueError:
        reported = None
    if not isinstance(reported, list):
        error = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        return [_squawk_failed(origin, error)]
    lines = parsed.text.splitlines()
    return [_squawk_finding(item, origin, lines) for item in reported if isinstance(item, dict)]


def _squawk_finding(item: dict[str, object], origin: str, lines: list[str]) -> Finding:
    rule = str(item.get("rule_name") or "squawk")
    line = int(str(item.get("line", 0))) + 1
    byte_column = int(str(item.get("column", 0)))
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    column = len(text.encode()[:byte_column].decode(errors="ignore")) + 1
    help_text = item.get("help")
    return Finding(
        "warning",
        rule,
        str(item.get("message", "")),
        origin,
        line,
        column,
        help=str(help_text) if help_text else None,
        url=SQUAWK_DOCS + rule if rule != "syntax-error" else None,
    )


def _squawk_failed(origin: str, error: str) -> Finding:
    message = f"squawk failed, so its rules were not checked: {' '.join(error.split())}"
    return Finding("warning", "squawk-failed", message, file=origin)
