"""The varied registry the conformance tests seed through a file source (test_api_schemathesis).

The package's sample registry (real servers with icons, packages, remotes, publisher ``_meta``),
the upstream sample of the shared specs when it is there, and hand-made entries: pre-releases,
non-semver versions, build metadata, remotes with URL variables and headers, package arguments,
long and non-ASCII text; ``DELETED`` are dropped by a re-sync so that they are served deleted.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from serving import SCHEMA, skill_json

__all__ = ["DELETED", "seed_servers", "seed_skills", "server"]


def server(name: str, version: str, **extra: Any) -> dict[str, Any]:
    return {"$schema": SCHEMA, "name": name, "description": f"{name} {version}", "version": version,
            **extra}  # fmt: skip


def handmade_servers() -> list[dict[str, Any]]:
    """Entries that exercise every shape the document allows, and odd versions."""
    icon = {"src": "https://example.com/icon.png", "mimeType": "image/png", "sizes": ["48x48"]}
    rich = {
        "title": "Rich — ünïcödé ✓",
        "websiteUrl": "https://example.com/rich",
        "repository": {"url": "https://github.com/example/rich", "source": "github",
                       "id": "b94b5f7e-c7c6-d760-2c78-a5e9b8a5b8c9", "subfolder": "src/rich"},
        "icons": [icon, {"src": "https://example.com/dark.svg", "mimeType": "image/svg+xml",
                         "sizes": ["any"], "theme": "dark"}],
        "packages": [
            {"registryType": "npm", "registryBaseUrl": "https://registry.npmjs.org",
             "identifier": "@example/rich", "version": "1.0.0", "runtimeHint": "npx",
             "fileSha256": "fe333e598595000ae021bd27117db32ec69af6987f507ba7a63c90638ff633ce",
             "transport": {"type": "stdio"},
             "runtimeArguments": [{"type": "named", "name": "--yes", "isRepeated": False}],
             "packageArguments": [
                 {"type": "positional", "valueHint": "dir", "isRepeated": True},
                 {"type": "named", "name": "--port", "value": "{port}", "format": "number",
                  "variables": {"port": {"default": "8080", "choices": ["8080", "9090"]}}}],
             "environmentVariables": [{"name": "TOKEN", "isSecret": True, "isRequired": True}]},
            {"registryType": "oci", "identifier": "ghcr.io/example/rich:1.0.0",
             "transport": {"type": "streamable-http", "url": "http://localhost:{port}/mcp",
                           "headers": [{"name": "X-Key", "value": "{key}"}]}},
        ],
        "remotes": [
            {"type": "streamable-http", "url": "https://{tenant}.example.com/mcp",
             "headers": [{"name": "Authorization", "value": "Bearer {token}", "isSecret": True,
                          "variables": {"token": {"isSecret": True}}}],
             "variables": {"tenant": {"description": "Tenant", "isRequired": True}}},
            {"type": "sse", "url": "https://example.com/sse"},
        ],
        "_meta": {"io.modelcontextprotocol.registry/publisher-provided": {
            "tool": "publisher-cli", "buildInfo": {"commit": "abc123"}}},
    }  # fmt: skip
    return [
        server("io.example/rich", "1.0.0", **rich),
        server("io.example/rich", "1.1.0-beta.1", **rich),
        server("io.example/prerelease-only", "0.1.0-alpha.1"),
        server("io.example/prerelease-only", "0.1.0-beta.2"),
        server("io.example/calver", "2024.01"),
        server("io.example/calver", "v2-nightly"),
        server("io.example/calver", "1.0"),
        server("io.example/build-meta", "1.0.0+build.5", icons=[icon]),
        server("io.example/deleted-one", "1.0.0"),
        server("io.example/deleted-one", "1.1.0"),  # dropped by the re-sync: deleted
        server("io.example/gone", "1.0.0"),  # dropped: its only version is deleted
        server("io.example/long-text", "1.0.0", description="d" * 100, title="t" * 100),
    ]


def seed_servers() -> list[dict[str, Any]]:
    sample = json.loads(files("thv_registry.sample").joinpath("registry.json").read_text())
    upstream = Path(__file__).resolve().parents[2] / "shared" / "specs" / "upstream-registry.json"
    shared = json.loads(upstream.read_text())["data"]["servers"] if upstream.exists() else []
    return [*sample["data"]["servers"], *shared, *handmade_servers()]


DELETED = {("io.example/deleted-one", "1.1.0"), ("io.example/gone", "1.0.0")}


def seed_skills() -> list[dict[str, Any]]:
    """The sample's skills and hand-made ones: statuses, OCI and git packages, odd versions."""
    sample = json.loads(files("thv_registry.sample").joinpath("registry.json").read_text())
    oci = {
        "registryType": "oci",
        "identifier": "ghcr.io/example/skills/lint:1.0.0",
        "digest": "sha256:" + "a" * 64,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
    }
    git = {
        "registryType": "git",
        "url": "https://github.com/example/skills.git",
        "ref": "v1",
        "commit": "b" * 40,
        "subfolder": "lint",
    }
    extra = {"license": "MIT", "compatibility": "claude>=1", "allowedTools": ["Read", "Bash"],
             "metadata": {"author": "example"}, "repository": {"url": "https://github.com/x/y",
             "type": "git"}, "icons": [{"src": "https://example.com/s.png", "size": "48x48"}],
             "_meta": {"dev.toolhive": {"tier": "community"}}}  # fmt: skip
    made = [
        {**skill_json("io.example", "lint", version, status), "packages": [oci, git], **extra}
        for version, status in (("1.0.0", "active"), ("1.1.0-rc.1", "active"),
                                ("0.9.0", "deprecated"), ("2024.05", "active"))
    ]  # fmt: skip
    return [*sample["data"].get("skills", []), *made, skill_json("io.example", "old", "1.0.0",
                                                                  "deprecated")]  # fmt: skip
