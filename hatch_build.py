"""Build hook (hatchling): stamp the wheel with the commit it was built from and the build time.

Writes ``thv_registry/_build.json`` (``commit``, ``build_date``) into the wheel, which
``thv_registry.buildinfo`` reads for ``/version``. The commit comes from git when the tree being
built is a git checkout, else it is ``unknown``; the date is ``SOURCE_DATE_EPOCH`` when set
(reproducible builds), else now, in UTC. An sdist carries the stamp as
``src/thv_registry/_build.json``, so a wheel built from it (no git there) keeps the commit. An
editable install gets no stamp: it asks git at run time, so the commit stays current as the
checkout moves.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

TARGET = "thv_registry/_build.json"  #: in the wheel
IN_TREE = "src/thv_registry/_build.json"  #: in an sdist (and the tree unpacked from it)


def stamp(root: Path) -> dict[str, str]:
    """The stamp's content for a build of the tree at ``root``."""
    commit = "unknown"
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        if done.returncode == 0 and done.stdout.strip():
            commit = done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    when = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
        if epoch.isdigit()
        else datetime.datetime.now(datetime.UTC)
    )
    return {"commit": commit, "build_date": when.strftime("%Y-%m-%dT%H:%M:%SZ")}


class BuildStampHook(BuildHookInterface[Any]):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable" or (Path(self.root) / IN_TREE).exists():
            return  # an editable install asks git; a tree from an sdist has its stamp already
        self._dir = tempfile.mkdtemp(prefix="thv-build-stamp-")
        path = Path(self._dir) / "_build.json"
        path.write_text(json.dumps(stamp(Path(self.root))) + "\n")
        build_data["force_include"][str(path)] = TARGET if self.target_name == "wheel" else IN_TREE

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        directory = getattr(self, "_dir", None)
        if directory:
            shutil.rmtree(directory, ignore_errors=True)
