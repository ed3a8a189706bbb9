"""Which database and which migration set a command works on, said out loud when it could surprise.

The database is, in this order: ``--database-url`` (``THV_REGISTRY_DATABASE_URL``), else the
``database:`` block of ``--config``, else the embedded PostgreSQL. Both a URL and a block is a
usage error; a ``--config`` without a block never falls back to the embedded server; and without
either, connection settings the user may expect to be read (``DATABASE_URL``, libpq's ``PGHOST``,
``PGDATABASE``, ``PGSERVICE``) are named as ignored.

The migration set is the embedded one (the package's copy in a wheel, the repository's directory
in an editable install) unless ``--migrations-dir`` names one. When a ``database/migrations``
directory in the current directory is not the set read, every command says which set it reads,
and ``create`` refuses to write where the next ``up`` would not read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from thv_registry.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from thv_registry.config import Settings
    from thv_registry.db.connect import ConnectionParams

__all__ = [
    "LOCAL_SET",
    "URL_ENV",
    "IGNORED_ENV",
    "configured_params",
    "ignored_env_notice",
    "embedded_set_path",
    "set_notice",
    "check_create_target",
]

URL_ENV = "THV_REGISTRY_DATABASE_URL"
#: set in many environments to name a database; this tool reads none of them
IGNORED_ENV = ("DATABASE_URL", "PGHOST", "PGDATABASE", "PGSERVICE")
#: the migrations directory of a checkout, relative to the current directory
LOCAL_SET = Path("database") / "migrations"


def configured_params(
    settings: Settings | None, config_path: Path | None, url: str | None, url_from: str
) -> ConnectionParams | None:
    """The database the user named (URL or config), or None: the embedded server.

    ``url_from`` says where the URL came from, for the message when a config names one too.
    """
    database = settings.database if settings is not None else None
    if url is not None:
        if database is not None:
            raise UsageError(
                f"Two databases were given: {url_from} and the database: block of "
                f"{config_path}. Give one of them: drop the database: block (the file's "
                f"other settings still apply) or the URL."
            )
        from thv_registry.db.url import params_from_url

        return params_from_url(url)
    if settings is None:
        return None
    if database is None:
        raise ConfigError(
            f"{config_path} has no database: block, so it names no database to migrate "
            "(a file given with --config is never replaced by the embedded server).",
            hint="Add a database: block (host, port, user, database), or pass --database-url "
            f"URL ({URL_ENV}) beside --config.",
            reason="no_database",
        )
    return settings.migration_params()


def ignored_env_notice() -> str | None:
    """The warning for connection variables that are set but not read (None: none is set)."""
    found = [name for name in IGNORED_ENV if os.environ.get(name)]
    if not found:
        return None
    names = ", ".join(found)
    verb = "is" if len(found) == 1 else "are"
    use = (
        '--database-url "$DATABASE_URL"'
        if "DATABASE_URL" in found
        else "--database-url postgresql://USER@HOST:PORT/DATABASE"
    )
    return (
        f"Warning: {names} {verb} set but not used: without --config or --database-url, "
        f"thv-registry-api migrates the embedded PostgreSQL. To migrate that database, pass "
        f"{use} (or set {URL_ENV}), or --config FILE with a database: block."
    )


def embedded_set_path() -> Path | None:
    """The directory of the embedded migration set, when it is one on disk."""
    from thv_registry.database import embedded_migrations

    root = embedded_migrations()
    return Path(str(root)) if isinstance(root, Path) else None


def _same(a: Path | None, b: Path) -> bool:
    try:
        return a is not None and a.resolve() == b.resolve()
    except OSError:
        return False


def set_notice(migrations_dir: Path | None, origin: str) -> str | None:
    """Which set is read, when ``./database/migrations`` exists and is not it (else None)."""
    if not LOCAL_SET.is_dir():
        return None
    read = migrations_dir if migrations_dir is not None else embedded_set_path()
    if _same(read, LOCAL_SET):
        return None
    if migrations_dir is not None:
        what = f"the migrations in {migrations_dir} (--migrations-dir)"
    else:
        what = f"the migrations installed with the package ({read or origin})"
    return (
        f"Reading {what}, not ./{LOCAL_SET}: files created or changed there are not seen by "
        "this command."
    )


def check_create_target(target: Path, *, explicit: bool) -> None:
    """Refuse to create files where the next ``migrate up`` (same flags) would not read them.

    An explicit directory is read by commands given the same ``--migrations-dir``; the default
    (./database/migrations) only when it is the embedded set (an editable install).
    """
    if explicit or not target.is_dir():
        return  # a missing default directory is refused by create itself, saying where
    embedded = embedded_set_path()
    if _same(embedded, target):
        return
    where = f"the copy installed with the package ({embedded})" if embedded else "the package"
    raise UsageError(
        f"Not creating files in ./{LOCAL_SET}: `migrate up`, `status` and `lint` without "
        f"--migrations-dir read {where}, so the new migration would never run.",
        hint=f"Pass --migrations-dir {LOCAL_SET} here and to every command that should read it "
        f"(or set THV_REGISTRY_MIGRATIONS_DIR), or install the package editable (pip install "
        "-e .) so the commands read this directory.",
    )
