"""Parsing and validating upstream registry files (no database): every bad entry is named by
its list, index, name and field; filters; the filter hash."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sync_helpers import server, skill
from thv_registry.config import Patterns, SourceFilter
from thv_registry.sync.errors import InvalidEntry, InvalidRegistryFile
from thv_registry.sync.upstream import filter_hash, parse

A = "io.github.acme/alpha"


def doc(servers: list[Any], skills: list[Any] | None = None, **data: Any) -> bytes:
    body: dict[str, Any] = {"servers": servers, **data}
    if skills is not None:
        body["skills"] = skills
    return json.dumps({"version": "1.0.0", "data": body}).encode()


def bad_entry(data: bytes, **kw: Any) -> InvalidEntry:
    with pytest.raises(InvalidEntry) as caught:
        parse("src", "file.json", data, **kw)
    assert caught.value.source == "src"
    return caught.value


def with_package(**fields: Any) -> dict[str, Any]:
    s = server(A, "1.0.0")
    s["packages"][0].update(fields)
    return s


@pytest.mark.parametrize(
    ("entry", "field", "reason"),
    [
        (server("no-slash", "1.0.0"), "name", "Expected `str` matching regex"),
        (server("io.github.acme/-dash", "1.0.0"), "name", "a server name is namespace/name"),
        (server(A, "latest", packages=[]), "", "`latest` is reserved"),
        (server(A, "^1.0.0"), "", "is a version range"),
        (server(A, "1.0.0", description="x" * 101), "description", "length <= 100"),
        ({"name": A, "description": "d"}, "", "missing required field `version`"),
        (with_package(transport={"type": "streamable-http"}), "packages[0].transport",
         "missing required field `url`"),
        (with_package(transport={"type": "carrier-pigeon"}), "packages[0].transport.type",
         "Invalid value 'carrier-pigeon'"),
        (with_package(identifier=""), "packages[0].identifier", "length >= 1"),
        (with_package(fileSha256="abc"), "packages[0].fileSha256", "matching regex"),
        (server(A, "1.0.0", remotes=[{"type": "stdio", "url": "https://x"}]), "remotes[0].type",
         "Invalid value 'stdio'"),
        (server(A, "1.0.0", icons=[{"src": "https://x/i.png", "theme": "purple"}]),
         "icons[0].theme", "Invalid enum value 'purple'"),
    ],
)  # fmt: skip
def test_a_bad_server_is_named_with_its_index_and_field(
    entry: dict[str, Any], field: str, reason: str
) -> None:
    e = bad_entry(doc([server("io.github.acme/ok", "1.0.0"), entry]))
    assert (e.kind, e.index, e.field) == ("servers", 1, field)
    assert e.name == entry.get("name")
    assert reason in e.reason, e.reason
    assert str(e).startswith(f"data.servers[1] ({entry['name']})")


def test_duplicates_are_refused() -> None:
    twice = with_package()
    twice["packages"].append(dict(twice["packages"][0]))
    e = bad_entry(doc([twice]))
    assert (e.index, e.field) == (0, "packages[1]") and "packages[0]" in e.reason
    remote = {"type": "sse", "url": "https://x/sse"}
    e = bad_entry(doc([server(A, "1.0.0", remotes=[remote, remote])]))
    assert e.field == "remotes[1]"
    e = bad_entry(doc([server(A, "1.0.0"), server(A, "2.0.0"), server(A, "1.0.0")]))
    assert (e.index, e.field) == (2, "version") and "data.servers[0]" in e.reason


def test_meta_size_limit() -> None:
    big = server(A, "1.0.0", _meta={"k": "x" * 100})
    e = bad_entry(doc([big]), max_meta_size=50)
    assert e.field == "_meta" and "over the 50-byte limit" in e.reason
    assert len(parse("s", "f", doc([big])).servers) == 1


def test_bad_skills() -> None:
    e = bad_entry(doc([], [skill("bad ns", "pdf", "1.0.0")]))
    assert (e.kind, e.index, e.name, e.field) == ("skills", 0, "bad ns/pdf", "namespace")
    oci = skill("io.github.acme", "pdf", "1.0.0", packages=[{"registryType": "oci"}])
    e = bad_entry(doc([], [oci]))
    assert e.field == "packages[0]" and "needs `identifier`" in e.reason
    e = bad_entry(
        doc([], [skill("io.github.acme", "pdf", "1"), skill("io.github.acme", "pdf", "1")])
    )
    assert (e.index, e.name) == (1, "io.github.acme/pdf")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{nope", "not JSON"),
        (b"[]", "Expected `object`, got `array`"),
        (b'{"data": {"servers": {}}}', "Expected `array`, got `object`, at data.servers"),
        (b'{"version": "1"}', "missing required field `data`"),
    ],
)
def test_a_file_that_is_not_a_registry(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidRegistryFile) as caught:
        parse("src", "file.json", data)
    assert reason in str(caught.value) and "file.json" in str(caught.value)


def test_plugins_are_counted_and_skipped() -> None:
    parsed = parse("s", "f", doc([server(A, "1.0.0")], plugins=[{"name": "p"}, {"x": 1}]))
    assert parsed.plugins_skipped == 2 and len(parsed.servers) == 1


def test_filters_are_globs_and_exclude_wins() -> None:
    def tagged(name: str, *tags: str) -> dict[str, Any]:
        meta = {"io.modelcontextprotocol.registry/publisher-provided": {"n": {"i": {"tags": tags}}}}
        return server(name, "1.0.0", _meta=meta)

    data = doc(
        [tagged("io.github.a/x", "db"), tagged("io.github.a/y", "db", "old"),
         tagged("com.example/z", "web")],
        [skill("io.github.a", "s", "1.0.0")],
    )  # fmt: skip

    def kept(f: SourceFilter) -> list[str]:
        parsed = parse("s", "f", data, f)
        return [s.name for s in parsed.servers] + [k.name for k in parsed.skills]

    assert kept(SourceFilter(names=Patterns(include=("io.github.*",)))) == [
        "io.github.a/x", "io.github.a/y", "io.github.a/s"]  # fmt: skip
    assert kept(SourceFilter(names=Patterns(include=("*",), exclude=("*/y",)))) == [
        "io.github.a/x", "com.example/z", "io.github.a/s"]  # fmt: skip
    assert kept(SourceFilter(tags=Patterns(include=("d?",), exclude=("old",)))) == ["io.github.a/x"]
    assert kept(SourceFilter(tags=Patterns(exclude=("web",)))) == [
        "io.github.a/x", "io.github.a/y", "io.github.a/s"]  # fmt: skip
    assert parse("s", "f", data, SourceFilter(tags=Patterns(include=("db",)))).filtered_out == 2


def test_filter_hash() -> None:
    assert filter_hash(None) is None and filter_hash(SourceFilter()) is None
    one = filter_hash(SourceFilter(names=Patterns(include=("a*",))))
    assert one == filter_hash(SourceFilter(names=Patterns(include=("a*",))))
    assert one != filter_hash(SourceFilter(names=Patterns(exclude=("a*",))))
    assert one != filter_hash(SourceFilter(tags=Patterns(include=("a*",))))


def test_same_content_other_bytes_same_hash() -> None:
    entry = server(A, "1.0.0", _meta={"b": 1, "a": [1, 2]})
    compact = parse("s", "f", json.dumps({"data": {"servers": [entry]}}).encode())
    spaced = parse("s", "f", json.dumps({"data": {"servers": [entry]}}, indent=3).encode())
    assert compact.servers[0].content_sha256 == spaced.servers[0].content_sha256
    other = parse("s", "f", doc([server(A, "1.0.0", _meta={"b": 2, "a": [1, 2]})]))
    assert other.servers[0].content_sha256 != compact.servers[0].content_sha256
