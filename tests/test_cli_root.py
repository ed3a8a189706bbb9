"""The root command as peers' users expect it: ``--version``, and help when run bare."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from thv_registry import __version__


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thv_registry", *args],
        env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_version_flag_matches_version_command(tmp_path: Path, cli_env: dict[str, str]) -> None:
    flag = run("--version", env=cli_env, cwd=tmp_path)
    assert flag.returncode == 0, flag.stderr
    assert flag.stdout == f"thv-registry-api {__version__}\n"
    assert run("version", env=cli_env, cwd=tmp_path).stdout == flag.stdout


def test_bare_command_prints_help_and_exits_0(tmp_path: Path, cli_env: dict[str, str]) -> None:
    bare = run(env=cli_env, cwd=tmp_path)
    assert bare.returncode == 0, bare.stderr
    assert bare.stdout.startswith("Usage: thv-registry-api [OPTIONS] COMMAND")
    assert "migrate" in bare.stdout and "--version" in bare.stdout
    assert bare.stdout == run("--help", env=cli_env, cwd=tmp_path).stdout
    group = run("migrate", env=cli_env, cwd=tmp_path)
    assert group.returncode == 0 and "Usage: thv-registry-api migrate" in group.stdout
    unknown = run("nope", env=cli_env, cwd=tmp_path)
    assert unknown.returncode == 2 and "No such command 'nope'" in unknown.stderr
