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
body is kept as it is. JSON pages shrink 5 to 30 times, so the bound holds that many more pages:
a walk of a whole registry (an ``api`` source syncing from this server every few minutes) fits
where the plain bodies, kept beside their gzip forms, made a least-recently-used map evict each
page just before the next walk asked for it again.

Bounded: a least-recently-used map by total bytes (``server.responseCache.maxBytes``; ``0``
turns it off), per process. Entries of older generations are never served again and age out.
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
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self.size = 0  #: bytes held (stored bodies, keys' text, ENTRY_OVERHEAD each)

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
        full_key = (registry, key, generation)
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
        stored = asked.value is not None  # the generation of the page's own snapshot
        zipped = None
        if len(body) >= GZIP_MINIMUM and (gzip_ok or stored):
            zipped = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        if stored:
            form = body if zipped is None else zipped
            self._put((registry, key, asked.value), form, zipped is not None, tag)
        if gzip_ok and zipped is not None:
            return _zipped_response(zipped, tag)
        return _response(body, tag)

    def _put(self, full_key: Hashable, body: bytes, zipped: bool, tag: str) -> None:
        entry = _Entry(body, zipped, tag, len(repr(full_key)))
        if entry.cost > self.max_bytes:
            return
        old = self._entries.pop(full_key, None)
        if old is not None:
            self.size -= old.cost
        self._entries[full_key] = entry
        self.size += entry.cost
        self._bound()

    def _bound(self) -> None:
        """Drop the least recently used entries until the bound holds."""
        while self.size > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self.size -= dropped.cost
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
