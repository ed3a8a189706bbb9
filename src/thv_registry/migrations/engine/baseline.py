"""``baseline``: adopt a database whose schema was made without migrations, at version V.

Nothing runs: ``schema_migrations`` gets V, clean, and the history a ``baseline`` row, so the
planner counts every version up to V as applied and ``up`` continues after it (Flyway's
``baseline``, golang-migrate's ``force`` on an empty state). Refused when a version is already set.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from thv_registry.errors import StateChanged, VersionAlreadySet
from thv_registry.migrations.engine.model import (
    ForceResult,
    HistoryDirection,
    Migration,
    VersionState,
)

if TYPE_CHECKING:
    from thv_registry.migrations.engine.state import StateStore

__all__ = ["record_baseline"]

log = logging.getLogger(__name__)


def record_baseline(
    store: StateStore, migration: Migration, *, confirmed: VersionState | None = None
) -> ForceResult:
    """Record ``migration``'s version clean, with a baseline history row (migration lock held).

    :param confirmed: the state a person saw when confirming; if it moved, ``StateChanged``.
    """
    version = migration.version
    current = store.read_version()
    if current.version is not None or current.dirty:
        at = "no version" if current.version is None else f"version {current.version}"
        raise VersionAlreadySet(
            f"Cannot baseline version {version}: the database already has a version "
            f"({at}{' (dirty)' if current.dirty else ''} in {store.schema}.{store.table}). A "
            "baseline is for a database whose schema was made without migrations; nothing was "
            "changed.",
            version=-1 if current.version is None else current.version,
            dirty=current.dirty,
            requested=version,
        )
    if confirmed is not None and (confirmed.version, confirmed.dirty) != (None, False):
        raise StateChanged(
            "The database changed while the baseline was being confirmed; nothing was changed."
        )
    with store.conn.transaction():
        if not store.tables_exist():
            store.ensure_tables(current=version)  # a new history starts with a baseline row
        history = store.read_state()[1]
        last = history[-1] if history else None
        if last is None or (last.direction, last.resulting_version) != (
            HistoryDirection.BASELINE,
            version,
        ):
            store.record_history(
                (version, migration.name, HistoryDirection.BASELINE, None, version)
            )
        store.set_version(version, dirty=False)
    log.debug("baselined version %d in %s: no migration ran", version, store.table)
    return ForceResult(current, version, 0)
