"""Every bad input of issue 10 against a real ``serve`` process: status and JSON body.

Also what good inputs do at the edges (limit clamped, booleans in any case, ``%2F`` in a
server name), and that no parameter can change the database (injection attempts).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from psycopg import sql

from api_fixtures import Seeded, Served, start_module_server
from serving import ServeProcess

API = "/registry/default/v0.1"
ALPHA = "io.github.example%2Falpha"


@pytest.fixture(scope="module")
def api(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from start_module_server(pg_server, tmp_path_factory.mktemp("params"))


def get(process: ServeProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(process.base + path, timeout=10, **kwargs)


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"], body
    for word in words:
        assert word.lower() in body["error"].lower(), (word, body)


@pytest.mark.parametrize("value", ["0", "-1", "", "abc", "1.5", "1e3", "%20", "0x10"])
def test_bad_limit_is_400(api: Served, value: str) -> None:
    assert_error(get(api[0], f"{API}/servers?limit={value}"), 400, "limit")


def test_limit_above_100_is_clamped_and_default_is_30(api: Served) -> None:
    process = api[0]
    clamped = get(process, f"{API}/servers?limit=100000")
    assert clamped.status_code == 200
    assert clamped.json()["metadata"]["count"] == len(clamped.json()["servers"]) <= 100
    one = get(process, f"{API}/servers?limit=1").json()
    assert one["metadata"]["count"] == 1 and "nextCursor" in one["metadata"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("search=" + "a" * 257, ("search", "256")),
        ("updated_since=yesterday", ("updated_since", "RFC 3339")),
        ("updated_since=2025-01-01", ("updated_since",)),
        ("updated_since=2025-01-01T00:00:00", ("updated_since",)),  # no time zone
        ("updated_since=2025-01-01T00:00:00%2B0700", ("updated_since",)),  # offset without ':'
        ("updated_since=2025-02-30T00:00:00Z", ("updated_since",)),
        ("include_deleted=maybe", ("include_deleted",)),
        ("include_deleted=", ("include_deleted",)),
        ("cursor=not-a-cursor!", ("cursor",)),
        ("cursor=AAAA", ("cursor",)),
        ("cursor=", ("cursor",)),
        ("cursor=" + "A" * 5000, ("cursor",)),
        ("limit=5&limit=6", ("limit", "more than once")),
        ("search=a&search=a", ("search", "more than once")),
        ("version=" + "9" * 256, ("version", "255")),
        ("search=%00", ("search", "NUL")),
        ("version=1.0%00", ("version", "NUL")),
        ("cursor=%00", ("cursor",)),
        ("search=%ff%fe", ("UTF-8",)),
        ("version=%c3%28", ("UTF-8",)),
    ],
)
def test_bad_list_parameter_is_400(api: Served, query: str, words: tuple[str, ...]) -> None:
    assert_error(get(api[0], f"{API}/servers?{query}"), 400, *words)


@pytest.mark.parametrize(
    ("search", "names"),
    [
        ("r_s", {"com.example/under_score"}),
        ("_", {"com.example/under_score"}),
        ("%", set()),
        ("\\", set()),
        ("ALPHA", {"io.github.example/alpha"}),
        ("gamma title", {"com.example/gamma"}),
    ],
)
def test_search_matches_literally_and_ignores_case(
    api: Served, search: str, names: set[str]
) -> None:
    response = get(api[0], f"{API}/servers?search={quote(search, safe='')}")
    assert response.status_code == 200, response.text
    assert {s["server"]["name"] for s in response.json()["servers"]} == names


def test_updated_since_filters_by_rfc_3339_time(api: Served) -> None:
    everything = get(api[0], f"{API}/servers?limit=100").json()["metadata"]["count"]
    for value, expected in (
        ("2000-01-01T00:00:00.123456789Z", everything),
        ("2000-01-01t01:00:00%2B01:00", everything),
        ("2999-01-01T00:00:00-07:00", 0),
    ):
        response = get(api[0], f"{API}/servers?limit=100&updated_since={value}")
        assert response.status_code == 200, response.text
        assert response.json()["metadata"]["count"] == expected, value


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1", "false", "FALSE", "0"])
def test_include_deleted_accepts_booleans_in_any_case(api: Served, value: str) -> None:
    response = get(api[0], f"{API}/servers?include_deleted={value}")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/registry/" + "r" * 64 + "/v0.1/servers", ("registry name", "63")),
        ("/registry/de%00fault/v0.1/servers", ("registry name", "NUL")),
        ("/registry/de%fffault/v0.1/servers", ("registry name", "UTF-8")),
        (f"{API}/servers/io.example%2F{'n' * 200}/versions", ("server name", "200")),
        (f"{API}/servers/io.example%2Fa%00b/versions", ("server name", "NUL")),
        (f"{API}/servers/io.example%2Fa%80b/versions", ("server name", "UTF-8")),
        (f"{API}/servers/{ALPHA}/versions/{'1' * 256}", ("version", "255")),
        (f"{API}/servers/{ALPHA}/versions/1.0%00", ("version", "NUL")),
        (f"{API}/servers/{ALPHA}/versions/1.%e2%82", ("version", "UTF-8")),
        (f"{API}/servers/{ALPHA}/versions?include_deleted=yes", ("include_deleted",)),
        (f"{API}/servers/{ALPHA}/versions/1.9.0?include_deleted=2", ("include_deleted",)),
    ],
)
def test_bad_path_segment_is_400(api: Served, path: str, words: tuple[str, ...]) -> None:
    assert_error(get(api[0], path), 400, *words)


def test_url_over_8_kib_is_414(api: Served) -> None:
    assert_error(get(api[0], f"{API}/servers?search=a&x={'y' * 8200}"), 414, "too long")
    assert_error(get(api[0], f"{API}/servers/{'n' * 8200}/versions"), 414, "too long")
    assert get(api[0], f"{API}/servers?x={'y' * 7000}").status_code == 200


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/registry/nope/v0.1/servers", ("registry", "nope")),
        ("/registry/nope/v0.1/servers/io.github.example%2Falpha/versions", ("registry",)),
        (f"{API}/servers/io.example%2Fmissing/versions", ("io.example/missing",)),
        (f"{API}/servers/io.example%2Fmissing/versions/1.0.0", ("io.example/missing",)),
        (f"{API}/servers/{ALPHA}/versions/9.9.9", ("9.9.9",)),
        (f"{API}/servers/no-slash/versions/latest", ("no-slash",)),
        (f"{API}/servers/io.github.example/alpha/versions", ("no such path",)),  # raw '/'
    ],
)
def test_unknown_registry_server_version_is_404(
    api: Served, path: str, words: tuple[str, ...]
) -> None:
    assert_error(get(api[0], path), 404, *words)


def test_server_name_travels_as_percent_2f(api: Served) -> None:
    process = api[0]
    versions = get(process, f"{API}/servers/{ALPHA}/versions").json()
    assert [s["server"]["version"] for s in versions["servers"]] == [
        "2.0.0-rc.1",
        "1.10.0",
        "1.9.0",
    ]
    one = get(process, f"{API}/servers/{ALPHA.replace('%2F', '%2f')}/versions/1.10.0")
    assert one.status_code == 200
    assert one.json()["server"]["name"] == "io.github.example/alpha"


INJECTIONS = ["' OR 1=1 --", "'; DROP TABLE registry_entry; --", "%' OR '%'='", "\\'; SELECT 1"]


#: the registry's contents (sync bookkeeping in source and registry_sync may move meanwhile)
CONTENT_TABLES = (
    "registry",
    "registry_source",
    "registry_entry",
    "entry_version",
    "mcp_server",
    "mcp_server_package",
    "mcp_server_remote",
    "mcp_server_icon",
    "latest_entry_version",
    "skill",
)


def _fingerprint(seeded: Seeded) -> dict[str, object]:
    """A digest of every content table's rows."""
    digest = sql.SQL(
        "SELECT count(*), md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM {} x"
    )
    with seeded.connect() as conn:
        return {
            t: conn.execute(digest.format(sql.Identifier(t))).fetchone() for t in CONTENT_TABLES
        }


def test_injection_attempts_change_nothing(api: Served) -> None:
    process, seeded = api
    before = _fingerprint(seeded)
    assert before["entry_version"][0] > 0  # type: ignore[index]
    for text in INJECTIONS:
        quoted = quote(text, safe="")
        for param in ("search", "version", "cursor", "updated_since", "include_deleted", "limit"):
            response = get(process, f"{API}/servers?{param}={quoted}")
            assert response.status_code in (200, 400), (param, text, response.text)
            assert response.json()
        for path in (
            f"/registry/{quoted}/v0.1/servers",
            f"{API}/servers/{quoted}/versions",
            f"{API}/servers/{ALPHA}/versions/{quoted}",
            f"{API}/x/dev.toolhive/skills?search={quoted}",
        ):
            response = get(process, path)
            assert response.status_code in (200, 400, 404), (path, response.text)
    assert _fingerprint(seeded) == before
