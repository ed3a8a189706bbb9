"""Discover migration files in a directory or in the package, and validate the set as a whole.

Names follow golang-migrate: ``{version}_{description}.up.sql`` / ``.down.sql``. Every problem
(a misnamed migration, duplicate version, down without up, mismatched names) is collected and
reported at once. What is clearly not a migration (``README.md``, dotfiles such as ``.gitkeep``,
sub-directories) is skipped, as golang-migrate skips it, and listed in ``Source.ignored``. File
contents are not read here: they are read when a step is prepared.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from thv_registry.errors import SourceError
from thv_registry.migrations.engine.model import Migration, MigrationFile, Readable

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable  # importing it costs ~4 ms at start-up

__all__ = ["Source", "load_source", "FILE_NAME_PATTERN", "looks_like_migration"]

FILE_NAME_PATTERN = re.compile(r"^(?P<version>[0-9]+)_(?P<name>.+)\.(?P<direction>up|down)\.sql$")
#: a name meant as a migration but not matching the pattern: an error, never skipped silently
#: (``000003_x.sql``, ``000003_x.UP.sql``, ``000004-d.up.sql``, ``000005_x.up.sql.bak``)
_MIGRATION_LIKE = re.compile(r"(?i)^[0-9]+_|\.sql$|\.(up|down)\.")
MAX_VERSION = 2**63 - 1  # schema_migrations.version is a bigint


@dataclass(frozen=True)
class Source:
    """A validated migration set, ordered by version."""

    origin: str  #: where it came from, for messages
    migrations: tuple[Migration, ...]
    #: entries skipped as not migrations (``README.md``, ``docs/``); dotfiles are not listed
    ignored: tuple[str, ...] = ()

    @classmethod
    def from_directory(cls, path: Path) -> Source:
        if not path.is_dir():
            what = "is not a directory" if path.exists() else "does not exist"
            raise SourceError(
                [f"the migrations directory {path} {what}"],
                origin=str(path),
                missing_directory=str(path),
            )
        return cls._scan(path, str(path))

    @classmethod
    def embedded(cls) -> Source:
        from thv_registry.database import embedded_migrations

        root = embedded_migrations()
        return cls._scan(root, f"the embedded migrations ({root})")

    @classmethod
    def _scan(cls, root: Traversable, origin: str) -> Source:
        ignored: list[str] = []
        return cls(origin, _validate(root, origin, ignored), tuple(ignored))

    def get(self, version: int) -> Migration | None:
        for migration in self.migrations:
            if migration.version == version:
                return migration
        return None


def load_source(directory: Path | None) -> Source:
    """The set in ``directory``, or the embedded one when it is None."""
    return Source.embedded() if directory is None else Source.from_directory(directory)


class LocalFile:
    """A file of a directory source: a path string (cheaper than ``Path`` by the thousand)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def read_bytes(self) -> bytes:
        with open(self.path, "rb") as f:
            return f.read()

    def __repr__(self) -> str:
        return f"LocalFile({self.path!r})"


def _entries(root: Traversable) -> Iterator[tuple[str, bool, str, Readable]]:
    """(name, is a directory, location shown to users, handle) of each entry, by name."""
    if isinstance(root, Path):
        with os.scandir(root) as scan:  # d_type: no stat per file
            found = sorted((e.name, e.is_dir(), e.path) for e in scan)
        for name, is_dir, path in found:
            yield name, is_dir, path, LocalFile(path)
        return
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        yield entry.name, entry.is_dir(), entry.name, entry


def looks_like_migration(name: str) -> bool:
    """Whether a file name that does not match the pattern was still meant as a migration."""
    return _MIGRATION_LIKE.search(name) is not None


def _validate(root: Traversable, origin: str, ignored: list[str]) -> tuple[Migration, ...]:
    problems: list[str] = []
    ups: dict[int, list[tuple[str, MigrationFile]]] = defaultdict(list)
    downs: dict[int, list[tuple[str, MigrationFile]]] = defaultdict(list)
    match_name = FILE_NAME_PATTERN.match
    for name, is_dir, location, handle in _entries(root):
        if name.startswith("."):
            continue  # .gitkeep, .squawk.toml, editor files
        if is_dir:
            ignored.append(f"{name}/")  # golang-migrate does not read sub-directories either
            continue
        match = match_name(name)
        if match is None:
            if looks_like_migration(name):
                problems.append(_stray_message(name))
            else:
                ignored.append(name)  # README.md, notes.txt: golang-migrate skips them too
            continue
        version = int(match["version"])
        if not 1 <= version <= MAX_VERSION:
            problems.append(f"'{name}' has version {version}; versions run from 1 to 2^63-1")
            continue
        file = MigrationFile(location, handle)
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
    return (
        f"'{name}' looks like a migration but its name does not match "
        "NNNNNN_description.up.sql / .down.sql (lowercase up/down, .sql); rename it, or move it "
        "out of the directory"
    )


def _base(file: MigrationFile) -> str:
    return file.origin.rsplit("/", 1)[-1]
