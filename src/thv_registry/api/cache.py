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

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING

import msgspec
from starlette.responses import Response

from thv_registry.api.errors import JSON_TYPE
from thv_registry.api.middleware import etag_of

if TYPE_CHECKING:
    from thv_registry.api.metrics import Metrics
    from thv_registry.registry.store import Store

__all__ = ["ResponseCache", "ENTRY_OVERHEAD"]

ENTRY_OVERHEAD = 256  #: bytes counted per entry besides its body (key, tag, map slot)
_ENCODER = msgspec.json.Encoder()


class ResponseCache:
    """Encoded 200 bodies by (registry, key, generation), bounded by ``max_bytes``."""

    def __init__(self, store: Store, max_bytes: int, metrics: Metrics | None = None) -> None:
        self._store = store
        self.max_bytes = max_bytes
        self._metrics = metrics
        self._entries: OrderedDict[Hashable, tuple[bytes, str]] = OrderedDict()
        self.size = 0  #: bytes held (bodies plus ENTRY_OVERHEAD each)

    def __len__(self) -> int:
        return len(self._entries)

    async def respond(
        self, registry: str, key: Hashable, compute: Callable[[], Awaitable[object]]
    ) -> Response:
        """The 200 for ``key`` (route and normalized parameters) in ``registry``.

        ``compute`` reads the page through the store (its exceptions pass through, unstored).
        """
        if self.max_bytes <= 0:
            return _response(_ENCODER.encode(await compute()), None)
        generation = await self._store.generation(registry)
        found = self._entries.get((registry, key, generation))
        if found is not None:
            self._entries.move_to_end((registry, key, generation))
            self._count("hit")
            return _response(*found)
        self._count("miss")
        with self._store.probe(registry) as probe:
            body = _ENCODER.encode(await compute())
        tag = etag_of(body)
        if probe.value is not None:
            self._put((registry, key, probe.value), body, tag)
        return _response(body, tag)

    def _put(self, full_key: Hashable, body: bytes, tag: str) -> None:
        cost = len(body) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return
        old = self._entries.pop(full_key, None)
        if old is not None:
            self.size -= len(old[0]) + ENTRY_OVERHEAD
        self._entries[full_key] = (body, tag)
        self.size += cost
        while self.size > self.max_bytes:
            _, (dropped, _) = self._entries.popitem(last=False)
            self.size -= len(dropped) + ENTRY_OVERHEAD
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
