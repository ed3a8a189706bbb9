"""The migration engine, usable without the CLI.

from thv_registry.config import load_config
from thv_registry.migrations import Migrator, Source, Up

settings = load_config(Path("config.yaml"))
migrator = Migrator(settings.migration_params(), Source.embedded())
plan = migrator.plan(Up())          # read-only: what would run
result = migrator.apply(Up(), confirmed=plan)
"""

from __future__ import annotations

from thv_registry.migrations.engine.migrator import Migrator
from thv_registry.migrations.engine.model import (
    Direction,
    Down,
    Goto,
    Migration,
    MigrationFile,
    Plan,
    Redo,
    Request,
    RunResult,
    Step,
    StepEvent,
    Up,
    VersionState,
)
from thv_registry.migrations.engine.source import Source, load_source

__all__ = [
    "Migrator",
    "Source",
    "load_source",
    "Direction",
    "Down",
    "Goto",
    "Migration",
    "MigrationFile",
    "Plan",
    "Redo",
    "Request",
    "RunResult",
    "Step",
    "StepEvent",
    "Up",
    "VersionState",
]
