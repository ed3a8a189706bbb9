"""Fetch a ``git`` source: one file of a repository at a branch, a tag or a commit.

The ``git`` program does the work (DESIGN.md: git or dulwich, never a hand-written protocol).
Each source has a bare cache repository (``{cache}/git/{source}-{hash of the URL}``), kept
between syncs: ``git fetch --depth 1 <repository> <ref>`` brings the one commit (nothing when
the cache has it already) into the cache's one ref, forced, so a force-pushed branch is simply
the new commit; ``git cat-file`` reads ``path`` there. A ``commit`` is fetched by its hash
(the server must allow it, as GitHub, GitLab and ``git daemon``/``file://`` with protocol v2
do). Without branch, tag or commit the remote's HEAD is fetched.

Credentials: ``auth.username`` and the first line of ``auth.passwordFile`` reach git through
``GIT_ASKPASS`` (a small script in the cache that reads the file when git asks): the password is
in no argument, no environment variable and no URL; other credential helpers and terminal
prompts are off. Errors show git's own fatal lines, with the password and any URL user info
masked.

Every command has the source's ``timeout`` (the process is killed after it) and the file is
capped at :data:`MAX_BYTES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import stat
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from thv_registry.redact import mask_url, redact
from thv_registry.sync.errors import FetchFailed
from thv_registry.sync.file_source import Fetched

__all__ = ["GitSpec", "GitAuthSpec", "fetch", "default_cache_dir", "MAX_BYTES"]

MAX_BYTES = 100 * 1024 * 1024
_ASKPASS = """#!/bin/sh
# GIT_ASKPASS of thv-registry-api: answers git's prompts from the source's auth settings.
case "$1" in
  Username*|username*) printf '%s\\n' "$THV_GIT_USERNAME" ;;
  *) sed -n 1p "$THV_GIT_PASSWORD_FILE" | tr -d '\\r' ;;
esac
"""
_LOCAL_REF = "refs/thv-registry/fetched"  #: the cache's one ref: what the last fetch brought
_USERINFO = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^@/]*@")


class GitAuthSpec(Protocol):
    @property
    def username(self) -> str | None: ...
    @property
    def password_file(self) -> str | None: ...


class GitSpec(Protocol):
    """The ``git:`` block of a source (config's GitSourceSettings has these attributes)."""

    @property
    def repository(self) -> str: ...
    @property
    def branch(self) -> str | None: ...
    @property
    def tag(self) -> str | None: ...
    @property
    def commit(self) -> str | None: ...
    @property
    def path(self) -> str | None: ...
    @property
    def auth(self) -> GitAuthSpec | None: ...
    @property
    def timeout(self) -> timedelta: ...


def default_cache_dir() -> Path:
    """``$THV_REGISTRY_CACHE_DIR``, else ``$XDG_CACHE_HOME/thv-registry``, else
    ``~/.cache/thv-registry``."""
    if explicit := os.environ.get("THV_REGISTRY_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "thv-registry"


def _ref(spec: GitSpec) -> tuple[str, str]:
    """(what to fetch, how to name it in a message)."""
    if spec.branch:
        return f"refs/heads/{spec.branch}", f"branch {spec.branch!r}"
    if spec.tag:
        return f"refs/tags/{spec.tag}", f"tag {spec.tag!r}"
    if spec.commit:
        return spec.commit, f"commit {spec.commit}"
    return "HEAD", "the default branch (HEAD)"


class _Git:
    """Runs git in one cache repository with the source's timeout and credentials."""

    def __init__(self, source: str, spec: GitSpec, cache: Path) -> None:
        self.source = source
        self.spec = spec
        self.origin = mask_url(_USERINFO.sub(r"\1", spec.repository))
        digest = hashlib.sha256(spec.repository.encode()).hexdigest()[:16]
        self.repo = cache / "git" / f"{source}-{digest}"
        self.env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_DIR": str(self.repo),
            "LC_ALL": "C",
        }
        self.secret: str | None = None
        auth = spec.auth
        if auth is not None and auth.username is not None and auth.password_file is not None:
            askpass = cache / "git" / "askpass.sh"
            self.env |= {
                "GIT_ASKPASS": str(askpass),
                "THV_GIT_USERNAME": auth.username,
                "THV_GIT_PASSWORD_FILE": auth.password_file,
            }
            with contextlib.suppress(OSError):
                self.secret = Path(auth.password_file).read_text().splitlines()[0].strip()
        self.env.pop("SSH_ASKPASS", None)

    def failed(self, reason: str) -> FetchFailed:
        return FetchFailed(self.source, self.origin, reason)

    async def run(self, *args: str, what: str, input: bytes | None = None) -> bytes:
        argv = ["git", "-c", "credential.helper=", "-c", "core.askPass=", *args]
        seconds = self.spec.timeout.total_seconds()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL if input is None else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise self.failed("the git program is not installed (not found on PATH)") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(input), seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise self.failed(f"{what}: no answer within {seconds:g} s") from None
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        if proc.returncode != 0:
            raise self.failed(f"{what}: {self._last_line(err)}")
        return out

    def _last_line(self, err: bytes) -> str:
        """git's fatal and error lines (the last three), else its last line; masked."""
        lines = [ln.strip() for ln in err.decode(errors="replace").splitlines() if ln.strip()]
        fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:"))][-3:]
        text = "; ".join(fatal or lines[-1:] or ["git failed without a message"])
        return redact(mask_url(_USERINFO.sub(r"\1", text)), self.secret)

    async def prepare(self) -> None:
        def make() -> None:
            self.repo.parent.mkdir(parents=True, exist_ok=True)
            askpass = self.repo.parent / "askpass.sh"
            if not askpass.exists() or askpass.read_text() != _ASKPASS:
                tmp = askpass.with_suffix(f".{os.getpid()}")
                tmp.write_text(_ASKPASS)
                tmp.chmod(stat.S_IRWXU)
                tmp.replace(askpass)

        try:
            await asyncio.to_thread(make)
        except OSError as e:
            raise self.failed(f"cannot use the cache directory {self.repo.parent}: {e}") from None
        if not (self.repo / "HEAD").exists():
            await self.run("init", "--quiet", "--bare", str(self.repo), what="git init")


async def fetch(source: str, spec: GitSpec, cache: Path | None = None) -> Fetched:
    """Fetch the ref into the source's cache and read ``path``; raise :class:`FetchFailed`
    naming the repository and what failed (unreachable, no such ref, no such file)."""
    git = _Git(source, spec, cache or default_cache_dir())
    await git.prepare()
    ref, shown = _ref(spec)
    await git.run(
        "fetch", "--quiet", "--depth", "1", "--no-tags", spec.repository, f"+{ref}:{_LOCAL_REF}",
        what=f"cannot fetch {shown}",
    )  # fmt: skip
    # old commits are unreachable now: git's own thresholds decide when to repack and prune
    await git.run("-c", "gc.autoDetach=false", "gc", "--auto", "--quiet", what="git gc --auto")
    commit = (await git.run("rev-parse", _LOCAL_REF, what="reading the fetched commit")).decode()
    commit = commit.strip()
    path = (spec.path or "").strip("/")
    where = f"{commit[:12]} ({shown})"
    found = await git.run(
        "cat-file", "--batch-check", what="finding the file", input=f"{commit}:{path}\n".encode()
    )  # one line: "<object> <type> <size>", or "<name> missing"
    fields = found.decode(errors="replace").split()
    if len(fields) != 3 or fields[-1] == "missing" or not fields[2].isdigit():
        raise git.failed(f"no file {path!r} in {where}")
    blob, kind, size = fields[0], fields[1], int(fields[2])
    if kind != "blob":
        raise git.failed(f"{path!r} in {where} is a {kind}, not a file")
    if size > MAX_BYTES:
        raise git.failed(f"{path!r} in {where} is larger than the {MAX_BYTES}-byte limit")
    data = await git.run("cat-file", "blob", blob, what=f"reading {path!r}")
    return Fetched(data, hashlib.sha256(data).hexdigest(), f"{git.origin} {path} at {where}")
