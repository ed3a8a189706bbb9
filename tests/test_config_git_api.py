"""The ``git:`` and ``api:`` source blocks: defaults, caps, refs, auth; what serve accepts
(file, git, api) and refuses (kubernetes: not supported by this edition, and why)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from thv_registry.cli.serve import SUPPORTED_SOURCE_KINDS
from thv_registry.config import Settings, load_config
from thv_registry.errors import ConfigError

TAIL = """registries: [{name: default, sources: [s]}]
auth: {mode: anonymous}
database: {host: localhost, database: registry, user: app}
"""


def load(tmp_path: Path, source: str) -> Settings:
    path = tmp_path / "c.yaml"
    path.write_text(f"sources:\n  - name: s\n    syncPolicy: {{interval: 1m}}\n{source}{TAIL}")
    return load_config(path)


def problems(tmp_path: Path, source: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, source)
    return info.value.message


def test_api_defaults_and_keys(tmp_path: Path) -> None:
    api = load(tmp_path, "    api: {endpoint: 'https://registry.example'}\n").sources[0].api
    assert api is not None
    assert (api.timeout, api.max_pages, api.max_servers, api.max_response_bytes) == (
        timedelta(seconds=10), 1000, 100_000, 100 * 1024 * 1024,
    )  # fmt: skip
    assert api.full_resync_interval is None
    text = (
        "    api: {endpoint: 'http://127.0.0.1:9/registry/x', timeout: 3s, maxPages: 7,"
        " maxServers: 70, maxResponseBytes: 2048, fullResyncInterval: 6h}\n"
    )
    api = load(tmp_path, text).sources[0].api
    assert api is not None
    assert (api.max_pages, api.max_servers, api.max_response_bytes) == (7, 70, 2048)
    assert api.full_resync_interval == timedelta(hours=6)


def test_api_bad_values_are_named_with_lines(tmp_path: Path) -> None:
    message = problems(
        tmp_path,
        "    api:\n      endpoint: 'https://x'\n      maxPages: 0\n      maxServers: many\n"
        "      maxResponseBytes: 10\n",
    )
    for expected in (
        "line 6, column 7: sources[0].api.maxPages must be a whole number, 1 or more, not the "
        "number 0",
        "line 7, column 7: sources[0].api.maxServers must be a whole number, 1 or more, not the "
        "text 'many'",
        "line 8, column 7: sources[0].api.maxResponseBytes must be a whole number of bytes, "
        "1024 or more",
    ):
        assert expected in message, message
    message = problems(
        tmp_path,
        "    api: {endpoint: 'ftp://x', fullResyncInterval: 0s, timeout: 6m}\n",
    )
    for expected in (
        "sources[0].api.endpoint must be an absolute http or https URL",
        "sources[0].api.fullResyncInterval must be a duration greater than 0",
        "sources[0].api.timeout must be at most 5m",
    ):
        assert expected in message, message


def test_git_keys_and_checks(tmp_path: Path) -> None:
    text = (
        "    git: {repository: 'file:///srv/r.git', tag: v1, path: reg.json,"
        " auth: {username: bot, passwordFile: /run/pw}}\n"
    )
    git = load(tmp_path, text).sources[0].git
    assert git is not None and git.tag == "v1" and git.timeout == timedelta(minutes=2)
    assert git.auth is not None and git.auth.password_file == "/run/pw"
    message = problems(
        tmp_path,
        "    git: {repository: r, branch: main, commit: abc, path: ../x,"
        " auth: {passwordFile: pw}}\n",
    )
    for expected in (
        "sources[0].git.commit cannot be given with branch: choose one of branch, tag or commit",
        "sources[0].git.commit must be a full commit hash (40 hex digits); got 'abc'",
        "sources[0].git.path must be relative to the repository root; got '../x'",
        "sources[0].git.auth.passwordFile must be an absolute path",
        "sources[0].git.auth needs both username and passwordFile",
    ):
        assert expected in message, message
    assert "needs path" in problems(tmp_path, "    git: {repository: r}\n")


def test_serve_accepts_file_git_and_api_and_refuses_kubernetes(tmp_path: Path) -> None:
    assert {"file", "git", "api"} <= SUPPORTED_SOURCE_KINDS
    for block in (
        "    git: {repository: 'file:///r.git', path: r.json}\n",
        "    api: {endpoint: 'https://registry.example'}\n",
    ):
        load(tmp_path, block).check_serve(SUPPORTED_SOURCE_KINDS)
    settings = load(tmp_path, "    kubernetes: {namespaces: [mcp]}\n")
    with pytest.raises(ConfigError) as info:
        settings.check_serve(SUPPORTED_SOURCE_KINDS)
    assert (
        "line 2: sources[0] (s): kubernetes sources are not supported (it would need a "
        "Kubernetes client and the operator's CRDs" in info.value.message
    )
    assert "not yet" not in info.value.message
