"""Query and path parameters, parsed once: each bad value is a 400 naming the parameter.

Paths are routed on the raw (still percent-encoded) path (see :mod:`thv_registry.api.app`), so
a server name's ``%2F`` stays inside its segment; :func:`path_param` decodes a segment strictly
(valid UTF-8, no NUL or control characters, within its length). Query strings are decoded
strictly too, and a parameter given twice is refused rather than silently picking one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.requests import Request

from thv_registry.api.errors import ApiError

__all__ = [
    "MAX_URL",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Query",
    "query",
    "path_param",
    "registry_name",
    "server_name",
    "version_segment",
]

MAX_URL: Final = 8192  #: longer request targets get 414
DEFAULT_LIMIT: Final = 30
MAX_LIMIT: Final = 100  #: larger limits are clamped to this (the official registry's maximum)
MAX_REGISTRY_NAME: Final = 63
MAX_SERVER_NAME: Final = 200
MAX_VERSION: Final = 255
MAX_SEARCH: Final = 256
MAX_CURSOR: Final = 2048  #: registry.cursor.MAX_CURSOR_LENGTH
MAX_OTHER: Final = 255  #: any other parameter value (updated_since, status, ...)
_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})


def _check_text(what: str, value: str, limit: int) -> str:
    if "\x00" in value:
        raise ApiError(400, f"{what} contains a NUL character (%00)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ApiError(400, f"{what} contains a control character")
    if len(value) > limit:
        raise ApiError(400, f"{what} is too long: {len(value)} characters, at most {limit}")
    return value


class Query:
    """The query parameters of one request: each name at most once, values valid UTF-8."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def text(self, name: str, limit: int = MAX_OTHER) -> str | None:
        value = self._values.get(name)
        if value is None:
            return None
        return _check_text(f"query parameter {name}", value, limit)

    def limit(
        self, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT, *, clamp: bool = True
    ) -> int:
        """``limit``: a positive integer; above ``maximum`` is clamped (``clamp``) or a 400."""
        raw = self.text("limit", 32)
        if raw is None:
            return default
        stripped = raw.strip()
        if not stripped.lstrip("+-").isdigit() or not stripped.isascii():
            raise ApiError(400, f"invalid limit {raw!r}: must be an integer from 1 to {maximum}")
        value = int(stripped)
        if value < 1:
            raise ApiError(400, f"invalid limit {value}: must be at least 1 (at most {maximum})")
        if value > maximum and not clamp:
            raise ApiError(400, f"invalid limit {value}: must be from 1 to {maximum}")
        return min(value, maximum)

    def cursor(self) -> str | None:
        value = self.text("cursor", MAX_CURSOR)
        if value == "":
            raise ApiError(400, "invalid cursor: empty (omit cursor for the first page)")
        return value

    def search(self) -> str | None:
        value = self.text("search", MAX_SEARCH)
        return value or None  # an empty search matches everything

    def updated_since(self) -> datetime | None:
        raw = self.text("updated_since", 64)
        if raw is None:
            return None
        parsed = _rfc3339(raw)
        if parsed is None:
            raise ApiError(
                400,
                f"invalid updated_since {raw!r}: must be an RFC 3339 date-time with a time zone "
                "(e.g. 2025-08-07T13:15:04.280Z)",
            )
        return parsed

    def version(self) -> str | None:
        value = self.text("version", MAX_VERSION)
        if value == "":
            raise ApiError(400, "invalid version: empty (use latest or an exact version)")
        return value

    def flag(self, name: str) -> bool | None:
        """A boolean: true/false/1/0 in any case; None when absent."""
        raw = self.text(name, 16)
        if raw is None:
            return None
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ApiError(400, f"invalid {name} {raw!r}: must be true or false")


def query(request: Request) -> Query:
    """Parse the query string strictly: invalid UTF-8 or a repeated parameter is a 400."""
    raw = request.scope.get("query_string", b"")
    try:
        text = raw.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ApiError(400, "the query string is not valid UTF-8 (percent-encode UTF-8)") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in values:
            raise ApiError(400, f"query parameter {_shown(name)} is given more than once")
        _check_text(f"query parameter {_shown(name)}", name + value, MAX_URL)  # NUL, controls
        values[name] = value
    return Query(values)


def _shown(name: str) -> str:
    return repr(name[:40] + ("..." if len(name) > 40 else ""))


def path_param(request: Request, name: str, what: str, limit: int) -> str:
    """The path parameter ``name``, percent-decoded strictly and checked."""
    raw: str = request.path_params[name]
    try:
        value = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, f"{what} is not valid UTF-8 (percent-encode UTF-8)") from None
    if not value.strip():
        raise ApiError(400, f"{what} is empty")
    return _check_text(what, value, limit)


def registry_name(request: Request) -> str:
    return path_param(request, "registry", "registry name", MAX_REGISTRY_NAME)


def server_name(request: Request) -> str:
    return path_param(request, "server", "server name", MAX_SERVER_NAME)


def version_segment(request: Request) -> str:
    return path_param(request, "version", "version", MAX_VERSION)


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)


def _rfc3339(text: str) -> datetime | None:
    """An RFC 3339 date-time (``T`` or space, ``Z`` or an offset, a fraction of up to 9 digits,
    kept to microseconds), or None."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    micro = f".{(fraction + '00000')[:6]}" if fraction else ""
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return datetime.fromisoformat(f"{day}T{clock}{micro}{zone}")
    except ValueError:  # out of range: month 13, hour 24, ...
        return None
