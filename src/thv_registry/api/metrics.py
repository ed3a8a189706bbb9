"""Prometheus metrics of one server process (prometheus-client), on a registry of its own.

A private ``CollectorRegistry`` per :class:`Metrics` keeps the process-wide default registry
untouched (tests build several apps in one process). The sync reports through
:meth:`Metrics.on_sync`, the callback ``SyncService`` accepts, so ``sync/`` never imports ``api/``.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["Metrics", "CONTENT_TYPE_LATEST"]

#: seconds; most answers take a few milliseconds
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The server's counters and histograms, and a hook that reads the pool's sizes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.sync_runs = Counter(
            "registry_sync_runs_total",
            "Sync attempts of a source, by result (e.g. success, unchanged, failed).",
            ["source", "result"],
            registry=self.registry,
        )
        self.sync_duration = Histogram(
            "registry_sync_duration_seconds",
            "Time a sync of a source took.",
            ["source"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
            registry=self.registry,
        )
        self.pool = Gauge(
            "db_pool_connections",
            "Connections of the database pool, by state (open, idle, in_use, waiting).",
            ["state"],
            registry=self.registry,
        )
        self.config_mismatch = Gauge(
            "registry_config_mismatch",
            "1 while live replicas on this database run different sources/registries"
            " configurations (see the log and `sources`), else 0.",
            registry=self.registry,
        )
        self.config_mismatch.set(0)
        self.cache = Counter(
            "http_response_cache_total",
            "Consumer API reads answered from the response cache (hit) or computed (miss).",
            ["result"],
            registry=self.registry,
        )
        self.cache_bytes = Gauge(
            "http_response_cache_bytes",
            "Bytes the response cache holds (bodies, gzip forms, keys, a fixed overhead each).",
            registry=self.registry,
        )
        self.cache_entries = Gauge(
            "http_response_cache_entries",
            "Bodies the response cache holds.",
            registry=self.registry,
        )
        self._pool_stats: Callable[[], dict[str, int]] | None = None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.duration.labels(route).observe(seconds)

    def on_sync(self, source: str, result: str, seconds: float) -> None:
        """The callback given to ``SyncService``: one finished sync attempt."""
        self.sync_runs.labels(source, result).inc()
        self.sync_duration.labels(source).observe(seconds)

    def on_config_mismatch(self, mismatch: bool) -> None:
        """The callback given to ``SyncService``: whether replicas' configurations differ."""
        self.config_mismatch.set(1 if mismatch else 0)

    def on_cache(self, result: str) -> None:
        """A read looked in the response cache: ``hit`` or ``miss``."""
        self.cache.labels(result).inc()

    def on_cache_size(self, size: int, entries: int) -> None:
        self.cache_bytes.set(size)
        self.cache_entries.set(entries)

    def watch_pool(self, stats: Callable[[], dict[str, int]]) -> None:
        """Read the pool's sizes (``psycopg_pool``'s ``get_stats``) at each scrape."""
        self._pool_stats = stats

    def exposition(self) -> bytes:
        """The text format for ``/metrics``."""
        if self._pool_stats is not None:
            stats = self._pool_stats()
            size = stats.get("pool_size", 0)
            idle = stats.get("pool_available", 0)
            self.pool.labels("open").set(size)
            self.pool.labels("idle").set(idle)
            self.pool.labels("in_use").set(max(size - idle, 0))
            self.pool.labels("waiting").set(stats.get("requests_waiting", 0))
        return generate_latest(self.registry)
