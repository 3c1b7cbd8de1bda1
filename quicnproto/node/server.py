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

import contextlib
import fcntl
import inspect
import itertools
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, MutableMapping
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import trio

from quicnproto import __version__
from quicnproto.config import NodeConfig
from quicnproto.errors import (
    ConfigError,
    ErrorCode,
    ProtocolError,
    QuicnprotoError,
    StoreError,
    sole_exception,
)
from quicnproto.log import log_event
from quicnproto.node.auth_service import AuthService, key_package_parses
from quicnproto.node.delivery_service import DeliveryService
from quicnproto.node.store import RequestRefused, SQLiteStore, open_sqlite_store
from quicnproto.transport.frames import read_frame, write_frame
from quicnproto.transport.quic import QuicStream, serve_quic
from quicnproto.transport.tls import (
    ensure_node_certificate,
    generate_self_signed_certificate,
    load_certificate,
    write_certificate_files,
)
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


class HeldLogHandler(logging.Handler):
    """Hands records to ``target``, or keeps them (at most ``limit``) while holding, so a start
    that fails prints only its error line; :meth:`release_held` lets the kept ones out and stops
    holding, :meth:`discard` forgets them."""

    def __init__(self, target: logging.Handler, *, hold: bool, limit: int = 10_000) -> None:
        super().__init__()
        self.target = target
        self.limit = limit
        self._held: list[logging.LogRecord] | None = [] if hold else None

    def emit(self, record: logging.LogRecord) -> None:
        held = self._held
        if held is None:
            self.target.handle(record)
        elif len(held) < self.limit:
            held.append(record)

    def release_held(self) -> None:
        held, self._held = self._held, None
        for record in held or ():
            self.target.handle(record)

    def discard(self) -> None:
        if self._held is not None:
            self._held.clear()


def configure_logging(
    *, json_lines: bool = False, level: str = "INFO", stream: Any = None, hold: bool = False
) -> HeldLogHandler:
    """Send ``quicnproto`` logs to ``stream`` (default stderr) as plain text or JSON lines.

    Args:
        json_lines: JSON lines instead of plain text.
        level: the level name for ``quicnproto`` loggers.
        stream: where to write (default stderr).
        hold: keep records until the returned handler's ``release_held()`` (the ``serve`` command
            releases them once the node started, and prints only its error line otherwise).
    """
    output = logging.StreamHandler(stream or sys.stderr)
    output.setFormatter(JsonLinesFormatter() if json_lines else PlainFormatter())
    handler = HeldLogHandler(output, hold=hold)
    # Ours at ``level``; aioquic's ("quic") only from WARNING, through the same handler.
    for name, name_level in (("quicnproto", level.upper()), ("quic", "WARNING")):
        target = logging.getLogger(name)
        for old in list(target.handlers):
            target.removeHandler(old)
        target.addHandler(handler)
        target.setLevel(name_level)
        target.propagate = False
    return handler


# --- the node ---------------------------------------------------------------------------------


class Node:
    """Dispatches decoded requests to the services and answers streams.

    Args:
        config: the node configuration.
        store: the opened store.
        certificate: the node's DER certificate (clients sign challenges for it).
    """

    def __init__(self, config: NodeConfig, store: SQLiteStore, *, certificate: bytes = b"") -> None:
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


LOCK_FILE = "node.lock"
"""File in the data directory a running node holds an exclusive ``flock`` on (one node per data
directory); it holds that node's pid once it serves. It stays after the node stops."""


class _Undo:
    """What a starting node created on disk, removed again if the start fails: a directory
    that did not exist goes with everything in it; in an existing one, only the files this
    start created go."""

    def __init__(self) -> None:
        self.dirs: list[Path] = []
        self.files: list[Path] = []

    def make_dirs(self, path: Path, what: str) -> None:
        """``mkdir -p path`` (0700), remembering each directory it created.

        Raises:
            ConfigError: ``path`` or a parent is not a directory, or cannot be created.
        """
        missing = [p for p in (path, *path.parents) if not p.exists()]
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ConfigError(f"{what} {path} is not a directory") from exc
        except OSError as exc:
            raise ConfigError(f"cannot create {what} {path}: {exc.strerror}") from exc
        finally:
            self.dirs.extend(p for p in reversed(missing) if p.is_dir())
        if not path.is_dir():
            raise ConfigError(f"{what} {path} is not a directory")

    def run(self) -> None:
        """Remove what was created, newest first; never raises."""
        for path in reversed(self.files):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        for path in reversed(self.dirs):
            shutil.rmtree(path, ignore_errors=True)


def _read_certificate(config: NodeConfig) -> tuple[bytes, bytes, bool]:
    """The node's certificate and key: read and checked when either file exists (nothing is
    written then), else a new pair generated in memory (written by :func:`_open_files`).

    Returns:
        ``(certificate_der, private_key_der, generated)``.

    Raises:
        ConfigError: one file without the other, a malformed file, a key that does not
            match the certificate, or a key readable by others.
    """
    cert_path, key_path = config.cert_path, config.key_path
    if not cert_path.exists() and not key_path.exists():
        cert, key = generate_self_signed_certificate()
        return cert, key, True
    if cert_path.exists():
        try:
            load_certificate(cert_path)
        except ConfigError as exc:
            raise ConfigError(f"node certificate {cert_path}: {exc}") from exc
    cert, key = ensure_node_certificate(cert_path, key_path)
    return cert, key, False


def _lock_data_dir(config: NodeConfig, undo: _Undo) -> int:
    """Create the data directory if missing and take the node lock in it.

    Returns:
        The lock file's descriptor; the lock lasts until it is closed.

    Raises:
        ConfigError: the data directory is not a directory or not writable, or another node
            holds its lock (the message names that node's pid).
    """
    undo.make_dirs(config.data_dir, "data directory")
    lock_path = config.data_dir / LOCK_FILE
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            undo.files.append(lock_path)
        except FileExistsError:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # removed meanwhile by a start that failed: try again
            except OSError as exc:
                raise ConfigError(f"cannot open {lock_path}: {exc.strerror}") from exc
        except OSError as exc:
            raise ConfigError(
                f"data directory {config.data_dir} is not writable: {exc.strerror}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            if isinstance(exc, BlockingIOError):
                pid = f"pid {holder}" if holder.isdigit() else "pid unknown"
                raise ConfigError(
                    f"data directory {config.data_dir} is in use by another node ({pid})"
                ) from exc
            raise ConfigError(f"cannot lock {lock_path}: {exc.strerror}") from exc
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # we locked a file a failed start had just removed: take the new one


def _open_files(
    config: NodeConfig,
    undo: _Undo,
    certificate: tuple[bytes, bytes, bool],
    clock: Callable[[], float],
) -> tuple[int, SQLiteStore]:
    """Lock the data directory, write a generated certificate and key, create the database
    file (0600, so SQLite's journal files inherit owner-only permissions) and open the store.
    Everything created is noted in ``undo``; on failure the lock is released.

    Raises:
        ConfigError: see :func:`_lock_data_dir`; a certificate file cannot be written.
        StoreError: the database cannot be created or opened.
    """
    lock = _lock_data_dir(config, undo)
    try:
        cert, key, generated = certificate
        if generated:
            for path in (config.key_path, config.cert_path):
                undo.make_dirs(path.parent, "directory")
                undo.files.append(path)
            write_certificate_files(config.cert_path, config.key_path, cert, key)
        db_path = config.db_path
        try:
            undo.make_dirs(db_path.parent, "database directory")
        except ConfigError as exc:
            raise StoreError(str(exc)) from exc
        undo.files.extend(
            p
            for p in (db_path, *(Path(f"{db_path}{s}") for s in ("-wal", "-shm", "-journal")))
            if not p.exists()
        )
        if not db_path.exists():
            try:
                os.close(os.open(db_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise StoreError(f"cannot create database {db_path}: {exc.strerror}") from exc
        try:
            store = open_sqlite_store(
                db_path, config.store_limits(), clock=clock, key_package_check=key_package_parses
            )
        except StoreError as exc:
            raise StoreError(f"database {db_path}: {exc}") from exc
    except BaseException:
        os.close(lock)
        raise
    return lock, store


async def serve(
    config: NodeConfig,
    *,
    clock: Callable[[], float] = time.time,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a node until cancelled.

    Start-up goes in this order, and a failure at any step leaves nothing new on disk (a data
    directory that did not exist is removed again; in an existing one, only files this start
    created are removed) and raises its cause, never an exception group:

    1. check the configuration, and the certificate and key if they exist (only reads; a
       missing pair is generated in memory);
    2. bind the UDP socket (requests wait until the node is ready);
    3. create the data directory if missing and lock it (``node.lock``: one node per data
       directory);
    4. write a generated certificate and key, create the database if missing, and open it
       (refusing another program's SQLite file, a corrupt one, or one from a newer version,
       without writing to it; migrating an older node database).

    Store rows that fail validation at open are quarantined and counted in a
    ``store_quarantined`` log event (count only; VALIDATION SRV-CR-05).

    Args:
        config: what to bind, where the files live, and the limits.
        clock: the store's wall clock (enqueue times and message expiry; tests inject one).
        task_status: receives the bound ``(host, port)`` once the node accepts connections.

    Raises:
        ConfigError: bad configuration or certificate files, a data directory that is not a
            writable directory, or one another node holds.
        TransportError: the socket cannot be bound.
        StoreError: the database cannot be created or opened, is not a node database, is
            corrupt, or is newer than this code.

    Cancellation:
        Cancelling the surrounding scope stops the listener, abandons in-flight requests (a
        store transaction already started still commits or rolls back),
        and closes the store.

    Resource handling:
        The UDP socket belongs to the transport; the store's connections are closed and the
        data directory's lock released on exit.
    """
    config.validate()
    certificate = await trio.to_thread.run_sync(_read_certificate, config)
    cert, key, _ = certificate
    ready = trio.Event()
    node: Node | None = None

    async def handle_stream(stream: QuicStream) -> None:
        await ready.wait()
        assert node is not None
        await node.handle_stream(stream)

    undo = _Undo()
    opened: tuple[int, SQLiteStore] | None = None
    try:
        async with trio.open_nursery() as nursery:
            address = await nursery.start(
                partial(
                    serve_quic,
                    config.host,
                    config.port,
                    certificate=cert,
                    private_key=key,
                    alpn=config.alpn,
                    handler=handle_stream,
                    limits=config.transport_limits(),
                    retry=config.retry,
                    backend=config.quic_backend,
                )
            )
            opened = await trio.to_thread.run_sync(_open_files, config, undo, certificate, clock)
            lock, store = opened
            if store.quarantined:
                log_event(logging.WARNING, "store_quarantined", count=store.quarantined)
            node = Node(config, store, certificate=cert)
            nursery.start_soon(node.purge_loop)
            await node.start_metrics(nursery)
            undo = _Undo()  # started: from here on nothing is removed
            os.ftruncate(lock, 0)
            os.pwrite(lock, f"{os.getpid()}\n".encode(), 0)
            ready.set()
            log_event(
                logging.INFO,
                "listening",
                host=address[0],
                port=address[1],
                version=__version__,
            )
            task_status.started(address)
    except BaseExceptionGroup as group:
        cause = sole_exception(group)
        if isinstance(cause, Exception) and not ready.is_set():
            raise cause from cause.__cause__
        raise
    finally:
        with trio.CancelScope(shield=True):
            if opened is not None:
                await opened[1].aclose()
            await trio.to_thread.run_sync(undo.run)
            if opened is not None:
                os.close(opened[0])
