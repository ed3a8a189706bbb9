"""The wire models: strict decoding of server.json entries, exact round trips, exact keys."""

from __future__ import annotations

import copy
import datetime
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from thv_registry.registry.models import (
    OFFICIAL_META_KEY,
    ListMetadata,
    NamedArgument,
    OfficialMeta,
    PositionalArgument,
    ResponseMeta,
    ServerDetail,
    ServerListResponse,
    ServerResponse,
    Skill,
    SkillListResponse,
    SseRemote,
    StdioTransport,
)

UPSTREAM = Path("/work/shared/specs/upstream-registry.json")
FULL: dict[str, Any] = {
    "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
    "name": "io.github.example/weather",
    "description": "Weather data",
    "title": "Weather",
    "version": "1.2.0",
    "websiteUrl": "https://example.com",
    "repository": {
        "url": "https://github.com/e/w",
        "source": "github",
        "id": "1",
        "subfolder": "s",
    },
    "icons": [
        {"src": "https://e.com/i.png", "mimeType": "image/png", "sizes": ["48x48", "any"]},
        {"src": "https://e.com/d.svg", "theme": "dark"},
    ],
    "packages": [
        {
            "registryType": "npm",
            "registryBaseUrl": "https://registry.npmjs.org",
            "identifier": "@e/weather",
            "version": "1.2.0",
            "fileSha256": "a" * 64,
            "runtimeHint": "npx",
            "transport": {"type": "stdio"},
            "runtimeArguments": [
                {
                    "type": "named",
                    "name": "--port",
                    "value": "{port}",
                    "isRepeated": False,
                    "variables": {"port": {"default": "80", "format": "number"}},
                },
                {"type": "positional", "valueHint": "dir", "isRequired": True},
            ],
            "packageArguments": [{"type": "positional", "value": "x", "choices": ["x", "y"]}],
            "environmentVariables": [{"name": "TOKEN", "isSecret": True, "placeholder": "t"}],
        },
        {
            "registryType": "oci",
            "identifier": "ghcr.io/e/w:1.2.0",
            "transport": {
                "type": "streamable-http",
                "url": "http://localhost:{port}/mcp",
                "headers": [{"name": "X-Key", "value": "{key}"}],
            },
        },
    ],
    "remotes": [
        {
            "type": "sse",
            "url": "https://{tenant}.e.com/sse",
            "variables": {"tenant": {"isRequired": True, "choices": ["a", "b"]}},
        },
        {"type": "streamable-http", "url": "https://e.com/mcp"},
    ],
    "_meta": {"io.modelcontextprotocol.registry/publisher-provided": {"tool": "cli", "n": 1}},
}


def decode(entry: dict[str, Any]) -> ServerDetail:
    return msgspec.json.decode(json.dumps(entry).encode(), type=ServerDetail)


def test_every_upstream_sample_entry_round_trips_exactly() -> None:
    entries = json.loads(UPSTREAM.read_text())["data"]["servers"]
    assert entries
    for entry in entries:
        assert json.loads(msgspec.json.encode(msgspec.convert(entry, ServerDetail))) == entry


def test_every_field_round_trips_in_order() -> None:
    detail = decode(FULL)
    assert isinstance(detail.packages and detail.packages[0].transport, StdioTransport)
    assert detail.packages is not None and detail.packages[0].runtime_arguments is not None
    named, positional = detail.packages[0].runtime_arguments
    assert isinstance(named, NamedArgument) and isinstance(positional, PositionalArgument)
    assert isinstance(detail.remotes and detail.remotes[0], SseRemote)
    out = json.loads(msgspec.json.encode(detail))
    assert out == FULL
    assert [i["src"] for i in out["icons"]] == [i["src"] for i in FULL["icons"]]
    assert list(out)[0] == "$schema" and "_meta" in out


def _broken(path: list[str | int], value: Any) -> dict[str, Any]:
    entry = copy.deepcopy(FULL)
    node: Any = entry
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return entry


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["name"], "no-slash", "`$.name`"),
        (["name"], "a/b/c", "`$.name`"),
        (["name"], KeyError, "required field `name`"),
        (["description"], KeyError, "required field `description`"),
        (["description"], "", "`$.description`"),
        (["description"], "x" * 101, "`$.description`"),
        (["title"], "x" * 101, "`$.title`"),
        (["version"], "x" * 256, "`$.version`"),
        (["version"], "^1.2.3", "version range"),
        (["version"], "1.x", "version range"),
        (["version"], ">=1.0.0", "version range"),
        (["version"], "latest", "reserved"),
        (["version"], 1, "Expected `str`"),
        (["repository", "url"], KeyError, "`url`"),
        (["icons", 0, "mimeType"], "image/gif", "`$.icons[0].mimeType`"),
        (["icons", 0, "sizes", 0], "big", "`$.icons[0].sizes[0]`"),
        (["icons", 1, "theme"], "pink", "`$.icons[1].theme`"),
        (["icons", 0, "src"], "https://e.com/" + "x" * 250, "`$.icons[0].src`"),
        (["packages", 0, "transport", "type"], "carrier-pigeon", "`$.packages[0].transport.type`"),
        (["packages", 0, "transport"], KeyError, "`transport`"),
        (["packages", 1, "transport", "url"], "ftp://x", "`$.packages[1].transport.url`"),
        (["packages", 0, "fileSha256"], "ABC", "`$.packages[0].fileSha256`"),
        (["packages", 0, "version"], "latest", "not `latest`"),
        (["packages", 0, "identifier"], "", "`$.packages[0].identifier`"),
        (["packages", 0, "runtimeArguments", 0, "type"], "flag", "runtimeArguments[0]"),
        (["packages", 0, "runtimeArguments", 0, "name"], KeyError, "`name`"),
        (["packages", 0, "runtimeArguments", 1, "valueHint"], KeyError, "valueHint"),
        (["packages", 0, "environmentVariables", 0, "name"], KeyError, "`name`"),
        (["packages", 0, "runtimeArguments", 0, "format"], "date", "format"),
        (["remotes", 0, "type"], "stdio", "`$.remotes[0].type`"),
        (["remotes", 1, "url"], KeyError, "`url`"),
        (
            ["_meta", "io.modelcontextprotocol.registry/publisher-provided"],
            [1],
            "must be an object",
        ),
    ],
)
def test_bad_entries_are_refused_with_the_path(
    path: list[str | int], value: Any, message: str
) -> None:
    with pytest.raises(msgspec.ValidationError, match=re.escape(message)):
        decode(_broken(path, value))


def test_unknown_keys_are_accepted_and_dropped() -> None:
    entry = {**FULL, "futureField": 1}
    assert "futureField" not in json.loads(msgspec.json.encode(decode(entry)))


def test_server_response_has_the_official_meta_with_exact_keys() -> None:
    t = datetime.datetime(2025, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.UTC)
    official = OfficialMeta(status="active", published_at=t, updated_at=t, is_latest=False)
    page = ServerListResponse(
        servers=[ServerResponse(server=decode(FULL), meta=ResponseMeta(official=official))],
        metadata=ListMetadata(count=1),
    )
    out = json.loads(msgspec.json.encode(page))
    assert out["metadata"] == {"count": 1}  # no nextCursor without a next page
    meta = out["servers"][0]["_meta"]
    assert meta == {
        OFFICIAL_META_KEY: {
            "status": "active",
            "publishedAt": "2025-01-02T03:04:05.600000Z",
            "updatedAt": "2025-01-02T03:04:05.600000Z",
            "isLatest": False,  # present even when false
        }
    }
    with_next = ServerListResponse(servers=[], metadata=ListMetadata(next_cursor="c", count=0))
    assert json.loads(msgspec.json.encode(with_next))["metadata"] == {"nextCursor": "c", "count": 0}


def test_official_meta_refuses_unknown_keys_and_statuses() -> None:
    base = {
        "status": "active",
        "publishedAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2025-01-01T00:00:00Z",
        "isLatest": True,
    }
    msgspec.convert(base, OfficialMeta)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({**base, "extra": 1}, OfficialMeta)
    with pytest.raises(msgspec.ValidationError, match="status"):
        msgspec.convert({**base, "status": "gone"}, OfficialMeta)


def test_skill_shapes() -> None:
    skill = {
        "namespace": "io.github.stacklok",
        "name": "pdf",
        "description": "PDF tools",
        "version": "1.0.0",
        "status": "active",
        "allowedTools": ["Read"],
        "metadata": {"k": "v"},
        "_meta": {"x": 1},
        "repository": {"url": "https://github.com/s/k", "type": "git"},
        "icons": [{"src": "https://e.com/i.png", "size": "48x48", "type": "image/png"}],
        "packages": [
            {
                "registryType": "oci",
                "identifier": "ghcr.io/s/pdf:1.0.0",
                "digest": "sha256:" + "b" * 64,
                "mediaType": "application/x",
            },
            {
                "registryType": "git",
                "url": "https://github.com/s/k.git",
                "ref": "v1",
                "commit": "c" * 40,
                "subfolder": "pdf",
            },
        ],
    }
    decoded = msgspec.convert(skill, Skill)
    page = SkillListResponse(skills=[decoded], metadata=ListMetadata(count=1))
    assert json.loads(msgspec.json.encode(page)) == {"skills": [skill], "metadata": {"count": 1}}
    with pytest.raises(msgspec.ValidationError, match="needs `url`"):
        msgspec.convert({**skill, "packages": [{"registryType": "git"}]}, Skill)
    with pytest.raises(msgspec.ValidationError, match="registryType"):
        msgspec.convert({**skill, "packages": [{"registryType": "npm"}]}, Skill)
