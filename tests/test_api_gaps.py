"""Issue 10's API requirements that the other API tests leave unproven, over HTTP on a real
``serve`` whose database connection runs through a counting proxy (tests/pgcount.py):

- a page costs a constant number of queries, whatever its size (children in one query each);
- the database is unchanged after injection attempts in every parameter of every operation that
  ``/openapi.json`` lists (path and query), each answered 200, 400 or 404 with a JSON body;
- the internal listener answers HEAD wherever it answers GET, and JSON errors (404, 405).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from psycopg import sql

from api_fixtures import Seeded, make_env
from pgcount import CountingProxy
from serving import ServeProcess, running, serve_config, server_json, skill_json, write_registry

API = "/registry/default/v0.1"
NAMES = [f"io.example/srv-{i:02d}" for i in range(40)]
VERSIONS = ("1.0.0", "1.1.0", "2.0.0-rc.1")
SINGLE = "io.example/single"


def _servers() -> list[dict[str, Any]]:
    extra = {
        "icons": [{"src": "https://example.com/i.png", "mimeType": "image/png"}],
        "remotes": [
            {"type": "sse", "url": "https://{host}.example.com/sse",
             "variables": {"host": {"isRequired": True}}},
            {"type": "streamable-http", "url": "https://example.com/mcp"},
        ],
    }  # fmt: skip
    docs = [server_json(n, v, **extra) for n in NAMES for v in VERSIONS]
    return [*docs, server_json(SINGLE, "1.0.0", **extra)]


Counted = tuple[ServeProcess, CountingProxy, Seeded]


@pytest.fixture(scope="module")
def api(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Counted]:
    tmp = tmp_path_factory.mktemp("gaps")
    seeded = Seeded(pg_server)
    try:
        with CountingProxy(pg_server.host, pg_server.port) as proxy:
            registry = write_registry(
                tmp / "registry.json", _servers(), [skill_json("io.example", "writer", "1.0.0")]
            )
            conn = {**seeded.conn, "host": "127.0.0.1", "port": proxy.port}
            config = serve_config(tmp / "config.yaml", conn, registry)
            doc = yaml.safe_load(config.read_text())
            doc["sources"][0]["syncPolicy"]["interval"] = "1h"  # no sync while counting
            doc["server"]["syncPollInterval"] = "1h"
            config.write_text(yaml.safe_dump(doc, sort_keys=False))
            with running(config, make_env(tmp), tmp) as process:
                yield process, proxy, seeded
    finally:
        seeded.drop()


def statements(process: ServeProcess, proxy: CountingProxy, path: str) -> int:
    """The fewest statements one GET of ``path`` ran over three tries (a connection's first use
    sets it up once; that is not the page's cost)."""
    costs = []
    for _ in range(3):
        before = proxy.statements
        response = httpx.get(process.base + path, timeout=10)
        assert response.status_code == 200, (path, response.text)
        time.sleep(0.1)  # the proxy's thread counts what it forwarded
        costs.append(proxy.statements - before)
    return min(costs)


def test_a_page_costs_a_constant_number_of_queries(api: Counted) -> None:
    process, proxy, _ = api
    single = quote(SINGLE, safe="")
    many = quote(NAMES[0], safe="")
    lists = {
        path: statements(process, proxy, path)
        for path in (
            f"{API}/servers?limit=1",
            f"{API}/servers?limit=5",
            f"{API}/servers?limit=30",
            f"{API}/servers?limit=100",
            f"{API}/servers?limit=100&version=latest",
            f"{API}/servers?limit=60&include_deleted=true&search=srv",
        )
    }
    assert len(set(lists.values())) == 1, lists
    assert 0 < next(iter(lists.values())) <= 8, lists
    versions = {
        path: statements(process, proxy, path)
        for path in (f"{API}/servers/{single}/versions", f"{API}/servers/{many}/versions")
    }
    assert len(set(versions.values())) == 1, versions
    one = [
        statements(process, proxy, f"{API}/servers/{name}/versions/{version}")
        for name, version in ((single, "1.0.0"), (many, "latest"), (many, "2.0.0-rc.1"))
    ]
    assert len(set(one)) == 1, one


INJECTIONS = (
    "' OR 1=1 --",
    "'; DROP TABLE registry_entry; --",
    "1); DELETE FROM entry_version; --",
    "%' OR '%'='",
    "\\'; UPDATE entry_version SET status = 'DELETED'; --",
    '" OR ""="',
    "$$; TRUNCATE source CASCADE; $$",
)
#: the registry's contents (the sync's bookkeeping in source/registry_sync may move meanwhile)
CONTENT_TABLES = (
    "registry",
    "source",
    "registry_source",
    "registry_entry",
    "entry_version",
    "mcp_server",
    "mcp_server_package",
    "mcp_server_remote",
    "mcp_server_icon",
    "latest_entry_version",
    "skill",
    "skill_git_package",
)
SAMPLES = {
    "registryName": "default",
    "serverName": quote(NAMES[0], safe=""),
    "version": "1.0.0",
    "namespace": "io.example",
    "name": "writer",
}


def _fingerprint(seeded: Seeded) -> dict[str, Any]:
    query = sql.SQL(
        "SELECT count(*), md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM {} x"
    )
    with seeded.connect() as conn:
        found = {
            t: conn.execute(query.format(sql.Identifier(t))).fetchone() for t in CONTENT_TABLES
        }
        source = conn.execute("SELECT name, source_type FROM source ORDER BY name").fetchall()
    return {**found, "source": source}  # a source row's sync columns may move: not its identity


def _attempts(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(parameter, URL) for each injection in each parameter of each listed operation."""
    for template, item in doc["paths"].items():
        parameters = item["get"].get("parameters", [])
        for target in parameters:
            for text in INJECTIONS:
                value = quote(text, safe="")
                path, query = template, []
                for p in parameters:
                    given = value if p is target else SAMPLES.get(p["name"])
                    if p["in"] == "path":
                        path = path.replace("{" + p["name"] + "}", str(given))
                    elif p is target:
                        query.append(f"{p['name']}={value}")
                yield target["name"], path + ("?" + "&".join(query) if query else "")


def test_injection_attempts_in_every_parameter_change_nothing(api: Counted) -> None:
    process, _, seeded = api
    doc = httpx.get(f"{process.base}/openapi.json", timeout=10).json()
    before = _fingerprint(seeded)
    assert before["entry_version"][0] == len(_servers()) + 1  # servers and the skill
    tried: set[str] = set()
    with httpx.Client(base_url=process.base, timeout=10) as client:
        for parameter, url in _attempts(doc):
            for method in ("GET", "HEAD"):
                response = client.request(method, url)
                assert response.status_code in (200, 400, 404), (method, url, response.text)
                assert response.headers["content-type"] == "application/json", url
                if method == "GET":
                    assert response.json(), url
            tried.add(parameter)
    expected = {"registryName", "serverName", "version", "namespace", "name", "cursor", "limit",
                "search", "updated_since", "include_deleted", "status"}  # fmt: skip
    assert expected <= tried, tried
    assert _fingerprint(seeded) == before


@pytest.mark.parametrize("path", ["/health", "/readiness", "/version", "/metrics"])
def test_internal_listener_answers_head_wherever_get(api: Counted, path: str) -> None:
    process = api[0]
    get = httpx.get(process.internal + path, timeout=10)
    head = httpx.head(process.internal + path, timeout=10)
    assert get.status_code == head.status_code == 200, get.text
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_internal_listener_errors_are_json(api: Counted) -> None:
    process = api[0]
    missing = httpx.get(process.internal + "/nope", timeout=10)
    assert missing.status_code == 404 and "error" in missing.json()
    assert missing.headers["content-type"] == "application/json"
    wrong = httpx.post(process.internal + "/health", timeout=10)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"
    assert "POST" in wrong.json()["error"]


@pytest.mark.parametrize("query", ["utm=%00", "x=a%01b", "%00=1", "include_deleted=true&trace=%7F"])
def test_a_nul_or_control_character_in_any_parameter_is_400(api: Counted, query: str) -> None:
    """Also in a parameter the route does not read (a repeated one already was a 400)."""
    for path in (f"{API}/servers", f"{API}/servers/{quote(SINGLE, safe='')}/versions/latest",
                 f"{API}/x/dev.toolhive/skills"):  # fmt: skip
        response = httpx.get(f"{api[0].base}{path}?{query}", timeout=10)
        assert response.status_code == 400, (path, query, response.text)
        assert "character" in response.json()["error"], response.text
    unknown = httpx.get(f"{api[0].base}{API}/servers?utm_source=newsletter", timeout=10)
    assert unknown.status_code == 200  # a parameter the route does not read is ignored
