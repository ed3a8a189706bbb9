"""Interrupt a running ``migrate up`` at random moments; check the database after every trial.

Each trial resets a scratch database, starts ``thv-registry-api migrate up --yes`` on a small
migration set whose second step sleeps between two CREATE TABLEs and whose third step is
non-transactional (CREATE INDEX CONCURRENTLY, dirty protocol), then interrupts it:

- ``kill``: SIGKILL the CLI at a random moment of the run;
- ``term``: ``pg_terminate_backend`` its backend(s) at a random moment;
- ``int``: SIGINT (Ctrl-C) while a step runs.

Invariant after every trial: the schema is exactly the one of some version k and
schema_migrations says k, clean; or, only for the non-transactional step, dirty, with `up`
refusing (exit 9) and naming both `force` commands, the schema matching one of them once a
half-built index is dropped. Then the recovery is applied and the next `up` must finish.

    python scripts/kill_trials.py --trials 200 [--mode kill|term|int|mix] [--config FILE]

With ``--config``, a scratch database is created on that server (the user needs CREATEDB) and
dropped at the end; without it, the embedded PostgreSQL is used. Prints the distribution of the
states the trials ended in; exits 1 if any invariant was broken.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from thv_registry.config import ConnectionParams
from thv_registry.migrations import Migrator, Source, Up
from thv_registry.migrations.engine.migrator import APPLICATION_NAME
from thv_registry.migrations.tools import snapshot as snap

SLEEP_S = 0.3
MIGRATIONS = {
    "000001_a.up.sql": "CREATE TABLE a (id int PRIMARY KEY, v text);\n",
    "000001_a.down.sql": "DROP TABLE a;\n",
    "000002_b.up.sql": (
        "CREATE TABLE x (id int PRIMARY KEY);\n"
        f"SELECT pg_sleep({SLEEP_S});\n"
        "CREATE TABLE y (id int PRIMARY KEY, x_id int REFERENCES x (id));\n"
    ),
    "000002_b.down.sql": "DROP TABLE y;\nDROP TABLE x;\n",
    "000003_c.up.sql": "CREATE INDEX CONCURRENTLY a_v_idx ON a (v);\nSELECT pg_sleep(0.1);\n",
    "000003_c.down.sql": "DROP INDEX CONCURRENTLY a_v_idx;\n",
    "000004_d.up.sql": "CREATE TABLE z (id int PRIMARY KEY);\n",
    "000004_d.down.sql": "DROP TABLE z;\n",
}
FINAL = 4
DIRTY_STEP = 3  #: the non-transactional step: the only one allowed to leave the database dirty
EXIT_OK, EXIT_CONNECTION, EXIT_DIRTY, EXIT_INTERRUPTED = 0, 6, 9, 130
#: what each interruption may end with (None: killed); exit 6 must say the connection was lost
ALLOWED_EXITS: dict[str, set[int | None]] = {
    "kill": {None, EXIT_OK},
    "term": {EXIT_OK, EXIT_CONNECTION},
    "int": {EXIT_OK, EXIT_INTERRUPTED},
}


@dataclass(frozen=True)
class Outcome:
    mode: str
    delay: float
    exit_code: int | None  #: None: killed
    version: int | None
    dirty: bool
    problems: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        shown = "none" if self.version is None else str(self.version)
        return f"{shown}{' dirty' if self.dirty else ''}"


class Harness:
    """A scratch database, a config file pointing at it, and the migration set."""

    def __init__(self, params: ConnectionParams, workdir: Path, env: dict[str, str]) -> None:
        self.params = params
        self.workdir = workdir
        self.env = env
        self.migrations = workdir / "migrations"
        self.migrations.mkdir(parents=True, exist_ok=True)
        for name, body in MIGRATIONS.items():
            (self.migrations / name).write_text(body)
        self.config = workdir / "config.yaml"
        self.config.write_text(
            "database:\n"
            f"  host: {params.host!r}\n  port: {params.port}\n  user: {params.user!r}\n"
            f"  database: {params.dbname!r}\n  sslmode: disable\n"
            "migrations:\n  lockWaitSeconds: 30\n"
        )
        self.snapshots: list[snap.Snapshot] = []
        self.run_time = 1.0

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(conninfo(self.params), autocommit=True)

    def migrator(self) -> Migrator:
        return Migrator(self.params, Source.from_directory(self.migrations), lock_wait_s=30)

    def reset(self) -> None:
        with self.connect() as conn:
            tables = ["z", "y", "x", "a", "schema_migrations", "schema_migrations_history"]
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(
                    sql.SQL(", ").join(sql.Identifier(t) for t in tables)
                )
            )

    def calibrate(self) -> None:
        """Reference schemas of versions 0..FINAL (library), and the CLI's run time (one run)."""
        self.reset()
        m = self.migrator()
        with self.connect() as conn:
            self.snapshots = [snap.take(conn)]
            for _ in range(FINAL):
                m.apply(Up(1))
                self.snapshots.append(snap.take(conn))
        self.reset()
        started = time.monotonic()
        done = self.cli("up", "--yes")
        self.run_time = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"calibration run failed: {done.stderr}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "thv_registry", "migrate", *args, *self._common()],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start_up(self, *extra: str) -> subprocess.Popen[str]:
        """Start `migrate up --yes` in the background, with Ctrl-C (SIGINT) behaving as in a shell.

        A shell without job control starts background commands with SIGINT ignored, and a child
        inherits that; the default is restored so that SIGINT trials mean something anywhere.
        """
        return subprocess.Popen(
            [sys.executable, "-m", "thv_registry", "migrate", "up", "--yes", *self._common()]
            + list(extra),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def _common(self) -> list[str]:
        return ["--config", str(self.config), "--migrations-dir", str(self.migrations)]

    def trial(self, mode: str, rng: random.Random) -> Outcome:
        self.reset()
        proc = self.start_up()
        delay = self._interrupt(proc, mode, rng)
        _, stderr = proc.communicate(timeout=120)
        code = None if proc.returncode == -signal.SIGKILL else proc.returncode
        self._wait_backends_gone()
        problems = self._check_exit(mode, code, stderr)
        version, dirty, found = self._check_state()
        problems += found
        if dirty:
            problems += self._recover(version)
        problems += self._finish()
        return Outcome(mode, delay, code, version, dirty, tuple(problems))

    def _interrupt(self, proc: subprocess.Popen[str], mode: str, rng: random.Random) -> float:
        if mode == "int":  # Ctrl-C while a step runs: wait for a step's pg_sleep, then a bit
            started = time.monotonic()
            while proc.poll() is None and not self._backends(query="pg_sleep"):
                if time.monotonic() - started > 60:
                    proc.kill()
                    raise RuntimeError("the migrator ran no pg_sleep step within 60 s")
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.08))
            proc.send_signal(signal.SIGINT)
            return time.monotonic() - started
        delay = rng.uniform(0, self.run_time * 1.05)
        time.sleep(delay)
        if mode == "kill":
            proc.kill()
        else:
            with self.connect() as conn:
                for pid in self._backends():
                    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return delay

    def _backends(self, query: str = "") -> list[int]:
        """The migrator's backends; with ``query``, only those running a query containing it."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
                "AND (%s = '' OR (state = 'active' AND strpos(query, %s) > 0))",
                (self.params.dbname, APPLICATION_NAME, query, query),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def _wait_backends_gone(self) -> None:
        deadline = time.monotonic() + 30
        with self.connect() as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND application_name = %s",
                    (self.params.dbname, APPLICATION_NAME),
                ).fetchone()
                if row is None or row[0] == 0:
                    return
                time.sleep(0.01)
        raise RuntimeError("the killed migrator's backend did not end within 30 s")

    @staticmethod
    def _check_exit(mode: str, code: int | None, stderr: str) -> list[str]:
        allowed = ALLOWED_EXITS[mode]
        problems = []
        if code not in allowed:
            problems.append(f"{mode}: exit {code} not in {sorted(map(str, allowed))}: {stderr}")
        if "Traceback" in stderr:
            problems.append(f"{mode}: a traceback was printed: {stderr}")
        if code == EXIT_CONNECTION and "was lost" not in stderr:
            problems.append(f"{mode}: exit 6 without saying the connection was lost: {stderr}")
        return problems

    def _check_state(self) -> tuple[int | None, bool, list[str]]:
        """(version, dirty, problems): the schema must be exactly the one the state names."""
        with self.connect() as conn:
            exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            row = exists.fetchone()
            rows = (
                conn.execute("SELECT version, dirty FROM schema_migrations").fetchall()
                if (row and row[0])
                else []
            )
            now = snap.take(conn)
        if len(rows) > 1:
            return None, False, [f"schema_migrations has {len(rows)} rows"]
        version = int(rows[0][0]) if rows else None
        dirty = bool(rows[0][1]) if rows else False
        if version == -1:
            version = None
        if dirty and version != DIRTY_STEP:
            return version, dirty, [f"dirty at {version}: only step {DIRTY_STEP} may be dirty"]
        if dirty:
            return version, dirty, []  # checked against the recovery in _recover
        expected = self.snapshots[version or 0]
        if now != expected:
            diff = "; ".join(str(d) for d in snap.diff(expected, now))
            return version, dirty, [f"state says {version} clean, but the schema differs: {diff}"]
        return version, dirty, []

    def _recover(self, version: int | None) -> list[str]:
        """Dirty at the index step: `up` must refuse naming both forces; then recover by hand."""
        problems = []
        refused = self.cli("up", "--yes")
        if refused.returncode != EXIT_DIRTY or not all(
            f"migrate force {v}" in refused.stderr for v in (DIRTY_STEP, DIRTY_STEP - 1)
        ):
            problems.append(f"dirty: up did not refuse with the recovery: {refused.stderr}")
        with self.connect() as conn:
            row = conn.execute(
                "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass('a_v_idx')"
            ).fetchone()
            if row is not None and row[0]:
                target = DIRTY_STEP  # the index was built: the step's work is done
            else:
                conn.execute("DROP INDEX IF EXISTS a_v_idx")  # half-built (invalid) or absent
                target = DIRTY_STEP - 1
            if snap.take(conn) != self.snapshots[target]:
                problems.append(f"dirty at {version}: the schema is neither version's")
        forced = self.cli("force", str(target), "--yes")
        if forced.returncode != 0:
            problems.append(f"force {target} failed: {forced.stderr}")
        return problems

    def _finish(self) -> list[str]:
        """The next `up` (library, same engine as the CLI) must finish at the final version."""
        result = self.migrator().apply(Up())
        with self.connect() as conn:
            if result.final.version != FINAL or snap.take(conn) != self.snapshots[FINAL]:
                return [f"the next up ended at {result.final}, not {FINAL} with its schema"]
        return []


def conninfo(params: ConnectionParams) -> str:
    kwargs: dict[str, Any] = dict(params.connect_kwargs())
    return psycopg.conninfo.make_conninfo(**kwargs)


@contextmanager
def scratch_database(params: ConnectionParams) -> Iterator[ConnectionParams]:
    """A fresh database on ``params``' server, dropped afterwards."""
    name = f"thv_kill_trials_{uuid.uuid4().hex[:10]}"
    admin = conninfo(params)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield ConnectionParams(
            params.host, params.port, params.user, name, params.sslmode, params.password
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def run_trials(harness: Harness, trials: int, mode: str, seed: int) -> list[Outcome]:
    rng = random.Random(seed)
    modes = ["kill", "term", "int"] if mode == "mix" else [mode]
    harness.calibrate()
    return [harness.trial(modes[i % len(modes)], rng) for i in range(trials)]


def summary(outcomes: list[Outcome]) -> str:
    lines = []
    for mode in sorted({o.mode for o in outcomes}):
        mine = [o for o in outcomes if o.mode == mode]
        states = collections.Counter(o.label for o in mine)
        exits = collections.Counter("killed" if o.exit_code is None else o.exit_code for o in mine)
        lines.append(f"{mode}: {len(mine)} trials")
        lines.append("  ended at: " + ", ".join(f"{k}: {n}" for k, n in sorted(states.items())))
        lines.append(
            "  exit:     " + ", ".join(f"{k}: {n}" for k, n in sorted(exits.items(), key=str))
        )
    bad = [p for o in outcomes for p in o.problems]
    lines.append(f"invariant violations: {len(bad)}")
    lines.extend(f"  {p}" for p in bad[:20])
    return "\n".join(lines)


def _server_params(config: Path | None) -> ConnectionParams:
    if config is not None:
        from thv_registry.config import load_config

        return load_config(config).migration_params()
    from thv_registry.db.embedded import start_embedded

    server = start_embedded()
    return ConnectionParams(server.host, server.port, server.user, "postgres", "disable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--mode", choices=["kill", "term", "int", "mix"], default="kill")
    parser.add_argument("--config", type=Path, help="a config whose server hosts the scratch db")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("THV_REGISTRY_")}
    env["PYTHONUNBUFFERED"] = "1"
    server = _server_params(args.config)
    if server.password is not None:  # never on a command line or in the scratch config
        env["THV_REGISTRY_DATABASE_PASSWORD"] = server.password
    started = time.monotonic()
    with (
        scratch_database(server) as params,
        tempfile.TemporaryDirectory(prefix="thv-kill-") as work,
    ):
        harness = Harness(params, Path(work), env)
        outcomes = run_trials(harness, args.trials, args.mode, args.seed)
    print(
        f"seed {args.seed}, {len(outcomes)} trials in {time.monotonic() - started:.0f} s, "
        f"CLI run time {harness.run_time:.2f} s"
    )
    print(summary(outcomes))
    return 1 if any(o.problems for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
