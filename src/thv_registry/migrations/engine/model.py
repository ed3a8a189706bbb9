"""The engine's value types: migrations, requests, plans, progress events and results.

All frozen dataclasses; no I/O and no heavy imports, so the CLI can import them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

#: the name this tool records as itself: the application_name of its sessions starts with it,
#: and the history's tool_version is it with the version (data, not a command to run)
TOOL_NAME = "thv-registry-api"
#: The first-line marks of the files ``create`` writes: a file holding one of them and no
#: statement is a template nobody filled in (refused by up and down, an error for lint). Any
#: other file without statements is a deliberate no-op step (a down that cannot undo an enum
#: value, say), run as golang-migrate runs an empty file.
TEMPLATE_MARKS = ("(up): TODO: say what this migration changes", "(down): undo exactly what")


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
        return version_label(self.version, self.name)


def version_label(version: int, name: str) -> str:
    """``000003_add_x``: the file name stem (six digits at least, as the files are numbered)."""
    return f"{version:06d}_{name}" if name else f"{version:06d}"


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


class HistoryDirection(StrEnum):
    """What a ``schema_migrations_history`` row records; the values are the stored strings."""

    UP = "up"  #: a migration applied
    DOWN = "down"  #: a migration reverted
    FORCE = "force"  #: the version set by ``force`` (nothing ran)
    BASELINE = "baseline"  #: the version found when the history table was created
    ACCEPT = "accept"  #: a changed file's new checksum accepted (``accept_changed``)


# ---- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Up:
    """Apply the next ``n`` pending migrations; ``n == 0`` (or ``None``) means all of them.

    ``accept_changed``: versions whose file changed since they were applied and may still run
    (a request of the CLI's accept option); the new checksum is recorded in the history.
    """

    n: int | None = None
    accept_changed: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Down:
    """Revert the last ``n`` applied migrations; ``n == 0`` means all of them."""

    n: int


@dataclass(frozen=True)
class Goto:
    """Move up or down to exactly ``version`` (0 = no version)."""

    version: int
    accept_changed: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Redo:
    """Revert the last applied migration and apply it again, as one plan (two steps).

    Its file may have changed since it was applied (that is what redo is for while writing
    a migration): the up step records the new checksum.
    """


Request = Up | Down | Goto | Redo


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
    direction: HistoryDirection  #: a stored string is turned into the enum on creation
    checksum: str | None
    resulting_version: int | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    db_user: str | None = None
    tool_version: str | None = None
    #: an unfinished (dirty-protocol) step that a later ``force`` closed: it never completed
    interrupted: bool = False

    def __post_init__(self) -> None:
        if type(self.direction) is not HistoryDirection:  # a row read from the table: a str
            object.__setattr__(self, "direction", HistoryDirection(self.direction))

    @property
    def is_open(self) -> bool:
        """An unfinished step (dirty protocol): it failed or was interrupted, not yet forced."""
        return self.finished_at is None

    @property
    def completed(self) -> bool:
        return self.finished_at is not None and not self.interrupted


@dataclass(frozen=True)
class ChangedFile:
    """An applied migration whose up file differs from the one recorded when it was applied."""

    version: int
    name: str
    origin: str  #: the file as shown to users
    recorded: str  #: sha256 in the history
    actual: str  #: sha256 of the file now
    recorded_at: datetime | None = None

    @property
    def label(self) -> str:
        return version_label(self.version, self.name)


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
    #: changed files accepted by the request: recorded as 'accept' rows before the steps
    accepted: tuple[ChangedFile, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.steps and not self.accepted

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


@dataclass(frozen=True)
class DatabaseView:
    """What the database looks like now, shown before ``force`` asks for confirmation."""

    current: VersionState
    history: tuple[HistoryEntry, ...]  #: the last few rows, oldest first
    schema: str
    tables: tuple[str, ...]


@dataclass(frozen=True)
class ForceResult:
    previous: VersionState
    version: int | None  #: the version now (None: no version); always clean
    closed: int  #: unfinished steps in the history that the force closed
