"""Fetch an ``api`` source: another registry's MCP Registry API v0.1, page by page.

The endpoint is a base URL (``https://registry.modelcontextprotocol.io``) or one of our own
registries (``https://host/registry/{name}``); a trailing ``/v0.1`` or ``/v0.1/servers`` is
accepted. A fetch first checks that ``GET {endpoint}/v0.1/servers?limit=1`` answers a v0.1 list
(``servers`` and ``metadata``), then walks ``?limit=100&cursor=...`` while ``metadata.nextCursor``
is given, within the source's caps (``maxPages``, ``maxServers``, ``maxResponseBytes`` per
response) and its ``timeout`` per request (a whole request, however slowly its bytes drip).
One httpx client serves the whole walk: TLS verified, at most :data:`MAX_REDIRECTS` redirects,
proxies from the environment. Its TLS context (the CA bundle, ``SSL_CERT_FILE`` or
``SSL_CERT_DIR`` when set) is made once per process, not per fetch (loading the bundle costs
about 25 ms).

The pages become one upstream registry document (``{"data": {"servers": [...]}}``) that the
sync validates like a file source's. Its hash is the sha256 of every server's JSON, exactly the
bytes the upstream sent, each with its status, so other page boundaries and a changed
``updatedAt``/``isLatest`` in ``_meta`` leave it "unchanged". The servers are not decoded for
it: a no-change re-sync of a large upstream costs the walk and a hash, not a decode and
re-encode of every server. An upstream that sends the same content in other bytes (another key
order, other spacing) makes the sync go on to validate and compare each version's canonical
hash, which writes nothing for unchanged versions: a slower sync, never a wrong one. Real
upstreams encode deterministically (ours does, and so does the official registry). A version
the upstream marks ``deleted`` is left out of a full fetch (the writer marks it deleted, as any
version that left the source).

Incremental fetches (``since``): ``updated_since`` with ``include_deleted=true`` brings only what
changed; the result says so (``removed``: the versions the upstream deleted, never None), and
the writer then marks deleted only those, never what the fetch simply did not list.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime
import hashlib
import os
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

import msgspec

from thv_registry.redact import mask_url
from thv_registry.sync.errors import FetchFailed, InvalidEntry, SyncError
from thv_registry.sync.file_source import Fetched

__all__ = ["ApiSpec", "ApiFetched", "fetch", "servers_url", "PAGE_SIZE", "MAX_REDIRECTS"]

PAGE_SIZE = 100
MAX_REDIRECTS = 5
_OFFICIAL = "io.modelcontextprotocol.registry/official"


class ApiSpec(Protocol):
    """The ``api:`` block of a source (config's ApiSourceSettings has these attributes)."""

    @property
    def endpoint(self) -> str: ...
    @property
    def timeout(self) -> timedelta: ...
    @property
    def max_pages(self) -> int: ...
    @property
    def max_servers(self) -> int: ...
    @property
    def max_response_bytes(self) -> int: ...
    @property
    def full_resync_interval(self) -> timedelta | None: ...


class _Meta(msgspec.Struct):
    official: Any = msgspec.field(default=None, name=_OFFICIAL)  #: decoded; other keys skipped


class _Item(msgspec.Struct):
    server: msgspec.Raw
    meta: _Meta | None = msgspec.field(default=None, name="_meta")


class _Metadata(msgspec.Struct):
    next_cursor: str | None = msgspec.field(default=None, name="nextCursor")


class _Page(msgspec.Struct):
    servers: list[_Item]
    metadata: _Metadata


class _Named(msgspec.Struct):
    """What a deleted server tells (incremental fetches): its name and version, if any."""

    name: Any = None
    version: Any = None


_PAGE = msgspec.json.Decoder(_Page)
_NAMED = msgspec.json.Decoder(_Named)
_TLS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}  #: see :func:`_tls`


@dataclass(frozen=True)
class ApiFetched(Fetched):
    """The servers of every page as one upstream document, and where each page started."""

    pages: tuple[int, ...] = ()  #: index in data.servers[] of each page's first server
    positions: tuple[int, ...] = ()  #: each server's position in its page's servers[]
    removed: frozenset[tuple[str, str]] | None = None  #: incremental: what upstream deleted
    started_at: datetime.datetime = field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC)
    )

    @property
    def incremental(self) -> bool:
        return self.removed is not None

    def locate(self, error: InvalidEntry) -> SyncError:
        """``error`` (an index into the document) told as page and position on the page."""
        if error.kind != "servers" or not self.pages:
            return error
        page = bisect.bisect_right(self.pages, error.index)
        return InvalidPageEntry(self.origin, page, self.positions[error.index], error)


class InvalidPageEntry(InvalidEntry):
    """An invalid server on a page of an ``api`` source: the page number (from 1) and its
    position there (``servers[i]`` of that response), with the entry's name, field and reason."""

    def __init__(self, origin: str, page: int, position: int, error: InvalidEntry) -> None:
        super().__init__(
            error.source, error.kind, error.index, error.name, error.field, error.reason
        )
        self.page = page
        self.position = position
        shown = f" ({error.name})" if error.name else ""
        where = f", at server.{error.field}" if error.field else ""
        self.message = f"{origin}: page {page}, servers[{position}]{shown}{where}: {error.reason}"


def servers_url(endpoint: str) -> str:
    """``{endpoint}/v0.1/servers``, whether the endpoint names the version or not."""
    base = endpoint.rstrip("/")
    for tail in ("/v0.1/servers", "/v0.1"):
        if base.endswith(tail):
            base = base[: -len(tail)]
            break
    return f"{base}/v0.1/servers"


async def fetch(
    source: str, spec: ApiSpec, *, since: datetime.datetime | None = None
) -> ApiFetched:
    """Walk the upstream list; raise :class:`FetchFailed` saying what failed (HTTP status,
    which page, which entry, which cap)."""
    import httpx

    url = servers_url(spec.endpoint)
    started = datetime.datetime.now(datetime.UTC)
    seconds = spec.timeout.total_seconds()
    async with httpx.AsyncClient(
        timeout=seconds, follow_redirects=True, max_redirects=MAX_REDIRECTS, verify=_tls()
    ) as client:
        walker = _Walker(source, url, spec, client)
        probe = await walker.page(0, {"limit": "1"})
        del probe  # a valid v0.1 list answered: the walk can start
        params = {"limit": str(PAGE_SIZE)}
        if since is not None:
            params["updated_since"] = since.isoformat().replace("+00:00", "Z")
            params["include_deleted"] = "true"
        raws: list[bytes] = []
        positions: list[int] = []
        starts: list[int] = []
        removed: set[tuple[str, str]] = set()
        digest = hashlib.sha256()
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            if len(starts) >= spec.max_pages:
                raise walker.failed(
                    len(starts) + 1, f"more than {spec.max_pages} pages (the source's maxPages)"
                )
            number = len(starts) + 1
            page = await walker.page(number, {**params, **({"cursor": cursor} if cursor else {})})
            starts.append(len(raws))
            for position, item in enumerate(page.servers):
                status = _status(item)
                digest.update(item.server)
                digest.update(_status_line(status))
                if status == "deleted":
                    if since is not None:
                        removed.update(_named(item.server))
                    continue
                raws.append(item.server)
                positions.append(position)
                if len(raws) > spec.max_servers:
                    raise walker.failed(
                        number,
                        f"servers[{position}]: more than {spec.max_servers} servers "
                        "(the source's maxServers)",
                    )
            cursor = page.metadata.next_cursor
            if not cursor:
                break
            if cursor in seen:
                raise walker.failed(number, f"nextCursor {cursor[:40]!r} was already given")
            seen.add(cursor)
    document = b'{"data":{"servers":[' + b",".join(raws) + b"]}}"
    shown = mask_url(url)
    if since is not None:
        shown += f" (changes since {params['updated_since']})"
    return ApiFetched(
        data=document,
        sha256=digest.hexdigest(),
        origin=shown,
        pages=tuple(starts),
        positions=tuple(positions),
        removed=frozenset(removed) if since is not None else None,
        started_at=started,
    )


class _Walker:
    """Fetches one page at a time within the caps; knows how to word a failure."""

    def __init__(self, source: str, url: str, spec: ApiSpec, client: Any) -> None:
        self.source = source
        self.url = url
        self.spec = spec
        self.client = client

    def failed(self, page: int, reason: str) -> FetchFailed:
        where = "the v0.1 check (limit=1)" if page == 0 else f"page {page}"
        return FetchFailed(self.source, mask_url(self.url), f"{where}: {reason}")

    async def page(self, number: int, params: dict[str, str]) -> _Page:
        body = await self._get(number, params)
        try:
            return _PAGE.decode(body)
        except msgspec.ValidationError as e:
            reason = str(e).replace("$.", "", 1).replace("`$`", "the response")
            raise self.failed(number, f"not a v0.1 server list ({reason})") from None
        except msgspec.DecodeError as e:
            raise self.failed(number, f"the response is not complete JSON ({e})") from None

    async def _get(self, number: int, params: dict[str, str]) -> bytes:
        import httpx

        seconds = self.spec.timeout.total_seconds()
        cap = self.spec.max_response_bytes
        target = f"{self.url}?{urlencode(params)}"
        try:
            async with asyncio.timeout(seconds):
                async with self.client.stream(
                    "GET", target, headers={"Accept": "application/json"}
                ) as response:
                    if response.status_code != 200:
                        phrase = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                        raise self.failed(number, phrase)
                    declared = response.headers.get("content-length")
                    if declared is not None and declared.isdigit() and int(declared) > cap:
                        raise self.failed(number, _too_large(cap))
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > cap:
                            raise self.failed(number, _too_large(cap))
                        chunks.append(chunk)
        except TimeoutError:
            raise self.failed(number, f"no complete answer within {seconds:g} s") from None
        except httpx.TooManyRedirects:
            raise self.failed(number, f"more than {MAX_REDIRECTS} redirects") from None
        except httpx.TimeoutException:
            raise self.failed(number, f"no complete answer within {seconds:g} s") from None
        except httpx.HTTPError as e:
            raise self.failed(number, f"{type(e).__name__}: {e}") from None
        return b"".join(chunks)


def _tls() -> ssl.SSLContext:
    """httpx's verifying TLS context, made once per CA setting of the environment."""
    import httpx

    where = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    context = _TLS.get(where)
    if context is None:
        context = _TLS[where] = httpx.create_ssl_context(verify=True, trust_env=True)
    return context


def _too_large(cap: int) -> str:
    return f"the response is larger than {cap} bytes (the source's maxResponseBytes)"


def _status(item: _Item) -> str:
    official = item.meta.official if item.meta is not None else None
    if isinstance(official, dict) and isinstance(official.get("status"), str):
        return str(official["status"]).lower()
    return "active"


def _status_line(status: str) -> bytes:
    """What is hashed after a server's bytes: its status, framed so no two items run together."""
    return b"\n" + msgspec.json.encode(status) + b"\n"


def _named(raw: msgspec.Raw) -> list[tuple[str, str]]:
    """A deleted server's (name, version), or nothing when it does not say them."""
    try:
        named = _NAMED.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []
    if isinstance(named.name, str) and isinstance(named.version, str):
        return [(named.name, named.version)]
    return []
