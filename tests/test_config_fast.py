"""load_config_values: the CLI's pydantic-free fast path agrees with the pydantic models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from thv_registry import config, config_fast
from thv_registry.config import load_config
from thv_registry.config_fast import ConfigValues, load_config_values
from thv_registry.config_models import DatabaseSettings, MigrationSettings
from thv_registry.errors import ConfigError

DB = "database:\n  host: db.example.com\n  user: app\n  database: reg\n"

CASES = {
    "minimal": DB,
    "all-keys": DB + "  port: 6432\n  migrationUser: mig\n  password: pw\n"
    "  migrationPassword: mpw\n  sslmode: Verify-Full\n  maxOpenConns: 10\n  maxIdleConns: 0\n"
    "  connMaxLifetime: 30m\n  maxMetaSize: 100\n",
    "case-insensitive-keys": "DATABASE:\n  HOST: h\n  User: app\n  Database: d\n"
    "  SSLMODE: disable\n",
    "empty-values": DB + '  password: ""\n  migrationUser: ""\n  sslmode: ""\n',
    "null-values": DB + "  password:\n  migrationUser:\n  maxOpenConns:\n",
    "ip-and-socket-hosts": "database:\n  host: 10.0.0.1,/var/run/postgresql\n  user: u\n"
    "  database: d\n",
    "migrations-block": DB + "migrations:\n  lockWaitSeconds: 2\n  lockTimeoutMs: 0\n"
    "  lockRetries: 100\n",
    "migrations-float-wait": DB + "migrations:\n  lockWaitSeconds: 0.5\n",
    "empty-migrations-block": DB + "migrations:\n",
    "no-database-block": "migrations:\n  lockRetries: 1\nauth:\n  mode: anonymous\n",
    "other-top-level-keys": DB + "registries:\n  - name: x\n",
    "merge-keys": "base: &b\n  host: h\n  user: u\ndatabase:\n  <<: *b\n  database: d\n",
}

BAD = {
    "quoted-port": DB + '  port: "5432"\n',
    "port-zero": DB + "  port: 0\n",
    "bool-port": DB + "  port: true\n",
    "numeric-user": "database:\n  host: h\n  user: 12\n  database: d\n",
    "bad-sslmode": DB + "  sslmode: sometimes\n",
    "bad-host": "database:\n  host: 'a b'\n  user: u\n  database: d\n",
    "unknown-key": DB + "  colour: blue\n",
    "dup-spelling": DB + "  sslmode: disable\n  sslMode: require\n",
    "nan-wait": DB + "migrations:\n  lockWaitSeconds: .nan\n",
    "retries-too-many": DB + "migrations:\n  lockRetries: 101\n",
    "dynamic-auth": DB + "  dynamicAuth:\n    awsRdsIam: {}\n",
    "missing-user": "database:\n  host: h\n  database: d\n",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("THV_REGISTRY_"):
            monkeypatch.delenv(name)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text", list(CASES.values()), ids=list(CASES))
def test_fast_path_equals_the_models(
    tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, text)
    expected = ConfigValues.from_settings(load_config(path))

    def no_pydantic(_path: Path) -> None:
        raise AssertionError("a plain valid file took the pydantic path")

    monkeypatch.setattr(config, "load_config", no_pydantic)
    assert load_config_values(path) == expected


@pytest.mark.parametrize("text", list(BAD.values()), ids=list(BAD))
def test_invalid_files_get_the_models_error(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as slow:
        load_config(path)
    with pytest.raises(ConfigError) as fast:
        load_config_values(path)
    assert str(fast.value) == str(slow.value)


def test_env_passwords_apply_on_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, DB + "  migrationUser: mig\n  password: file-pw\n")
    monkeypatch.setenv(config.PASSWORD_ENV, "env-pw")
    values = load_config_values(path)
    assert values == ConfigValues.from_settings(load_config(path))
    assert values.migration_params().password == "env-pw"
    assert "env-pw" not in repr(values)


def test_field_keys_match_the_models_aliases() -> None:
    for block, model in (("database", DatabaseSettings), ("migrations", MigrationSettings)):
        assert list(config_fast.FIELD_KEYS[block]) == list(model.model_fields)
        for name in model.model_fields:
            assert list(config_fast.FIELD_KEYS[block][name]) == config._spellings(model, name)


def test_a_plain_file_is_read_without_pydantic(tmp_path: Path) -> None:
    path = _write(tmp_path, CASES["all-keys"])
    code = (
        "import sys; from pathlib import Path; "
        "from thv_registry.config_fast import load_config_values;"
        f"v = load_config_values(Path({str(path)!r})); assert v.database.port == 6432;"
        "print('pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
