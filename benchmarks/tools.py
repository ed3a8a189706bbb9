"""The tools measured: ours, the peers, and the psql floors, each as the commands it runs.

A tool writes the generated set in its own format once per size, then gives the command lines for
"apply everything" and "revert everything" against one database URL. Every command is a separate
process, timed from start to exit, as a deploy would run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import gen

__all__ = ["Tool", "Ours", "Dbmate", "Yoyo", "Alembic", "SqlMigrate", "PsqlFloor", "all_tools"]
__all__ += ["PsqlPerProcess"]

VENV_BIN = Path(sys.executable).parent


def _which(name: str) -> str | None:
    local = VENV_BIN / name
    return str(local) if local.exists() else shutil.which(name)


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "?"


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


@dataclass
class Tool:
    """One row of the table."""

    key: str  #: short id, used in database names
    label: str
    races: bool = True  #: takes part in S4
    floor: bool = False
    note: str = ""
    sets: dict[int, Path] = field(default_factory=dict)

    def unavailable(self) -> str | None:
        """None when the tool can run here, else why not (shown as n/a)."""
        return None

    def prepare(self, work: Path, n: int, golang_dir: Path) -> None:
        raise NotImplementedError

    def up(self, n: int, url: str, work: Path) -> list[list[str]]:
        raise NotImplementedError

    def down_all(self, n: int, url: str, work: Path) -> list[list[str]]:
        raise NotImplementedError

    def noop(self, n: int, url: str, work: Path) -> list[list[str]]:
        """S2, the fixed cost of one run: ``up`` on the up-to-date database of S1(n)."""
        return self.up(n, url, work)

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def warmup(self) -> list[str]:
        """A command that loads the tool without touching a database (run once, not timed)."""
        exe = getattr(self, "exe", None)
        return [exe, "--help"] if exe else ["true"]


def _sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


class Ours(Tool):
    def __init__(self) -> None:
        from thv_registry import __version__

        super().__init__("thv", f"thv-registry-api {__version__} (ours)")

    def prepare(self, work: Path, n: int, golang_dir: Path) -> None:
        self.sets[n] = golang_dir

    def warmup(self) -> list[str]:
        return [sys.executable, "-m", "thv_registry", "migrate", "up", "--help"]

    def _config(self, url: str, work: Path) -> Path:
        from urllib.parse import urlsplit

        u = urlsplit(url)
        dbname = u.path.lstrip("/")
        path = work / f"thv-{dbname}.yaml"
        path.write_text(
            f"database:\n  host: {u.hostname}\n  port: {u.port}\n  user: {u.username}\n"
            f"  database: {dbname}\n  sslmode: disable\n"
        )
        return path

    def _cmd(self, n: int, url: str, work: Path, *args: str) -> list[str]:
        cfg = self._config(url, work)
        script = VENV_BIN / "thv-registry-api"  # what a deploy runs; else python -m
        exe = [str(script)] if script.exists() else [sys.executable, "-m", "thv_registry"]
        base = [*exe, "migrate", *args]
        return [*base, "--config", str(cfg), "--migrations-dir", str(self.sets[n]), "--yes"]

    def up(self, n: int, url: str, work: Path) -> list[list[str]]:
        return [self._cmd(n, url, work, "up")]

    def down_all(self, n: int, url: str, work: Path) -> list[list[str]]:
        return [self._cmd(n, url, work, "down", "--num-steps", "0", "--no-backup")]


class Dbmate(Tool):
    def __init__(self) -> None:
        exe = _which("dbmate")
        version = _version([exe, "--version"]).split()[-1] if exe else ""
        super().__init__(
            "dbmate",
            f"dbmate {version}".strip(),
            note="dbmate: --migration-lock, --no-dump-schema; it reverts one migration per run, "
            "so S3 is one `dbmate rollback` per step.",
        )
        self.exe = exe

    def unavailable(self) -> str | None:
        return None if self.exe else "not installed: pip install -e '.[bench]'"

    def prepare(self, work: Path, n: int, golang_dir: Path) -> None:
        self.sets[n] = gen.write_dbmate(work / f"dbmate-{n}", n)

    def _cmd(self, n: int, url: str, verb: str) -> list[str]:
        assert self.exe
        return [
            self.exe,
            "--url",
            url + "?sslmode=disable",
            "--migrations-dir",
            str(self.sets[n]),
            "--no-dump-schema",
            "--migration-lock",
            verb,
        ]

    def up(self, n: int, url: str, work: Path) -> list[list[str]]:
        return [self._cmd(n, url, "migrate")]

    def down_all(self, n: int, url: str, work: Path) -> list[list[str]]:
        return [self._cmd(n, url, "rollback")] * n


class Yoyo(Tool):
    def __init__(self) -> None:
        version = _dist_version("yoyo-migrations")
        super().__init__(
            "yoyo",
            f"yoyo-migrations {version or ''}".strip(),
            note="yoyo: psycopg 3 backend (postgresql+psycopg://), --batch, its own lock table.",
        )
        self.exe = _which("yoyo") if version else None

    def unavailable(self) -> str | None:
        return None if self.exe else "not installed: pip install -e '.[bench]'"

    def prepare(self, work: Path, n: int, golang_dir: Path) -> None:
        self.sets[n] = gen.write_yoyo(work / f"yoyo-{n}", n)

    def _cmd(self, n: int, url: str, verb: str, *extra: str) -> list[str]:
        assert self.exe
        return [
            self.exe,
            verb,
            "--batch",
            "--no-config-file",
            *extra,
            "--database",
            _sa_url(url),
            str(self.sets[n]),
        ]

    def up(self, n: int, url: str, work: Path) -> list[list[str]]:
        return [self._cmd(n, url, "apply")]

    def down_all(self, n: int, url: str, work: Path) -> list[list[str]]:
        return [self._cmd(n, url, "rollback", "--all")]


class Alembic(Tool):
    def __init__(self) -> None:
        version = _dist_version("alembic")
        super().__init__(
            "alembic",
            f"alembic {version or ''} (raw SQL)".strip(),
            note="alembic: generated raw-SQL revisions (op.execute), transaction_per_migration; "
            "it has no migration lock, so racing processes collide.",
        )
        self.exe = _which("alembic") if version else None

    def unavailable(self) -> str | None:
        return None if self.exe else "not installed: pip install -e '.[bench]'"

    def prepare(self, work: Path, n: int, golang_dir: Path) -> None:
        self.sets[n] = work / f"alembic-{n}"
        gen.write_alembic(self.sets[n], n, "postgresql+psycopg://placeholder")

    def _ini(self, n: int, url: str, work: Path) -> Path:
        ini = work / f"alembic-{n}-{url.rsplit('/', 1)[-1]}.ini"
        text = (self.sets[n] / "alembic.ini").read_text()
        ini.write_text(text.replace("postgresql+psycopg://placeholder", _sa_url(url)))
        return ini

    def up(self, n: int, url: str, work: Path) -> list[list[str]]:
        assert self.exe
        return [[self.exe, "-c", str(self._ini(n, url, work)), "upgrade", "head"]]

    def down_all(self, n: int, url: str, work: Path) -> list[list[str]]:
        assert self.exe
        return [[self.exe, "-c", str(self._ini(n, url, work)), "downgrade", "base"]]


class SqlMigrate(Tool):
    def __init__(self) -> None:
        self.exe = shutil.which("sql-migrate")
        version = _version([self.exe, "--version"]) if self.exe else ""
        super().__init__(
            "sqlmigrate",
            f"sql-migrate {version}".strip(),
            note="sql-migrate: Debian's package (`apt-get install sql-migrate`); it has no "
            "migration lock, so racing processes collide.",
        )

    def unavailable(self) -> str | None:
        return (
            None if self.exe else "not installed: a Go binary (Debian: apt-get install sql-migrate)"
        )

    def prepare(self, work: Path, n: int, golang_dir: Path) -> None:
        self.sets[n] = gen.write_sql_migrate(work / f"sqlmigrate-{n}", n)

    def _cmd(self, n: int, url: str, work: Path, verb: str, *extra: str) -> list[str]:
        assert self.exe
        cfg = work / f"sqlmigrate-{n}-{url.rsplit('/', 1)[-1]}.yml"
        cfg.write_text(
            f"bench:\n  dialect: postgres\n  datasource: {url}?sslmode=disable\n"
            f"  dir: {self.sets[n]}\n"
        )
        return [self.exe, verb, f"-config={cfg}", "-env=bench", *extra]

    def up(self, n: int, url: str, work: Path) -> list[list[str]]:
        return [self._cmd(n, url, work, "up")]

    def down_all(self, n: int, url: str, work: Path) -> list[list[str]]:
        return [self._cmd(n, url, work, "down", "-limit=0")]


class PsqlFloor(Tool):
    """psql running the files itself: one session, no bookkeeping. The floor S1 and S3 use."""

    def __init__(self, psql: Path, *, per_file: bool) -> None:
        kind = "one transaction per file" if per_file else "all files in one transaction"
        super().__init__(
            "psqltx" if per_file else "psqlone",
            f"psql floor: {kind}",
            races=False,
            floor=True,
        )
        self.psql = psql
        self.per_file = per_file
        self.scripts: dict[int, dict[str, Path]] = {}

    def prepare(self, work: Path, n: int, golang_dir: Path) -> None:
        self.scripts[n] = gen.write_psql_scripts(work / f"psql-{n}", golang_dir, n)

    def warmup(self) -> list[str]:
        return [str(self.psql), "--version"]

    def _cmd(self, url: str, script: Path) -> list[str]:
        return [str(self.psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(script)]

    def noop(self, n: int, url: str, work: Path) -> list[list[str]]:
        return [_psql_noop(self.psql, url)]

    def up(self, n: int, url: str, work: Path) -> list[list[str]]:
        kind = "up_per_file" if self.per_file else "up_one_tx"
        return [self._cmd(url, self.scripts[n][kind])]

    def down_all(self, n: int, url: str, work: Path) -> list[list[str]]:
        kind = "down_per_file" if self.per_file else "down_one_tx"
        return [self._cmd(url, self.scripts[n][kind])]


class PsqlPerProcess(Tool):
    """``psql -1 -f FILE`` once per file, as a shell loop would: a process and a connection each."""

    def __init__(self, psql: Path) -> None:
        super().__init__("psqlproc", "psql, one process per file (-1 -f each)", races=False)
        self.psql = psql

    def prepare(self, work: Path, n: int, golang_dir: Path) -> None:
        self.sets[n] = golang_dir

    def warmup(self) -> list[str]:
        return [str(self.psql), "--version"]

    def noop(self, n: int, url: str, work: Path) -> list[list[str]]:
        return [_psql_noop(self.psql, url)]

    def _cmds(self, url: str, files: list[Path]) -> list[list[str]]:
        base = [str(self.psql), "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"]
        return [[*base, str(f)] for f in files]

    def up(self, n: int, url: str, work: Path) -> list[list[str]]:
        files = [self.sets[n] / f"{i:06d}_step_{i}.up.sql" for i in range(1, n + 1)]
        return self._cmds(url, files)

    def down_all(self, n: int, url: str, work: Path) -> list[list[str]]:
        files = [self.sets[n] / f"{i:06d}_step_{i}.down.sql" for i in range(n, 0, -1)]
        return self._cmds(url, files)


def _psql_noop(psql: Path, url: str) -> list[str]:
    """A psql session that runs no file (S2 of the psql rows: what the per-step cost excludes)."""
    return [str(psql), "-X", "-q", "-d", url, "-c", "select 1"]


def all_tools(psql: Path) -> list[Tool]:
    return [
        Ours(),
        PsqlFloor(psql, per_file=True),
        PsqlFloor(psql, per_file=False),
        PsqlPerProcess(psql),
        Dbmate(),
        Yoyo(),
        Alembic(),
        SqlMigrate(),
    ]
