"""``load_config``: read the file, parse it once into YAML nodes, walk them into Settings, apply
the env overrides; every problem in one ConfigError naming file, key path and line."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import yaml

from thv_registry.config.database import MIGRATION_PASSWORD_ENV, PASSWORD_ENV
from thv_registry.config.settings import NO_DATABASE_HINT, NOT_KEYS, Settings
from thv_registry.config.walk import Located, Walker
from thv_registry.errors import ConfigError

__all__ = ["load_config"]

_UNREADABLE = {  # error -> (message, reason); cli/ words the advice
    FileNotFoundError: ("Configuration file %s does not exist.", "missing"),
    IsADirectoryError: ("Configuration path %s is a directory, not a file.", "directory"),
    PermissionError: ("Cannot read configuration file %s: permission denied.", "permission"),
}


def load_config(path: Path) -> Settings:
    """Read, validate and return the configuration in ``path``; apply the env overrides.

    Blocks that are absent get their defaults (``database``, ``auth``, ``telemetry`` and
    ``audit``: None); what serve requires is checked by :meth:`Settings.check_serve`.
    """
    path = Path(path).expanduser()
    node = _parse(path, _read(path))
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
        raise ConfigError(
            f"Configuration file {path} is empty (or holds only comments).",
            hint=NO_DATABASE_HINT,
            reason="empty",
        )
    if not isinstance(node, yaml.MappingNode):
        walker = Walker()
        raise ConfigError(
            f"Invalid configuration in {path} at line {node.start_mark.line + 1}: the top level "
            f"must be a mapping of keys such as database:, but it is {walker.kind(node)}.",
            hint=f"Edit {path} so that it starts with database: and run the command again.",
        )
    walker = Walker()
    settings: Settings = walker.model(Settings, node, ("", ""), node, skip=NOT_KEYS)
    if walker.problems:
        _raise(path, walker.problems)
    marks = {
        key: (n.start_mark.line + 1, n.start_mark.column + 1)
        for key, (_shown, n) in walker.where.items()
        if key
    }
    database = settings.database
    if database is not None:
        overrides = {
            attr: value
            for attr, env in (
                ("password", PASSWORD_ENV),
                ("migration_password", MIGRATION_PASSWORD_ENV),
            )
            if (value := os.environ.get(env))  # an empty variable is unset
        }
        database = msgspec.structs.replace(database, **overrides) if overrides else database
    return msgspec.structs.replace(settings, path=path, marks=marks, database=database)


def _read(path: Path) -> str:
    """The file's text, or a ConfigError that says why it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        message, reason = _UNREADABLE.get(type(exc), ("", None))
        if message:
            message %= (path,)
        else:
            message = f"Cannot read configuration file {path}: {exc.strerror or exc}."
        raise ConfigError(message, reason=reason) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"Configuration file {path} is not UTF-8 text (invalid byte at line {line}).",
            hint="Save the file as UTF-8 and run the command again.",
        ) from None


def _parse(path: Path, text: str) -> yaml.Node | None:
    """The node tree of ``text`` (one document), with the marks that give lines.

    libyaml (``CSafeLoader``) builds the same nodes faster; a file it refuses is parsed again
    by the pure-Python loader, whose messages are the ones users see (and tests read).
    """
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.compose(text, Loader=fast)
        except yaml.YAMLError:
            pass
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
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


def _raise(path: Path, problems: list[Located]) -> None:
    shown = [f"line {line}, column {col}: {text}" for line, col, text in sorted(set(problems))]
    if len(shown) == 1:
        message = f"Invalid configuration in {path} at {shown[0]}"
    else:
        listed = "; ".join(f"({i}) {p}" for i, p in enumerate(shown, 1))
        message = f"Invalid configuration in {path}, {len(shown)} problems: {listed}"
    message += "" if message.endswith("?") else "."
    raise ConfigError(message, hint=f"Edit {path} and run the command again.")
