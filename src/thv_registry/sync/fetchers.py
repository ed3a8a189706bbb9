"""Which fetch a source takes (``file``, ``git``, ``api``), and what an ``api`` source remembers.

An ``api`` source with ``fullResyncInterval`` fetches everything on its first sync in this
process and whenever that interval has passed since its last full fetch; in between it asks
only for what changed since its last good fetch started (less :data:`SKEW`, for the upstream's
clock), and the writer then marks deleted only what the upstream said it deleted. That memory
is per process: a restarted replica starts with a full fetch, so nothing is missed.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from thv_registry.sync import api_source, file_source, git_source
from thv_registry.sync.errors import FetchFailed, InvalidEntry, SyncError
from thv_registry.sync.file_source import Fetched
from thv_registry.sync.settings import SourceSpec

__all__ = ["Fetchers", "SKEW"]

#: how far before the last good fetch an incremental one starts (the upstream's clock may differ)
SKEW = datetime.timedelta(minutes=5)


@dataclass
class _Progress:
    since: datetime.datetime  #: the start of the last good fetch
    full_at: datetime.datetime  #: the start of the last good full fetch


class Fetchers:
    """Fetches any supported source; remembers the progress of incremental ``api`` sources."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._progress: dict[str, _Progress] = {}

    async def fetch(self, spec: SourceSpec) -> Fetched:
        if spec.file is not None:
            return await file_source.fetch(spec.name, spec.file)
        if spec.git is not None:
            return await git_source.fetch(spec.name, spec.git, self.cache_dir)
        if spec.api is not None:
            return await api_source.fetch(spec.name, spec.api, since=self._since(spec))
        raise FetchFailed(spec.name, spec.kind, f"{spec.kind} sources are not synced")

    def _since(self, spec: SourceSpec) -> datetime.datetime | None:
        assert spec.api is not None
        every = spec.api.full_resync_interval
        progress = self._progress.get(spec.name)
        if every is None or progress is None:
            return None
        if datetime.datetime.now(datetime.UTC) - progress.full_at >= every:
            return None
        return progress.since - SKEW

    def succeeded(self, spec: SourceSpec, fetched: Fetched) -> None:
        """Record a good sync of ``fetched`` (its data is in the database now)."""
        if not isinstance(fetched, api_source.ApiFetched):
            return
        started = fetched.started_at
        previous = self._progress.get(spec.name)
        full_at = previous.full_at if previous and fetched.incremental else started
        self._progress[spec.name] = _Progress(started, full_at)

    @staticmethod
    def removed(fetched: Fetched) -> frozenset[tuple[str, str]] | None:
        """None: ``fetched`` is the whole source; else it holds only changes and these
        (name, version) pairs were deleted upstream."""
        return fetched.removed if isinstance(fetched, api_source.ApiFetched) else None

    @staticmethod
    def locate(fetched: Fetched, error: InvalidEntry) -> SyncError:
        """An invalid entry told where the source has it (an api source: page and position)."""
        if isinstance(fetched, api_source.ApiFetched):
            return fetched.locate(error)
        return error
