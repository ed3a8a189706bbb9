"""Go duration strings (``time.ParseDuration``): ``5m``, ``1h30m``, ``1.5h``, ``300ms``, ``-2s``.

The grammar, as Go's: an optional sign, then one or more ``<decimal><unit>`` terms with units
``ns``, ``us`` (or ``µs``/``μs``), ``ms``, ``s``, ``m``, ``h``; a decimal has digits before or
after its point (``.5s`` and ``1.s`` are valid, ``.s`` is not); ``0`` alone needs no unit; the
total must fit in an int64 of nanoseconds. A ``timedelta`` holds microseconds, so a value is
rounded down to the microsecond.
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["parse_duration", "format_duration"]

_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_TERM = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")
_MAX_NS = 2**63 - 1


def parse_duration(text: str) -> timedelta:
    """The duration ``text`` gives, in Go syntax; ``ValueError`` says what is wrong with it."""
    rest = text
    negative = rest[:1] == "-"
    if rest[:1] in "+-" and rest:
        rest = rest[1:]
    if rest == "0":
        return timedelta(0)
    if not rest:
        raise ValueError(f"{text!r} is not a duration")
    total = 0  # nanoseconds, exact
    while rest:
        match = _TERM.match(rest)
        assert match is not None  # the pattern matches the empty string
        whole, fraction, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not fraction:
            raise ValueError(f"{text!r} is not a duration: a number must come before each unit")
        if not unit:
            raise ValueError(f"{text!r} has a number without a unit; use ns, us, ms, s, m or h")
        if unit not in _UNIT_NS:
            raise ValueError(f"{text!r} has an unknown unit {unit!r}; use ns, us, ms, s, m or h")
        scale = _UNIT_NS[unit]
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        if total > _MAX_NS:
            raise ValueError(f"{text!r} is too long a duration (at most about 2562047h)")
        rest = rest[match.end() :]
    result = timedelta(microseconds=total // 1000)
    return -result if negative else result


def format_duration(value: timedelta) -> str:
    """``value`` in Go syntax, as Go's ``Duration.String`` writes whole units (``1h30m0s``)."""
    micro = value // timedelta(microseconds=1)
    sign, micro = ("-", -micro) if micro < 0 else ("", micro)
    if micro == 0:
        return "0s"
    if micro < 1_000_000:
        return f"{sign}{micro}µs" if micro < 1000 else f"{sign}{micro / 1000:g}ms"
    hours, rest = divmod(micro, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = f"{rest / 1_000_000:.6f}".rstrip("0").rstrip(".")
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"
