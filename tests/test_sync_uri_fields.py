"""The sync refuses what the official document's ``format: uri`` refuses (and only that), so a
file can never make the API answer outside the document; the refusal names entry and field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance_seed import server as _server


def _with_uri(field: str, value: str) -> dict[str, Any]:
    """A server.json whose ``field`` (one the document declares ``format: uri``) is ``value``."""
    doc = _server("io.example/uri", "1.0.0")
    package = {"registryType": "npm", "identifier": "x", "transport": {"type": "stdio"}}
    if field == "websiteUrl":
        doc["websiteUrl"] = value
    elif field == "$schema":
        doc["$schema"] = value
    elif field == "repository.url":
        doc["repository"] = {"url": value, "source": "github"}
    elif field == "packages[0].registryBaseUrl":
        doc["packages"] = [{**package, "registryBaseUrl": value}]
    else:
        doc["icons"] = [{"src": value}]
    return doc


URI_FIELDS = ("websiteUrl", "$schema", "repository.url", "packages[0].registryBaseUrl",
              "icons[0].src")  # fmt: skip
URI_SAMPLES = ("https://example.com/a?b=c#d", "urn:isbn:0451450523", "mailto:a@example.com",
               "https://[::1]:8080/", "not a uri", "ghcr.io/example/x", "https://e.com/a b",
               "https://例え.jp/", "https://e.com/%zz", "https://e.com/{x}", "")  # fmt: skip


def _parse(*servers: dict[str, Any]) -> Any:
    from thv_registry.sync.upstream import parse

    data = json.dumps({"version": "1.0.0", "meta": {}, "data": {"servers": list(servers)}})
    return parse("local", "registry.json", data.encode())


@pytest.mark.parametrize("field", URI_FIELDS)
def test_the_sync_accepts_in_uri_fields_what_the_document_accepts(field: str) -> None:
    """What the sync accepts is what the document's ``format: uri`` accepts, and the reverse
    (it took any string, so a file could make the API answer outside the document)."""
    import jsonschema_rs

    from thv_registry.sync.errors import InvalidEntry

    uri = jsonschema_rs.Draft202012Validator(
        {"type": "string", "format": "uri"}, validate_formats=True
    )
    for value in URI_SAMPLES:
        try:
            _parse(_with_uri(field, value))
            accepted = True
        except InvalidEntry:
            accepted = False
        assert accepted == uri.is_valid(value), (field, value)


def test_a_bad_uri_fails_the_sync_naming_entry_and_field() -> None:
    from thv_registry.sync.errors import InvalidEntry

    with pytest.raises(InvalidEntry) as raised:
        _parse(_server("io.example/ok", "1.0.0"), _with_uri("repository.url", "github.com/x"))
    error = raised.value
    assert (error.index, error.name, error.field) == (1, "io.example/uri", "repository.url")
    assert error.reason.startswith("expected an absolute URI such as https://"), error.reason
