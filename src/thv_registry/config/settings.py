"""``Settings``: one loaded configuration file, the rules across its blocks, what serve needs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import msgspec

from thv_registry.config.base import Model, Problem
from thv_registry.config.database import DatabaseSettings, MigrationSettings
from thv_registry.config.server import (
    AuditSettings,
    AuthSettings,
    ServerSettings,
    TelemetrySettings,
)
from thv_registry.config.sources import RegistrySettings, SourceSettings
from thv_registry.db.connect import ConnectionParams
from thv_registry.errors import ConfigError

__all__ = ["Settings", "NOT_KEYS", "NO_DATABASE_HINT"]

#: Settings fields that are not YAML keys.
NOT_KEYS = frozenset({"path", "marks"})
NO_DATABASE_HINT = "Add a database: block with host, port, user and database."


class Settings(Model, frozen=True):
    """A loaded configuration. Migration commands need only ``database`` (None: the embedded
    server); serve needs the server blocks too (:meth:`check_serve`)."""

    path: Path | None = None  #: the file it came from (not a YAML key)
    database: DatabaseSettings | None = None
    migrations: MigrationSettings = msgspec.field(default_factory=MigrationSettings)
    sources: tuple[SourceSettings, ...] = ()
    registries: tuple[RegistrySettings, ...] = ()
    auth: AuthSettings | None = None
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    telemetry: TelemetrySettings | None = None
    audit: AuditSettings | None = None
    #: Where each key was written: key path (``sources[0].git``) -> (line, column), from 1.
    marks: dict[str, tuple[int, int]] = msgspec.field(default_factory=dict)

    def migration_params(self) -> ConnectionParams:
        """Connect as ``migrationUser`` (default ``user``) with ``migrationPassword``."""
        db = self._database()
        return self._params(db.migration_user or db.user, db.migration_password or db.password)

    def app_params(self) -> ConnectionParams:
        """Connect as the application ``user`` with ``password``."""
        db = self._database()
        return self._params(db.user, db.password)

    def _params(self, user: str, password: str | None) -> ConnectionParams:
        db = self._database()
        return ConnectionParams(
            db.host,
            db.port,
            user,
            db.database,
            db.sslmode,
            password,
            connect_timeout=db.connect_timeout,
            search_path=self.migrations.schema,
        )

    def dump_schema_path(self) -> Path | None:
        """``migrations.dumpSchema``, a relative path taken from the file's directory."""
        if self.migrations.dump_schema is None:
            return None
        path = Path(self.migrations.dump_schema).expanduser()
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        return path

    def _database(self) -> DatabaseSettings:
        if self.database is None:
            raise ConfigError(
                f"{self.path or 'The configuration'} has no database: block, so there is "
                "no server to connect to.",
                hint=NO_DATABASE_HINT,
                reason="no_database",
            )
        return self.database

    def source(self, name: str) -> SourceSettings | None:
        """The source called ``name``, if any."""
        return next((s for s in self.sources if s.name == name), None)

    def problems(self) -> Iterable[Problem]:
        found: list[Problem] = []
        first: dict[str, int] = {}
        for i, source in enumerate(self.sources):
            if source.name in first:
                found.append((("sources", i, "name"), _twice("sources", source.name, first)))
            first.setdefault(source.name, i)
        managed = [i for i, s in enumerate(self.sources) if s.managed is not None]
        for i in managed[1:]:
            found.append(
                (
                    ("sources", i, "managed"),
                    f"is a second managed source (sources[{managed[0]}] "
                    "is one); at most one source may be managed",
                )  # fmt: skip
            )
        seen: dict[str, int] = {}
        for i, registry in enumerate(self.registries):
            if registry.name in seen:
                found.append((("registries", i, "name"), _twice("registries", registry.name, seen)))
            seen.setdefault(registry.name, i)
            for j, name in enumerate(registry.sources):
                if name not in first:
                    known = ", ".join(first) or "none"
                    found.append(
                        (
                            ("registries", i, "sources", j),
                            f"names source {name!r}, which is not "
                            f"in sources (known sources: {known})",
                        )  # fmt: skip
                    )
                elif name in registry.sources[:j]:
                    found.append((("registries", i, "sources", j), f"lists {name!r} twice"))
        return found

    def check_serve(self, supported_source_kinds: frozenset[str]) -> None:
        """Raise a ConfigError unless serve has what it needs: sources, registries, database
        and auth, each source of a kind this edition supports."""
        missing = [
            f"it has no {key}: block ({why})"
            for key, present, why in (
                ("sources", bool(self.sources), "serve needs at least one source"),
                ("registries", bool(self.registries), "serve needs at least one registry"),
                ("database", self.database is not None, "serve keeps the registry in PostgreSQL"),
                ("auth", self.auth is not None, "say mode: anonymous or oauth"),
            )
            if not present
        ]
        unsupported = [
            f"line {self.marks.get(f'sources[{i}]', (0, 0))[0]}: sources[{i}] ({s.name}): "
            f"{s.kind} sources are {_NOT_SUPPORTED.get(s.kind, 'not yet supported')} by this "
            f"edition (supported: {', '.join(sorted(supported_source_kinds)) or 'none'})"
            for i, s in enumerate(self.sources)
            if s.kind not in supported_source_kinds
        ]
        problems = missing + unsupported
        if not problems:
            return
        where = self.path or "The configuration"
        if len(problems) == 1:
            message = f"Cannot serve with {where}: {problems[0]}."
        else:
            listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
            message = f"Cannot serve with {where}, {len(problems)} problems: {listed}."
        raise ConfigError(message, hint=f"Edit {where} and run the command again.")


#: kinds refused for good, and why (docs/sources.md); other unsupported kinds are "not yet"
_NOT_SUPPORTED = {
    "kubernetes": "not supported (it would need a Kubernetes client and the operator's CRDs; "
    "export the MCPServer resources to a git or file source instead)",
}


def _twice(block: str, name: str, first: dict[str, int]) -> str:
    return f"is {name!r}, already the name of {block}[{first[name]}]; names must be unique"
