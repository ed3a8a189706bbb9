"""HTTP behaviour of a real ``serve`` process: HEAD, 404/405, ETag/304, gzip, request ids,
``nosniff``, CORS, ``/openapi.json`` and the internal listener's ``/metrics``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api_fixtures import Served, start_module_server

API = "/registry/default/v0.1"
ALPHA = f"{API}/servers/io.github.example%2Falpha"
ROUTES = [
    f"{API}/servers",
    f"{API}/servers?limit=2",
    f"{ALPHA}/versions",
    f"{ALPHA}/versions/latest",
    f"{ALPHA}/versions/1.10.0",
    f"{API}/x/dev.toolhive/skills",
    "/openapi.json",
]


@pytest.fixture(scope="module")
def api(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from start_module_server(pg_server, tmp_path_factory.mktemp("http"))


@pytest.fixture(scope="module")
def cors_api(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from start_module_server(
        pg_server,
        tmp_path_factory.mktemp("cors"),
        server={"cors": {"allowOrigins": ["https://ui.example"]}},
    )


def request(base: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, base + path, timeout=10, **kwargs)


@pytest.mark.parametrize("path", ROUTES)
def test_head_answers_wherever_get_does(api: Served, path: str) -> None:
    get = request(api[0].base, "GET", path)
    head = request(api[0].base, "HEAD", path)
    assert get.status_code == head.status_code == 200, get.text
    assert head.content == b""
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/", "/nope", "/registry", f"{API}/servers/", f"{API}/publish"])
def test_unknown_route_is_json_404(api: Served, path: str) -> None:
    response = request(api[0].base, "GET", path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "error" in response.json() and response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", [f"{API}/servers", f"{ALPHA}/versions/1.9.0", "/openapi.json"])
def test_other_methods_are_json_405_with_allow(api: Served, method: str, path: str) -> None:
    response = request(api[0].base, method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert method in response.json()["error"]


def test_etag_and_if_none_match(api: Served) -> None:
    base = api[0].base
    first = request(base, "GET", f"{API}/servers")
    tag = first.headers["etag"]
    assert re.fullmatch(r'W/"[0-9a-f]{32}"', tag)
    assert request(base, "GET", f"{API}/servers").headers["etag"] == tag  # stable
    for header in (tag, f'"other", {tag}', "*", tag.removeprefix("W/")):
        cached = request(base, "GET", f"{API}/servers", headers={"If-None-Match": header})
        assert cached.status_code == 304, header
        assert cached.content == b"" and cached.headers["etag"] == tag
    fresh = request(base, "GET", f"{API}/servers", headers={"If-None-Match": 'W/"other"'})
    assert fresh.status_code == 200 and fresh.content == first.content
    other = request(base, "GET", f"{API}/servers?limit=1")
    assert other.headers["etag"] != tag
    assert "etag" not in request(base, "GET", "/nope").headers  # only on 200


def test_gzip_when_accepted_and_over_1_kib(api: Served) -> None:
    base = api[0].base
    plain = request(base, "GET", f"{API}/servers", headers={"Accept-Encoding": "identity"})
    assert len(plain.content) > 1024 and "content-encoding" not in plain.headers
    zipped = request(base, "GET", f"{API}/servers", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.json() == plain.json()  # httpx decodes
    assert int(zipped.headers["content-length"]) < len(plain.content)
    small = request(base, "GET", "/nope", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers


def test_request_id_is_echoed_or_generated(api: Served) -> None:
    base = api[0].base
    given = request(base, "GET", f"{API}/servers", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = request(base, "GET", f"{API}/servers")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert made.headers["x-request-id"] != request(base, "GET", "/x").headers["x-request-id"]
    unsafe = request(base, "GET", "/nope", headers={"X-Request-ID": "a b\tc"})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])


def test_nosniff_on_every_answer(api: Served) -> None:
    for path in (f"{API}/servers", "/nope", f"{API}/servers?limit=0", "/openapi.json"):
        assert request(api[0].base, "GET", path).headers["x-content-type-options"] == "nosniff"


def test_no_cors_unless_configured(api: Served, cors_api: Served) -> None:
    origin = {"Origin": "https://ui.example"}
    off = request(api[0].base, "GET", f"{API}/servers", headers=origin)
    assert "access-control-allow-origin" not in off.headers
    on = request(cors_api[0].base, "GET", f"{API}/servers", headers=origin)
    assert on.headers["access-control-allow-origin"] == "https://ui.example"
    other = request(cors_api[0].base, "GET", f"{API}/servers", headers={"Origin": "https://x"})
    assert "access-control-allow-origin" not in other.headers
    preflight = request(
        cors_api[0].base,
        "OPTIONS",
        f"{API}/servers",
        headers={**origin, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 200
    assert "GET" in preflight.headers["access-control-allow-methods"]


def test_openapi_lists_exactly_what_is_served(api: Served) -> None:
    doc = request(api[0].base, "GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    methods = {(path, m) for path, item in doc["paths"].items() for m in item}
    assert {m for _, m in methods} == {"get"}
    assert all(path.startswith("/registry/{registryName}/v0.1/") for path, _ in methods)
    samples = {
        "registryName": "default",
        "serverName": "io.github.example%2Falpha",
        "version": "1.9.0",
        "namespace": "io.example",
        "name": "nothing",
    }
    for path, _ in methods:
        url = path
        for key, value in samples.items():
            url = url.replace("{" + key + "}", value)
        response = request(api[0].base, "GET", url)
        assert response.status_code in (200, 404), (path, response.text)
        assert "no such path" not in response.text, path  # a route, not an unknown path
    text = request(api[0].base, "GET", "/openapi.json").text
    for name in set(re.findall(r"#/components/schemas/([A-Za-z0-9_]+)", text)):
        assert name in doc["components"]["schemas"], name  # every $ref resolves


def test_openapi_is_valid_openapi_3_1(api: Served) -> None:
    from openapi_spec_validator import validate

    validate(request(api[0].base, "GET", "/openapi.json").json())  # raises when invalid


def test_metrics_count_requests_by_route_and_status(api: Served) -> None:
    process = api[0]
    request(process.base, "GET", f"{API}/servers?limit=0")
    request(process.base, "GET", f"{API}/servers")
    text = request(process.internal, "GET", "/metrics").text
    route = "/registry/{registry}/v0.1/servers"
    assert re.search(
        rf'http_requests_total{{method="GET",route="{re.escape(route)}",status="400"}} [1-9]', text
    ), text
    assert f'http_request_duration_seconds_bucket{{le="0.001",route="{route}"}}' in text
    assert 'db_pool_connections{state="open"}' in text
    assert re.search(r'registry_sync_runs_total\{result="synced",source="local"\} 1', text), text
    assert 'registry_sync_duration_seconds_count{source="local"}' in text
