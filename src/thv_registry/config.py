"""Configuration: the YAML file -> validated settings, env overrides, connection parameters.

The Go server's file (its ``database:`` block) plus our optional ``migrations:`` block; other
top-level keys belong to the server's other parts. Keys match case-insensitively, as in the Go
server (viper). Problems become one ConfigError naming file, key path and line; never a password.

:func:`load_config` returns the pydantic models (:mod:`.config_models`, the schema of record).
The CLI calls :func:`.config_fast.load_config_values`, which reads a plainly valid file without
importing pydantic and hands everything else to :func:`load_config`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from thv_registry.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from thv_registry.config_models import DatabaseSettings, MigrationSettings, Settings

__all__ = ["ConnectionParams", "DatabaseSettings", "MigrationSettings", "Settings", "load_config"]
__all__ += ["SSL_MODES", "PASSWORD_ENV", "MIGRATION_PASSWORD_ENV", "valid_host"]

PASSWORD_ENV = "THV_REGISTRY_DATABASE_PASSWORD"
MIGRATION_PASSWORD_ENV = "THV_REGISTRY_DATABASE_MIGRATIONPASSWORD"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# The Migrator's defaults (tests check they agree); not imported: config sits below migrations.
DEFAULT_LOCK_WAIT_S, DEFAULT_LOCK_TIMEOUT_MS, DEFAULT_LOCK_RETRIES = 15.0, 5000, 3
_SECRET_KEYS = frozenset({"password", "migrationpassword"})
_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?$")
_EXPECTED = {  # what each field takes, for messages
    "host": "a host name, an IP address or a Unix-socket directory",
    "port": "an integer from 1 to 65535",
    "user": "a role name",
    "database": "a database name",
    "migration_user": "a role name",
    "password": "a password",
    "migration_password": "a password",
    "sslmode": "one of " + ", ".join(SSL_MODES),
    "max_open_conns": "a whole number, 0 or more",
    "max_idle_conns": "a whole number, 0 or more",
    "conn_max_lifetime": "a duration such as 30m or 1h (text)",
    "max_meta_size": "a number of bytes greater than 0",
    "lock_wait_seconds": "a number of seconds greater than 0 and at most 86400",
    "lock_timeout_ms": "a whole number of milliseconds, 0 (no timeout) or more",
    "lock_retries": "a whole number from 0 to 100",
}


@dataclass(frozen=True)
class ConnectionParams:
    """Everything libpq needs to reach one database as one user."""

    host: str
    port: int
    user: str
    dbname: str
    sslmode: str
    password: str | None = field(default=None, repr=False)  #: None: libpq reads ~/.pgpass

    def describe(self) -> str:
        """``user@host:port/dbname``, for messages (never the password)."""
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``psycopg.connect``; the password only when one is set."""
        kwargs: dict[str, object] = {"host": self.host, "port": self.port, "user": self.user}
        kwargs.update(dbname=self.dbname, sslmode=self.sslmode)
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs


_NO_DATABASE_HINT = (
    "Add a database: block with host, port, user and database, or run without --config to use "
    "the embedded PostgreSQL."
)
_PASS_CONFIG = "Pass --config with the path of your configuration file."
_MODELS = frozenset({"DatabaseSettings", "MigrationSettings", "Settings"})


def __getattr__(name: str) -> Any:
    """The pydantic models, imported on first use (PEP 562)."""
    if name in _MODELS:
        from thv_registry import config_models

        return getattr(config_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def valid_host(value: str) -> str | None:
    """Why ``value`` is not a usable ``database.host`` (None: it is)."""
    if not value:
        return "must not be empty"
    for part in value.split(","):  # libpq accepts a comma-separated list of hosts
        if part.startswith("/") or _HOSTNAME.match(part) or _is_ip(part):
            continue
        return (
            f"must be a host name, an IP address or an absolute Unix-socket directory "
            f"(starting with /); got {value!r}"
        )
    return None


def _database_missing(source_path: Path | None) -> ConfigError:
    return ConfigError(
        f"{source_path or 'The configuration'} has no database: block, so there is "
        "no server to connect to.",
        hint=_NO_DATABASE_HINT,
    )


# -- loading -------------------------------------------------------------------------------------

_Pairs = dict[str, tuple[yaml.Node, yaml.Node]]
_Problem = tuple[int, int, str]  #: line, column, text
_MERGE = "tag:yaml.org,2002:merge"
_UNREADABLE = {
    FileNotFoundError: ("Configuration file %s does not exist.", _PASS_CONFIG),
    IsADirectoryError: (
        "Configuration path %s is a directory, not a file.",
        "Pass --config with the path of the YAML file itself.",
    ),
    PermissionError: (
        "Cannot read configuration file %s: permission denied.",
        "Make it readable by the user running thv-registry-api (e.g. chmod u+r), or pass "
        "--config with another file.",
    ),
}


_Blocks = dict[str, tuple[str, yaml.Node, yaml.Node]]


def load_config(path: Path) -> Settings:
    """Read, validate and return the configuration in ``path``; apply the env overrides."""
    from thv_registry.config_models import DatabaseSettings, MigrationSettings, Settings

    path = Path(path).expanduser()
    data, blocks, problems = _structure(path)
    database = _block(DatabaseSettings, data, blocks.get("database"), problems)
    migrations = _block(MigrationSettings, data, blocks.get("migrations"), problems)
    if problems:
        _raise(path, problems)
    if isinstance(database, DatabaseSettings):
        database = _env_overrides(database)
    return Settings(
        database=database if isinstance(database, DatabaseSettings) else None,
        migrations=migrations if isinstance(migrations, MigrationSettings) else MigrationSettings(),
        source_path=path,
    )


def _structure(path: Path) -> tuple[dict[Any, Any], _Blocks, list[_Problem]]:
    """The file's data, its database/migrations blocks, and the top-level problems."""
    text = _read(path)
    node, data = _parse(path, text)
    if node is None or data is None:
        raise ConfigError(
            f"Configuration file {path} is empty (or holds only comments).",
            hint=_NO_DATABASE_HINT,
        )
    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
        raise ConfigError(
            f"Invalid configuration in {path} at line {node.start_mark.line + 1}: the top level "
            f"must be a mapping of keys such as database:, but it is {_kind(data)}.",
            hint=f"Edit {path} so that it starts with database: and run the command again.",
        )
    problems: list[_Problem] = []
    pairs = _pairs(node, "", problems)
    blocks: _Blocks = {}
    for key, (knode, vnode) in pairs.items():
        name = key.lower()
        if name in ("database", "migrations"):
            if name in blocks:
                problems.append(_at(knode, f"{key} repeats {blocks[name][0]}; keep only one"))
            blocks[name] = (key, knode, vnode)
        elif close := _close_matches(name, ["database", "migrations"], 0.8):
            problems.append(_at(knode, f"{key} is not a known key; did you mean {close[0]!r}?"))
    return data, blocks, problems


def _close_matches(word: str, choices: list[str], cutoff: float) -> list[str]:
    if word in choices or not choices:
        return []
    import difflib  # only for keys that are not ours: most files never get here

    return difflib.get_close_matches(word, choices, 1, cutoff)


def _read(path: Path) -> str:
    """The file's text, or a ConfigError that says why it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        message, hint = _UNREADABLE.get(type(exc), ("", _PASS_CONFIG))
        if message:
            message %= (path,)
        else:
            message = f"Cannot read configuration file {path}: {exc.strerror or exc}."
        raise ConfigError(message, hint=hint) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"Configuration file {path} is not UTF-8 text (invalid byte at line {line}).",
            hint="Save the file as UTF-8 and run the command again.",
        ) from None


def _parse(path: Path, text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data (``safe_load``) of ``text``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        # Built from parts: str(exc) would quote the offending line, which may hold a password.
        what = exc.problem or "syntax error"
        if exc.problem_mark is not None:
            what += f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
        if exc.context:
            start = f" (line {exc.context_mark.line + 1})" if exc.context_mark else ""
            what = f"{exc.context}{start}, {what}"
        raise ConfigError(
            f"Configuration file {path} is not valid YAML: {what}.",
            hint="Fix the syntax near that line (indent with spaces; quote values that contain "
            "': ' or ' #') and run the command again.",
        ) from None
    except yaml.YAMLError as exc:  # ReaderError: a control character; has a position
        line = text[: getattr(exc, "position", 0)].count("\n") + 1
        raise ConfigError(
            f"Configuration file {path} is not valid YAML: it holds a control character YAML "
            f"does not allow, at line {line}.",
            hint="Remove it and run the command again.",
        ) from None
    return node, data


def _pairs(node: yaml.MappingNode, prefix: str, problems: list[_Problem], depth: int = 0) -> _Pairs:
    """Key text -> (key node, value node), merge keys (``<<``) resolved; reports repeated keys."""
    merged: _Pairs = {}
    own: _Pairs = {}
    for knode, vnode in node.value:
        if knode.tag == _MERGE:
            sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
            for src in reversed(sources):  # earlier sources win, as in PyYAML
                if isinstance(src, yaml.MappingNode) and depth < 20:
                    merged.update(_pairs(src, prefix, [], depth + 1))
            continue
        key = str(knode.value)
        if key in own:
            first = own[key][0].start_mark.line + 1
            problems.append(_at(knode, f"{prefix}{key} is given twice (also at line {first})"))
        own[key] = (knode, vnode)
    return merged | own


def _block(
    model: type[DatabaseSettings] | type[MigrationSettings],
    data: dict[Any, Any],
    found: tuple[str, yaml.Node, yaml.Node] | None,
    problems: list[_Problem],
) -> BaseModel | None:
    """Validate one block of the file; append its problems; return the model or None."""
    if found is None:
        return None
    name, knode, vnode = found
    value = data.get(name)
    if value is None and model.__name__ == "MigrationSettings":
        return model.model_validate({})
    if not isinstance(value, dict) or not isinstance(vnode, yaml.MappingNode):
        what = "is empty" if value is None else f"must be a mapping of keys, not {_kind(value)}"
        problems.append(_at(knode, f"{name} {what}; {_expected_keys(model)}"))
        return None
    spellings = _spellings(model)
    lowered = {k.lower(): k for k in reversed(spellings)}  # first spelling wins
    pairs = _pairs(vnode, f"{name}.", problems)
    given: dict[str, tuple[str, yaml.Node]] = {}
    inputs: dict[str, Any] = {}
    suggested: set[str] = set()  # fields a did-you-mean already points at
    for key, (kn, _vn) in pairs.items():
        field_name = _field_for(model, key)
        if field_name is None:
            close = _close_matches(key.lower(), list(lowered), 0.6)
            hint = f"did you mean {lowered[close[0]]!r}?" if close else _expected_keys(model)
            problems.append(_at(kn, f"{name}.{key} is not a known key; {hint}"))
            if close:
                suggested.add(_field_for(model, lowered[close[0]]) or "")
            continue
        if field_name in given:
            first = given[field_name][0]
            problems.append(_at(kn, f"{name}.{key} repeats {name}.{first}; keep only one"))
            continue
        given[field_name] = (key, kn)
        inputs[field_name] = value.get(key)
    from pydantic import ValidationError

    try:
        return model.model_validate(inputs)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            fname = str(err["loc"][0]) if err["loc"] else ""  # inputs are keyed by field name
            if err["type"] == "missing" and fname in suggested:
                continue
            key, kn = given.get(fname, ((_spellings(model, fname) or [fname])[0], knode))
            expected = _EXPECTED.get(fname, "a valid value")
            problems.append(_at(kn, _describe(expected, name, key, err, fname in given)))
        return None


def _spellings(model: type[BaseModel], only: str | None = None) -> list[str]:
    """Every key spelling the model accepts (of field ``only``, if given), in field order."""
    from pydantic import AliasChoices

    names: list[str] = []
    for fname, info in model.model_fields.items():
        if only is not None and fname != only:
            continue
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.extend(str(c) for c in alias.choices)
        else:
            names.append(alias if isinstance(alias, str) else fname)
    return names


def _field_for(model: type[BaseModel], key: str) -> str | None:
    """The field a key names, compared case-insensitively (as viper does)."""
    for fname in model.model_fields:
        if any(key.lower() == s.lower() for s in _spellings(model, fname)):
            return fname
    return None


def _describe(expected: str, block: str, key: str, err: Any, present: bool) -> str:
    """One problem in the user's terms, never echoing a password."""
    path = f"{block}.{key}"
    kind = err["type"]
    value = err.get("input")
    secret = key.lower() in _SECRET_KEYS
    if kind == "missing" or not present:
        return f"{block} has no {key} key, which is required; add {key}: <{expected}>"
    if kind == "value_error":
        return f"{path} {err['ctx']['error']}"
    if value is None:
        return f"{path} has no value; give {expected}"
    if kind == "string_too_short":
        return f"{path} must not be empty; give {expected}"
    if kind == "string_type":
        quote = "; put it in quotes" if isinstance(value, int | float | bool) else ""
        return f"{path} must be {expected} (text), not {_kind(value, secret)}{quote}"
    return f"{path} must be {expected}, not {_kind(value, secret)}"


def _expected_keys(model: type[BaseModel]) -> str:
    required = [_spellings(model, n)[0] for n, i in model.model_fields.items() if i.is_required()]
    need = f"it needs {', '.join(required)}; " if required else ""
    return f"{need}known keys are {', '.join(_spellings(model))}"


def _kind(value: Any, secret: bool = False) -> str:
    """How a YAML value reads in a message (its value only when not secret)."""
    if isinstance(value, bool):
        return "a boolean" if secret else f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return "a number" if secret else f"the number {value}"
    if isinstance(value, str):
        return "text" if secret else f"the text {value[:60]!r}"
    names = {list: "a list", dict: "a mapping", type(None): "empty"}
    return names.get(type(value), f"a {type(value).__name__}")


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _at(node: yaml.Node, text: str) -> _Problem:
    return (node.start_mark.line + 1, node.start_mark.column + 1, text)


def _raise(path: Path, problems: list[_Problem]) -> None:
    shown = [f"line {line}, column {col}: {text}" for line, col, text in sorted(problems)]
    if len(shown) == 1:
        message = f"Invalid configuration in {path} at {shown[0]}"
    else:
        listed = "; ".join(f"({i}) {p}" for i, p in enumerate(shown, 1))
        message = f"Invalid configuration in {path}, {len(problems)} problems: {listed}"
    message += "" if message.endswith("?") else "."
    raise ConfigError(message, hint=f"Edit {path} and run the command again.")


def _env_overrides(db: DatabaseSettings) -> DatabaseSettings:
    """Apply THV_REGISTRY_DATABASE_PASSWORD / _MIGRATIONPASSWORD (empty values are unset)."""
    from pydantic import SecretStr

    update: dict[str, SecretStr] = {}
    if password := os.environ.get(PASSWORD_ENV):
        update["password"] = SecretStr(password)
    if migration_password := os.environ.get(MIGRATION_PASSWORD_ENV):
        update["migration_password"] = SecretStr(migration_password)
    return db.model_copy(update=update) if update else db
