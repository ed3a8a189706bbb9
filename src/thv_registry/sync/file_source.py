"""Fetch the bytes of a ``file`` source: a local ``path``, a ``url`` (httpx) or inline ``data``.

A path is read as is (relative to the working directory, as the Go edition reads it); a URL
is fetched with the source's timeout, TLS verification on, at most :data:`MAX_REDIRECTS`
redirects, and the body capped at :data:`MAX_BYTES` (100 MiB) whatever Content-Length says.
The sha256 of the bytes decides whether a sync writes anything.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from thv_registry.sync.errors import FetchFailed

__all__ = ["Fetched", "FileSpec", "fetch", "MAX_BYTES", "MAX_REDIRECTS"]

MAX_BYTES = 100 * 1024 * 1024  #: the largest file or response a sync reads
MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = timedelta(seconds=30)


class FileSpec(Protocol):
    """The ``file:`` block of a source (config's FileSourceSettings has these attributes)."""

    @property
    def path(self) -> str | None: ...
    @property
    def url(self) -> str | None: ...
    @property
    def data(self) -> str | None: ...
    @property
    def timeout(self) -> timedelta: ...


@dataclass(frozen=True)
class Fetched:
    """What a fetch read: the bytes, their sha256 (hex) and where they came from."""

    data: bytes
    sha256: str
    origin: str


def _fetched(data: bytes, origin: str) -> Fetched:
    return Fetched(data, hashlib.sha256(data).hexdigest(), origin)


async def fetch(source: str, spec: FileSpec, *, max_bytes: int = MAX_BYTES) -> Fetched:
    """Read the source's bytes; raise :class:`FetchFailed` (source, origin, reason)."""
    if spec.data is not None:
        data = spec.data.encode()
        if len(data) > max_bytes:
            raise FetchFailed(source, "inline data", f"larger than {max_bytes} bytes")
        return _fetched(data, "inline data")
    if spec.path is not None:
        return await asyncio.to_thread(_read_path, source, Path(spec.path), max_bytes)
    if spec.url is not None:
        return await _read_url(source, spec.url, spec.timeout or DEFAULT_TIMEOUT, max_bytes)
    raise FetchFailed(source, "file source", "it names no path, url or data")


def _read_path(source: str, path: Path, max_bytes: int) -> Fetched:
    origin = str(path)
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise FetchFailed(source, origin, "no such file") from None
    except IsADirectoryError:
        raise FetchFailed(source, origin, "it is a directory, not a file") from None
    except OSError as e:
        raise FetchFailed(source, origin, e.strerror or str(e)) from None
    if len(data) > max_bytes:
        raise FetchFailed(source, origin, f"larger than the {max_bytes}-byte limit")
    return _fetched(data, origin)


async def _read_url(source: str, url: str, timeout: timedelta, max_bytes: int) -> Fetched:
    import httpx

    seconds = timeout.total_seconds()
    try:
        async with (
            httpx.AsyncClient(
                timeout=seconds, follow_redirects=True, max_redirects=MAX_REDIRECTS, verify=True
            ) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise FetchFailed(
                    source, url, f"HTTP {response.status_code} {response.reason_phrase}".strip()
                )
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise FetchFailed(source, url, f"larger than the {max_bytes}-byte limit")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchFailed(source, url, f"larger than the {max_bytes}-byte limit")
                chunks.append(chunk)
    except httpx.TooManyRedirects:
        raise FetchFailed(source, url, f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.TimeoutException:
        raise FetchFailed(source, url, f"no complete answer within {seconds:g} s") from None
    except httpx.HTTPError as e:
        raise FetchFailed(source, url, f"{type(e).__name__}: {e}") from None
    return _fetched(b"".join(chunks), url)
