"""Which commit this build is, and when it was built (``/version``'s ``commit`` and ``build_date``).

A wheel carries ``thv_registry/_build.json``, stamped at build time by ``hatch_build.py`` at the
repository root (the commit of the tree it was built from, and the build time, or
``SOURCE_DATE_EPOCH``'s for reproducible builds). A source checkout (an editable install) has no
stamp: there git answers, once per process (its HEAD, and that commit's date as the build date).
Whatever cannot be known is ``unknown``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

__all__ = ["BuildInfo", "STAMP", "build_stamp", "UNKNOWN"]

STAMP = "_build.json"  #: the stamp's name inside the package
UNKNOWN = "unknown"
_GIT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class BuildInfo:
    commit: str = UNKNOWN
    build_date: str = UNKNOWN  #: RFC 3339, UTC


@cache
def build_stamp() -> BuildInfo:
    """The stamp written at build time, else what git says of a source checkout."""
    try:
        data = json.loads(files(__package__).joinpath(STAMP).read_text("utf-8"))
    except (OSError, ValueError):
        return _from_git(Path(__file__).resolve().parent)
    return BuildInfo(
        commit=str(data.get("commit") or UNKNOWN), build_date=str(data.get("build_date") or UNKNOWN)
    )


def _from_git(directory: Path) -> BuildInfo:
    """HEAD and its commit date, when ``directory`` is inside a git work tree."""
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "log", "-1", "--format=%H %cI"],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or it hangs
        return BuildInfo()
    parts = done.stdout.split()
    if done.returncode != 0 or len(parts) != 2:
        return BuildInfo()
    return BuildInfo(commit=parts[0], build_date=parts[1])
