"""Typed errors of the sync: data for the caller (the CLI, the API, the sync status) to word.

Each carries the source name and what went wrong; ``str()`` is a one-line summary that the
sync status stores as its message.
"""

from __future__ import annotations

__all__ = ["SyncError", "FetchFailed", "InvalidRegistryFile", "InvalidEntry", "UnknownSource"]


class SyncError(Exception):
    """Base class: a sync of ``source`` failed; the data of its last good sync stays served."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(message)
        self.source = source
        self.message = message

    def __str__(self) -> str:
        return self.message


class FetchFailed(SyncError):
    """The source's bytes could not be read: ``origin`` is the path or URL, ``reason`` why."""

    def __init__(self, source: str, origin: str, reason: str) -> None:
        super().__init__(source, f"cannot read {origin}: {reason}")
        self.origin = origin
        self.reason = reason


class InvalidRegistryFile(SyncError):
    """The file is not an upstream registry document (not JSON, or a wrong top-level shape)."""

    def __init__(self, source: str, origin: str, reason: str) -> None:
        super().__init__(source, f"{origin} is not a valid upstream registry file: {reason}")
        self.origin = origin
        self.reason = reason


class InvalidEntry(SyncError):
    """One entry of the file is invalid: ``kind`` ("servers"/"skills"), its ``index`` in that
    list, its ``name`` (when it has one), the JSON path of the ``field`` and the ``reason``."""

    def __init__(
        self, source: str, kind: str, index: int, name: str | None, field: str, reason: str
    ) -> None:
        shown = f" ({name})" if name else ""
        where = f", at {field}" if field else ""
        super().__init__(source, f"data.{kind}[{index}]{shown}{where}: {reason}")
        self.kind = kind
        self.index = index
        self.name = name
        self.field = field
        self.reason = reason


class UnknownSource(SyncError):
    """No source of that name is configured (or it is not a kind this edition syncs)."""

    def __init__(self, source: str) -> None:
        super().__init__(source, f"no syncable source named {source!r}")
