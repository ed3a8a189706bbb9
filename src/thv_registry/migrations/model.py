"""The engine's value types: migrations, requests, plans, progress events and results.

All frozen dataclasses; no I/O and no heavy imports, so the CLI can import them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol


class Readable(Protocol):
    """What a migration file handle offers: ``pathlib.Path`` and package resources both do."""

    @property
    def name(self) -> str: ...

    def read_bytes(self) -> bytes: ...


@dataclass(frozen=True)
class MigrationFile:
    """One ``.up.sql`` or ``.down.sql`` file, read lazily (when it is about to run)."""

    origin: str  #: path shown to users, e.g. ``database/migrations/000001_init.up.sql``
    handle: Readable = field(repr=False, compare=False)

    def read_bytes(self) -> bytes:
        return self.handle.read_bytes()


@dataclass(frozen=True)
class Migration:
    """A version with its up file and (normally) its down file."""

    version: int
    name: str  #: the description part of the file name, e.g. ``init``
    up: MigrationFile
    down: MigrationFile | None

    @property
    def label(self) -> str:
        return (
            f"{self.version:06d}_{self.name}"
            if self.version < 10**6
            else f"{self.version}_{self.name}"
        )


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


# ---- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Up:
    """Apply the next ``n`` pending migrations; ``n == 0`` (or ``None``) means all of them."""

    n: int | None = None


@dataclass(frozen=True)
class Down:
    """Revert the last ``n`` applied migrations; ``n == 0`` means all of them."""

    n: int


@dataclass(frozen=True)
class Goto:
    """Move up or down to exactly ``version`` (0 = no version)."""

    version: int


Request = Up | Down | Goto


# ---- state --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionState:
    """What ``schema_migrations`` says: ``version is None`` is no version (no row or no table)."""

    version: int | None
    dirty: bool
    table_exists: bool = True


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    name: str
    direction: str  #: ``up``, ``down``, ``force`` or ``baseline``
    checksum: str | None
    resulting_version: int | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    db_user: str | None = None
    tool_version: str | None = None


# ---- plans --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One migration file to run, and the version the database has once it succeeded."""

    migration: Migration
    direction: Direction
    target_version: int | None  #: version recorded after the step; None = no version

    @property
    def file(self) -> MigrationFile:
        f = self.migration.up if self.direction is Direction.UP else self.migration.down
        assert f is not None, "the planner never plans a down step without a down file"
        return f


@dataclass(frozen=True)
class Plan:
    """An ordered list of steps planned from one observed state. Empty: nothing to do."""

    request: Request
    current: VersionState
    steps: tuple[Step, ...]

    @property
    def is_empty(self) -> bool:
        return not self.steps

    @property
    def direction(self) -> Direction | None:
        return self.steps[0].direction if self.steps else None

    @property
    def final_version(self) -> int | None:
        return self.steps[-1].target_version if self.steps else self.current.version


# ---- progress and results -----------------------------------------------------------------------


@dataclass(frozen=True)
class StepEvent:
    """Progress of one step, handed to ``on_step`` callbacks: ``started`` then ``finished``."""

    phase: Literal["started", "finished"]
    step: Step
    index: int  #: 1-based position in the plan
    total: int
    transactional: bool
    duration_s: float | None = None


@dataclass(frozen=True)
class RunResult:
    plan: Plan
    applied: tuple[Step, ...]
    final: VersionState
    duration_s: float
