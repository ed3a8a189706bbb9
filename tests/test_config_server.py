"""load_config on the server's blocks: sources, registries, auth, telemetry, audit, server.

Every rule of the Go server (and the stricter ones where it is silent) with the message that
names file, key path and line; unknown keys in every block; check_serve; the complete example.
"""

from __future__ import annotations

import os
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from thv_registry.config import AuthSettings, ConfigError, Settings, load_config

ROOT = Path(__file__).resolve().parents[1]
ANON = "auth:\n  mode: anonymous\n"
DB = "database:\n  host: h\n  user: u\n  database: d\n"
#: A file source and a registry over it: lines 1-7.
SERVE = (
    "sources:\n"
    "  - name: local\n"
    "    file:\n"
    "      path: ./data/registry.json\n"
    "    syncPolicy:\n"
    "      interval: 5m\n"
    "registries:\n"
    "  - name: default\n"
    "    sources: [local]\n"
)  # 9 lines


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("THV_REGISTRY_"):
            monkeypatch.delenv(name)


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.message
    assert str(path) in message and "\n" not in message
    return message


# -- valid files -----------------------------------------------------------------------------------


def test_a_server_file(tmp_path: Path) -> None:
    settings = _load(tmp_path, SERVE + ANON + DB)
    (source,) = settings.sources
    assert source.kind == "file" and source.file is not None
    assert source.file.path == "./data/registry.json"
    assert source.file.timeout == timedelta(seconds=30)
    assert source.sync_policy is not None and source.sync_policy.interval == timedelta(minutes=5)
    assert settings.registries[0].sources == ("local",)
    assert settings.source("local") is source and settings.source("nope") is None
    assert settings.marks["sources[0]"] == (2, 5)
    settings.check_serve(frozenset({"file"}))


def test_keys_fold_case_in_every_block(tmp_path: Path) -> None:
    text = (
        "SOURCES:\n  - NAME: a\n    File: {Path: x.json, TIMEOUT: 5s}\n"
        "    SyncPolicy: {INTERVAL: 1m}\n    FILTER: {Names: {Include: ['a/*']}}\n"
        "Registries: [{Name: r, SOURCES: [a], Claims: {ORG: acme}}]\n"
        "AUTH: {MODE: oauth, PUBLICPATHS: [/x], OAuth: {ResourceURL: 'https://r.example',"
        " PROVIDERS: [{NAME: p, ISSUERURL: 'https://i.example', AUDIENCE: a,"
        " AllowPrivateIp: true}]}}\n"
        "Server: {ADDRESS: ':9000', SyncLease: 1m, Cors: {AllowOrigins: ['*']}}\n"
        "TELEMETRY: {Tracing: {SAMPLING: 0.5}}\nAudit: {MaxDataSize: 10}\n"
    )
    settings = _load(tmp_path, text)
    source = settings.sources[0]
    assert source.file is not None and source.file.timeout == timedelta(seconds=5)
    assert source.filter is not None and source.filter.names is not None
    assert source.filter.names.include == ("a/*",)
    assert settings.registries[0].claims == {"ORG": "acme"}  # claim names are data, kept
    assert settings.auth is not None and settings.auth.oauth is not None
    assert settings.auth.oauth.providers[0].allow_private_ip is True
    assert settings.server.address == ":9000" and settings.server.sync_lease == timedelta(minutes=1)
    assert settings.telemetry is not None and settings.telemetry.tracing.sampling == 0.5
    assert settings.audit is not None and settings.audit.max_data_size == 10


def test_defaults_of_the_server_blocks(tmp_path: Path) -> None:
    settings = _load(tmp_path, "auth: {mode: anonymous}\ntelemetry:\naudit: {}\nserver:\n" + DB)
    assert AuthSettings().mode == "oauth"  # the Go default (auth: {} needs the oauth block)
    assert settings.telemetry is not None
    assert (settings.telemetry.service_name, settings.telemetry.endpoint) == (
        "thv-registry-api",
        "localhost:4318",
    )
    assert settings.telemetry.tracing.sampling == 0.05
    assert settings.audit is not None and settings.audit.max_data_size == 1024
    server = settings.server
    assert (server.address, server.internal_address) == (":8080", ":8081")
    assert server.shutdown_timeout == timedelta(seconds=30)
    assert (server.sync_poll_interval, server.sync_lease, server.sync_backoff_max) == (
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=5),
    )


def test_every_source_kind(tmp_path: Path) -> None:
    text = """\
    sources:
      - {name: g, git: {repository: "https://x/r.git", tag: v1, path: r.json},
         syncPolicy: {interval: 1h}}
      - {name: a, api: {endpoint: "https://registry.example/", timeout: 5m},
         syncPolicy: {interval: 1h}}
      - {name: f, file: {url: "http://files.example/r.json"}, syncPolicy: {interval: 1h}}
      - {name: m, managed: }
      - {name: k, kubernetes: {namespaces: [a, b]}}
      - {name: d, file: {data: '{"servers": []}'}, syncPolicy: {interval: 10s}}
    registries: [{name: all, sources: [g, a, f, m, k, d]}]
    """
    settings = _load(tmp_path, text)
    assert [s.kind for s in settings.sources] == [
        "git",
        "api",
        "file",
        "managed",
        "kubernetes",
        "file",
    ]
    git, api = settings.sources[0].git, settings.sources[1].api
    assert git is not None and (git.tag, git.branch, git.path) == ("v1", None, "r.json")
    assert api is not None and api.timeout == timedelta(minutes=5)
    kube = settings.sources[4].kubernetes
    assert kube is not None and kube.namespaces == ("a", "b")
    assert settings.sources[3].sync_policy is None  # not needed by managed sources


def test_null_means_the_default(tmp_path: Path) -> None:
    text = "server:\n  address:\n  syncLease:\naudit: {maxDataSize: ~, eventTypes: ~}\n"
    settings = _load(tmp_path, text)
    assert settings.server.address == ":8080" and settings.server.sync_lease == timedelta(minutes=2)
    assert settings.audit is not None and settings.audit.max_data_size == 1024
    assert settings.audit.event_types == ()


def test_claims_take_text_or_lists(tmp_path: Path) -> None:
    text = SERVE + "    claims: {org: acme, groups: [a, b]}\n"
    assert _load(tmp_path, text).registries[0].claims == {"org": "acme", "groups": ("a", "b")}


@pytest.mark.parametrize(
    "issuer", ["http://localhost:8080/realm", "http://127.0.0.1", "http://[::1]:1"]
)
def test_http_issuer_on_loopback(tmp_path: Path, issuer: str) -> None:
    text = _oauth(f"issuerUrl: {issuer!r}")
    assert _load(tmp_path, text).auth is not None


def test_http_issuer_allowed_by_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _oauth("issuerUrl: http://keycloak.internal/realm")
    assert "must use https" in _error(tmp_path, text)
    monkeypatch.setenv("THV_REGISTRY_INSECURE_URL", "true")
    assert _load(tmp_path, text).auth is not None


def _oauth(provider_line: str, *, audience: bool = True) -> str:
    return (
        "auth:\n  mode: oauth\n  oauth:\n    resourceUrl: https://r.example\n    providers:\n"
        f"      - name: p\n        {provider_line}\n"
        + ("        audience: a\n" if audience else "")
    )


def test_the_complete_example_loads() -> None:
    settings = load_config(ROOT / "docs" / "config-example.yaml")
    assert [s.name for s in settings.sources] == [
        "toolhive", "mcp-upstream", "local-file", "remote-file", "internal", "cluster",
    ]  # fmt: skip
    assert [s.kind for s in settings.sources] == [
        "git", "api", "file", "file", "managed", "kubernetes",
    ]  # fmt: skip
    toolhive = settings.sources[0]
    assert toolhive.sync_policy is not None
    assert toolhive.sync_policy.interval == timedelta(minutes=30)  # through the x- anchor
    assert toolhive.git is not None and toolhive.git.auth is not None
    assert toolhive.claims == {"org": "acme", "groups": ("platform", "security")}
    assert [r.name for r in settings.registries] == ["default", "internal"]
    auth = settings.auth
    assert auth is not None and auth.mode == "oauth" and auth.oauth is not None
    assert [p.name for p in auth.oauth.providers] == ["keycloak", "kubernetes"]
    assert auth.authz is not None
    assert auth.authz.roles.manage_entries == ({"org": "acme", "groups": "publishers"},)
    db = settings.database
    assert db is not None and (db.sslmode, db.max_open_conns) == ("require", 25)
    assert db.conn_max_lifetime == timedelta(hours=1)
    assert settings.server.cors.allow_origins == ("https://ui.example.com",)
    assert settings.audit is not None and settings.audit.exclude_event_types == ("source.list",)
    settings.check_serve(frozenset({"file", "git", "api", "managed", "kubernetes"}))


# -- check_serve -----------------------------------------------------------------------------------


def test_check_serve_names_what_is_missing(tmp_path: Path) -> None:
    settings = _load(tmp_path, DB)
    with pytest.raises(ConfigError) as info:
        settings.check_serve(frozenset({"file"}))
    message = info.value.message
    assert message.startswith(f"Cannot serve with {tmp_path / 'config.yaml'}, 3 problems: (1) ")
    assert "it has no sources: block (serve needs at least one source)" in message
    assert "(2) it has no registries: block" in message and "(3) it has no auth: block" in message


def test_check_serve_needs_a_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="it has no database: block"):
        _load(tmp_path, SERVE + ANON).check_serve(frozenset({"file"}))


def test_check_serve_refuses_kinds_not_yet_supported(tmp_path: Path) -> None:
    text = (
        "sources:\n"
        "  - {name: up, api: {endpoint: 'https://x'}, syncPolicy: {interval: 1m}}\n"
        "  - {name: own, managed: {}}\n"
        "  - {name: k8s, kubernetes: {}}\n"
        "registries: [{name: r, sources: [up, own, k8s]}]\n" + ANON + DB
    )
    settings = _load(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        settings.check_serve(frozenset({"file", "managed"}))
    message = info.value.message
    assert (
        "2 problems: (1) line 2: sources[0] (up): api sources are not yet supported by this "
        "edition (supported: file, managed); (2) line 4: sources[2] (k8s): kubernetes" in message
    )
    settings.check_serve(frozenset({"api", "managed", "kubernetes"}))


# -- problems: key path and line ---------------------------------------------------------------


UNKNOWN = {  # an unknown key in each block: did-you-mean (or the known keys) and its line
    "sources[]": (
        SERVE.replace("    file:", "    type: file\n    file:") + ANON,
        "line 3, column 5: sources[0].type is not a known key; it needs name; known keys are "
        "name, file, git, api, managed, kubernetes, syncPolicy, filter, claims",
    ),
    "sources[].file": (
        SERVE.replace("      path:", "      pth:") + ANON,
        "line 4, column 7: sources[0].file.pth is not a known key; did you mean 'path'?",
    ),
    "sources[].syncPolicy": (
        SERVE.replace("      interval:", "      intervall:") + ANON,
        "line 6, column 7: sources[0].syncPolicy.intervall is not a known key; did you mean "
        "'interval'?",
    ),
    "sources[].git": (
        "sources:\n  - name: g\n    git: {repository: r, brnch: main}\n"
        "    syncPolicy: {interval: 1m}\n",
        "line 3, column 26: sources[0].git.brnch is not a known key; did you mean 'branch'?",
    ),
    "sources[].git.auth": (
        "sources:\n  - name: g\n    git:\n      repository: r\n      auth: {user: x}\n"
        "    syncPolicy: {interval: 1m}\n",
        "line 5, column 14: sources[0].git.auth.user is not a known key; did you mean 'username'?",
    ),
    "sources[].api": (
        "sources:\n  - name: a\n    api: {endpoint: 'https://x', timout: 1s}\n"
        "    syncPolicy: {interval: 1m}\n",
        "line 3, column 34: sources[0].api.timout is not a known key; did you mean 'timeout'?",
    ),
    "sources[].managed": (
        "sources:\n  - name: m\n    managed: {mode: x}\n",
        "line 3, column 15: sources[0].managed.mode is not a known key; known keys are ",
    ),
    "sources[].kubernetes": (
        "sources:\n  - name: k\n    kubernetes: {namespace: [a]}\n",
        "sources[0].kubernetes.namespace is not a known key; did you mean 'namespaces'?",
    ),
    "sources[].filter": (
        SERVE.replace("    syncPolicy:", "    filter: {name: {include: [a]}}\n    syncPolicy:"),
        "sources[0].filter.name is not a known key; did you mean 'names'?",
    ),
    "sources[].filter.tags": (
        SERVE.replace("    syncPolicy:", "    filter:\n      tags: {includ: [a]}\n    syncPolicy:"),
        "line 6, column 14: sources[0].filter.tags.includ is not a known key; did you mean "
        "'include'?",
    ),
    "registries[]": (
        SERVE + "    source: [local]\n",
        "line 10, column 5: registries[0].source is not a known key; did you mean 'sources'?",
    ),
    "auth": (
        "auth:\n  mode: anonymous\n  publicPath: [/x]\n",
        "line 3, column 3: auth.publicPath is not a known key; did you mean 'publicPaths'?",
    ),
    "auth.oauth": (
        "auth:\n  oauth:\n    resourceURI: https://x\n",
        "line 3, column 5: auth.oauth.resourceURI is not a known key; did you mean 'resourceUrl'?",
    ),
    "auth.oauth.providers[]": (
        _oauth("issuerUrl: https://i\n        audiance: a", audience=False),
        "line 8, column 9: auth.oauth.providers[0].audiance is not a known key; did you mean "
        "'audience'?",
    ),
    "auth.authz.roles": (
        "auth:\n  mode: anonymous\n  authz:\n    roles:\n      superadmins: []\n",
        "line 5, column 7: auth.authz.roles.superadmins is not a known key; did you mean "
        "'superAdmin'?",
    ),
    "auth.authz": (
        "auth:\n  mode: anonymous\n  authz:\n    role: {}\n",
        "auth.authz.role is not a known key; did you mean 'roles'?",
    ),
    "telemetry": (
        "telemetry:\n  servicename: x\n  enable: true\n",
        "line 3, column 3: telemetry.enable is not a known key; did you mean 'enabled'?",
    ),
    "telemetry.tracing": (
        "telemetry:\n  tracing: {sample: 0.1}\n",
        "telemetry.tracing.sample is not a known key; did you mean 'sampling'?",
    ),
    "telemetry.metrics": (
        "telemetry:\n  metrics: {enable: true}\n",
        "telemetry.metrics.enable is not a known key; did you mean 'enabled'?",
    ),
    "audit": (
        "audit:\n  maxDataSise: 10\n",
        "line 2, column 3: audit.maxDataSise is not a known key; did you mean 'maxDataSize'?",
    ),
    "server": (
        "server:\n  adress: ':80'\n",
        "line 2, column 3: server.adress is not a known key; did you mean 'address'?",
    ),
    "server.cors": (
        "server:\n  cors: {allowOrigin: [x]}\n",
        "server.cors.allowOrigin is not a known key; did you mean 'allowOrigins'?",
    ),
    "top-level": (
        "source:\n  - name: x\n",
        "line 1, column 1: source is not a known key; did you mean 'sources'?",
    ),
}


@pytest.mark.parametrize(("text", "expected"), UNKNOWN.values(), ids=list(UNKNOWN))
def test_unknown_keys_in_every_block(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text)


RULES = {  # every validation rule: the file, and the message fragment with key path and line
    "source-name-not-dns": (
        SERVE.replace("name: local", "name: Local_Files"),
        "line 2, column 5: sources[0].name must be a DNS label (lowercase letters, digits and "
        "'-', at most 63, starting and ending with a letter or digit), not the text 'Local_Files'",
    ),
    "source-name-too-long": (
        "sources:\n  - {name: " + "a" * 64 + ", managed: {}}\n",
        "sources[0].name must be a DNS label",
    ),
    "source-names-unique": (
        SERVE.replace("registries:", "  - name: local\n    managed: {}\nregistries:"),
        "line 7, column 5: sources[1].name is 'local', already the name of sources[0]; names "
        "must be unique",
    ),
    "source-without-name": (
        "sources:\n  - managed: {}\n",
        "line 2, column 5: sources[0] has no name key, which is required; add name: <a DNS label",
    ),
    "source-without-type": (
        "sources:\n  - name: x\n    syncPolicy: {interval: 1m}\n",
        "line 2, column 5: sources[0] needs one source type: one of file, git, api, managed, "
        "kubernetes",
    ),
    "source-two-types": (
        SERVE.replace("    syncPolicy:", "    managed: {}\n    syncPolicy:"),
        "line 5, column 5: sources[0].managed cannot be given with file: a source has one type",
    ),
    "two-managed-sources": (
        "sources:\n  - {name: a, managed: {}}\n  - {name: b, managed: {}}\n",
        "line 3, column 15: sources[1].managed is a second managed source (sources[0] is one); "
        "at most one source may be managed",
    ),
    "sync-interval-required": (
        "sources:\n  - name: g\n    git: {repository: r}\n",
        "line 2, column 5: sources[0] has no syncPolicy.interval, which a git source needs; add "
        "syncPolicy: {interval: 30m}",
    ),
    "sync-interval-missing-in-block": (
        SERVE.replace("      interval: 5m\n", "      {}\n"),
        "sources[0].syncPolicy has no interval key, which is required",
    ),
    "sync-interval-go-syntax": (
        SERVE.replace("interval: 5m", "interval: 5 minutes"),
        "line 6, column 7: sources[0].syncPolicy.interval must be a duration such as 30s, 5m or "
        "1h30m: '5 minutes' has an unknown unit ' minutes'",
    ),
    "sync-interval-zero": (
        SERVE.replace("interval: 5m", "interval: 0s"),
        "line 6, column 7: sources[0].syncPolicy.interval must be a duration greater than 0",
    ),
    "file-needs-one-of": (
        SERVE.replace("      path: ./data/registry.json\n", "      timeout: 5s\n"),
        "line 3, column 5: sources[0].file needs one of path, url or data",
    ),
    "file-path-and-url": (
        SERVE.replace("      path:", "      url: https://x/r.json\n      path:"),
        "line 4, column 7: sources[0].file.url cannot be given with path: give one",
    ),
    "file-url-scheme": (
        SERVE.replace("      path: ./data/registry.json", "      url: ftp://x/r.json"),
        "line 4, column 7: sources[0].file.url must be an absolute http or https URL",
    ),
    "file-url-relative": (
        SERVE.replace("      path: ./data/registry.json", "      url: /r.json"),
        "sources[0].file.url must be an absolute http or https URL",
    ),
    "git-branch-and-tag": (
        "sources:\n  - name: g\n    git: {repository: r, branch: main, tag: v1}\n"
        "    syncPolicy: {interval: 1m}\n",
        "sources[0].git.tag cannot be given with branch: choose one of branch, tag or commit",
    ),
    "git-password-file-relative": (
        "sources:\n  - name: g\n    git:\n      repository: r\n      auth: {passwordFile: pw}\n"
        "    syncPolicy: {interval: 1m}\n",
        "line 5, column 14: sources[0].git.auth.passwordFile must be an absolute path; got 'pw'",
    ),
    "api-timeout-zero": (
        "sources:\n  - name: a\n    api: {endpoint: 'https://x', timeout: 0s}\n"
        "    syncPolicy: {interval: 1m}\n",
        "line 3, column 34: sources[0].api.timeout must be a duration greater than 0",
    ),
    "api-timeout-over-5m": (
        "sources:\n  - name: a\n    api: {endpoint: 'https://x', timeout: 5m1s}\n"
        "    syncPolicy: {interval: 1m}\n",
        "sources[0].api.timeout must be at most 5m0s; got 5m1s",
    ),
    "api-endpoint": (
        "sources:\n  - name: a\n    api: {endpoint: registry.example}\n"
        "    syncPolicy: {interval: 1m}\n",
        "line 3, column 11: sources[0].api.endpoint must be an absolute http or https URL",
    ),
    "claims-values": (
        SERVE + "    claims: {org: 1}\n",
        "line 10, column 5: registries[0].claims[...] is wrong (Expected `str | array`, got "
        "`int`); registries[0].claims must be a mapping of claim names to text or lists of text",
    ),
    "filter-not-a-list": (
        SERVE.replace("    syncPolicy:", "    filter: {names: {include: 'a/*'}}\n    syncPolicy:"),
        "sources[0].filter.names.include must be a list of text, not the text 'a/*'",
    ),
    "registry-unknown-source": (
        SERVE.replace("sources: [local]", "sources: [local, remote]"),
        "line 9, column 5: registries[0].sources[1] names source 'remote', which is not in "
        "sources (known sources: local)",
    ),
    "registry-no-sources": (
        SERVE.replace("sources: [local]", "sources: []"),
        "line 9, column 5: registries[0].sources must be a list of source names (one or more), "
        "not a list",
    ),
    "registry-without-sources-key": (
        SERVE.replace("    sources: [local]\n", ""),
        "line 8, column 5: registries[0] has no sources key, which is required",
    ),
    "registry-names-unique": (
        SERVE + "  - {name: default, sources: [local]}\n",
        "line 10, column 6: registries[1].name is 'default', already the name of "
        "registries[0]; names must be unique",
    ),
    "registry-name-slash": (
        SERVE.replace("name: default", "name: a/b"),
        "registries[0].name must be a name without '/'",
    ),
    "registry-source-twice": (
        SERVE.replace("sources: [local]", "sources: [local, local]"),
        "registries[0].sources[1] lists 'local' twice",
    ),
    "registries-not-a-list": (
        "registries: {name: x}\n",
        "line 1, column 1: registries must be a list, not a mapping",
    ),
    "auth-mode": (
        "auth: {mode: open}\n",
        "line 1, column 8: auth.mode must be anonymous or oauth, not the text 'open'",
    ),
    "oauth-needs-block": (
        "auth:\n  mode: oauth\n",
        "line 1, column 1: auth has mode oauth but no oauth: block",
    ),
    "oauth-needs-resource-url": (
        "auth:\n  oauth:\n    providers: [{name: p, issuerUrl: 'https://i', audience: a}]\n",
        "line 2, column 3: auth.oauth has no resourceUrl, which mode oauth needs",
    ),
    "oauth-needs-providers": (
        "auth:\n  oauth:\n    resourceUrl: https://r\n",
        "line 2, column 3: auth.oauth has no providers; mode oauth needs at least one",
    ),
    "provider-needs-audience": (
        _oauth("issuerUrl: https://i", audience=False),
        "line 6, column 9: auth.oauth.providers[0] has no audience key, which is required",
    ),
    "provider-needs-issuer": (
        _oauth("clientId: c"),
        "auth.oauth.providers[0] has no issuerUrl key, which is required",
    ),
    "issuer-https": (
        _oauth("issuerUrl: http://idp.example.com"),
        "line 7, column 9: auth.oauth.providers[0].issuerUrl must use https unless its host is "
        "loopback (or THV_REGISTRY_INSECURE_URL=true is set); got 'http://idp.example.com'",
    ),
    "issuer-not-a-url": (
        _oauth("issuerUrl: idp.example.com"),
        "auth.oauth.providers[0].issuerUrl must be an absolute http or https URL",
    ),
    "public-path-slash": (
        "auth: {mode: anonymous, publicPaths: [health]}\n",
        "auth.publicPaths[0] must start with /; got 'health'",
    ),
    "telemetry-sampling": (
        "telemetry:\n  tracing:\n    sampling: 1.5\n",
        "line 3, column 5: telemetry.tracing.sampling must be a ratio from 0 to 1, not the "
        "number 1.5",
    ),
    "telemetry-enabled-text": (
        "telemetry:\n  enabled: 'yes'\n",
        "telemetry.enabled must be true or false, not the text 'yes'",
    ),
    "audit-max-data-size": (
        "audit:\n  maxDataSize: 1048577\n",
        "line 2, column 3: audit.maxDataSize must be a number of bytes from 1 to 1048576 (1 MiB), "
        "not the number 1048577",
    ),
    "audit-log-dir": (
        "audit:\n  logFile: /nonexistent-dir/audit.log\n",
        "line 2, column 3: audit.logFile is in a directory that does not exist",
    ),
    "server-address": (
        "server:\n  address: 8080\n",
        "line 2, column 3: server.address must be an address such as :8080 or 127.0.0.1:8080 "
        "(text), not the number 8080; put it in quotes",
    ),
    "server-address-form": (
        "server:\n  internalAddress: 'localhost'\n",
        "server.internalAddress must be host:port or :port",
    ),
    "server-duration": (
        "server:\n  shutdownTimeout: 30\n",
        "server.shutdownTimeout must be a duration such as 30s, 5m or 1h30m (text), not the "
        "number 30",
    ),
    "server-response-cache-negative": (
        "server:\n  responseCache: {maxBytes: -1}\n",
        "line 2, column 19: server.responseCache.maxBytes must be 0 (no cache) or a positive "
        "number of bytes, not -1",
    ),
    "server-response-cache-not-int": (
        "server:\n  responseCache:\n    maxBytes: 64MiB\n",
        "server.responseCache.maxBytes",
    ),
    "server-duration-negative": (
        "server:\n  syncLease: -1m\n",
        "server.syncLease must be a duration greater than 0",
    ),
    "sources-repeated-key": (
        SERVE.replace("      interval: 5m\n", "      interval: 5m\n      Interval: 1m\n"),
        "line 7, column 7: sources[0].syncPolicy.Interval repeats sources[0].syncPolicy.interval",
    ),
}


@pytest.mark.parametrize(("text", "expected"), RULES.values(), ids=list(RULES))
def test_rules(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text)


def test_problems_of_every_block_at_once(tmp_path: Path) -> None:
    text = (
        "sources:\n  - {name: A, managed: {}}\n"  # 2
        "registries: [{name: r, sources: [a]}]\n"  # 3
        "auth: {mode: oauth}\n"  # 4
        "database: {host: h, user: u, database: d, port: 0}\n"  # 5
        "telemetry: {enabled: 1}\n"  # 6
    )
    message = _error(tmp_path, text)
    assert ", 4 problems: (1) line 2, column 6: sources[0].name must be a DNS label" in message
    assert "(2) line 4, column 1: auth has mode oauth but no oauth: block" in message
    assert "(3) line 5, column 43: database.port must be an integer from 1 to 65535" in message
    assert "(4) line 6, column 13: telemetry.enabled must be true or false" in message


def test_response_cache_size(tmp_path: Path) -> None:
    """``server.responseCache.maxBytes``: 32 MiB by default, 0 turns the cache off."""
    assert _load(tmp_path, DB).server.response_cache.max_bytes == 32 * 1024 * 1024
    off = _load(tmp_path, DB + "server:\n  responseCache: {maxBytes: 0}\n")
    assert off.server.response_cache.max_bytes == 0
    small = _load(tmp_path, DB + "server:\n  responseCache:\n    maxBytes: 1000000\n")
    assert small.server.response_cache.max_bytes == 1_000_000
