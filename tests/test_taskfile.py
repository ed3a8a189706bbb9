"""The Taskfile's migration tasks, run with the real `task` binary against a test database."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, TestDatabase
from thv_registry.migrations import Source

LATEST = Source.from_directory(REPO_ROOT / "database" / "migrations").migrations[-1].version


def _task_binary() -> str:
    beside = Path(sys.executable).parent / "task"
    found = str(beside) if beside.exists() else shutil.which("task")
    if not found:
        pytest.skip("the `task` binary is not installed (pip install -e '.[dev]' brings it)")
    return found


def run_task(
    env: dict[str, str], *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `task ARGS` in the repository (or in ``cwd``, with the repository's Taskfile) with
    this interpreter as the Taskfile's Python."""
    env = dict(env)
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix  # the Taskfile's own lookup: the active virtualenv
        extra: list[str] = []
    else:
        env.pop("VIRTUAL_ENV", None)
        extra = [f"PYTHON={sys.executable}"]
    if cwd is not None:
        extra.append(f"--taskfile={REPO_ROOT / 'Taskfile.yml'}")
    return subprocess.run(
        [_task_binary(), *args, *extra],
        cwd=cwd or REPO_ROOT,
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def version(database: TestDatabase) -> int | None:
    if "schema_migrations" not in database.tables():
        return None
    rows = database.query("SELECT version, dirty FROM schema_migrations")
    assert not rows or rows[0][1] is False
    return int(str(rows[0][0])) if rows else None


def test_migrate_up_then_down(
    database: TestDatabase, config_file: Path, cli_env: dict[str, str]
) -> None:
    done = run_task(cli_env, "migrate-up", f"CONFIG={config_file}", "NUM_STEPS=1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert version(database) == 1

    done = run_task(cli_env, "migrate-up", f"CONFIG={config_file}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert version(database) == LATEST
    assert f'-m thv_registry migrate up --config "{config_file}"' in done.stderr

    # Reverting asks for 'yes', as the CLI does: typed here on stdin.
    done = run_task(cli_env, "migrate-down", f"CONFIG={config_file}", "NUM_STEPS=1", stdin="yes\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert version(database) == LATEST - 1

    # `-- --yes` goes to the CLI and skips the question.
    done = run_task(cli_env, "migrate-down", f"CONFIG={config_file}", "NUM_STEPS=0", "--", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert version(database) is None or database.tables() <= {
        "schema_migrations",
        "schema_migrations_history",
    }
    assert "registry_entry" not in database.tables()


def test_migrate_down_refuses_without_num_steps(
    database: TestDatabase, config_file: Path, cli_env: dict[str, str]
) -> None:
    assert run_task(cli_env, "migrate-up", f"CONFIG={config_file}").returncode == 0
    done = run_task(cli_env, "migrate-down", f"CONFIG={config_file}", "--", "--yes")
    assert done.returncode != 0
    assert "migrate-down needs NUM_STEPS" in done.stderr
    assert "NUM_STEPS=0 reverts all of them" in done.stderr
    assert "thv_registry migrate down" not in done.stderr  # the CLI never ran
    assert version(database) == LATEST


def test_migrate_down_without_an_answer_changes_nothing(
    database: TestDatabase, config_file: Path, cli_env: dict[str, str]
) -> None:
    assert run_task(cli_env, "migrate-up", f"CONFIG={config_file}").returncode == 0
    done = run_task(cli_env, "migrate-down", f"CONFIG={config_file}", "NUM_STEPS=1")
    assert done.returncode != 0
    assert "--yes" in done.stderr
    assert version(database) == LATEST


def test_migration_tasks_need_config(cli_env: dict[str, str]) -> None:
    for name in ("migrate-up", "migrate-down"):
        done = run_task(cli_env, name, "NUM_STEPS=1")
        assert done.returncode != 0
        assert "CONFIG" in done.stderr, done.stderr


def test_task_list_names_every_task(cli_env: dict[str, str]) -> None:
    done = run_task(cli_env, "--list")
    assert done.returncode == 0, done.stderr
    for name in ("migrate-up", "migrate-down", "gen", "test", "lint", "bench", "build"):
        assert f"* {name}:" in done.stdout


def test_relative_config_is_taken_from_where_task_was_started(
    database: TestDatabase, config_file: Path, cli_env: dict[str, str]
) -> None:
    here = config_file.parent  # the config is config.yaml in the directory task starts in
    done = run_task(cli_env, "migrate-up", "CONFIG=config.yaml", "NUM_STEPS=1", cwd=here)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f'--config "{config_file}"' in done.stderr  # passed on as an absolute path
    assert version(database) == 1

    (here / "sub").mkdir()
    done = run_task(cli_env, "migrate-up", "CONFIG=../config.yaml", cwd=here / "sub")
    assert done.returncode == 0, done.stdout + done.stderr
    assert version(database) == LATEST


def test_a_missing_config_names_the_path_tried_and_keeps_the_exit_code(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    tried = tmp_path / "configs" / "missing.yaml"
    # -x (--exit-code): task exits with the tool's own code, 3 for a configuration problem
    done = run_task(cli_env, "-x", "migrate-up", "CONFIG=configs/missing.yaml", cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"Configuration file {tried} does not exist" in done.stderr
    # without -x task decides its own status (201) but still reports the tool's code
    done = run_task(cli_env, "migrate-down", "CONFIG=configs/missing.yaml", "NUM_STEPS=1",
                    cwd=tmp_path)  # fmt: skip
    assert done.returncode == 201, done.stdout + done.stderr
    assert "exit status 3" in done.stderr
    assert str(tried) in done.stderr
