"""The response cache of the consumer API's reads: encoded bodies, exactly as fresh as the database.

A read first asks the store for its registry's generation (one statement; see
``registry/generation.py``: every write that changes what the API serves moves it in the same
transaction). A body cached under that generation and the request's route and normalized
parameters is the body a direct read would compute now, so it is served as it is, with the
ETag it was stored with (``If-None-Match`` then answers 304 without computing anything).
Otherwise the page is computed as before, its snapshot also reads the generation, and the body
is stored under the generation *of that snapshot*. Error answers are never stored.

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

#: bytes counted per entry besides its bodies and its key's text (tag, objects, map slot)
ENTRY_OVERHEAD = 512
_ENCODER = msgspec.json.Encoder()


class _Entry:
    """A cached body, its tag, and its gzip form once a client that accepts it asked."""

    __slots__ = ("body", "tag", "gz", "key_size")

    def __init__(self, body: bytes, tag: str, key_size: int) -> None:
        self.body, self.tag, self.key_size = body, tag, key_size
        self.gz: bytes | None = None

    @property
    def cost(self) -> int:
        """What the entry holds, in bytes: a walk of tiny pages with long keys counts too."""
        return len(self.body) + len(self.gz or b"") + self.key_size + ENTRY_OVERHEAD


class ResponseCache:
    """Encoded 200 bodies by (registry, key, generation), bounded by ``max_bytes``."""

    def __init__(self, store: Store, max_bytes: int, metrics: Metrics | None = None) -> None:
        self._store = store
        self.max_bytes = max_bytes
        self._metrics = metrics
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self.size = 0  #: bytes held (bodies, gzip forms, keys' text, ENTRY_OVERHEAD each)

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
        A hit for a client that accepts gzip gets the entry's gzip form (made once, kept in the
        entry); a miss is compressed by the gzip layer as any answer is.
        """
        if self.max_bytes <= 0:
            return _response(_ENCODER.encode(await compute()), None)
        generation = await self._store.generation(registry)
        full_key = (registry, key, generation)
        found = self._entries.get(full_key)
        if found is not None:
            self._entries.move_to_end(full_key)
            self._count("hit")
            if len(found.body) < GZIP_MINIMUM or "gzip" not in request.headers.get(
                "accept-encoding", ""
            ):
                return _response(found.body, found.tag)
            if found.gz is None:
                found.gz = gzip.compress(found.body, compresslevel=9, mtime=0)
                self.size += len(found.gz)
                self._bound()
            response = _response(found.gz, found.tag)
            response.headers["content-encoding"] = "gzip"
            response.headers["vary"] = "Accept-Encoding"
            return response
        self._count("miss")
        with probe(registry) as asked:
            body = _ENCODER.encode(await compute())
        tag = etag_of(body)
        if asked.value is not None:  # the generation of the page's own snapshot
            self._put((registry, key, asked.value), body, tag)
        return _response(body, tag)

    def _put(self, full_key: Hashable, body: bytes, tag: str) -> None:
        entry = _Entry(body, tag, len(repr(full_key)))
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
