"""The node: QUIC listener, request dispatch and structured logs.

One request per QUIC stream::

    client                                  node (handle_stream)
    open stream                             read one frame (deadline: request_deadline)
    frame(Envelope{request}) + FIN   --->   wire.decode_request (traversal/nesting limits)
                                            dispatch to AuthService / DeliveryService
                                     <---   frame(Envelope{response | error}) + FIN

A long-poll fetch simply answers later. Every failure of one request becomes an error response
with an :class:`ErrorCode` (or, when even that cannot be written, a stream reset); the handler
never raises into the transport, so one bad client cannot stop the node (STYLE §5.6,
VALIDATION SRV-FR-07). Only failures of the node itself (socket, store at start-up) end
:func:`serve`.

Logs: one record per request with a node-local request number (``rid``), the client's request
id, the connection id, the request kind, the outcome code and the duration. Payloads, keys,
signatures, nonces and KeyPackages are never logged. :func:`configure_logging` selects plain
text or JSON lines. With ``NodeConfig.metrics`` set, the same kind, outcome and duration also
feed Prometheus metrics (:mod:`quicnproto.node.metrics`, imported only then), whose labels
never carry request ids: the log joins a metric to its requests.
"""

from __future__ import annotations

import inspect
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, MutableMapping
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any, cast

import trio

from quicnproto import __version__
from quicnproto.config import NodeConfig
from quicnproto.errors import ErrorCode, ProtocolError, QuicnprotoError, StoreError
from quicnproto.node.auth_service import AuthService, key_package_parses
from quicnproto.node.delivery_service import DeliveryService
from quicnproto.node.store import RequestRefused, SQLiteStore, open_sqlite_store
from quicnproto.transport.frames import read_frame, write_frame
from quicnproto.transport.quic import QuicStream, serve_quic
from quicnproto.transport.tls import ensure_node_certificate
from quicnproto.wire import (
    REQUESTS,
    ErrorResponse,
    Ping,
    Pong,
    Request,
    Response,
    decode_request,
    encode_answer,
    peek_request_id,
)

if TYPE_CHECKING:
    from quicnproto.node.metrics import NodeMetrics

logger = logging.getLogger("quicnproto.node")

PURGE_INTERVAL = 3600.0
"""Seconds between sweeps of expired idempotency records and expired messages."""

# --- logging ----------------------------------------------------------------------------------


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Structured fields of a record: our ``fields`` dict plus any other ``extra`` keys."""
    found: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if key == "fields" and isinstance(value, dict):
            found.update(value)
        elif key not in _STANDARD_ATTRS and key != "fields":
            found[key] = value
    return found


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, event and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(_record_fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, separators=(",", ":"), default=str)


class PlainFormatter(logging.Formatter):
    """``time level event key=value ...``; exception type names only, never tracebacks' data."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [stamp, record.levelname.lower(), record.getMessage()]
        parts.extend(f"{k}={v}" for k, v in _record_fields(record).items())
        if record.exc_info and record.exc_info[0] is not None:
            parts.append(f"exception={record.exc_info[0].__name__}")
        return " ".join(parts)


def configure_logging(*, json_lines: bool = False, level: str = "INFO", stream: Any = None) -> None:
    """Send ``quicnproto`` logs to ``stream`` (default stderr) as plain text or JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if json_lines else PlainFormatter())
    # Ours at ``level``; aioquic's ("quic") only from WARNING, through the same handler.
    for name, name_level in (("quicnproto", level.upper()), ("quic", "WARNING")):
        target = logging.getLogger(name)
        for old in list(target.handlers):
            target.removeHandler(old)
        target.addHandler(handler)
        target.setLevel(name_level)
        target.propagate = False


def log_event(level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with structured ``fields`` (callers pass no payloads or keys)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})


# --- the node ---------------------------------------------------------------------------------


class Node:
    """Dispatches decoded requests to the services and answers streams.

    Args:
        config: the node configuration.
        store: the opened store.
        certificate: the node's DER certificate (clients sign challenges for it).
    """

    def __init__(
        self, config: NodeConfig, store: SQLiteStore, *, certificate: bytes = b""
    ) -> None:
        self.config = config
        self.store = store
        self.auth = AuthService(store, config, node_certificate=certificate)
        self.delivery = DeliveryService(store, config)
        self._rids = itertools.count(1)
        self.internal_errors = 0
        """Requests that failed with an unexpected exception (a bug) since start."""
        self._handlers: dict[type, Callable[..., Any]] = {
            kind.request: attrgetter(kind.handler)(self) for kind in REQUESTS
        }
        self._log_names = {kind.request: kind.log_name for kind in REQUESTS}
        self.metrics: NodeMetrics | None = None
        """Prometheus metrics when ``config.metrics`` is set; None (no import, no cost) if not."""
        if config.metrics is not None:
            from quicnproto.node.metrics import NodeMetrics

            self.metrics = NodeMetrics(store.totals)
            store.observe_commits(self.metrics.commit_done)

    def ping(self, state: MutableMapping[str, Any], request: Ping) -> Pong:
        """Liveness: the node's version and wall-clock time; needs no authentication."""
        return Pong(version=__version__, time_ms=int(time.time() * 1000))

    async def dispatch(self, state: MutableMapping[str, Any], request: Request) -> Response:
        """Run one request against its handler (the :data:`~quicnproto.wire.REQUESTS` row of its type).

        Raises:
            RequestRefused: the request is refused with a code.
            StoreError: the store failed.
        """
        handler = self._handlers.get(type(request))
        if handler is None:
            raise RequestRefused(ErrorCode.UNSUPPORTED, "unknown request")
        answer = handler(state, request)
        if inspect.isawaitable(answer):
            answer = await answer
        return cast(Response, answer)

    async def answer(
        self, state: MutableMapping[str, Any], frame: bytes
    ) -> tuple[int, str, Response | ErrorResponse]:
        """Decode ``frame`` and produce the answer; never raises for a bad request.

        Returns:
            ``(request_id, kind, answer)``.
        """
        try:
            request_id, request = decode_request(frame, nesting_limit=self.config.nesting_limit)
        except ProtocolError as exc:
            if self.metrics is not None:
                self.metrics.error(type(exc).__name__)
            return peek_request_id(frame), "malformed", ErrorResponse(exc.code, "malformed request")
        kind = self._log_names.get(type(request), "unknown")
        try:
            return request_id, kind, await self.dispatch(state, request)
        except RequestRefused as exc:
            return request_id, kind, ErrorResponse(exc.code, exc.detail)
        except StoreError as exc:
            if self.metrics is not None:
                self.metrics.error(type(exc).__name__)
            log_event(logging.ERROR, "store_error", request_id=request_id, kind=kind)
            return request_id, kind, ErrorResponse(ErrorCode.UNAVAILABLE, "store unavailable")

    async def handle_stream(self, stream: QuicStream) -> None:
        """Serve one request stream. Never raises (except cancellation)."""
        rid = next(self._rids)
        started = trio.current_time()
        conn_id = stream.connection.id
        request_id, kind = 0, "none"
        code = ErrorCode.NO_ERROR
        metrics = self.metrics
        if metrics is not None:
            metrics.connection_seen(stream.connection)
        try:
            try:
                frame = await read_frame(
                    stream,
                    self.config.max_frame_size,
                    trio.current_time() + self.config.request_deadline,
                )
            except ProtocolError as exc:
                # Oversize header, truncated stream, or too slow (SRV-FR-01, SRV-Q-03).
                kind = "bad_frame"
                code = exc.code
                if metrics is not None:
                    metrics.error(type(exc).__name__)
                await self._send(stream, 0, ErrorResponse(code, "bad frame"))
                return
            request_id, kind, answer = await self.answer(stream.connection.state, frame)
            if isinstance(answer, ErrorResponse):
                code = answer.code
            await self._send(stream, request_id, answer)
        except trio.Cancelled:
            raise
        except (QuicnprotoError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            # The peer went away or reset the stream; nothing to answer.
            code = ErrorCode.UNAVAILABLE
            if metrics is not None:
                metrics.error(type(exc).__name__)
        except Exception as exc:
            # STYLE §5.6: a bug in one handler is logged (type only), counted and answered with
            # INTERNAL (or the stream is reset if even that fails); it is never fatal.
            code = ErrorCode.INTERNAL
            self.internal_errors += 1
            if metrics is not None:
                metrics.error(type(exc).__name__)
            logger.error(
                "handler_failed",
                exc_info=True,
                extra={"fields": {"rid": rid, "request_id": request_id, "kind": kind}},
            )
            try:
                await self._send(stream, request_id, ErrorResponse(code, "internal error"))
            except Exception:
                try:
                    stream.reset(int(ErrorCode.INTERNAL))
                except Exception:  # noqa: S110 - the stream may already be gone
                    pass
        finally:
            if metrics is not None:
                metrics.request_done(kind, code.name.lower(), trio.current_time() - started)
            if logger.isEnabledFor(logging.INFO):
                log_event(
                    logging.INFO,
                    "request",
                    rid=rid,
                    request_id=request_id,
                    conn=conn_id,
                    kind=kind,
                    code=code.name.lower(),
                    ms=round((trio.current_time() - started) * 1000, 3),
                )

    async def _send(
        self, stream: QuicStream, request_id: int, answer: Response | ErrorResponse
    ) -> None:
        await write_frame(stream, encode_answer(request_id, answer), end_stream=True)

    async def start_metrics(self, nursery: trio.Nursery) -> None:
        """Serve the metrics endpoint in ``nursery`` if ``config.metrics`` asks for it; logs
        ``metrics_listening`` with the bound host and port (port 0 picks a free one).

        Raises:
            OSError: the metrics socket cannot be bound.
        """
        if self.metrics is None or self.config.metrics is None:
            return
        from quicnproto.node.metrics import serve_metrics

        host, port = self.config.metrics
        bound = await nursery.start(serve_metrics, self.metrics, host, port)
        log_event(logging.INFO, "metrics_listening", host=bound[0], port=bound[1])

    async def purge_once(self) -> None:
        """Forget old idempotency records and delete expired messages (VALIDATION SRV-DEL-07;
        their loss shows in the recipients' next fetches). Never raises a store failure."""
        try:
            removed = await self.store.purge()
            expired = await self.store.expire_messages()
            log_event(logging.INFO, "purged", records=removed, expired=expired)
        except StoreError:
            log_event(logging.ERROR, "purge_failed")

    async def purge_loop(self) -> None:
        """:meth:`purge_once` every :data:`PURGE_INTERVAL` seconds."""
        while True:
            await trio.sleep(PURGE_INTERVAL)
            await self.purge_once()


def _prepare_files(config: NodeConfig) -> tuple[bytes, bytes]:
    """Creates the data directory (0700) and an empty database file (0600) if missing, so
    SQLite's journal files inherit owner-only permissions; returns the certificate and key."""
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in (config.cert_path, config.key_path, config.db_path):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not config.db_path.exists():
        os.close(os.open(config.db_path, os.O_CREAT | os.O_WRONLY, 0o600))
    return ensure_node_certificate(config.cert_path, config.key_path)


async def serve(
    config: NodeConfig,
    *,
    clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a node until cancelled.

    Creates the data directory, writes a self-signed certificate and key there on first start
    (if missing), opens (and migrates) the SQLite store, then listens for QUIC connections.
    Store rows that fail validation at open are quarantined and counted in a
    ``store_quarantined`` log event (count only; VALIDATION SRV-CR-05).

    Args:
        config: what to bind, where the files live, and the limits.
        clock: the store's wall clock (enqueue times and message expiry; tests inject one).
        task_status: receives the bound ``(host, port)`` once the node accepts connections.

    Raises:
        ConfigError: bad configuration or certificate files.
        StoreError: the database cannot be opened, or SQLite reports it corrupt.
        OSError: the socket cannot be bound.

    Cancellation:
        Cancelling the surrounding scope stops the listener, abandons in-flight requests (a
        store transaction already started still commits or rolls back),
        and closes the store.

    Resource handling:
        The UDP socket belongs to the transport; the store's connections are closed on exit.
    """
    config.validate()
    cert, key = await trio.to_thread.run_sync(_prepare_files, config)
    store = await trio.to_thread.run_sync(
        partial(
            open_sqlite_store,
            config.db_path,
            config.store_limits(),
            clock=clock,
            key_package_check=key_package_parses,
        )
    )
    if store.quarantined:
        log_event(logging.WARNING, "store_quarantined", count=store.quarantined)
    node = Node(config, store, certificate=cert)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.purge_loop)
            await node.start_metrics(nursery)
            address = await nursery.start(
                partial(
                    serve_quic,
                    config.host,
                    config.port,
                    certificate=cert,
                    private_key=key,
                    alpn=config.alpn,
                    handler=node.handle_stream,
                    limits=config.transport_limits(),
                )
            )
            log_event(
                logging.INFO,
                "listening",
                host=address[0],
                port=address[1],
                version=__version__,
            )
            task_status.started(address)
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()
