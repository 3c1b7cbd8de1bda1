"""Prometheus metrics of a node (``serve --metrics HOST:PORT``), off by default.

What is measured, and when::

    handle_stream ends       -> request_done(method, outcome, seconds)   counter + histogram
    a caught exception       -> error(class_name)                        counter
    a stream of a connection -> connection_seen(connection)              remembered, counted on scrape
    a group commit's COMMIT  -> commit_done(batch_size, seconds)         histograms (committer thread)
    GET /metrics             -> refresh(): the store's totals             gauges, then the text format

Queue depth, queue bytes and the KeyPackage buckets are read from the store when scraped
(:meth:`~quicnproto.node.store.SQLiteStore.totals`: one scan of the ``queues`` table, one row
per recipient, and one grouped scan of the KeyPackage directory)
rather than kept up to date on every enqueue, fetch and acknowledgement: a scrape every few
seconds costs less than bookkeeping on every request, and the numbers cannot drift.

Labels are bounded sets chosen by the node (request kinds, outcome codes, exception class
names, KeyPackage buckets): never identities, keys, request ids or addresses. The JSON-lines
``request`` log record carries the request ids (``rid``, ``request_id``) and the same ``kind``
and ``code`` as the metric labels, so one can be joined to the other.

This module imports ``prometheus_client``; the node imports this module only when metrics are
on, so a node without ``--metrics`` never loads it and pays one ``None`` check per request.
The HTTP endpoint is a tiny Trio handler in the node's nursery (no thread, no extra
dependency): it answers ``GET /metrics`` with :func:`prometheus_client.generate_latest` and
anything else with 404, one request per connection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

import trio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector

from quicnproto.node.store.types import StoreTotals

logger = logging.getLogger("quicnproto.node.metrics")

KEY_PACKAGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0", 0, 0),
    ("1-2", 1, 2),
    ("3-9", 3, 9),
    ("10+", 10, None),
)
"""``(label, lowest, highest)`` of the KeyPackages-left buckets identities are counted in."""

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Seconds; requests range from sub-millisecond pings to 30 s long-poll fetches."""

COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
"""Seconds of one group commit's ``COMMIT`` (mostly its fsync)."""

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""Writes per group commit (at most :data:`~quicnproto.node.store.MAX_BATCH`)."""

MAX_HTTP_REQUEST = 8192
"""Longest HTTP request head the metrics endpoint reads."""

HTTP_DEADLINE = 10.0
"""Seconds a scraper has to send its request and read the answer."""

_PRUNE_AT = 1024
"""Remembered connections before closed ones are dropped without waiting for a scrape."""


class _Connection(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def is_closed(self) -> bool: ...


def key_package_bucket(left: int) -> str:
    """The :data:`KEY_PACKAGE_BUCKETS` label ``left`` KeyPackages fall in."""
    for label, lowest, highest in KEY_PACKAGE_BUCKETS:
        if left >= lowest and (highest is None or left <= highest):
            return label
    raise ValueError(f"negative KeyPackage count {left}")


class NodeMetrics:
    """The node's metrics in their own registry (so several nodes can share a process).

    Args:
        totals: reads the store's totals; called on the event loop at every scrape.
    """

    def __init__(self, totals: Callable[[], Awaitable[StoreTotals]]) -> None:
        self._totals = totals
        self._connections: dict[int, _Connection] = {}
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "quicnproto_requests",
            "Requests answered, by request kind and outcome code.",
            ("method", "outcome"),
            registry=registry,
        )
        self.request_seconds = Histogram(
            "quicnproto_request_duration_seconds",
            "Time from a request stream's start to its answer (long-poll waits included).",
            ("method",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "quicnproto_errors",
            "Exceptions caught while serving requests, by class (refusals are outcomes, not errors).",
            ("class",),
            registry=registry,
        )
        self.queue_messages = Gauge(
            "quicnproto_queue_messages",
            "Messages waiting in all delivery queues (read from the store at scrape).",
            registry=registry,
        )
        self.queue_bytes = Gauge(
            "quicnproto_queue_bytes",
            "Payload bytes waiting in all delivery queues (read from the store at scrape).",
            registry=registry,
        )
        self.key_package_identities = Gauge(
            "quicnproto_key_package_identities",
            "Identities known to the KeyPackage directory, by unexpired single-use KeyPackages left.",
            ("left",),
            registry=registry,
        )
        self.connections = Gauge(
            "quicnproto_connections",
            "Open QUIC connections that have sent at least one request.",
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "quicnproto_store_commit_duration_seconds",
            "Duration of one group commit's COMMIT (its fsync).",
            buckets=COMMIT_BUCKETS,
            registry=registry,
        )
        self.commit_batch = Histogram(
            "quicnproto_store_commit_batch_size",
            "Write operations sharing one group commit.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)

    # -- called by the node -------------------------------------------------------------------

    def request_done(self, method: str, outcome: str, seconds: float) -> None:
        """One request answered (or abandoned) after ``seconds``."""
        self.requests.labels(method, outcome).inc()
        self.request_seconds.labels(method).observe(seconds)

    def error(self, class_name: str) -> None:
        """One exception of class ``class_name`` caught while serving a request."""
        self.errors.labels(class_name).inc()

    def connection_seen(self, connection: _Connection) -> None:
        """A request arrived on ``connection``; it is counted while it stays open."""
        self._connections[connection.id] = connection
        if len(self._connections) > _PRUNE_AT:
            self._prune()

    def commit_done(self, batch_size: int, seconds: float) -> None:
        """One group commit of ``batch_size`` writes whose ``COMMIT`` took ``seconds``
        (called from the store's committer thread; the client library locks)."""
        self.commit_batch.observe(batch_size)
        self.commit_seconds.observe(seconds)

    # -- scrape -------------------------------------------------------------------------------

    def _prune(self) -> int:
        self._connections = {
            key: conn for key, conn in self._connections.items() if not conn.is_closed
        }
        return len(self._connections)

    async def refresh(self) -> None:
        """Update the gauges read at scrape time (store totals, open connections)."""
        totals = await self._totals()
        self.queue_messages.set(totals.messages)
        self.queue_bytes.set(totals.bytes)
        counts = dict.fromkeys((label for label, _, _ in KEY_PACKAGE_BUCKETS), 0)
        for left, identities in totals.key_packages_left.items():
            counts[key_package_bucket(left)] += identities
        for label, identities in counts.items():
            self.key_package_identities.labels(label).set(identities)
        self.connections.set(self._prune())

    async def exposition(self) -> bytes:
        """The registry in Prometheus text format, after :meth:`refresh`."""
        await self.refresh()
        return generate_latest(self.registry)


# --- the HTTP endpoint ------------------------------------------------------------------------


def _http_response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _handle_http(metrics: NodeMetrics, stream: trio.SocketStream) -> None:
    """One scrape: read the request head, answer, close. Never raises (except cancellation)."""
    try:
        with trio.move_on_after(HTTP_DEADLINE):
            head = b""
            while b"\r\n\r\n" not in head and len(head) < MAX_HTTP_REQUEST:
                chunk = await stream.receive_some(MAX_HTTP_REQUEST)
                if not chunk:
                    break
                head += chunk
            method, _, rest = head.partition(b" ")
            target = rest.partition(b" ")[0].partition(b"?")[0]
            if method in (b"GET", b"HEAD") and target == b"/metrics":
                body = await metrics.exposition()
                answer = _http_response("200 OK", CONTENT_TYPE_LATEST, body)
                if method == b"HEAD":
                    answer = answer[: len(answer) - len(body)]
            else:
                answer = _http_response(
                    "404 Not Found", "text/plain; charset=utf-8", b"not found\n"
                )
            await stream.send_all(answer)
    except trio.Cancelled:
        raise
    except Exception as exc:  # a scraper that goes away or a store hiccup never stops the node
        logger.warning("metrics_scrape_failed", extra={"fields": {"exception": type(exc).__name__}})
    finally:
        with trio.move_on_after(1.0) as cleanup:
            cleanup.shield = True
            await stream.aclose()


async def serve_metrics(
    metrics: NodeMetrics,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``GET /metrics`` over HTTP/1.1 on ``host:port`` until cancelled.

    Args:
        metrics: what to expose.
        host: address to bind (loopback unless scrapers are remote).
        port: TCP port; 0 picks a free one.
        task_status: receives the bound ``(host, port)``.

    Raises:
        OSError: the socket cannot be bound.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound: Any = listeners[0].socket.getsockname()
    # Connections arriving before serve_listeners runs wait in the listen backlog.
    task_status.started((host, int(bound[1])))
    await trio.serve_listeners(partial(_handle_http, metrics), listeners)
