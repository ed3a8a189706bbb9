"""The schema the migrations produce, as reviewable SQL: ``pg_dump --schema-only`` without noise.

Like dbmate's ``schema.sql``: committed beside the migrations, a review sees what a migration
does to the schema, not only the statements that do it. The dump covers the schema the state
tables live in (the connection's current schema, or the configured one), without the state
tables themselves, ownership and privileges (they differ per deployment), and without what
changes from one run or one pg_dump to the next: ``SET`` lines, ``set_config`` calls, the
version comments, the random ``\\restrict`` keys of pg_dump 17.6+ / 16.10+. pg_dump is the one
the backups use (:func:`.backup.find_pg_dump`: not older than the server).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from thv_registry.errors import BackupUnavailable, SchemaDumpFailed
from thv_registry.migrations.tools.backup import (
    APPLICATION_NAME,
    _one_line,
    _server_major,
    find_pg_dump,
    pg_dump_command,
    run_pg_dump,
)
from thv_registry.redact import redact

if TYPE_CHECKING:
    from thv_registry.db.connect import ConnectionParams

__all__ = ["SchemaDump", "dump_schema", "clean_dump", "write_atomically"]

#: lines pg_dump writes that change between runs, servers or pg_dump versions
_NOISE = re.compile(
    r"^(SET |SELECT pg_catalog\.set_config\(|\\restrict |\\unrestrict |"
    r"-- Dumped (from|by) |-- (Started|Completed) on |-- TOC entry |"
    r"-- PostgreSQL database dump( complete)?$)"
)


@dataclass(frozen=True)
class SchemaDump:
    sql: str  #: the cleaned dump, ending with one newline
    schema: str  #: the schema dumped
    version: int | None  #: the migration version it reflects (None: no version)
    dirty: bool
    pg_dump_version: str


def dump_schema(
    params: ConnectionParams, *, table: str = "schema_migrations", keep_owner: bool = False
) -> SchemaDump:
    """Dump the migrated schema of ``params``' database (read-only; no lock is taken).

    :param keep_owner: keep ``ALTER ... OWNER TO`` lines (they name deployment roles).
    Raises ``SchemaDumpFailed`` when no suitable pg_dump exists or it fails.
    """
    from thv_registry.db.connect import connect
    from thv_registry.migrations.engine.state import StateStore

    with connect(params, application_name=APPLICATION_NAME) as conn:
        store = StateStore(conn, table)
        state = store.read_version()  # learns the schema too
        if store.schema is None:  # search_path names no existing schema
            from thv_registry.errors import SchemaMissing

            raise SchemaMissing(
                f"The schema {params.search_path or '(search_path)'!r} does not exist in database "
                f"{params.dbname} (or user {params.user!r} has no USAGE on it): there is no "
                "schema to dump. Nothing was written.",
                schema=params.search_path or "",
                user=params.user,
            )
        schema = store.schema
    major = _server_major(params)
    try:
        pg_dump, version = find_pg_dump(major)
    except BackupUnavailable as exc:
        named = f"; {exc.explicit} was named" if exc.explicit else ""
        raise SchemaDumpFailed(
            f"No pg_dump can dump the schema of this PostgreSQL {major} server (pg_dump refuses "
            f"a server newer than itself){named}. Nothing was written.",
            pg_dump=exc.explicit,
            hint=exc.hint,
        ) from exc
    _, env = pg_dump_command(pg_dump, params, Path(os.devnull))
    argv = [str(pg_dump), "--schema-only", "--no-password", "--no-privileges", "--schema", schema]
    argv += [] if keep_owner else ["--no-owner"]
    for name in (table, f"{table}_history"):
        argv += ["--exclude-table", f'"{schema}"."{name}"']
    proc = run_pg_dump(argv, env)
    if proc.returncode != 0:
        why = redact(_one_line(proc.stderr) or f"exit status {proc.returncode}", params.password)
        raise SchemaDumpFailed(
            f"pg_dump {version} ({pg_dump}) could not dump the schema of {params.describe()}: "
            f"{why}. Nothing was written.",
            hint="The user needs USAGE on the schema and to see its objects.",
            pg_dump=str(pg_dump),
        )
    return SchemaDump(clean_dump(proc.stdout), schema, state.version, state.dirty, version)


def clean_dump(text: str) -> str:
    """pg_dump's plain output without the lines that differ between runs; blank runs squeezed."""
    lines = [line.rstrip() for line in text.splitlines() if not _NOISE.match(line)]
    squeezed: list[str] = []
    for line in lines:
        if line or (squeezed and squeezed[-1]):
            squeezed.append(line)
    return "\n".join(squeezed).strip("\n") + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in its directory (made if missing),
    so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
