"""Create the next migration pair: ``NNNNNN_name.up.sql`` and ``.down.sql``.

Two numbering formats, as golang-migrate's ``create -seq`` / ``-format``: ``sequential`` (max + 1,
six digits at least) and ``timestamp`` (the UTC time as ``YYYYMMDDHHMMSS``, golang-migrate's
``20060102150405`` layout; max + 1 when that time is not above the highest version).

Both files are created with ``O_EXCL`` (an existing file is never overwritten); when the second
cannot be created the first is removed again, so a failure leaves the directory as it was.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from thv_registry.errors import NoMigrationsDirectory, SourceError, UsageError
from thv_registry.migrations.engine.source import FILE_NAME_PATTERN, MAX_VERSION

__all__ = [
    "CreatedMigration", "create_migration", "next_version", "validate_name", "NAME_RULE",
    "FORMATS", "Format",
]  # fmt: skip

Format = Literal["sequential", "timestamp"]
FORMATS: tuple[Format, ...] = ("sequential", "timestamp")
TIMESTAMP_LAYOUT = "%Y%m%d%H%M%S"  #: golang-migrate's 20060102150405

NAME_MAX = 60
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
NAME_RULE = (
    f"a name is lowercase letters, digits and underscores, starts with a letter and has at most "
    f"{NAME_MAX} characters"
)

UP_HEADER = """\
-- {label} (up): TODO: say what this migration changes and why.
--
-- Applied by `migrate up` (this tool's or golang-migrate's: they share the
-- schema_migrations table). The whole file runs in one transaction together with the version
-- update, unless it contains a statement that cannot run in a transaction block (CREATE/DROP
-- INDEX CONCURRENTLY, VACUUM, ...): give such a statement a migration file of its own.
-- {label}.down.sql must undo exactly what this file does.

"""
DOWN_HEADER = """\
-- {label} (down): undo exactly what {label}.up.sql does, in reverse order.
--
-- Run by `migrate down`, in one transaction unless it contains a statement that cannot run
-- in a transaction block. After up, down and up again the schema must be the same
-- (`migrate verify` checks it).

"""


@dataclass(frozen=True)
class CreatedMigration:
    version: int
    name: str
    up: Path
    down: Path


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid migration name; raise UsageError with a suggestion."""
    if NAME_PATTERN.match(name) and len(name) <= NAME_MAX:
        return name
    suggestion = _suggest(name)
    bad = [c for c in name if not (c.isascii() and (c.islower() or c.isdigit() or c == "_"))]
    if not name:
        why = "it is empty"
    elif bad:
        why = f"it contains {bad[0]!r}"
    elif not name[0].isalpha():
        why = f"it starts with {name[0]!r}"
    else:
        why = f"it has {len(name)} characters"
    hint = f"Try '{suggestion}'." if suggestion else "Try a short description such as 'add_users'."
    raise UsageError(f"Invalid migration name {name!r}: {NAME_RULE}; {why}.", hint=hint)


def next_version(
    directory: Path, format: Format = "sequential", *, now: datetime | None = None
) -> int:
    """The version of the next migration in ``directory``.

    ``sequential``: max existing version + 1 (1 for an empty directory; timestamps just
    continue). ``timestamp``: ``now`` (UTC) as ``YYYYMMDDHHMMSS``, or max + 1 when that is not
    above the highest version (two created in one second, a clock behind the files).
    """
    versions = [
        int(match["version"])
        for entry in directory.iterdir()
        if (match := FILE_NAME_PATTERN.match(entry.name))
    ]
    version = max(versions, default=0) + 1
    if format == "timestamp":
        stamp = int((now or datetime.now(UTC)).astimezone(UTC).strftime(TIMESTAMP_LAYOUT))
        version = max(version, stamp)
    if version > MAX_VERSION:
        raise SourceError(
            [f"the highest version in {directory} is {version - 1}; no version can follow it"],
            origin=str(directory),
            hint="Renumbering applied migrations breaks databases; ask before doing it.",
        )
    return version


def create_migration(
    directory: Path,
    name: str,
    *,
    format: Format = "sequential",
    create_directory: bool = False,
    now: datetime | None = None,
) -> CreatedMigration:
    """Write the next ``NNNNNN_name.up.sql`` / ``.down.sql`` pair in ``directory``.

    :param format: ``sequential`` (max + 1) or ``timestamp`` (``YYYYMMDDHHMMSS`` in UTC).
    :param create_directory: create ``directory`` (and its parents) when it does not exist;
        otherwise a missing directory is refused (``NoMigrationsDirectory``).
    """
    validate_name(name)
    if format not in FORMATS:
        raise UsageError(f"Unknown version format {format!r}: one of {', '.join(FORMATS)}.")
    if create_directory and not directory.exists():
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SourceError(
                [f"cannot create the migrations directory {directory}: {exc.strerror}"],
                origin=str(directory),
                hint="Check the parent directory's permissions.",
            ) from exc
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise NoMigrationsDirectory(
            [f"the migrations directory {directory} {what} (looked in {directory.absolute()})"],
            origin=str(directory),
            hint="Run from the repository root (where database/migrations is), or name the "
            "directory to create the files in.",
        )
    version = next_version(directory, format, now=now)
    label = f"{version:06d}_{name}"
    up, down = directory / f"{label}.up.sql", directory / f"{label}.down.sql"
    _write_new(up, UP_HEADER.format(label=label))
    try:
        _write_new(down, DOWN_HEADER.format(label=label))
    except BaseException:
        up.unlink(missing_ok=True)
        raise
    return CreatedMigration(version, name, up, down)


def _write_new(path: Path, text: str) -> None:
    """Create ``path`` with ``text``; never overwrite (O_EXCL)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError as exc:
        raise SourceError(
            [f"{path} already exists"],
            origin=str(path.parent),
            hint="Another migration was created at the same moment; run the command again.",
        ) from exc
    except OSError as exc:
        raise SourceError(
            [f"cannot create {path}: {exc.strerror}"],
            origin=str(path.parent),
            hint="Check the directory's permissions and free space.",
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _suggest(name: str) -> str:
    """A valid name close to ``name``: lowercased, other characters turned into underscores."""
    text = re.sub(r"\.(up|down)\.sql$|\.sql$", "", name.strip())
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()  # camelCase -> camel_case
    text = re.sub(r"[^a-z0-9]+", "_", text)
    text = re.sub(r"^[^a-z]+", "", text)  # leading digits (a version?) and underscores
    return text[:NAME_MAX].strip("_")
