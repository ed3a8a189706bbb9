"""Discover migration files in a directory or in the package, and validate the set as a whole.

Names follow golang-migrate: ``{version}_{description}.up.sql`` / ``.down.sql``. Every problem
(stray file, duplicate version, down without up, mismatched names) is collected and reported at
once. File contents are not read here: they are read when a step is prepared.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

from ..errors import SourceError
from .model import Migration, MigrationFile

__all__ = ["Source", "load_source", "FILE_NAME_PATTERN"]

FILE_NAME_PATTERN = re.compile(r"^(?P<version>[0-9]+)_(?P<name>.+)\.(?P<direction>up|down)\.sql$")
MAX_VERSION = 2**63 - 1  # schema_migrations.version is a bigint


@dataclass(frozen=True)
class Source:
    """A validated migration set, ordered by version."""

    origin: str  #: where it came from, for messages
    migrations: tuple[Migration, ...]

    @classmethod
    def from_directory(cls, path: Path) -> Source:
        if not path.is_dir():
            what = "is not a directory" if path.exists() else "does not exist"
            raise SourceError(
                [f"the migrations directory {path} {what}"],
                origin=str(path),
                hint="Pass --migrations-dir (or THV_REGISTRY_MIGRATIONS_DIR) with the directory "
                "that holds the NNNNNN_description.up.sql / .down.sql files.",
            )
        return cls._scan(path, str(path))

    @classmethod
    def embedded(cls) -> Source:
        from ..database import embedded_migrations

        root = embedded_migrations()
        return cls._scan(root, f"the embedded migrations ({root})")

    @classmethod
    def _scan(cls, root: Traversable, origin: str) -> Source:
        return cls(origin, _validate(root, origin))

    def get(self, version: int) -> Migration | None:
        for migration in self.migrations:
            if migration.version == version:
                return migration
        return None


def load_source(directory: Path | None) -> Source:
    """The set in ``directory``, or the embedded one when it is None."""
    return Source.embedded() if directory is None else Source.from_directory(directory)


def _validate(root: Traversable, origin: str) -> tuple[Migration, ...]:
    problems: list[str] = []
    ups: dict[int, list[tuple[str, MigrationFile]]] = defaultdict(list)
    downs: dict[int, list[tuple[str, MigrationFile]]] = defaultdict(list)
    sep = "/" if not origin.endswith("/") else ""
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue  # .gitkeep, editor files
        match = FILE_NAME_PATTERN.match(entry.name)
        if entry.is_dir():
            problems.append(f"'{entry.name}' is a directory; subdirectories are not read")
            continue
        if match is None:
            problems.append(_stray_message(entry.name))
            continue
        version = int(match["version"])
        if not 1 <= version <= MAX_VERSION:
            problems.append(f"'{entry.name}' has version {version}; versions run from 1 to 2^63-1")
            continue
        location = f"{root}{sep}{entry.name}" if isinstance(root, Path) else entry.name
        file = MigrationFile(str(location), entry)
        (ups if match["direction"] == "up" else downs)[version].append((match["name"], file))

    migrations: list[Migration] = []
    for version in sorted(ups.keys() | downs.keys()):
        up_files, down_files = ups.get(version, []), downs.get(version, [])
        if len(up_files) > 1 or len(down_files) > 1:
            names = ", ".join(_base(f) for _, f in up_files + down_files)
            problems.append(
                f"version {version} is used more than once ({names}); versions must be unique"
            )
            continue
        if not up_files:
            problems.append(
                f"'{_base(down_files[0][1])}' has no matching up file "
                f"(expected {_base(down_files[0][1]).replace('.down.sql', '.up.sql')})"
            )
            continue
        name, up = up_files[0]
        down = None
        if down_files:
            down_name, down = down_files[0]
            if down_name != name:
                problems.append(
                    f"'{_base(up)}' and '{_base(down)}' share version {version} but not the "
                    "description; rename one so the pair matches"
                )
                continue
        migrations.append(Migration(version, name, up, down))
    if problems:
        raise SourceError(problems, origin=origin)
    return tuple(migrations)


def _stray_message(name: str) -> str:
    hint = ""
    if name.endswith(".sql"):
        hint = " (did you mean NNNNNN_description.up.sql / .down.sql?)"
    return f"'{name}' is not a migration file name{hint}; move it out of the directory or rename it"


def _base(file: MigrationFile) -> str:
    return file.origin.rsplit("/", 1)[-1]
