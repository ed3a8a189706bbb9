"""Create the next migration pair: ``NNNNNN_name.up.sql`` and ``.down.sql``, numbered max + 1.

Both files are created with ``O_EXCL`` (an existing file is never overwritten); when the second
cannot be created the first is removed again, so a failure leaves the directory as it was.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from thv_registry.errors import NoMigrationsDirectory, SourceError, UsageError
from thv_registry.migrations.engine.source import FILE_NAME_PATTERN, MAX_VERSION

__all__ = ["CreatedMigration", "create_migration", "next_version", "validate_name", "NAME_RULE"]

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


def next_version(directory: Path) -> int:
    """Max existing version + 1 (1 for an empty directory); timestamps just continue."""
    versions = [
        int(match["version"])
        for entry in directory.iterdir()
        if (match := FILE_NAME_PATTERN.match(entry.name))
    ]
    version = max(versions, default=0) + 1
    if version > MAX_VERSION:
        raise SourceError(
            [f"the highest version in {directory} is {version - 1}; no version can follow it"],
            origin=str(directory),
            hint="Renumbering applied migrations breaks databases; ask before doing it.",
        )
    return version


def create_migration(directory: Path, name: str) -> CreatedMigration:
    """Write the next ``NNNNNN_name.up.sql`` / ``.down.sql`` pair in ``directory``."""
    validate_name(name)
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise NoMigrationsDirectory(
            [f"the migrations directory {directory} {what} (looked in {directory.absolute()})"],
            origin=str(directory),
            hint="Run from the repository root (where database/migrations is), or name the "
            "directory to create the files in.",
        )
    version = next_version(directory)
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
