"""Version precedence: SemVer 2.0 order, a bytewise-orderable sort key, the latest version.

Parsing is the ``semver`` library's (strict SemVer 2.0: ``MAJOR.MINOR.PATCH[-PRE][+BUILD]``, no
leading ``v``, no leading zeros, no partial versions); anything it refuses is *non-semver*.
Precedence is SemVer 2.0's: numbers compare as numbers (``1.10.0`` after ``1.9.0``), a
pre-release comes before its release, pre-release identifiers compare one by one (numeric ones
as numbers and below alphanumeric ones, a longer list above its own prefix), build metadata is
ignored. Every non-semver version sorts below every semver version; among themselves (and
between versions equal in precedence, such as ``1.0.0+a`` and ``1.0.0+b``) the store breaks
ties by publication time, then by the version text.

The sort key (``version_sort_key``), stored in ``entry_version.version_sort_key`` (bytea, which
PostgreSQL compares bytewise), is::

    non-semver   00
    semver       01 NUM(major) NUM(minor) NUM(patch) TAIL
    NUM(n)       one byte L (0..255), then n as L big-endian bytes without leading zeros
                 (0 is the single byte 00); a longer L is a larger number, so the encoding
                 orders like the number and no NUM is a prefix of another
    TAIL         02 for a release;
                 01 ID... 00 for a pre-release (so a pre-release sorts before its release
                 and the list's end, 00, sorts before any further identifier)
    ID           01 NUM(n) for a numeric identifier (below every alphanumeric one);
                 02 ASCII-BYTES 00 for an alphanumeric identifier ([0-9A-Za-z-] never
                 contains 00, so the terminator makes a prefix sort first: "ab" < "abc")

Build metadata is not in the key. Keys of equal precedence are equal bytes.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from functools import lru_cache

import semver as _semver

__all__ = ["NON_SEMVER_KEY", "is_prerelease", "latest_of", "parse", "version_sort_key"]

#: The sort key of every version that is not SemVer 2.0.
NON_SEMVER_KEY = b"\x00"
_EPOCH = datetime.datetime.min.replace(tzinfo=datetime.UTC)


@lru_cache(maxsize=4096)
def parse(version: str) -> _semver.Version | None:
    """The SemVer 2.0 reading of ``version``, or ``None`` when it is not SemVer 2.0."""
    if not _semver.Version.is_valid(version):
        return None
    return _semver.Version.parse(version)


def _num(n: int) -> bytes:
    if n == 0:
        return b"\x00"
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(raw) > 255:
        raise ValueError("version number too large for the sort key (over 255 bytes)")
    return bytes((len(raw),)) + raw


def version_sort_key(version: str) -> bytes:
    """A key whose bytewise order is the versions' precedence (see the module docstring)."""
    parsed = parse(version)
    if parsed is None:
        return NON_SEMVER_KEY
    try:
        head = b"\x01" + _num(parsed.major) + _num(parsed.minor) + _num(parsed.patch)
        if parsed.prerelease is None:
            return head + b"\x02"
        parts = [b"\x01"]
        for ident in parsed.prerelease.split("."):
            if ident.isdigit():
                parts.append(b"\x01" + _num(int(ident)))
            else:
                parts.append(b"\x02" + ident.encode("ascii") + b"\x00")
        parts.append(b"\x00")
        return head + b"".join(parts)
    except ValueError:  # absurdly large numbers: order them with the non-semver ones
        return NON_SEMVER_KEY


def is_prerelease(version: str) -> bool:
    """True for a SemVer 2.0 pre-release (``1.0.0-rc.1``); False for releases and non-semver."""
    parsed = parse(version)
    return parsed is not None and parsed.prerelease is not None


def latest_of(
    versions: Iterable[str],
    *,
    published_at: Callable[[str], datetime.datetime | None] | None = None,
) -> str | None:
    """The latest of ``versions`` (the caller leaves out deleted ones), or ``None`` if empty.

    The highest release by precedence; a pre-release only when there is no release; a
    non-semver version only when there is no semver one. Ties (equal precedence, or among
    non-semver versions) go to the most recently published (``published_at(version)``; a
    version without a time counts as the oldest), then to the greatest version text.
    """

    def rank(version: str) -> tuple[int, bytes, datetime.datetime, str]:
        key = version_sort_key(version)
        tier = 0 if key == NON_SEMVER_KEY else 1 if is_prerelease(version) else 2
        when = (published_at(version) if published_at else None) or _EPOCH
        return tier, key, when, version

    return max(versions, key=rank, default=None)
