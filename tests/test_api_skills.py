"""``/registry/{name}/v0.1/x/dev.toolhive/skills[...]`` on a real ``serve`` process: the Go
edition's routes with its gaps fixed (bad cursor 400, ``status`` honoured, unknown status 400)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api_fixtures import Served, start_module_server

SKILLS = "/registry/default/v0.1/x/dev.toolhive/skills"


@pytest.fixture(scope="module")
def api(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from start_module_server(pg_server, tmp_path_factory.mktemp("skills"))


def get(api: Served, path: str) -> httpx.Response:
    return httpx.get(api[0].base + path, timeout=10)


def versions(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["metadata"]["count"] == len(body["skills"])
    return [(s["name"], s["version"]) for s in body["skills"]]


def test_list_holds_every_version_or_the_latest(api: Served) -> None:
    assert set(versions(get(api, SKILLS))) == {("writer", "1.1.0"), ("writer", "1.0.0"),
                                                ("old-tool", "0.9.0")}  # fmt: skip
    assert set(versions(get(api, f"{SKILLS}?version=latest"))) == {
        ("writer", "1.1.0"),
        ("old-tool", "0.9.0"),
    }


def test_status_filter_is_honoured(api: Served) -> None:
    assert versions(get(api, f"{SKILLS}?status=deprecated")) == [("old-tool", "0.9.0")]
    assert ("old-tool", "0.9.0") not in versions(get(api, f"{SKILLS}?status=ACTIVE"))


def test_pages_walk_every_version_once(api: Served) -> None:
    seen: list[tuple[str, str]] = []
    url = f"{SKILLS}?limit=1"
    while True:
        body = get(api, url).json()
        seen += [(s["name"], s["version"]) for s in body["skills"]]
        cursor = body["metadata"].get("nextCursor")
        if not cursor:
            break
        url = f"{SKILLS}?limit=1&cursor={cursor}"
    assert sorted(seen) == sorted(versions(get(api, SKILLS))) and len(seen) == 3


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("status=retired", ("status", "active")),
        ("status=active&status=deleted", ("status", "more than once")),
        ("limit=0", ("limit",)),
        ("limit=101", ("limit", "100")),
        ("limit=x", ("limit",)),
        ("cursor=bogus!", ("cursor",)),
        ("cursor=AAAAAAAA", ("cursor",)),
        ("search=" + "s" * 257, ("search",)),
        ("search=%00", ("NUL",)),
        ("version=%ff", ("UTF-8",)),
    ],
)
def test_bad_list_parameter_is_400(api: Served, query: str, words: tuple[str, ...]) -> None:
    response = get(api, f"{SKILLS}?{query}")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert all(w.lower() in error.lower() for w in words), error


def test_one_skill_latest_versions_and_version(api: Served) -> None:
    latest = get(api, f"{SKILLS}/io.example/writer")
    assert latest.status_code == 200 and latest.json()["version"] == "1.1.0"
    assert versions(get(api, f"{SKILLS}/io.example/writer/versions")) == [
        ("writer", "1.1.0"),
        ("writer", "1.0.0"),
    ]
    one = get(api, f"{SKILLS}/io.example/writer/versions/1.0.0")
    assert one.status_code == 200 and one.json()["version"] == "1.0.0"
    assert get(api, f"{SKILLS}/io.example/writer/versions/latest").json()["version"] == "1.1.0"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"{SKILLS}/io.example/nothing", 404),
        (f"{SKILLS}/io.example/nothing/versions", 404),
        (f"{SKILLS}/io.example/writer/versions/9.9.9", 404),
        ("/registry/nope/v0.1/x/dev.toolhive/skills", 404),
        (f"{SKILLS}/{'n' * 201}/writer", 400),
        (f"{SKILLS}/io.example/wr%00iter", 400),
        (f"{SKILLS}/io.example/writer/versions/{'1' * 256}", 400),
    ],
)
def test_unknown_is_404_and_malformed_is_400(api: Served, path: str, status: int) -> None:
    response = get(api, path)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"]
