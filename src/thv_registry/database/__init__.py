"""The embedded migration set, read with ``importlib.resources``.

In a wheel the build copies ``database/migrations/`` from the repository root to
``thv_registry/database/migrations``; an editable install has no copy and reads the repository's
own directory, so both read the very same files.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["embedded_migrations"]


def embedded_migrations() -> Traversable:
    """The packaged migrations directory (wheel), else the repository's (editable install)."""
    packaged = files(__name__) / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "database" / "migrations"
