"""Opaque cursors: round trip, URL safety, and every malformed input refused as InvalidCursor."""

from __future__ import annotations

import base64
import datetime
import uuid

import msgspec
import pytest

from thv_registry.registry import cursor
from thv_registry.registry.cursor import ServerPosition, SkillPosition
from thv_registry.registry.errors import InvalidCursor
from thv_registry.registry.semver import version_sort_key

T = datetime.datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=datetime.UTC)
ENTRY = uuid.UUID("12345678-1234-5678-1234-567812345678")


def test_server_position_round_trips_and_is_url_safe() -> None:
    # a comma, a '+' and non-ASCII in the version broke the Go edition's cursor
    pos = ServerPosition("io.github.a/b", version_sort_key("1.0.0-rc.1"), T, "1,0+ü", ENTRY)
    text = cursor.encode(pos)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert cursor.decode(text, ServerPosition) == pos


def test_skill_position_round_trips() -> None:
    pos = SkillPosition("io.github.x/pdf", b"\x00", T, "nightly", ENTRY)
    assert cursor.decode(cursor.encode(pos), SkillPosition) == pos


def test_a_cursor_of_another_listing_is_refused() -> None:
    text = cursor.encode(SkillPosition("ns/n", b"\x00", T, "1", ENTRY))
    with pytest.raises(InvalidCursor, match="not a cursor of this listing"):
        cursor.decode(text, ServerPosition)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("x" * 3000, "longer than"),
        ("abc\u00e9", "not base64url"),
        ("a", "not base64url"),  # one character is never valid base64
        ("!!!!", "not base64url"),
        ("bmFtZSwxLjAuMA", "not a cursor"),  # the Go edition's "name,1.0.0"
        (_b64(msgspec.msgpack.encode(["s", "n", b"\x00", "not a time", "1"])), "not a cursor"),
        (_b64(msgspec.msgpack.encode(["s", "n", b"\x00"])), "not a cursor"),
        (_b64(msgspec.msgpack.encode(["s", 1, b"\x00", T, "1"])), "not a cursor"),
        (_b64(msgspec.msgpack.encode(["s", "n", b"\x00", T, "1", ENTRY.bytes, 1])), "not a cursor"),
        (_b64(msgspec.msgpack.encode(["s", "n", b"\x00", T, "1", b"short"])), "not a cursor"),
        (_b64(b"\xc1"), "not a cursor"),
        (_b64(b"\x00" * 10), "not a cursor"),
    ],
)
def test_malformed_cursors_are_refused(text: str, reason: str) -> None:
    with pytest.raises(InvalidCursor, match=reason) as info:
        cursor.decode(text, ServerPosition)
    assert info.value.reason


def test_naive_time_is_refused() -> None:
    naive = _b64(
        msgspec.msgpack.encode(["s", "n", b"\x00", T.replace(tzinfo=None), "1", ENTRY.bytes])
    )
    with pytest.raises(InvalidCursor):
        cursor.decode(naive, ServerPosition)
