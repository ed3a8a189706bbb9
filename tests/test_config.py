"""load_config: the database and migrations blocks, the file itself, env overrides, and one clear
ConfigError (file, key path, line) for every kind of mistake, never showing a password.

The server's blocks (sources, registries, auth, telemetry, audit, server) are in
test_config_server.py; Go durations in test_config_durations.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from thv_registry.cli.hints import describe
from thv_registry.config import (
    ConnectionParams,
    DatabaseSettings,
    MigrationSettings,
    Settings,
    load_config,
)
from thv_registry.errors import ConfigError, ExitCode
from thv_registry.migrations.engine import migrator

SECRET = "Sup3r-Secret-pw"

MINIMAL = """\
database:
  host: db.example.com
  user: app
  database: toolhive_registry
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("THV_REGISTRY_"):
            monkeypatch.delenv(name)


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _load(tmp_path: Path, text: str) -> Settings:
    return load_config(_write(tmp_path, text))


def _error(tmp_path: Path, text: str) -> ConfigError:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.exit_code == ExitCode.CONFIG
    assert str(path) in err.message
    assert "\n" not in str(err)
    assert SECRET not in str(err)
    if err.reason is None:
        assert describe(err) == str(err)  # the CLI adds nothing to a content problem
    return err


# -- valid files -----------------------------------------------------------------------------------


def test_full_file(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        f"""\
        database:
          host: localhost
          port: 5433
          user: app
          migrationUser: migrator
          password: app-pw
          migrationPassword: {SECRET}
          database: toolhive_registry
          sslmode: disable
        migrations:
          lockWaitSeconds: 2.5
          lockTimeoutMs: 0
          lockRetries: 7
        """,
    )
    assert settings.path == tmp_path / "config.yaml"
    assert settings.migrations == MigrationSettings(
        lock_wait_seconds=2.5, lock_timeout_ms=0, lock_retries=7
    )
    assert settings.migration_params() == ConnectionParams(
        "localhost", 5433, "migrator", "toolhive_registry", "disable", SECRET
    )
    app = settings.app_params()
    assert (app.user, app.password) == ("app", "app-pw")
    assert SECRET not in repr(settings) and SECRET not in str(settings.database)


def test_defaults(tmp_path: Path) -> None:
    settings = _load(tmp_path, MINIMAL)
    params = settings.migration_params()
    assert params == ConnectionParams(
        "db.example.com", 5432, "app", "toolhive_registry", "require", None
    )
    m = settings.migrations
    assert m == MigrationSettings()
    assert (m.lock_wait_seconds, m.lock_timeout_ms, m.lock_retries) == (
        migrator.DEFAULT_LOCK_WAIT_S,
        migrator.DEFAULT_LOCK_TIMEOUT_MS,
        migrator.DEFAULT_LOCK_RETRIES,
    )


def test_migration_user_and_password_default_to_app_ones(tmp_path: Path) -> None:
    settings = _load(tmp_path, MINIMAL + f"  password: {SECRET}\n")
    params = settings.migration_params()
    assert (params.user, params.password) == ("app", SECRET)


def test_no_password_leaves_it_to_pgpass(tmp_path: Path) -> None:
    params = _load(tmp_path, MINIMAL + '  password: ""\n').migration_params()
    assert params.password is None
    assert "password" not in params.connect_kwargs()
    assert params.connect_kwargs() == {
        "host": "db.example.com",
        "port": 5432,
        "user": "app",
        "dbname": "toolhive_registry",
        "sslmode": "require",
        "connect_timeout": 10,
    }


def test_connection_params_never_show_the_password() -> None:
    params = ConnectionParams("h", 1, "u", "d", "disable", SECRET)
    assert params.describe() == "u@h:1/d"
    assert SECRET not in repr(params) and SECRET not in str(params)
    assert params.connect_kwargs()["password"] == SECRET


@pytest.mark.parametrize("key", ["sslmode", "sslMode", "SSLMODE"])
def test_sslmode_spellings(tmp_path: Path, key: str) -> None:
    settings = _load(tmp_path, MINIMAL + f"  {key}: Verify-Full\n")
    assert settings.migration_params().sslmode == "verify-full"


def test_keys_match_case_insensitively_like_the_go_server(tmp_path: Path) -> None:
    text = "Database:\n  Host: h\n  USER: app\n  migrationuser: mig\n  database: d\n"
    assert _load(tmp_path, text).migration_params().user == "mig"


def test_go_server_database_keys(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        """\
        auth: {mode: anonymous}
        database:
          host: 10.0.0.5
          port: 5432
          user: app
          database: registry
          sslMode: verify-ca
          maxOpenConns: 20
          maxIdleConns: 5
          connMaxLifetime: 1h30m
          maxMetaSize: 65536
        """,
    )
    db = settings.database
    assert db is not None
    assert (db.max_open_conns, db.max_idle_conns, db.max_meta_size) == (20, 5, 65536)
    assert db.conn_max_lifetime == timedelta(hours=1, minutes=30)
    assert settings.migration_params().host == "10.0.0.5"
    assert settings.auth is not None and settings.auth.mode == "anonymous"


def test_database_defaults(tmp_path: Path) -> None:
    db = _load(tmp_path, MINIMAL).database
    assert db == DatabaseSettings(host="db.example.com", user="app", database="toolhive_registry")
    assert (db.port, db.sslmode, db.max_meta_size) == (5432, "require", 262144)
    assert db.max_open_conns is None and db.conn_max_lifetime is None


@pytest.mark.parametrize("host", ["/var/run/postgresql", "::1", "db_1.internal", "a.b,c.d"])
def test_host_forms(tmp_path: Path, host: str) -> None:
    text = MINIMAL.replace("db.example.com", f'"{host}"')
    assert _load(tmp_path, text).migration_params().host == host


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    text = """\
    x-base: &base
      host: shared
      port: 6000
    database:
      <<: *base
      port: 6001
      user: app
      database: d
    """
    params = _load(tmp_path, text).migration_params()
    assert (params.host, params.port) == ("shared", 6001)


def test_no_database_block(tmp_path: Path) -> None:
    settings = _load(tmp_path, "auth: {mode: anonymous}\nmigrations:\n  lockRetries: 1\n")
    assert settings.database is None and settings.migrations.lock_retries == 1
    with pytest.raises(ConfigError) as info:
        settings.migration_params()
    assert str(tmp_path / "config.yaml") in str(info.value)
    assert "no database: block" in str(info.value) and info.value.reason == "no_database"
    # an explicit --config never falls back to the embedded server (issue 11 item 1)
    assert "Add a database: block" in describe(info.value)
    assert "--database-url" in describe(info.value) and "embedded" not in describe(info.value)


@pytest.mark.parametrize("value", ['""', "", "~"])
def test_empty_text_means_the_default(tmp_path: Path, value: str) -> None:
    text = MINIMAL + f"  sslmode: {value}\n  password: {value}\n  migrationUser: {value}\n"
    db = _load(tmp_path, text).database
    assert db is not None and (db.sslmode, db.password, db.migration_user) == (
        "require",
        None,
        None,
    )


def test_empty_migrations_block_means_defaults(tmp_path: Path) -> None:
    assert _load(tmp_path, MINIMAL + "migrations:\n").migrations == MigrationSettings()


def test_models_built_in_code_share_the_defaults() -> None:
    db = DatabaseSettings(host="h", user="u", database="d", migration_user="m", sslmode="DISABLE")
    assert (db.migration_user, db.sslmode, db.port) == ("m", "disable", 5432)
    assert Settings().migrations == MigrationSettings() and Settings().database is None
    assert MigrationSettings(lock_retries=0).lock_retries == 0


def test_password_never_in_repr() -> None:
    db = DatabaseSettings(host="h", user="u", database="d", password=SECRET)
    assert SECRET not in repr(db) and SECRET not in str(Settings(database=db))
    assert db.password == SECRET


def test_marks_give_each_key_its_line(tmp_path: Path) -> None:
    settings = _load(tmp_path, "# top\n" + MINIMAL + "migrations:\n  lockRetries: 1\n")
    assert settings.marks["database"] == (2, 1)
    assert settings.marks["database.host"] == (3, 3)
    assert settings.marks["migrations.lockRetries"] == (7, 3)


def test_top_level_x_keys_are_ignored(tmp_path: Path) -> None:
    settings = _load(tmp_path, "x-anything: {a: 1}\nX-Other: [1]\n" + MINIMAL)
    assert settings.database is not None


# -- env overrides ---------------------------------------------------------------------------------


def test_env_overrides_passwords(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, MINIMAL + "  migrationUser: mig\n  password: from-file\n")
    monkeypatch.setenv("THV_REGISTRY_DATABASE_PASSWORD", "from-env")
    settings = load_config(path)
    assert settings.app_params().password == "from-env"
    assert settings.migration_params().password == "from-env"  # migrationPassword defaults
    monkeypatch.setenv("THV_REGISTRY_DATABASE_MIGRATIONPASSWORD", SECRET)
    settings = load_config(path)
    assert settings.migration_params().password == SECRET
    assert settings.app_params().password == "from-env"


def test_empty_env_password_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THV_REGISTRY_DATABASE_MIGRATIONPASSWORD", "")
    assert _load(tmp_path, MINIMAL).migration_params().password is None


# -- the file itself -------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.exit_code == ExitCode.CONFIG
    assert (info.value.message, info.value.reason) == (
        f"Configuration file {path} does not exist.",
        "missing",
    )
    assert describe(info.value) == (  # the CLI's words: the library names no flag
        f"Configuration file {path} does not exist. "
        "Pass --config with the path of your configuration file."
    )
    assert "--config" not in str(info.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory, not a file") as info:
        load_config(tmp_path)
    assert info.value.reason == "directory"
    assert "Pass --config with the path of the YAML file itself." in describe(info.value)


def test_unreadable_file(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL)
    path.chmod(0)
    message = _load_unprivileged(path) if os.geteuid() == 0 else _message(path)
    assert f"Cannot read configuration file {path}: permission denied." in message
    assert "chmod" in message


def _message(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return describe(info.value)


def _load_unprivileged(path: Path) -> str:
    """Root reads anything: load in a forked child that has become nobody."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                out = _message(path)
            except BaseException as exc:  # report anything to the parent
                out = f"unexpected: {exc!r}"
            os.write(write_fd, out.encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        out = pipe.read()
    os.waitpid(pid, 0)
    return out


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    err = _error(tmp_path, text)
    assert "is empty" in err.message and err.reason == "empty"
    assert "Add a database: block" in str(err) and "--config" not in str(err)
    assert describe(err).endswith(
        "Add a database: block with host, port, user and database, or run without --config to "
        "use the embedded PostgreSQL."
    )


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"database:\n  host: h\xe9\n")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(invalid byte at line 2\)"):
        load_config(path)


_KEYS = "known keys are host, port, user, migrationUser, password, migrationPassword, database"
_DB = "database:\n  host: h\n  user: u\n  database: d\n"  # keys added below are on line 5
_ERRORS = {  # file text -> the message fragment that names key path, line and column
    "bad-indent": (
        "database:\n  host: h\n user: app\n",
        "is not valid YAML: while parsing a block mapping (line 1), expected <block end>, "
        "but found '<block mapping start>' at line 3, column 2",
    ),
    "unclosed-quote-around-password": (
        f'database:\n  host: h\n  password: "{SECRET}\n  user: app\n',
        "while scanning a quoted scalar (line 3), found unexpected end of stream at line 5",
    ),
    "control-character": ("database:\n  host: h\x07\n", "YAML does not allow, at line 2"),
    "two-documents": (
        _DB + "---\n" + _DB,
        "expected a single document in the stream (line 1), but found another document at "
        "line 5, column 1",
    ),
    "top-level-list": ("- database\n", "at line 1: the top level must be a mapping of keys"),
    "top-level-text": (
        "just text\n",
        "the top level must be a mapping of keys such as database:, but it is the text 'just text'",
    ),  # fmt: skip
    "database-not-a-mapping": (
        "migrations: {}\ndatabase: postgres://h/db\n",
        "at line 2, column 1: database must be a mapping of keys, not the text 'postgres://h/db'"
        f"; it needs host, user, database; {_KEYS}",
    ),
    "database-empty": (
        "migrations:\ndatabase:\n",
        "at line 2, column 1: database is empty; it needs host, user, database; known keys",
    ),
    "missing-required-key": (
        "# comment\ndatabase:\n  host: h\n  database: d\n",
        "at line 2, column 1: database has no user key, which is required; add user: <a role name>",
    ),
    "null-required-value": (
        "database:\n  host:\n  user: u\n  database: d\n",
        "at line 2, column 3: database.host has no value; give a host name, an IP address",
    ),
    "port-text": (
        _DB + "  port: abc\n",
        "at line 5, column 3: database.port must be an integer from 1 to 65535, not the text 'abc'",
    ),  # fmt: skip
    "port-too-big": (
        _DB + "  port: 70000\n",
        "database.port must be an integer from 1 to 65535, not the number 70000",
    ),  # fmt: skip
    "port-zero": (_DB + "  port: 0\n", "line 5, column 3: database.port must be an integer"),
    "port-bool": (
        _DB + "  port: true\n",
        "database.port must be an integer from 1 to 65535, not the boolean true",
    ),  # fmt: skip
    "port-float": (_DB + "  port: 5432.5\n", "database.port must be an integer from 1 to 65535"),
    "number-for-text": (
        "database:\n  host: h\n  user: 1234\n  database: d\n",
        "line 3, column 3: database.user must be a role name (text), not the number 1234; "
        "put it in quotes",
    ),
    "empty-text": (
        'database:\n  host: h\n  user: ""\n  database: d\n',
        "at line 3, column 3: database.user must not be empty; give a role name",
    ),
    "did-you-mean": (
        "database:\n  host: h\n  user: u\n  databse: d\n",
        "at line 4, column 3: database.databse is not a known key; did you mean 'database'?",
    ),
    "did-you-mean-sslmode": (
        _DB + "  sslmod: x\n",
        "line 5, column 3: database.sslmod is not a known key; did you mean 'sslmode'?",
    ),  # fmt: skip
    "did-you-mean-camel": (
        _DB + "  migration_user: x\n",
        "database.migration_user is not a known key; did you mean 'migrationUser'?",
    ),  # fmt: skip
    "did-you-mean-password": (_DB + "  pasword: x\n", "did you mean 'password'?"),
    "unknown-key-lists-keys": (
        _DB + "  zzz: 1\n",
        "line 5, column 3: database.zzz is not a known key; it needs host, user, database; "
        + _KEYS,
    ),
    "top-level-typo": (
        "migrations: {}\ndatabse:\n  host: h\n",
        "at line 2, column 1: databse is not a known key; did you mean 'database'?",
    ),
    "bad-sslmode": (
        _DB + "  sslMode: required\n",
        "at line 5, column 3: database.sslMode must be one of disable, allow, prefer, require, "
        "verify-ca, verify-full; got 'required'",
    ),
    "duplicate-key": (
        _DB + "  user: other\n",
        "line 5, column 3: database.user is given twice (also at line 3)",
    ),  # fmt: skip
    "both-sslmode-spellings": (
        _DB + "  sslmode: disable\n  sslMode: require\n",
        "line 6, column 3: database.sslMode repeats database.sslmode; keep only one",
    ),
    "dynamic-auth": (
        _DB + "  dynamicAuth:\n    awsRdsIam: {region: detect}\n",
        "line 5, column 3: database.dynamicAuth (AWS RDS IAM authentication) is not supported",
    ),
    "migrations-not-a-mapping": (
        _DB + "migrations: [1]\n",
        "line 5, column 1: migrations must be a mapping of keys, not a list; known keys are "
        "lockWaitSeconds, lockTimeoutMs, lockRetries, statementTimeoutMs, schema, dumpSchema, "
        "keepBackups",
    ),
    "lock-wait-negative": (
        _DB + "migrations:\n  lockWaitSeconds: -1\n",
        "line 6, column 3: migrations.lockWaitSeconds must be a number of seconds from 0 (do not "
        "wait) to 86400",
    ),
    "statement-timeout-negative": (
        _DB + "migrations:\n  statementTimeoutMs: -1\n",
        "line 6, column 3: migrations.statementTimeoutMs must be a whole number of milliseconds, "
        "0 (not set) or more",
    ),
    "schema-not-a-plain-name": (
        _DB + "migrations:\n  schema: My Schema\n",
        "line 6, column 3: migrations.schema must be a plain lower-case schema name",
    ),
    "keep-backups-negative": (
        _DB + "migrations:\n  keepBackups: -2\n",
        "line 6, column 3: migrations.keepBackups must be a whole number, 0 or more",
    ),
    "connect-timeout-zero": (
        _DB + "  connectTimeout: 0\n",
        "line 5, column 3: database.connectTimeout must be a whole number of seconds from 1 to "
        "3600",
    ),
    "lock-timeout-negative": (
        _DB + "migrations:\n  lockTimeoutMs: -1\n",
        "line 6, column 3: migrations.lockTimeoutMs must be a whole number of milliseconds",
    ),
    "top-level-unknown-lists-keys": (
        "registryName: r\n",
        "at line 1, column 1: registryName is not a known key; did you mean 'registries'?",
    ),
    "top-level-unknown-no-match": (
        "fileStorage: {baseDir: ./data}\n",
        "at line 1, column 1: fileStorage is not a known key; known keys are database, "
        "migrations, sources, registries, auth, server, telemetry, audit",
    ),
    "top-level-repeated-in-other-case": (
        _DB + "Database: {}\n",
        "line 5, column 1: Database repeats database; keep only one",
    ),
    "lock-wait-nan": (
        _DB + "migrations:\n  lockWaitSeconds: .nan\n",
        "line 6, column 3: migrations.lockWaitSeconds must be a number of seconds from 0",
    ),
    "lock-retries-too-many": (
        _DB + "migrations:\n  lockRetries: 101\n",
        "migrations.lockRetries must be a whole number from 0 to 100, not the number 101",
    ),
    "quoted-port": (
        _DB + '  port: "5432"\n',
        "line 5, column 3: database.port must be an integer from 1 to 65535, not the text '5432'",
    ),
    "max-open-conns-negative": (
        _DB + "  maxOpenConns: -1\n",
        "database.maxOpenConns must be a whole number, 0 or more, not the number -1",
    ),
    "max-meta-size-zero": (
        _DB + "  maxMetaSize: 0\n",
        "database.maxMetaSize must be a number of bytes greater than 0, not the number 0",
    ),
    "conn-max-lifetime-go-syntax": (
        _DB + "  connMaxLifetime: 1 hour\n",
        "line 5, column 3: database.connMaxLifetime must be a duration such as 30s, 5m or 1h30m: "
        "'1 hour' has an unknown unit ' hour'",
    ),
    "conn-max-lifetime-number": (
        _DB + "  connMaxLifetime: 3600\n",
        "database.connMaxLifetime must be a duration such as 30s, 5m or 1h30m (text), not the "
        "number 3600",
    ),
    "conn-max-lifetime-negative": (
        _DB + "  connMaxLifetime: -5m\n",
        "database.connMaxLifetime must not be negative",
    ),
    "lock-retries-typo": (
        _DB + "migrations:\n  lockRetrys: 2\n",
        "migrations.lockRetrys is not a known key; did you mean 'lockRetries'?",
    ),
}


@pytest.mark.parametrize(("text", "expected"), _ERRORS.values(), ids=_ERRORS.keys())
def test_problem_names_key_path_and_line(tmp_path: Path, text: str, expected: str) -> None:
    err = _error(tmp_path, text)
    assert expected in err.message
    assert "has no database key" not in err.message  # a did-you-mean explains it already


@pytest.mark.parametrize("host", ["bad host", "relative/dir", "~/sock", "-x"])
def test_bad_host(tmp_path: Path, host: str) -> None:
    err = _error(tmp_path, f'database:\n  host: "{host}"\n  user: u\n  database: d\n')
    assert "line 2, column 3: database.host must be a host name, an IP address" in err.message


@pytest.mark.parametrize("value", ["12345678", f"[{SECRET}]", f"{{x: {SECRET}}}", "true"])
def test_wrong_password_type_never_echoes_it(tmp_path: Path, value: str) -> None:
    err = _error(tmp_path, _DB + f"  migrationPassword: {value}\n")
    assert "database.migrationPassword must be a password (text)" in err.message
    assert "12345678" not in str(err)


def test_every_problem_in_one_paragraph(tmp_path: Path) -> None:
    err = _error(
        tmp_path,
        f"""\
        migrations: {{}}
        database:
          host: h
          port: abc
          user: app
          password: {SECRET}
          databse: d
          sslmode: nope
        """,
    )
    assert f"Invalid configuration in {tmp_path / 'config.yaml'}, 3 problems: (1) line 4" in (
        err.message
    )
    assert "(2) line 7, column 3: database.databse" in err.message
    assert "(3) line 8, column 3: database.sslmode must be one of" in err.message
    assert err.hint == f"Edit {tmp_path / 'config.yaml'} and run the command again."


# -- migration commands ------------------------------------------------------------------------


def test_timeouts_schema_and_files_of_the_migrations_block(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        MINIMAL
        + "  connectTimeout: 3\n"
        + "migrations:\n  lockWaitSeconds: 0\n  statementTimeoutMs: 60000\n"
        + "  schema: registry\n  dumpSchema: db/schema.sql\n  keepBackups: 2\n",
    )
    tuning = settings.migrations
    assert (tuning.lock_wait_seconds, tuning.statement_timeout_ms) == (0, 60000)
    assert (tuning.schema, tuning.keep_backups) == ("registry", 2)
    assert settings.dump_schema_path() == tmp_path / "db" / "schema.sql"  # beside the file
    for params in (settings.migration_params(), settings.app_params()):
        assert (params.connect_timeout, params.search_path) == (3, "registry")
        kwargs = params.connect_kwargs()
        assert kwargs["connect_timeout"] == 3
        assert kwargs["options"] == "-c search_path=registry"


def test_migrations_block_defaults(tmp_path: Path) -> None:
    settings = _load(tmp_path, MINIMAL)
    tuning = settings.migrations
    assert (tuning.statement_timeout_ms, tuning.schema, tuning.dump_schema) == (0, None, None)
    assert tuning.keep_backups == 10 and settings.dump_schema_path() is None
    params = settings.migration_params()
    assert params.connect_timeout == 10 and "options" not in params.connect_kwargs()
    absolute = _load(tmp_path, MINIMAL + f"migrations:\n  dumpSchema: {tmp_path}/s.sql\n")
    assert absolute.dump_schema_path() == tmp_path / "s.sql"


def test_a_migration_only_file_needs_no_server_block(tmp_path: Path) -> None:
    settings = _load(tmp_path, MINIMAL + "migrations:\n  lockTimeoutMs: 100\n")
    assert (settings.sources, settings.registries, settings.auth) == ((), (), None)
    assert settings.telemetry is None and settings.audit is None
    assert settings.server.address == ":8080"  # defaults, unused by migration commands


def test_server_blocks_are_checked_when_present(tmp_path: Path) -> None:
    err = _error(tmp_path, MINIMAL + "sources:\n  - name: Bad_Name\n    managed: {}\n")
    assert "line 6, column 5: sources[0].name must be a DNS label" in err.message


def test_help_imports_no_config_models() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['thv-registry-api', 'migrate', 'up', '--help']\n"
        "from thv_registry.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in ('msgspec', 'yaml', 'thv_registry.config') if m in sys.modules]\n"
        "print(loaded, file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage:" in out.stdout
    assert out.stderr.strip() == "[]"
