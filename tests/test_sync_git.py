"""``git`` sources against a real PostgreSQL and a local bare repository (``file://``): branch,
tag and commit refs, an update pushed between syncs, a force-push, a deleted ref, a missing
path, an unreachable repository, the cache reused, and credentials kept out of argv, env and
messages (a smart-HTTP repository behind basic auth, served by ``git http-backend``)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from conftest import TestDatabase
from sync_helpers import migrate, server, with_pool
from thv_registry.config import (
    GitAuthSettings,
    GitSourceSettings,
    RegistrySettings,
    ServerSettings,
    Settings,
    SourceSettings,
    SyncPolicy,
)
from thv_registry.sync import SyncOutcome, SyncService

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git program")

A = "io.github.acme/alpha"


@pytest.fixture
def db(database: TestDatabase) -> TestDatabase:
    migrate(database)
    return database


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(cwd),
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


class Repo:
    """A bare repository (``origin``) and a work tree that pushes to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "origin.git"
        self.work = root / "work"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True)
        self.work.mkdir()
        git(self.work, "init", "-q", "-b", "main")
        git(self.work, "remote", "add", "origin", str(self.bare))

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def commit(self, versions: list[str], path: str = "registry/servers.json") -> str:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": "1.0.0", "data": {"servers": [server(A, v) for v in versions]}}
        target.write_text(json.dumps(doc))
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", f"versions {versions}")
        return git(self.work, "rev-parse", "HEAD")

    def push(self, *refs: str, force: bool = False) -> None:
        git(self.work, "push", "-q", *(["--force"] if force else []), "origin", *refs)


def git_settings(repo: str, **git_keys: Any) -> Settings:
    git_keys.setdefault("path", "registry/servers.json")
    source = SourceSettings(
        name="g",
        git=GitSourceSettings(repository=repo, timeout=timedelta(seconds=30), **git_keys),
        sync_policy=SyncPolicy(interval=timedelta(minutes=5)),
    )
    return Settings(
        sources=(source,),
        registries=(RegistrySettings(name="default", sources=("g",)),),
        server=ServerSettings(),
    )


class Syncer:
    """One SyncService per call (as serve restarts would), sharing one cache directory."""

    def __init__(self, db: TestDatabase, cache: Path) -> None:
        self.db = db
        self.cache = cache

    def __call__(self, conf: Settings) -> SyncOutcome:
        async def body(pool: AsyncConnectionPool[Any]) -> SyncOutcome:
            service = SyncService(pool, conf, cache_dir=self.cache)
            await service.reconcile()
            return await service.sync_now("g")

        return with_pool(self.db, body)

    def live(self) -> set[str]:
        rows = self.db.query("SELECT v.version FROM entry_version v WHERE v.status <> 'DELETED'")
        return {str(r[0]) for r in rows}

    def attempts(self) -> tuple[str, int]:
        row = self.db.query("SELECT sync_status, attempt_count FROM registry_sync")[0]
        return str(row[0]), int(row[1])  # type: ignore[call-overload]


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path)


@pytest.fixture
def syncer(db: TestDatabase, tmp_path: Path) -> Syncer:
    return Syncer(db, tmp_path / "cache")


def test_branch_update_force_push_and_deleted_branch(repo: Repo, syncer: Syncer) -> None:
    repo.commit(["1.0.0"])
    repo.push("main")
    conf = git_settings(repo.url, branch="main")
    first = syncer(conf)
    assert first.result == "synced", first.message
    assert syncer.live() == {"1.0.0"}
    assert syncer(conf).result == "unchanged"
    cached = next((syncer.cache / "git").glob("g-*"))
    assert (cached / "shallow").exists()  # a shallow fetch into the cache, kept

    repo.commit(["1.0.0", "1.1.0"])  # an update pushed between syncs
    repo.push("main")
    assert syncer(conf).result == "synced"
    assert syncer.live() == {"1.0.0", "1.1.0"}

    git(repo.work, "reset", "-q", "--hard", "HEAD~1")  # history rewritten
    repo.commit(["2.0.0"])
    repo.push("main", force=True)
    forced = syncer(conf)
    assert (forced.result, forced.deleted) == ("synced", 2), forced.message
    assert syncer.live() == {"2.0.0"}

    git(repo.bare, "branch", "-D", "main")  # the ref is gone
    gone = syncer(conf)
    assert gone.result == "failed"
    assert "cannot fetch branch 'main'" in gone.message
    assert "couldn't find remote ref refs/heads/main" in gone.message, gone.message
    assert syncer.live() == {"2.0.0"}  # the last good data stays
    assert syncer.attempts() == ("FAILED", 1)


def test_tag_and_commit_refs(repo: Repo, syncer: Syncer) -> None:
    old = repo.commit(["1.0.0"])
    git(repo.work, "tag", "v1")
    repo.commit(["1.0.0", "1.5.0"])
    repo.push("main", "v1")
    assert syncer(git_settings(repo.url, tag="v1")).result == "synced"
    assert syncer.live() == {"1.0.0"}
    assert syncer(git_settings(repo.url)).result == "synced"  # no ref: the remote HEAD
    assert syncer.live() == {"1.0.0", "1.5.0"}
    assert syncer(git_settings(repo.url, commit=old)).result == "synced"
    assert syncer.live() == {"1.0.0"}
    missing = syncer(git_settings(repo.url, tag="v9"))
    assert missing.result == "failed"
    assert "cannot fetch tag 'v9'" in missing.message


def test_missing_path_and_unreachable_repository(
    repo: Repo, syncer: Syncer, tmp_path: Path
) -> None:
    repo.commit(["1.0.0"])
    repo.push("main")
    assert syncer(git_settings(repo.url, branch="main")).result == "synced"
    no_file = syncer(git_settings(repo.url, branch="main", path="nope/registry.json"))
    assert no_file.result == "failed"
    assert "no file 'nope/registry.json' in " in no_file.message
    assert "(branch 'main')" in no_file.message
    nowhere = (tmp_path / "absent.git").as_uri()
    unreachable = syncer(git_settings(nowhere, branch="main"))
    assert unreachable.result == "failed"
    assert unreachable.message.startswith(f"cannot read {nowhere}: cannot fetch branch 'main': ")
    assert "does not appear to be a git repository" in unreachable.message
    assert syncer.live() == {"1.0.0"}
    assert syncer.attempts() == ("FAILED", 2)


# -- credentials --------------------------------------------------------------------------

PASSWORD = "s3cret-Pa55word"


@contextmanager
def http_repo(root: Path, seen: list[dict[str, Any]]) -> Iterator[str]:
    """``git http-backend`` behind basic auth (user ``reader``, :data:`PASSWORD`) on loopback;
    ``seen`` gets, for each request, the argv and environment of every git process running."""
    backend = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    expected = "Basic " + base64.b64encode(f"reader:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self._cgi()

        def do_POST(self) -> None:  # noqa: N802
            self._cgi()

        def _cgi(self) -> None:
            seen.append(_git_processes())
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = {
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": path.removeprefix("/git"),
                "QUERY_STRING": query,
                "REQUEST_METHOD": self.command,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "reader",
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            out = subprocess.run(
                [f"{backend}/git-http-backend"], input=body, env=env, capture_output=True
            ).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode().split("\r\n"):
                key, _, value = line.partition(": ")
                if key.lower() == "status":
                    status = int(value.split()[0])
                elif key:
                    headers.append((key, value))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/git/origin.git"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def _git_processes() -> dict[str, Any]:
    found: dict[str, Any] = {"argv": [], "env": []}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if not argv or b"git" not in argv[0]:
                continue
            found["argv"].append(b" ".join(argv).decode(errors="replace"))
            found["env"].append((proc / "environ").read_bytes().decode(errors="replace"))
        except OSError:
            continue
    return found


def test_credentials_reach_git_but_no_argv_env_or_message(
    repo: Repo, syncer: Syncer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo.commit(["1.0.0"])
    repo.push("main")
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    seen: list[dict[str, Any]] = []
    with http_repo(tmp_path, seen) as url:
        good = git_settings(url, branch="main")
        denied = syncer(good)  # no auth: the server says 401
        assert denied.result == "failed"
        assert "cannot fetch branch 'main'" in denied.message
        auth = GitAuthSettings(username="reader", password_file=str(secret))
        ok = syncer(git_settings(url, branch="main", auth=auth))
        assert ok.result == "synced", ok.message
        assert syncer.live() == {"1.0.0"}
        secret.write_text("wrong-password\n")
        wrong = syncer(git_settings(url, branch="main", auth=auth))
        assert wrong.result == "failed"
        secret.write_text(PASSWORD + "\n")
        in_url = url.replace("http://", f"http://reader:{PASSWORD}@")
        leaky = syncer(git_settings(in_url, branch="nope"))  # a password the user put in the URL
    assert leaky.result == "failed"
    assert seen and any(s["argv"] for s in seen)  # git was running when the server answered
    for snapshot in seen:
        for text in snapshot["argv"] + snapshot["env"]:
            if "reader:" + PASSWORD in text:  # only the user's own URL carries it (argv)
                continue
            assert PASSWORD not in text
    for outcome in (denied, wrong, leaky):
        assert PASSWORD not in outcome.message
    assert PASSWORD not in caplog.text
    rows = syncer.db.query("SELECT message, error_msg FROM registry_sync")
    assert PASSWORD not in json.dumps([list(map(str, r)) for r in rows])
    configs = syncer.db.query("SELECT source_config::text FROM source")
    assert PASSWORD not in json.dumps([str(r[0]) for r in configs])


def test_serve_syncs_a_git_source(database: TestDatabase, repo: Repo, tmp_path: Path) -> None:
    """A real serve process whose only source is the bare repository; its cache goes under
    THV_REGISTRY_CACHE_DIR."""
    import httpx
    import yaml

    from api_fixtures import make_env
    from serving import running, serve_config, write_registry

    repo.commit(["1.0.0", "1.2.0"])
    repo.push("main")
    config = serve_config(
        tmp_path / "c.yaml", _conn(database), write_registry(tmp_path / "unused.json", [])
    )
    doc = yaml.safe_load(config.read_text())
    doc["sources"] = [
        {
            "name": "catalog",
            "git": {"repository": repo.url, "branch": "main", "path": "registry/servers.json"},
            "syncPolicy": {"interval": "1m"},
        }
    ]
    doc["registries"] = [{"name": "default", "sources": ["catalog"]}]
    config.write_text(yaml.safe_dump(doc))
    env = make_env(tmp_path) | {"THV_REGISTRY_CACHE_DIR": str(tmp_path / "serve-cache")}
    with running(config, env, tmp_path) as serve:
        assert f"Source catalog: git {repo.url} registry/servers.json at main." in serve.stderr
        page = httpx.get(f"{serve.base}/registry/default/v0.1/servers").json()
    assert [s["server"]["version"] for s in page["servers"]] == ["1.2.0", "1.0.0"]
    assert list((tmp_path / "serve-cache" / "git").glob("catalog-*"))


def _conn(database: TestDatabase) -> dict[str, Any]:
    s = database.server
    return {"host": s.host, "port": s.port, "user": s.user, "database": database.name}
