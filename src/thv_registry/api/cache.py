"""The response cache of the consumer API's reads: encoded bodies, exactly as fresh as the database.

A read first asks the store for its registry's generation (one statement; see
``registry/generation.py``: every write that changes what the API serves moves it in the same
transaction). A body cached under that generation and the request's route and normalized
parameters is the body a direct read would compute now, so it is served as it is, with the
ETag it was stored with (``If-None-Match`` then answers 304 without computing anything).
Otherwise the page is computed as before, its snapshot also reads the generation, and the body
is stored under the generation *of that snapshot*. Error answers are never stored.

One form per entry: a body of at least ``GZIP_MINIMUM`` bytes is kept gzip-compressed only (the
form nearly every client asks for: httpx, Go's transport and browsers send
``Accept-Encoding: gzip``), and decompressed for a client that does not accept gzip; a smaller
body is kept as it is. JSON pages shrink 5 to 30 times, so the bound holds that many more pages
(10,000 servers x 3 versions at ``limit=100``: 35.5 MB plain, about 1 MB gzip-compressed).

Bounded by total bytes (``server.responseCache.maxBytes``; ``0`` turns it off), per process,
counting the bodies, their keys, a fixed overhead per entry and the frequency sketch below.
Entries are kept in least-recently-used order, but a new body that needs room is admitted only
if it was asked for more often lately than each entry it would push out (TinyLFU's rule: a
count-min sketch of every lookup, by registry, route and parameters, halved now and then so that
old popularity fades). So a walk larger than the cache, repeated (an ``api`` source syncing from
this server), keeps the pages it holds and gets those as hits on every later walk, where a plain
least-recently-used map evicted each page just before the next walk asked for it again; and a
crawler's single pass never pushes out what clients keep asking for. An entry of a generation
older than the one its registry's last request read is pushed out without that comparison: it
will never be served again. Neither rule touches freshness: a body is served only under the
generation it was computed from.
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from thv_registry.api.errors import JSON_TYPE
from thv_registry.api.middleware import GZIP_MINIMUM, etag_of
from thv_registry.registry.generation import probe

if TYPE_CHECKING:
    from thv_registry.api.metrics import Metrics
    from thv_registry.registry.store import Store

__all__ = ["ResponseCache", "ENTRY_OVERHEAD"]

#: bytes counted per entry besides its body and its key's text (tag, objects, map slot)
ENTRY_OVERHEAD = 512
#: the stored gzip forms' level (the gzip layer's, Starlette's default, for the same bytes)
GZIP_LEVEL = 9
_ENCODER = msgspec.json.Encoder()
_HALVE = bytes(i >> 1 for i in range(256))  #: ``bytes.translate`` table: every counter / 2


class _Frequencies:
    """How often each key was looked up lately, approximately: a count-min sketch.

    ``width`` one-byte counters (a power of two, at most 2**16); a key counts in the four that
    four 16-bit slices of its hash pick, and its estimate is the least of the four (never less
    than the true count). After ``10 * width`` lookups every counter is halved.
    """

    __slots__ = ("table", "mask", "counted")

    def __init__(self, width: int) -> None:
        self.table = bytearray(width)
        self.mask = width - 1
        self.counted = 0

    def _slots(self, key: Hashable) -> tuple[int, int, int, int]:
        h, m = hash(key), self.mask
        return h & m, (h >> 16) & m, (h >> 32) & m, (h >> 48) & m

    def add(self, key: Hashable) -> int:
        """Count a lookup of ``key``; its estimate, this one included."""
        table = self.table
        slots = self._slots(key)
        for slot in slots:
            if table[slot] < 255:
                table[slot] += 1
        self.counted += 1
        if self.counted >= 10 * len(table):
            self.table = bytearray(table.translate(_HALVE))
            self.counted //= 2
        return min(self.table[slot] for slot in slots)

    def estimate(self, key: Hashable) -> int:
        table = self.table
        return min(table[slot] for slot in self._slots(key))


def _sketch_width(max_bytes: int) -> int:
    """About a counter for each entry the bound could hold: 1,024 to 65,536 counters, a power
    of two, and never more than a quarter of the bound (which counts them)."""
    width = 1 << max(0, (max_bytes // ENTRY_OVERHEAD - 1).bit_length())
    width = max(1024, min(1 << 16, width))
    while width > 1 and width > max_bytes // 4:
        width //= 2
    return width


class _Entry:
    """A cached body in its one stored form (``zipped``: gzip-compressed), and its tag."""

    __slots__ = ("body", "zipped", "tag", "key_size")

    def __init__(self, body: bytes, zipped: bool, tag: str, key_size: int) -> None:
        self.body, self.zipped, self.tag, self.key_size = body, zipped, tag, key_size

    @property
    def cost(self) -> int:
        """What the entry holds, in bytes: a walk of tiny pages with long keys counts too."""
        return len(self.body) + self.key_size + ENTRY_OVERHEAD


class ResponseCache:
    """Encoded 200 bodies by (registry, key, generation), bounded by ``max_bytes``."""

    def __init__(self, store: Store, max_bytes: int, metrics: Metrics | None = None) -> None:
        self._store = store
        self.max_bytes = max_bytes
        self._metrics = metrics
        self._entries: OrderedDict[tuple[str, Hashable, str], _Entry] = OrderedDict()
        self._frequencies = _Frequencies(_sketch_width(max_bytes))
        #: each registry that has entries: the generation its latest request read
        self._current: dict[str, str] = {}
        #: bytes held (stored bodies, keys' text, ENTRY_OVERHEAD each, the sketch's counters)
        self.size = len(self._frequencies.table) if max_bytes > 0 else 0

    def __len__(self) -> int:
        return len(self._entries)

    async def respond(
        self,
        request: Request,
        registry: str,
        key: Hashable,
        compute: Callable[[], Awaitable[object]],
    ) -> Response:
        """The 200 for ``key`` (route and normalized parameters) in ``registry``.

        ``compute`` reads the page through the store (its exceptions pass through, unstored).
        A client that accepts gzip gets the gzip form of a body of ``GZIP_MINIMUM`` bytes or
        more (a miss compresses it once, for the entry and this answer); any other gets the
        plain body.
        """
        if self.max_bytes <= 0:
            return _response(_ENCODER.encode(await compute()), None)
        generation = await self._store.generation(registry)
        if registry in self._current:
            self._current[registry] = generation
        full_key = (registry, key, generation)
        asked_for = self._frequencies.add((registry, key))
        gzip_ok = "gzip" in request.headers.get("accept-encoding", "")
        found = self._entries.get(full_key)
        if found is not None:
            self._entries.move_to_end(full_key)
            self._count("hit")
            if not found.zipped:
                return _response(found.body, found.tag)
            if gzip_ok:
                return _zipped_response(found.body, found.tag)
            return _response(gzip.decompress(found.body), found.tag)
        self._count("miss")
        with probe(registry) as asked:
            body = _ENCODER.encode(await compute())
        tag = etag_of(body)
        snapshot = asked.value  # the generation of the page's own snapshot
        zipped = None
        if len(body) >= GZIP_MINIMUM and (gzip_ok or snapshot is not None):
            zipped = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        if snapshot is not None:
            form = body if zipped is None else zipped
            self._put((registry, key, snapshot), form, zipped is not None, tag, asked_for)
        if gzip_ok and zipped is not None:
            return _zipped_response(zipped, tag)
        return _response(body, tag)

    def _put(
        self, full_key: tuple[str, Hashable, str], body: bytes, zipped: bool, tag: str, asked: int
    ) -> None:
        """Store the entry if it fits the bound and wins its room (``asked``: its estimate)."""
        entry = _Entry(body, zipped, tag, len(repr(full_key)))
        if entry.cost > self.max_bytes - len(self._frequencies.table):
            return
        old = self._entries.get(full_key)
        if old is not None:  # two misses computed it at once: the same body
            return
        victims = self._victims(self.size + entry.cost - self.max_bytes, asked)
        if victims is None:
            self._sized()
            return
        for victim in victims:
            self.size -= self._entries.pop(victim).cost
        self._entries[full_key] = entry
        self.size += entry.cost
        self._current.setdefault(full_key[0], full_key[2])
        self._sized()

    def _victims(self, need: int, asked: int) -> list[tuple[str, Hashable, str]] | None:
        """The least recently used entries that free ``need`` bytes, or None when one of them
        was asked for at least ``asked`` times lately and is of its registry's current
        generation (the new entry is then not stored)."""
        victims: list[tuple[str, Hashable, str]] = []
        freed = 0
        for victim, held in self._entries.items():  # least recently used first
            if freed >= need:
                break
            registry, key, generation = victim
            current = self._current.get(registry, generation) == generation
            if current and self._frequencies.estimate((registry, key)) >= asked:
                return None
            victims.append(victim)
            freed += held.cost
        return victims

    def _sized(self) -> None:
        if self._metrics is not None:
            self._metrics.on_cache_size(self.size, len(self._entries))

    def _count(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.on_cache(result)


def _response(body: bytes, tag: str | None) -> Response:
    response = Response(body, media_type=JSON_TYPE)
    if tag is not None:
        response.headers["etag"] = tag
    return response


def _zipped_response(body: bytes, tag: str) -> Response:
    """A gzip form, sent as it is (the gzip layer passes an encoded answer through)."""
    response = _response(body, tag)
    response.headers["content-encoding"] = "gzip"
    response.headers["vary"] = "Accept-Encoding"
    return response
