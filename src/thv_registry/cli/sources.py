"""``thv-registry-api sources``: every source with its sync status, read from the database.

What operators need before the admin API exists (and scripts after, with ``--output json``):
phase, last attempt, last success, consecutive failures, the counts of the last good sync, the
message, the lease holder (which replica syncs it now), and the live replicas, with a line when
their configurations differ. A thin layer over :func:`thv_registry.sync.status.overview`.
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

import click

from thv_registry.cli.context import (
    AppContext,
    config_option,
    database_url_option,
    global_options,
    output_option,
    pass_app,
    wait_for_db_option,
    wants_json,
)
from thv_registry.errors import PlanRefused

if TYPE_CHECKING:
    from thv_registry.db.connect import ConnectionParams
    from thv_registry.sync.status import Overview, SourceRow

__all__ = ["sources_command"]

#: the schema version that keeps leases and replicas (000010_sync_leases)
NEEDED_VERSION = 10


@click.command("sources", short_help="List the sources and their sync status.")
@config_option
@database_url_option
@wait_for_db_option
@output_option
@global_options
@pass_app
def sources_command(app: AppContext, output: str | None) -> None:
    """List every source with its sync status, read from the database: phase, last attempt,
    last success, consecutive failures, counts of the last good sync, message, and the replica
    holding its lease; then the live serve replicas, and a warning line when their
    configurations differ.

    Connects as the config's application user (`database.user`); --database-url names another
    database. Without either: the embedded PostgreSQL, as `serve` uses it.
    """
    from thv_registry.db.connect import connect
    from thv_registry.sync.status import overview

    params = _params(app)
    with connect(params, application_name="thv-registry-api sources") as conn:
        _check_schema(conn, params)
        found = overview(conn)
    if wants_json(app, output):
        click.echo(json.dumps(_json(found, params.describe())))
    else:
        for line in _text(found, params.describe()):
            click.echo(line)


def _params(app: AppContext) -> ConnectionParams:
    settings = app.settings
    if app.database_url is None and settings is not None and settings.database is not None:
        return settings.app_params()  # what serve reads and writes with
    return app.migration_params()  # --database-url, or the embedded server as serve uses it


def _check_schema(conn: Any, params: ConnectionParams) -> None:
    ready, versioned = conn.execute(
        "SELECT to_regclass('sync_replica') IS NOT NULL,"
        " to_regclass('schema_migrations') IS NOT NULL"
    ).fetchone()
    if ready:
        return
    row = conn.execute("SELECT version FROM schema_migrations").fetchone() if versioned else None
    at = f"schema version {row[0]}" if row is not None else "no schema version"
    raise PlanRefused(
        f"The database {params.describe()} has no sync status to show ({at}; the sync status "
        f"needs version {NEEDED_VERSION} or later).",
        hint="Run `thv-registry-api migrate up` (serve also migrates when it starts).",
    )


def _time(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.astimezone(datetime.UTC).isoformat()


def _seconds(value: datetime.timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _source_json(s: SourceRow) -> dict[str, Any]:
    return {
        "name": s.name,
        "type": s.kind,
        "created_by": s.created_by,
        "syncable": s.syncable,
        "interval_seconds": _seconds(s.interval),
        "phase": s.phase,
        "message": s.message,
        "last_attempt_at": _time(s.last_attempt_at),
        "last_attempt_ended_at": _time(s.last_attempt_ended_at),
        "last_success_at": _time(s.last_success_at),
        "consecutive_failures": s.failed_attempts,
        "attempts": s.attempts,
        "counts": {
            "servers": s.counts.servers,
            "skills": s.counts.skills,
            "versions": s.counts.versions,
            "plugins_skipped": s.counts.plugins_skipped,
        },
        "next_due_at": _time(s.next_due_at),
        "lease_holder": s.lease_holder,
        "lease_expires_at": _time(s.lease_expires_at),
    }


def _json(found: Overview, database: str) -> dict[str, Any]:
    return {
        "event": "sources",
        "database": database,
        "sources": [_source_json(s) for s in found.sources],
        "replicas": [
            {
                "replica": r.replica,
                "config_fingerprint": r.fingerprint,
                "sources": list(r.sources),
                "started_at": _time(r.started_at),
                "heartbeat_at": _time(r.heartbeat_at),
            }
            for r in found.replicas
        ],
        "config_mismatch": found.config_mismatch,
    }


def _short(value: datetime.datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _text(found: Overview, database: str) -> list[str]:
    lines = [f"Sources in {database}:"]
    if not found.sources:
        lines.append("  (none: start serve with a config that names sources)")
    header = ("SOURCE", "TYPE", "PHASE", "LAST ATTEMPT", "LAST SUCCESS", "FAILURES",
              "SERVERS", "SKILLS", "VERSIONS", "LEASE")  # fmt: skip
    rows = [header] + [
        (
            s.name,
            s.kind,
            s.phase or ("never synced" if s.syncable else "not synced"),
            _short(s.last_attempt_at),
            _short(s.last_success_at),
            str(s.failed_attempts),
            str(s.counts.servers),
            str(s.counts.skills),
            str(s.counts.versions),
            s.lease_holder or "-",
        )  # fmt: skip
        for s in found.sources
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    messages = [None] + [s.message for s in found.sources]
    for row, message in zip(rows, messages, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if message:
            lines.append(f"    {message}")
    if found.replicas:
        shown = ", ".join(f"{r.replica} (config {r.fingerprint[:12]})" for r in found.replicas)
        lines.append(f"Replicas: {len(found.replicas)} live: {shown}.")
    else:
        lines.append("Replicas: none live (no serve is running on this database).")
    if found.config_mismatch:
        lines.append(
            "Config mismatch: the live replicas run different sources/registries "
            "configurations; replicas of one deployment must share one config file. Nothing "
            "is deleted while they differ; roll every replica to the same config."
        )
    return lines
