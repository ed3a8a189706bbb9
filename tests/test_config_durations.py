"""parse_duration / format_duration: Go's time.ParseDuration grammar and Duration.String."""

from __future__ import annotations

from datetime import timedelta

import pytest

from thv_registry.config import format_duration, parse_duration

VALID = {
    "0": timedelta(0),
    "-0": timedelta(0),
    "5m": timedelta(minutes=5),
    "10s": timedelta(seconds=10),
    "1h30m": timedelta(hours=1, minutes=30),
    "1.5h": timedelta(hours=1, minutes=30),
    "300ms": timedelta(milliseconds=300),
    ".5s": timedelta(milliseconds=500),
    "1.s": timedelta(seconds=1),
    "1h2m3.25s": timedelta(hours=1, minutes=2, seconds=3.25),
    "2h45m0.5s": timedelta(hours=2, minutes=45, milliseconds=500),
    "1us": timedelta(microseconds=1),
    "1\u00b5s": timedelta(microseconds=1),  # micro sign
    "1\u03bcs": timedelta(microseconds=1),  # Greek mu
    "1500ns": timedelta(microseconds=1),  # rounded down to the microsecond
    "999ns": timedelta(0),
    "+3m": timedelta(minutes=3),
    "-2s": timedelta(seconds=-2),
    "24h": timedelta(days=1),
    "1m1m": timedelta(minutes=2),  # Go adds repeated units
    "2562047h": timedelta(hours=2562047),
}

INVALID = {
    "": "is not a duration",
    "-": "is not a duration",
    "5": "a number without a unit",
    "1.5": "a number without a unit",
    "1h5": "a number without a unit",
    ".s": "a number must come before each unit",
    "s": "a number must come before each unit",
    "1x": "unknown unit 'x'",
    "1hh": "unknown unit 'hh'",
    "1 h": "unknown unit ' h'",
    "1h 2m": "unknown unit 'h '",
    "1H": "unknown unit 'H'",  # units are case-sensitive in Go
    "1d": "unknown unit 'd'",
    "2562048h": "too long a duration",
    "--1s": "a number must come before each unit",
}


@pytest.mark.parametrize(("text", "expected"), VALID.items(), ids=list(VALID))
def test_valid(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("text", "why"), INVALID.items(), ids=[t or "empty" for t in INVALID])
def test_invalid(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="^.*" + why.replace("(", r"\(")) as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(microseconds=250), "250µs"),
        (timedelta(milliseconds=300), "300ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(seconds=10), "10s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(minutes=5), "5m0s"),
        (timedelta(hours=1, minutes=30), "1h30m0s"),
        (timedelta(seconds=-90), "-1m30s"),
    ],
)
def test_format_as_go_does(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value  # and it reads back
