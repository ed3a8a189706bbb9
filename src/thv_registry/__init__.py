"""thv-registry: the ToolHive Registry API Server in Python, starting with its migration tooling.

The command line is ``thv-registry-api`` (:mod:`thv_registry.cli`); the migration engine is usable
as a library through :mod:`thv_registry.migrations` (``Migrator``, ``load_source``, ``Up``,
``Down``).
"""

from __future__ import annotations

from functools import cache

__all__ = ["__version__"]

_FALLBACK_VERSION = "0.1.0"  # a source tree that was never installed has no metadata


@cache
def _version() -> str:
    # importlib.metadata costs tens of milliseconds to import: read it only when asked.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("thv-registry")
    except PackageNotFoundError:
        return _FALLBACK_VERSION


def __getattr__(name: str) -> str:
    """``thv_registry.__version__``, read lazily from the installed package's metadata."""
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
