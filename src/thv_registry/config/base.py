"""What every settings model shares: the Struct base, the problem record, small value checks.

A model reports what its types cannot say (one value among several, a URL's scheme, a name
used twice) from :meth:`Model.problems`, as ``(path, text)`` records: ``path`` is relative to
the model, in YAML key spellings and list indexes (``("sources", 2, "name")``), and ``text``
follows the key path in the message (``"must be ..."``). The loader adds file, key path and line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar, TypeAlias
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "Model",
    "Problem",
    "Claims",
    "DNS_LABEL",
    "Secret",
    "http_url_problem",
    "is_loopback",
    "at_most_one",
    "positive",
    "name_problem",
]

Problem: TypeAlias = tuple[tuple[str | int, ...], str]
#: Claim values: text or a list of text (``{org: acme, groups: [a, b]}``).
Claims: TypeAlias = Annotated[
    dict[str, str | tuple[str, ...]],
    msgspec.Meta(description="a mapping of claim names to text or lists of text"),
]
DNS_LABEL = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
#: Mark a field's Meta with ``extra=Secret`` and no message ever shows its value.
Secret = {"secret": True}
_SCHEMES = ("http", "https")


class Model(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """A block of the configuration file; YAML keys are the camelCase field names.

    ``field_checks``: attribute -> why its (typed) value is wrong, or None; the loader runs
    them on each value given, so they report even when another field of the block is wrong.
    """

    field_checks: ClassVar[Mapping[str, Callable[[Any], str | None]]] = {}

    def problems(self) -> Iterable[Problem]:
        """What is wrong beyond the field types (none here)."""
        return ()


def http_url_problem(value: str) -> str | None:
    """Why ``value`` is not an absolute http(s) URL with a host (None: it is one)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        return f"must be an absolute http or https URL; got {value[:80]!r}"
    if parts.scheme.lower() not in _SCHEMES or not parts.hostname:
        return f"must be an absolute http or https URL (https://host/...); got {value[:80]!r}"
    return None


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is localhost or a loopback address (plain http is fine there)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def at_most_one(model: msgspec.Struct, keys: dict[str, str], what: str) -> list[Problem]:
    """A problem when more than one of ``keys`` (attribute -> YAML key) is set."""
    given = [key for attr, key in keys.items() if getattr(model, attr) is not None]
    if len(given) <= 1:
        return []
    return [((given[1],), f"cannot be given with {given[0]}: {what}")]


def positive(value: timedelta | None, key: str, limit: timedelta | None = None) -> list[Problem]:
    """A problem when a duration is zero or negative (or above ``limit``)."""
    from thv_registry.config.durations import format_duration

    if value is None:
        return []
    if value <= timedelta(0):
        return [((key,), "must be a duration greater than 0 (such as 30s or 5m)")]
    if limit is not None and value > limit:
        return [((key,), f"must be at most {format_duration(limit)}; got {format_duration(value)}")]
    return []


def name_problem(value: str) -> str | None:
    """Why ``value`` is not usable as a name in a URL path segment (None: it is)."""
    if not value or re.search(r"[/\s?#%]", value):
        return f"must be a name without '/', spaces, '?', '#' or '%'; got {value[:80]!r}"
    return None
