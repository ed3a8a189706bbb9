"""Backups before a revert: ``pg_dump -Fc`` to a private file, and the command that restores it.

pg_dump refuses to dump a server newer than itself, so the binary is chosen by version: the one
``THV_REGISTRY_PG_DUMP`` names (an explicit choice: used or refused, never silently replaced), else
the closest version not older than the server among PATH's pg_dump, the Debian and RHEL
per-version installs, and the embedded PostgreSQL's (pgserver ships pg_dump 16). Closest, because
an archive is readable by pg_restore of its pg_dump's version or newer. Debian's
``/usr/bin/pg_dump`` is a wrapper (pg_wrapper) whose version depends on the environment, so it is
skipped in favour of the real binaries under ``/usr/lib/postgresql/N/bin``.

The connection reaches pg_dump through PG* environment variables, never the command line, so the
password never shows in process listings; the printed restore command carries no password.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from thv_registry.errors import BackupFailed, BackupUnavailable
from thv_registry.redact import redact

if TYPE_CHECKING:
    from thv_registry.db.connect import ConnectionParams
    from thv_registry.migrations.engine.model import Plan

__all__ = [
    "Backup",
    "PG_DUMP_ENV",
    "BACKUP_DIR_ENV",
    "find_pg_dump",
    "run_pg_dump",
    "default_backup_dir",
    "take_backup",
    "pg_dump_command",
    "restore_command",
    "backup_label",
    "backup_notice",
    "backup_name_pattern",
    "prune_backups",
]

PG_DUMP_ENV = "THV_REGISTRY_PG_DUMP"
BACKUP_DIR_ENV = "THV_REGISTRY_BACKUP_DIR"
APPLICATION_NAME = "thv-registry-api backup"
_SYSTEM_GLOBS = ("/usr/lib/postgresql/*/bin/pg_dump", "/usr/pgsql-*/bin/pg_dump")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(\S*)")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Backup:
    path: Path
    size_bytes: int
    pg_dump: Path
    pg_dump_version: str  #: e.g. "16.2"
    duration_s: float
    restore_command: str  #: copy-pasteable shell command; no password in it


@dataclass(frozen=True)
class _Found:
    path: Path
    version: str | None  #: None: it did not run
    problem: str = ""

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0]) if self.version else -1


# ---- finding pg_dump ----------------------------------------------------------------------------


def find_pg_dump(server_major: int) -> tuple[Path, str]:
    """A pg_dump able to dump a server of major version ``server_major``, and its version."""
    explicit = os.environ.get(PG_DUMP_ENV)
    if explicit:
        found = _probe(Path(explicit).expanduser())
        if found.version is not None and found.major >= server_major:
            return found.path, found.version
        why = found.problem or f"it is pg_dump {found.version}, older than the server"
        raise BackupUnavailable(
            f"{PG_DUMP_ENV} names {found.path}, which cannot back up this PostgreSQL "
            f"{server_major} server: {why}.",
            hint=f"Point {PG_DUMP_ENV} at pg_dump {server_major} or newer, or unset it to let "
            "the search find one.",
            server_major=server_major,
            explicit=str(found.path),
        )
    found_all = [_probe(path) for path in _candidates()]
    usable = [f for f in found_all if f.version is not None and f.major >= server_major]
    if usable:
        best = min(usable, key=lambda f: f.major)  # min() keeps the first of equals: search order
        assert best.version is not None
        return best.path, best.version
    if found_all:
        seen = "; found " + ", ".join(
            f"{f.path} ({f'pg_dump {f.version}' if f.version else f.problem})" for f in found_all
        )
    else:
        seen = "; found none (searched PATH, /usr/lib/postgresql/*/bin, the embedded PostgreSQL)"
    raise BackupUnavailable(
        f"No pg_dump can back up the database before the revert: the server is PostgreSQL "
        f"{server_major} and pg_dump refuses to dump a server newer than itself{seen}.",
        hint=f"Install pg_dump {server_major} (e.g. apt-get install "
        f"postgresql-client-{server_major}) or set {PG_DUMP_ENV} to one.",
        server_major=server_major,
        explicit=None,
    )


def _candidates() -> list[Path]:
    """Every pg_dump worth asking, in search order, each once."""
    paths: list[Path] = []
    on_path = shutil.which("pg_dump")
    if on_path and Path(on_path).resolve().name != "pg_wrapper":
        paths.append(Path(on_path))
    for pattern in _SYSTEM_GLOBS:
        paths.extend(Path(p) for p in sorted(glob.glob(pattern), key=_numeric_key))
    embedded = _embedded_bin_dir()
    if embedded is not None and (embedded / "pg_dump").is_file():
        paths.append(embedded / "pg_dump")
    unique: dict[Path, Path] = {}
    for path in paths:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _numeric_key(path: str) -> tuple[int, str]:
    digits = re.findall(r"\d+", path)
    return (int(digits[0]) if digits else 0, path)


def _embedded_bin_dir() -> Path | None:
    """pgserver's bin directory, found without importing pgserver (its import is slow)."""
    try:
        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _probe(path: Path) -> _Found:
    """Run ``path --version``; the version, or why it is not usable."""
    if not path.is_file():
        return _Found(path, None, "not a file" if path.exists() else "no such file")
    try:
        proc = subprocess.run(
            [str(path), "--version"],
            capture_output=True,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return _Found(path, None, f"it does not run: {exc}")
    match = _VERSION.search(proc.stdout)
    if proc.returncode != 0 or not match:
        text = (proc.stdout + proc.stderr).strip()[:200] or f"exit status {proc.returncode}"
        return _Found(path, None, f"'--version' did not name a PostgreSQL version ({text})")
    return _Found(path, match.group(1) + match.group(2))


# ---- taking a backup ----------------------------------------------------------------------------


def default_backup_dir() -> Path:
    """``$THV_REGISTRY_BACKUP_DIR``, else ``$XDG_DATA_HOME/thv-registry/backups`` (per user).

    Never the current directory: a revert run from anywhere must not scatter dumps (which hold
    the data) into random, possibly shared, places.
    """
    explicit = os.environ.get(BACKUP_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "thv-registry" / "backups"


def take_backup(params: ConnectionParams, *, directory: Path | None = None, label: str) -> Backup:
    """Dump the database ``params`` names with ``pg_dump -Fc`` into a new 0600 file.

    Raises ``ConnectionFailed`` if the server cannot be reached, ``BackupUnavailable`` if no
    suitable pg_dump exists, ``BackupFailed`` if pg_dump fails (the partial file is removed).
    """
    server_major = _server_major(params)
    pg_dump, version = find_pg_dump(server_major)
    directory = directory or default_backup_dir()
    path = _new_file(directory, params.dbname, label)
    argv, env = pg_dump_command(pg_dump, params, path)
    started = time.monotonic()
    try:
        proc = run_pg_dump(argv, env)
    except OSError as exc:  # it ran a moment ago (to tell its version), but still
        proc = subprocess.CompletedProcess(argv, -1, "", str(exc))
    except BaseException:  # Ctrl-C: leave no partial file behind
        path.unlink(missing_ok=True)
        raise
    duration = time.monotonic() - started
    if proc.returncode != 0:
        path.unlink(missing_ok=True)
        why = redact(_one_line(proc.stderr) or f"exit status {proc.returncode}", params.password)
        raise BackupFailed(
            f"pg_dump {version} ({pg_dump}) could not back up {params.describe()} before the "
            f"revert: {why}.",
            hint=f"Nothing was reverted and no partial backup was kept. Fix the cause (the "
            f"migration user needs read access to every table; the backup directory "
            f"{directory} needs space) and run again.",
            directory=str(directory),
            pg_dump=str(pg_dump),
        )
    pg_restore = pg_dump.with_name("pg_restore")
    return Backup(
        path=path,
        size_bytes=path.stat().st_size,
        pg_dump=pg_dump,
        pg_dump_version=version,
        duration_s=duration,
        restore_command=restore_command(
            pg_restore if pg_restore.is_file() else Path("pg_restore"), params, path
        ),
    )


def pg_dump_command(
    pg_dump: Path, params: ConnectionParams, path: Path
) -> tuple[list[str], dict[str, str]]:
    """The argv and the environment additions that dump ``params``' database to ``path``.

    The connection goes in PG* variables; the password, if any, only in ``PGPASSWORD``.
    ``--no-password``: never stop to prompt on a terminal, fail instead.
    """
    argv = [str(pg_dump), "--format=custom", "--no-password", "--file", str(path)]
    env = {
        "PGHOST": params.host,
        "PGPORT": str(params.port),
        "PGUSER": params.user,
        "PGDATABASE": params.dbname,
        "PGSSLMODE": params.sslmode,
        "PGAPPNAME": APPLICATION_NAME,
        "PGCONNECT_TIMEOUT": str(params.connect_timeout),
    }
    if params.password is not None:
        env["PGPASSWORD"] = params.password
    return argv, env


def run_pg_dump(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a pg_dump ``argv`` with ``env`` added to ours, no stdin, its output captured as text."""
    return subprocess.run(
        argv,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
    )


def restore_command(pg_restore: Path, params: ConnectionParams, path: Path) -> str:
    """A copy-pasteable pg_restore command for ``path`` into ``params``' database; no password."""
    argv = [str(pg_restore), "--clean", "--if-exists", "--no-owner"]
    host = params.host
    if host.startswith(("/", "@")) or "," in host:  # socket directory, several hosts
        argv += ["-h", host, "-p", str(params.port), "-U", params.user, "-d", params.dbname]
    else:
        netloc = f"[{host}]" if ":" in host else host
        url = (
            f"postgresql://{quote(params.user, safe='')}@{netloc}:{params.port}/"
            f"{quote(params.dbname, safe='')}"
        )
        if params.sslmode != "prefer":  # libpq's default needs no mention
            url += f"?sslmode={params.sslmode}"
        argv += ["-d", url]
    return shlex.join([*argv, str(path)])


def _server_major(params: ConnectionParams) -> int:
    from thv_registry.db.connect import connect

    with connect(params, application_name=APPLICATION_NAME) as conn:
        return int(conn.info.server_version) // 10000  # server_version_num: 160002 -> 16


def _new_file(directory: Path, dbname: str, label: str) -> Path:
    """Create an empty 0600 file (0700 directory if new) named for the database, time and label."""
    try:
        if not directory.is_dir():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.chmod(0o700)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        stem = backup_name_pattern(dbname, label).replace(_STAMP_PLACEHOLDER, stamp)[
            : -len(".dump")
        ]
        for n in range(1, 100):
            path = directory / (f"{stem}.dump" if n == 1 else f"{stem}-{n}.dump")
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                continue
            path.chmod(0o600)  # whatever the umask
            return path
        raise FileExistsError(f"{directory / stem}.dump and 98 numbered variants exist")
    except OSError as exc:
        raise BackupFailed(
            f"Cannot create the backup file in {directory}: {exc.strerror or exc}.",
            hint=f"Nothing was reverted. Make the directory writable or set {BACKUP_DIR_ENV} to "
            "another one.",
            directory=str(directory),
            pg_dump=None,
        ) from exc


def _one_line(stderr: str) -> str:
    """pg_dump's messages on one line, without their ``pg_dump: `` prefixes."""
    from thv_registry.db.connect import one_line

    return one_line(re.sub(r"(?m)^pg_dump: ", "", stderr))


_STAMP_PLACEHOLDER = "YYYYMMDDTHHMMSSZ"
#: a backup file this tool wrote: <database>-<UTC time>-before-<label>[-N].dump
_OURS = r"-(\d{8}T\d{6}Z)-before-[A-Za-z0-9._-]+\.dump"


def backup_name_pattern(dbname: str, label: str) -> str:
    """The name a backup of ``dbname`` gets, its time as ``YYYYMMDDTHHMMSSZ`` (for a dry run)."""
    return f"{_UNSAFE.sub('_', dbname)}-{_STAMP_PLACEHOLDER}-before-{_UNSAFE.sub('_', label)}.dump"


def prune_backups(directory: Path, dbname: str, *, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` backups of ``dbname`` in ``directory``; return them.

    Only regular files named as this tool names that database's backups are considered (another
    database's, or any other file, are never touched); ``keep`` 0 keeps everything.
    """
    if keep <= 0 or not directory.is_dir():
        return []
    ours = re.compile(re.escape(_UNSAFE.sub("_", dbname)) + _OURS)
    found = []
    for path in directory.iterdir():
        match = ours.fullmatch(path.name)
        if match and path.is_file() and not path.is_symlink():
            found.append(((match.group(1), path.stat().st_mtime_ns), path))
    found.sort()  # oldest first: by the time in the name, then (same second) by mtime
    doomed = [path for _, path in found[: max(0, len(found) - keep)]]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


# ---- for the CLI --------------------------------------------------------------------------------


def backup_label(plan: Plan) -> str:
    """``down-3-to-1`` (``...-to-none`` when reverting everything; ``redo-3`` for a redo), for
    the backup's file name."""
    from thv_registry.migrations.engine.model import Redo

    if isinstance(plan.request, Redo):
        return f"redo-{plan.current.version}"
    final = plan.final_version
    return f"down-{plan.current.version}-to-{'none' if final is None else final}"


def backup_notice(b: Backup) -> str:
    """The lines the CLI prints after a backup: where, how big, how long, how to restore."""
    return (
        f"Backup written to {b.path} ({_size(b.size_bytes)}, pg_dump {b.pg_dump_version}, "
        f"{b.duration_s:.1f} s).\nTo restore it: {b.restore_command}"
    )


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    value = float(n)
    for unit in ("kB", "MB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} GB"
