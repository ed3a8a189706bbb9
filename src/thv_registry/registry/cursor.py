"""Opaque page cursors: the keyset position of the last item of a page.

A cursor is base64url (no padding) of a MessagePack array: a tag naming the listing, then the
sort columns of the last row served. Lists continue strictly after that position, so a cursor
stays valid across syncs: if its row has vanished, the next page starts at the row after it.
Cursors are not signed: a forged one only repositions the keyset over rows the caller may read
anyway. Anything that does not decode to the expected shape raises ``InvalidCursor``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
import uuid
from typing import TypeVar

import msgspec

from .errors import InvalidCursor

__all__ = ["MAX_CURSOR_LENGTH", "ServerPosition", "SkillPosition", "decode", "encode"]

#: Longer ``cursor`` values are refused before decoding (a real one is far shorter).
MAX_CURSOR_LENGTH = 2048


class ServerPosition(
    msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, tag="s"
):
    """Where a servers listing stopped: ordered by name, then version precedence, newest first."""

    name: str
    sort_key: bytes
    published_at: datetime.datetime
    version: str
    #: the registry entry (name in one source) the row came from: a name is continued only
    #: from that entry, so a name that moved to another source never mixes two sources
    entry_id: uuid.UUID


class SkillPosition(
    msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, tag="k"
):
    """Where a skills listing stopped: ``namespace/name``, then version precedence, newest first."""

    name: str
    sort_key: bytes
    published_at: datetime.datetime
    version: str
    #: the registry entry (name in one source) the row came from: a name is continued only
    #: from that entry, so a name that moved to another source never mixes two sources
    entry_id: uuid.UUID


P = TypeVar("P", ServerPosition, SkillPosition)
_ENCODER = msgspec.msgpack.Encoder(uuid_format="bytes")
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


def encode(position: ServerPosition | SkillPosition) -> str:
    """The opaque cursor text of ``position`` (URL-safe: ``[A-Za-z0-9_-]``)."""
    return base64.urlsafe_b64encode(_ENCODER.encode(position)).rstrip(b"=").decode("ascii")


def decode(text: str, kind: type[P]) -> P:
    """The position ``text`` encodes; ``InvalidCursor`` when it is not a cursor of ``kind``."""
    if not text:
        raise InvalidCursor("empty")
    if len(text) > MAX_CURSOR_LENGTH:
        raise InvalidCursor(f"longer than {MAX_CURSOR_LENGTH} characters")
    if _ALPHABET.fullmatch(text) is None:
        raise InvalidCursor("not base64url text")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidCursor("not base64url text") from None
    try:
        position = msgspec.msgpack.decode(raw, type=kind)
    except msgspec.DecodeError:
        raise InvalidCursor("not a cursor of this listing") from None
    if position.published_at.tzinfo is None:
        raise InvalidCursor("not a cursor of this listing")
    return position
