"""Typed errors of the registry's read side. They carry data, not HTTP: the API maps them.

``RegistryNotFound``, ``ServerNotFound``, ``VersionNotFound`` and ``SkillNotFound`` are what a
client asked for and this registry does not hold (404 in the API); ``InvalidCursor`` is a
``cursor`` parameter this server did not issue or cannot read (400).
"""

from __future__ import annotations

__all__ = [
    "InvalidCursor",
    "RegistryError",
    "RegistryNotFound",
    "ServerNotFound",
    "SkillNotFound",
    "VersionNotFound",
]


class RegistryError(Exception):
    """Base of the registry's read errors; ``str()`` is a sentence naming what was asked."""


class RegistryNotFound(RegistryError):
    def __init__(self, registry: str) -> None:
        super().__init__(f"registry {registry!r} not found")
        self.registry = registry


class ServerNotFound(RegistryError):
    def __init__(self, registry: str, name: str) -> None:
        super().__init__(f"server {name!r} not found in registry {registry!r}")
        self.registry = registry
        self.name = name


class VersionNotFound(RegistryError):
    def __init__(self, registry: str, name: str, version: str) -> None:
        super().__init__(f"version {version!r} of {name!r} not found in registry {registry!r}")
        self.registry = registry
        self.name = name
        self.version = version


class SkillNotFound(RegistryError):
    def __init__(
        self, registry: str, namespace: str, name: str, version: str | None = None
    ) -> None:
        what = f"skill {namespace}/{name}" + (f" version {version!r}" if version else "")
        super().__init__(f"{what} not found in registry {registry!r}")
        self.registry = registry
        self.namespace = namespace
        self.name = name
        self.version = version


class InvalidCursor(RegistryError):
    """The ``cursor`` parameter is not one this server issued (``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid cursor: {reason}")
        self.reason = reason
