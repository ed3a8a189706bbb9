"""The sample registry shipped in the package, for ``serve`` without ``--config``.

``registry.json`` (an upstream registry file) holds a few real public MCP servers (the
Model Context Protocol reference servers everything, filesystem and memory; GitHub's; Microsoft's
Playwright server with a pre-release among its versions) with their packages, remotes and icons,
and two of Anthropic's public Agent Skills. :func:`sample_settings` gives the sources and
registries that serve it: one file source ``sample`` reading it, one registry ``default``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import msgspec

from thv_registry.config import (
    AuthSettings,
    FileSourceSettings,
    RegistrySettings,
    Settings,
    SourceSettings,
    SyncPolicy,
)

__all__ = ["SAMPLE_REGISTRY", "SAMPLE_SOURCE", "SAMPLE_REGISTRY_NAME", "sample_settings"]

#: the shipped upstream registry file
SAMPLE_REGISTRY = Path(__file__).with_name("registry.json")
SAMPLE_SOURCE = "sample"
SAMPLE_REGISTRY_NAME = "default"
#: the file cannot change under an installed package; a rare re-check costs nothing
SAMPLE_INTERVAL = timedelta(minutes=30)


def sample_settings(settings: Settings | None = None) -> Settings:
    """``settings`` (default: all defaults) with the sample's source and registry, and
    anonymous auth when none is configured."""
    base = settings if settings is not None else Settings()
    source = SourceSettings(
        name=SAMPLE_SOURCE,
        file=FileSourceSettings(path=str(SAMPLE_REGISTRY)),
        sync_policy=SyncPolicy(interval=SAMPLE_INTERVAL),
    )
    registry = RegistrySettings(name=SAMPLE_REGISTRY_NAME, sources=(SAMPLE_SOURCE,))
    return msgspec.structs.replace(
        base,
        sources=(source,),
        registries=(registry,),
        auth=base.auth if base.auth is not None else AuthSettings(mode="anonymous"),
    )
