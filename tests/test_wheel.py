"""The built wheel migrates with no source tree around: installed in a fresh venv, run elsewhere.

The fresh venv borrows the already-installed third-party dependencies through a path entry (so the
test needs no network), but thv_registry itself comes only from the wheel: the editable install's
hook is not processed there, which the test checks.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO_ROOT, TestDatabase
from thv_registry.migrations.engine.source import load_source


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO_ROOT),
        ],
        check=True,
        cwd=base,
    )
    (wheel,) = dist.glob("thv_registry-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "_dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        check=True,
        cwd=base,
    )
    yield venv


def run(venv: Path, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "thv-registry-api"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_wheel_carries_the_migrations(wheel_venv: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [
            str(wheel_venv / "bin" / "python"),
            "-c",
            "import thv_registry, thv_registry.database as d; "
            "print(thv_registry.__file__); "
            "print(sorted(p.name for p in d.embedded_migrations().iterdir()))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith(str(wheel_venv)), out
    assert "000001_init.up.sql" in out[1] and "000001_init.down.sql" in out[1]


def test_wheel_carries_the_sample_registry(wheel_venv: Path, tmp_path: Path) -> None:
    """serve without --config reads the sample registry from the installed package."""
    out = subprocess.run(
        [
            str(wheel_venv / "bin" / "python"),
            "-c",
            "from thv_registry.sample import SAMPLE_REGISTRY as s; "
            "from thv_registry.sync.upstream import parse; "
            "print(s); print(len(parse('sample', str(s), s.read_bytes()).servers))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith(str(wheel_venv)), out
    assert int(out[1]) > 0


def test_installed_wheel_migrates_up_and_down_from_an_unrelated_directory(
    wheel_venv: Path, database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    config = database.write_config(tmp_path / "config.yaml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    up = run(
        wheel_venv, "migrate", "up", "--config", str(config), "--yes", cwd=elsewhere, env=cli_env
    )
    assert up.returncode == 0, up.stderr
    latest = load_source(None).migrations[-1].version
    assert database.query("SELECT version, dirty FROM schema_migrations") == [(latest, False)]
    assert {"source", "registry", "entry_version"} <= database.tables()
    down = run(
        wheel_venv,
        "migrate",
        "down",
        "--config",
        str(config),
        "--num-steps",
        "0",
        "--yes",
        cwd=elsewhere,
        env=cli_env,
    )
    assert down.returncode == 0, down.stderr
    assert database.tables() == {"schema_migrations", "schema_migrations_history"}


def test_installed_wheel_uses_the_embedded_default(
    wheel_venv: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    data_dir = tmp_path / "embedded" / "pgdata"
    data_dir.parent.mkdir()
    env = {**cli_env, "THV_REGISTRY_EMBEDDED_DIR": str(data_dir)}
    try:
        first = run(wheel_venv, "migrate", "up", "--yes", cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        assert "embedded PostgreSQL" in first.stdout + first.stderr
        again = run(wheel_venv, "migrate", "up", "--yes", cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stderr
        assert "No pending migrations" in again.stdout + again.stderr
    finally:
        import pgserver

        pgserver.get_server(data_dir, cleanup_mode="delete").cleanup()  # type: ignore[attr-defined]


def test_installed_wheel_in_a_checkout_names_its_set_and_create_refuses(
    wheel_venv: Path, database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Issue 11, item 3: after `pip install .`, `create` in a checkout wrote a file that `up`
    never read ("Up to date.", no hint). The commands now name the set they read, and `create`
    writes only where the next `up` reads."""
    import shutil

    checkout = tmp_path / "checkout"
    local = checkout / "database" / "migrations"
    shutil.copytree(REPO_ROOT / "database" / "migrations", local)
    config = database.write_config(tmp_path / "config.yaml")
    shipped = sorted(p.name for p in local.iterdir())

    refused = run(wheel_venv, "migrate", "create", "add_x", cwd=checkout, env=cli_env)
    assert refused.returncode == 2, refused.stderr
    assert "Not creating files in ./database/migrations" in refused.stderr
    assert "installed with the package" in refused.stderr and str(wheel_venv) in refused.stderr
    assert "--migrations-dir database/migrations" in refused.stderr
    assert "pip install -e ." in refused.stderr
    assert sorted(p.name for p in local.iterdir()) == shipped  # nothing written

    for command, code in ((("status",), 12), (("up", "--yes"), 0), (("version",), 0)):
        result = run(wheel_venv, "migrate", *command, "--config", str(config), cwd=checkout,
                     env=cli_env)  # fmt: skip
        assert result.returncode == code, result.stderr
        assert "Reading the migrations installed with the package (" in result.stderr
        assert str(wheel_venv) in result.stderr and "not ./database/migrations" in result.stderr
    lint = run(wheel_venv, "migrate", "lint", "--no-squawk", cwd=checkout, env=cli_env)
    assert "Reading the migrations installed with the package" in lint.stderr or (
        str(wheel_venv) in lint.stdout  # lint's summary names the set it checked
    ), lint.stdout + lint.stderr

    made = run(wheel_venv, "migrate", "create", "add_x", "--migrations-dir",
               "database/migrations", cwd=checkout, env=cli_env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    (up_file,) = local.glob("*_add_x.up.sql")
    up_file.write_text("CREATE TABLE x (id int);\n")
    up_file.with_name(up_file.name.replace(".up.", ".down.")).write_text("DROP TABLE x;\n")
    # with the same --migrations-dir, status reads the new file: pending, and no notice
    status = run(wheel_venv, "migrate", "status", "--config", str(config), "--migrations-dir",
                 "database/migrations", cwd=checkout, env=cli_env)  # fmt: skip
    assert status.returncode == 12, status.stdout + status.stderr
    assert "add_x" in status.stdout and "1 pending migration" in status.stdout
    assert "Reading" not in status.stderr
