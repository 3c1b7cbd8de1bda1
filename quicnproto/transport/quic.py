"""A Trio driver for aioquic's sans-I/O ``QuicConnection`` (server and client), no asyncio.

::

    UDP socket (one per endpoint, large buffers)
        |  wait_readable -> recvfrom (batches)
        v
    _Endpoint._route --- by destination CID (CIDs added/removed on ConnectionIdIssued/
        |                 Retired); an Initial from a new peer -> caps -> new connection
        v
    _Connection.receive_datagram(data, addr, now=trio.current_time())
        |  drain every event: StreamDataReceived -> QuicStream buffer (bounded), new peer
        |  stream -> handler task (capped), StreamReset/StopSending -> stream errors,
        |  HandshakeCompleted -> ALPN/pin checks, ConnectionTerminated -> tear down
        v
    _Connection.transmit(): datagrams_to_send(now) -> sendto (after a receive batch only when an
    ACK is due at once, during the handshake or to close; writes by the application are
    coalesced through the timer task), then the connection's one timer task sleeps until
    get_timer() on Trio's clock and calls handle_timer(now)

ACKs (RFC 9000 §13.2): a pending ACK rides in the next packet that carries application data,
waits at most ``_ACK_DELAY`` otherwise, and goes out at once after two full-size datagrams'
worth of bytes; so a request/response exchange costs two packets, not four. The timer task's
deadline is moved in place when the timer moves earlier, and the watchdog is woken only when a
keep-alive PING becomes due earlier than it planned, not for every stream.

aioquic grants flow-control credit as soon as it hands data to us and raises the peer's stream
limit by itself, so the limits that matter are enforced here (VALIDATION.md SRV-Q-01..03):
concurrently open peer-initiated streams per connection (beyond: reset), connections per source
address (beyond: the Initial is refused), bytes buffered per stream and per connection
(beyond: the stream is reset), writers wait while too much sent data is unacknowledged,
connection idle time (no open stream) and age, handshake time. No session tickets, hence no
0-RTT (SRV-Q-05); ALPN is pinned on both sides (SRV-Q-06); optional Retry address validation
(SRV-Q-04); unknown versions get Version Negotiation. While a stream is open both ends send
PINGs every ``idle_timeout / 3`` so a long poll is not mistaken for an idle connection.

aioquic offers no public accessor for a few things the glue needs, so exactly five helpers touch
its internals: :func:`_unacknowledged_bytes` (send backpressure),
:func:`_peer_certificate_der` (the pin check; it fails closed), :func:`_ack_with_data` and
:func:`_set_ack_delay` (ACK timing; both do nothing if the internals change shape), and
:func:`_close_pending` (whether a receive must be followed by a transmit; it fails towards
transmitting).

Contract: a handler's exception resets its stream and is logged; it never stops the server.
A handler whose peer asks it to stop sending (STOP_SENDING, e.g. a client that gave up on a long
poll) is cancelled, so it does not hold its stream slot until its own timeout.
Errors raised to the application are :class:`~quicnproto.errors.TransportError` and its
subclasses :class:`StreamResetError` and :class:`ConnectionClosedError` (both carry
``error_code``). Logs go to ``quicnproto.transport`` and never contain
payloads or keys.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import socket
import ssl
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
from aioquic import tls
from aioquic.buffer import Buffer  # type: ignore[attr-defined]  # re-exported, untyped
from aioquic.quic import events
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.crypto import CryptoPair
from aioquic.quic.packet import (
    QuicErrorCode,
    QuicFrameType,
    QuicHeader,
    QuicPacketType,
    encode_quic_retry,
    encode_quic_version_negotiation,
    pull_quic_header,
)
from aioquic.quic.packet_builder import QuicPacketBuilder
from aioquic.quic.rangeset import RangeSet
from aioquic.quic.retry import QuicRetryTokenHandler
from cryptography.hazmat.primitives import serialization

from quicnproto.errors import ErrorCode, TransportError
from quicnproto.transport.tls import certificates_equal, parse_certificate, parse_private_key

__all__ = [
    "ConnectionClosedError",
    "ConnectionInfo",
    "QuicClient",
    "QuicStream",
    "StreamResetError",
    "TransportLimits",
    "open_quic_connection",
    "serve_quic",
]

_log = logging.getLogger("quicnproto.transport")


def _log_event(level: int, event: str, **fields: Any) -> None:
    """Log a structured event: the message is the event name, ``fields`` go in ``extra``
    (the node's formatters print them as key=value or JSON). Never payloads or keys."""
    if _log.isEnabledFor(level):
        _log.log(level, event, extra={"fields": fields})


NetworkAddress = Any
"""A socket address as returned by ``recvfrom`` (2-tuple for IPv4, 4-tuple for IPv6)."""

SOCKET_BUFFER_SIZE = 4 * 1024 * 1024
"""Requested SO_RCVBUF / SO_SNDBUF (the kernel may cap it)."""

_RECV_BATCH = 64
"""Datagrams read per wake-up before transmitting and yielding."""

_MAX_DATAGRAM = 65535
_SEND_CHUNK = 64 * 1024
_SEND_HIGH_WATER = 256 * 1024
"""A writer waits while more than this many bytes of its stream are unacknowledged."""

_TIMER_GRANULARITY = 0.001
"""Seconds to wait before firing a timer that did not move when it last fired."""

_MAX_FINISHED_RANGES = 1024
"""Gaps allowed in the set of finished peer stream IDs before the connection is closed."""

_SEND_BACKLOG = 4096
"""Datagrams queued while the socket would block; beyond this they are dropped (QUIC recovers)."""

_ACK_DELAY = 0.02
"""Seconds a 1-RTT ACK may wait for a packet to ride in, once the handshake is done (aioquic's
default is 1 ms, which sends a separate ACK for nearly every request and answer). Well under
the ``max_ack_delay`` aioquic advertises (25 ms, which the peer adds to its PTO); and an ACK is
sent at once after two full-size datagrams' worth of bytes (RFC 9000 §13.2.2 asks for every
second ack-eliciting packet), so bulk transfers are not slowed."""

_ACK_AFTER_BYTES = 2 * SMALLEST_MAX_DATAGRAM_SIZE
"""Received bytes after which a pending ACK is sent at once. Counted in bytes rather than
datagrams so that small ACK-only datagrams (not ack-eliciting) do not trigger it."""

_connection_ids = itertools.count(1)
_ping_ids = itertools.count(1)


@dataclass
class TransportLimits:
    """Limits enforced by the transport glue (VALIDATION.md §5.7 defaults)."""

    max_streams_per_connection: int = 64
    """Concurrently open peer-initiated streams per connection; a stream beyond it is reset with
    ``ErrorCode.RATE_LIMITED``. On the client, ``open_stream`` waits instead of exceeding it."""

    max_connections_per_address: int = 16
    """Connections per source IP address; further Initial packets are refused."""

    max_stream_buffer: int = 4 * 1024 * 1024 + 64
    """Received bytes buffered per stream that the application has not read yet; beyond it the
    stream is reset with ``ErrorCode.FRAME_TOO_LARGE``."""

    idle_timeout: float = 60.0
    """Seconds a connection may stay without any open stream (server side), and the QUIC idle
    timeout (both sides)."""

    max_connection_age: float = 3600.0
    """Seconds after which the server closes a connection, busy or not."""

    max_connection_buffer: int = 32 * 1024 * 1024
    """Received bytes buffered across all streams of one connection; the stream that pushes past
    it is reset with ``ErrorCode.QUOTA_EXCEEDED``."""

    handshake_timeout: float = 10.0
    """Seconds allowed for the QUIC + TLS handshake."""

    max_connections: int = 4096
    """Connections a server holds in total; further Initial packets are refused."""


class StreamResetError(TransportError):
    """The stream was reset (by the peer, by a limit, or locally).

    Attributes:
        error_code: the application error code carried by the reset.
    """

    def __init__(self, message: str, error_code: int) -> None:
        self.error_code = error_code
        super().__init__(message)


class ConnectionClosedError(TransportError):
    """The connection was closed by the peer, or by a QUIC-level failure or timeout.

    Attributes:
        error_code: the QUIC transport or application error code of the close.
    """

    def __init__(self, message: str, error_code: int) -> None:
        self.error_code = error_code
        super().__init__(message)


@dataclass(eq=False)
class ConnectionInfo:
    """What the application may know about one QUIC connection (server or client side)."""

    id: int
    """Unique per process."""

    remote_address: tuple[str, int]
    """The peer's IP address and UDP port."""

    state: dict[str, Any] = field(default_factory=dict, repr=False)
    """Free for the application, e.g. the identity authenticated on this connection."""

    alpn_protocol: str | None = None
    """The negotiated ALPN protocol, once the handshake completed."""

    _driver: _Connection | None = field(default=None, repr=False)

    @property
    def is_closed(self) -> bool:
        """Whether the connection was closed or terminated."""
        return self._driver is None or self._driver.closing

    def close(self, error_code: int = ErrorCode.NO_ERROR, reason: str = "") -> None:
        """Close the connection with an application error code (idempotent).

        Every stream of the connection fails with :class:`TransportError` afterwards.
        """
        if self._driver is not None:
            self._driver.close(error_code, reason)


class QuicStream:
    """One bidirectional QUIC stream, as seen by the application.

    Reads and writes are bounded: unread received data is capped by
    ``TransportLimits.max_stream_buffer`` (the stream is reset beyond it) and ``send_all``
    waits while too much sent data is unacknowledged.
    """

    def __init__(self, connection: _Connection, stream_id: int, *, local: bool) -> None:
        self.stream_id = stream_id
        self.connection: ConnectionInfo = connection.info
        self._conn = connection
        self._local = local
        self._recv_buffer = bytearray()
        self._recv_eof = False
        self._recv_done = False
        self._peer_ended = False
        self._recv_error: TransportError | None = None
        self._send_done = False
        self._send_eof = False
        self._send_error: TransportError | None = None
        self._lot = trio.lowlevel.ParkingLot()
        self._reading = False
        self._writing = False
        self._closed = False
        self._handler_scope: trio.CancelScope | None = None
        """The running handler's scope (peer-opened streams); cancelled on STOP_SENDING."""

    def __repr__(self) -> str:
        return f"<QuicStream {self.stream_id} of connection {self.connection.id}>"

    # -- application API ----------------------------------------------------------------

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        """Return up to ``max_bytes`` received bytes, waiting for some if needed.

        Returns:
            ``b""`` once the peer finished its side of the stream.

        Raises:
            StreamResetError: the peer (or a limit) reset the stream.
            TransportError: the connection closed.
        """
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self._reading:
            raise trio.BusyResourceError("another task is already reading from this stream")
        self._reading = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            parked = False
            while True:
                data = self._take(max_bytes)
                if data is not None:
                    if not parked:
                        # Having parked was our schedule point; otherwise yield once here.
                        await trio.lowlevel.cancel_shielded_checkpoint()
                    return data
                await self._lot.park()
                parked = True
        finally:
            self._reading = False

    def receive_nowait(self, max_bytes: int = 65536) -> bytes | None:
        """Return up to ``max_bytes`` bytes already received, without waiting.

        Returns:
            ``None`` when nothing is buffered yet, ``b""`` once the peer finished its side.

        Raises:
            StreamResetError: the peer (or a limit) reset the stream.
            TransportError: the connection closed.
        """
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self._reading:
            raise trio.BusyResourceError("another task is already reading from this stream")
        return self._take(max_bytes)

    def _take(self, max_bytes: int) -> bytes | None:
        if self._recv_buffer:
            data = bytes(self._recv_buffer[:max_bytes])
            del self._recv_buffer[:max_bytes]
            self._conn.buffered -= len(data)
            return data
        if self._recv_error is not None:
            raise self._recv_error
        if self._recv_eof:
            return b""
        return None

    async def send_all(self, data: bytes, *, end_stream: bool = False) -> None:
        """Send ``data`` (and the end of the stream if ``end_stream``).

        Waits while more than a bounded amount of this stream's data is unacknowledged, so a
        peer that does not read makes the writer wait rather than the process grow.

        Raises:
            StreamResetError: the stream was reset (by us, or STOP_SENDING from the peer).
            TransportError: the connection closed, or the stream was already finished.
        """
        if self._writing:
            raise trio.BusyResourceError("another task is already writing to this stream")
        self._writing = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            view = memoryview(bytes(data))
            offset = 0
            while True:
                self._check_can_send()
                await self._conn.wait_send_window(self)
                self._check_can_send()
                chunk = view[offset : offset + _SEND_CHUNK]
                offset += len(chunk)
                last = offset >= len(view)
                self._conn.send_stream_data(self, bytes(chunk), end_stream=end_stream and last)
                if last:
                    break
        finally:
            self._writing = False
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def send_eof(self) -> None:
        """Finish our side of the stream; a no-op if it is already finished."""
        if self._send_eof:
            await trio.lowlevel.checkpoint()
            return
        await self.send_all(b"", end_stream=True)

    def reset(self, error_code: int) -> None:
        """Abort both directions of the stream with an application error code.

        Sends RESET_STREAM for our side (unless finished) and STOP_SENDING for the peer's side
        (unless already received in full). Pending and future reads and writes fail with
        :class:`StreamResetError`.
        """
        self._conn.reset_stream(self, error_code)

    async def aclose(self) -> None:
        """Release the stream: finish sending if we can, stop receiving, and reset otherwise."""
        await trio.lowlevel.checkpoint()
        self._conn.finish_stream(self)

    async def __aenter__(self) -> QuicStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if exc_info[0] is not None:
            self._conn.reset_stream(self, ErrorCode.INTERNAL)
        else:
            self._conn.finish_stream(self)

    # -- driver side ----------------------------------------------------------------------

    def _check_can_send(self) -> None:
        if self._send_error is not None:
            raise self._send_error
        if self._send_eof:
            raise TransportError("the stream was already finished for sending")

    def _wake(self) -> None:
        self._lot.unpark_all()


class _Endpoint:
    """Owns one UDP socket: receives in batches, sends without blocking, routes datagrams."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        configuration: QuicConfiguration | None,
        limits: TransportLimits,
        handler: Callable[[QuicStream], Awaitable[None]] | None,
        retry: bool = False,
    ) -> None:
        self.sock = sock
        self.retry = QuicRetryTokenHandler() if retry else None
        self.configuration = configuration
        self.limits = limits
        self.handler = handler
        self.routes: dict[bytes, _Connection] = {}
        self.per_address: Counter[str] = Counter()
        self.connections: set[_Connection] = set()
        self.client_connection: _Connection | None = None
        self.nursery: trio.Nursery | None = None
        self._backlog: deque[tuple[bytes, NetworkAddress]] = deque()
        self._backlog_lot = trio.lowlevel.ParkingLot()

    # -- sending --------------------------------------------------------------------------

    def send(self, datagrams: list[tuple[bytes, NetworkAddress]]) -> None:
        """Send datagrams now; queue them for the sender task if the socket would block."""
        for data, addr in datagrams:
            if self._backlog:
                self._queue(data, addr)
                continue
            try:
                self.sock.sendto(data, addr)
            except BlockingIOError:
                self._queue(data, addr)
            except OSError as exc:
                # Unreachable peer, ICMP errors...: QUIC treats it as loss.
                self._socket_error(exc)

    def _queue(self, data: bytes, addr: NetworkAddress) -> None:
        if len(self._backlog) >= _SEND_BACKLOG:
            return
        self._backlog.append((data, addr))
        self._backlog_lot.unpark_all()

    async def sender_loop(self) -> None:
        """Flush datagrams queued while the socket was full."""
        while True:
            if not self._backlog:
                await self._backlog_lot.park()
                continue
            await trio.lowlevel.wait_writable(self.sock)
            while self._backlog:
                data, addr = self._backlog[0]
                try:
                    self.sock.sendto(data, addr)
                except BlockingIOError:
                    break
                except OSError as exc:
                    self._socket_error(exc)
                self._backlog.popleft()

    # -- receiving ------------------------------------------------------------------------

    async def receiver_loop(self) -> None:
        """Read datagrams in batches, feed them to connections, then transmit once each."""
        touched: dict[_Connection, None] = {}
        while True:
            await trio.lowlevel.wait_readable(self.sock)
            for _ in range(_RECV_BATCH):
                try:
                    data, addr = self.sock.recvfrom(_MAX_DATAGRAM)
                except BlockingIOError:
                    break
                except OSError as exc:
                    # e.g. ECONNREFUSED from an ICMP error; not fatal for UDP.
                    self._socket_error(exc)
                    continue
                conn = self._route(data, addr)
                if conn is not None:
                    conn.receive_datagram(data, addr)
                    conn.rx_unacked += len(data)
                    touched[conn] = None
            for conn in touched:
                conn.after_receive()
            touched.clear()

    def _socket_error(self, exc: OSError) -> None:
        _log_event(logging.DEBUG, "udp_socket_error", errno=exc.errno)
        conn = self.client_connection
        if (
            conn is not None
            and isinstance(exc, ConnectionRefusedError)
            and not conn.handshake_complete.is_set()
        ):
            # Nothing listens at the server address (ICMP port unreachable on our connected
            # socket): fail the handshake now instead of at its timeout.
            conn.close_error = TransportError("connection refused: nothing listens there")
            conn.terminate_now()

    def _route(self, data: bytes, addr: NetworkAddress) -> _Connection | None:
        if self.client_connection is not None:
            return self.client_connection
        if self.configuration is None:
            return None
        if data and not data[0] & 0x80:
            # Short header (RFC 9000 §17.3): the destination CID follows the first byte, with
            # the length we chose; route without parsing the rest (aioquic parses it again).
            conn = self.routes.get(data[1 : 1 + self.configuration.connection_id_length])
            if conn is not None:
                return conn
        try:
            header = pull_quic_header(
                Buffer(data=data), host_cid_length=self.configuration.connection_id_length
            )
        except ValueError:
            return None
        conn = self.routes.get(header.destination_cid)
        if conn is not None:
            return conn
        if header.packet_type == QuicPacketType.VERSION_NEGOTIATION:
            return None
        if header.version is not None and header.version not in (
            self.configuration.supported_versions
        ):
            # RFC 9000 §6: answer an unknown version with the versions we support.
            self.send(
                [
                    (
                        encode_quic_version_negotiation(
                            source_cid=header.destination_cid,
                            destination_cid=header.source_cid,
                            supported_versions=self.configuration.supported_versions,
                        ),
                        addr,
                    )
                ]
            )
            return None
        if header.packet_type != QuicPacketType.INITIAL or len(data) < SMALLEST_MAX_DATAGRAM_SIZE:
            return None
        if self.retry is None:
            return self._accept(header, addr, header.destination_cid, None)
        return self._validate_address(header, addr)

    def _validate_address(self, header: QuicHeader, addr: NetworkAddress) -> _Connection | None:
        """Address validation with Retry (RFC 9000 §8.1.2, VALIDATION.md SRV-Q-04)."""
        assert self.retry is not None and self.configuration is not None
        assert header.version is not None
        now = trio.current_time()
        if not header.token:
            source_cid = os.urandom(self.configuration.connection_id_length)
            token = self.retry.create_token(
                address=addr,
                original_destination_connection_id=header.destination_cid,
                retry_source_connection_id=source_cid,
                now=now,
            )
            retry_packet = encode_quic_retry(
                version=header.version,
                source_cid=source_cid,
                destination_cid=header.source_cid,
                original_destination_cid=header.destination_cid,
                retry_token=token,
            )
            self.send([(retry_packet, addr)])
            return None
        try:
            original_cid = self.retry.validate_token(
                address=addr, destination_cid=header.destination_cid, token=header.token, now=now
            )
        except ValueError:
            # RFC 9000 §8.1.3: close with INVALID_TOKEN.
            self.send([(_encode_refusal(header, QuicErrorCode.INVALID_TOKEN), addr)])
            return None
        return self._accept(header, addr, original_cid, header.destination_cid)

    def _accept(
        self,
        header: QuicHeader,
        addr: NetworkAddress,
        original_cid: bytes,
        retry_source_cid: bytes | None,
    ) -> _Connection | None:
        assert self.configuration is not None
        host = str(addr[0])
        if len(self.connections) >= self.limits.max_connections:
            reason = "server full"
        elif self.per_address[host] >= self.limits.max_connections_per_address:
            # VALIDATION.md SRV-Q-01: connections per source address.
            reason = "too many connections from one address"
        else:
            reason = ""
        if reason or self.nursery is None:
            _log_event(logging.WARNING, "quic_connection_refused", reason=reason, remote=host)
            if header.version is not None:
                self.send([(_encode_refusal(header, QuicErrorCode.CONNECTION_REFUSED), addr)])
            return None
        quic = QuicConnection(
            configuration=self.configuration,
            original_destination_connection_id=original_cid,
            retry_source_connection_id=retry_source_cid,
        )
        conn = _Connection(self, quic, addr, is_client=False)
        self.per_address[host] += 1
        self.connections.add(conn)
        conn.add_route(header.destination_cid)
        conn.add_route(quic.host_cid)
        self.nursery.start_soon(conn.run)
        _log_event(logging.INFO, "quic_connection_accepted", conn=conn.info.id, remote=host)
        return conn

    def forget(self, conn: _Connection) -> None:
        """Drop every route and count held by a terminated connection."""
        for cid in conn.cids:
            if self.routes.get(cid) is conn:
                del self.routes[cid]
        conn.cids.clear()
        if conn in self.connections:
            self.connections.discard(conn)
            host = str(conn.remote_address[0])
            self.per_address[host] -= 1
            if self.per_address[host] <= 0:
                del self.per_address[host]


class _Connection:
    """Drives one ``QuicConnection``: events, streams, timer, limits."""

    def __init__(
        self,
        endpoint: _Endpoint,
        quic: QuicConnection,
        remote_address: NetworkAddress,
        *,
        is_client: bool,
        pinned_certificate: bytes | None = None,
        alpn: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.quic = quic
        self.limits = endpoint.limits
        self.remote_address = remote_address
        self.is_client = is_client
        self.pinned_certificate = pinned_certificate
        protocols = quic.configuration.alpn_protocols
        self.alpn = alpn if alpn is not None else (protocols[0] if protocols else None)
        self.info = ConnectionInfo(
            id=next(_connection_ids),
            remote_address=(str(remote_address[0]), int(remote_address[1])),
        )
        self.info._driver = self
        self.cids: set[bytes] = set()
        self.streams: dict[int, QuicStream] = {}
        self.buffered = 0
        self.peer_open = 0
        self.handlers_running = 0
        self.refused_streams = 0
        self.closing = False
        self.close_error: TransportError | None = None
        self.handshake_complete = trio.Event()
        self.terminated = trio.Event()
        self.created_at = trio.current_time()
        self.last_activity = self.created_at
        self._last_ping = self.created_at
        self._watchdog_at = math.inf
        """When the watchdog next wakes by itself; it is woken earlier only if needed."""
        self._timer_at: float | None = None
        self._timer_scope: trio.CancelScope | None = None
        """The scope the timer task sleeps in, while it sleeps (its deadline is the timer)."""
        self._timer_stuck_at: float | None = None
        """A deadline ``handle_timer`` left in place; the timer task retries it a granule
        later, so :meth:`transmit` must not move the deadline back onto it."""
        self._transmit_pending = False
        self.rx_unacked = 0
        """Bytes received since we last sent an ACK (or since the ACK timer fired)."""
        self._timer_lot = trio.lowlevel.ParkingLot()
        self._state_lot = trio.lowlevel.ParkingLot()
        self._send_lot = trio.lowlevel.ParkingLot()
        self._nursery: trio.Nursery | None = None
        self._pending_handlers: list[QuicStream] = []
        # Indices (stream_id >> 2) of finished peer-initiated bidirectional streams, so late
        # frames for a finished stream are ignored rather than taken as a new stream. Ranges
        # stay few for honest peers; a peer that fragments it is disconnected.
        self._peer_finished = RangeSet()
        self.client_slots: trio.Semaphore | None = (
            trio.Semaphore(self.limits.max_streams_per_connection) if is_client else None
        )

    def __repr__(self) -> str:
        return f"<_Connection {self.info.id}>"

    def stream_opened(self) -> None:
        """A stream opened: wake the watchdog only if its keep-alive PING is due earlier than
        the deadline it sleeps until (waking it for every stream costs a task switch and a
        cancel scope per request)."""
        if self._watchdog_at > self._last_ping + self.limits.idle_timeout / 3:
            self._state_lot.unpark_all()

    # -- routing --------------------------------------------------------------------------

    def add_route(self, cid: bytes) -> None:
        self.cids.add(cid)
        if not self.is_client:
            self.endpoint.routes[cid] = self

    def remove_route(self, cid: bytes) -> None:
        self.cids.discard(cid)
        if self.endpoint.routes.get(cid) is self:
            del self.endpoint.routes[cid]

    # -- input ----------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: NetworkAddress) -> None:
        """Feed one datagram to aioquic and handle every event it produced."""
        if self.terminated.is_set():
            return
        try:
            self.quic.receive_datagram(data, addr, now=trio.current_time())
        except Exception:
            # aioquic is expected to swallow bad packets; if it ever raises, lose only this
            # connection, never the endpoint.
            _log.error(
                "quic_internal_error",
                exc_info=True,
                extra={"fields": {"conn": self.info.id}},
            )
            self._terminate(TransportError("internal transport error"))
            return
        self.drain_events()

    def drain_events(self) -> None:
        """Handle every pending aioquic event."""
        event = self.quic.next_event()
        while event is not None:
            self._handle_event(event)
            event = self.quic.next_event()

    def _handle_event(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived):
            self._on_stream_data(event)
        elif isinstance(event, events.StreamReset):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._on_peer_reset(stream, event.error_code)
            else:
                self._abandon_unknown_stream(event.stream_id, event.error_code)
        elif isinstance(event, events.StopSendingReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None:
                self._abandon_unknown_stream(event.stream_id, event.error_code)
            elif not stream._send_done:
                # aioquic already reset our sending side (RFC 9000 §3.5).
                stream._send_error = StreamResetError(
                    "peer asked to stop sending", event.error_code
                )
                self._mark_send_done(stream)
                stream._wake()
                self._send_lot.unpark_all()
                if stream._handler_scope is not None:
                    stream._handler_scope.cancel()
        elif isinstance(event, events.ConnectionIdIssued):
            self.add_route(event.connection_id)
        elif isinstance(event, events.ConnectionIdRetired):
            self.remove_route(event.connection_id)
        elif isinstance(event, events.HandshakeCompleted):
            self._on_handshake_completed(event)
        elif isinstance(event, events.ConnectionTerminated):
            self._terminate(
                ConnectionClosedError(
                    f"connection closed (error code {event.error_code})", event.error_code
                )
            )

    def _on_handshake_completed(self, event: events.HandshakeCompleted) -> None:
        # VALIDATION.md SRV-Q-06: the ALPN is pinned; a peer that negotiated none is refused.
        if event.alpn_protocol != self.alpn:
            _log_event(logging.WARNING, "quic_alpn_mismatch", conn=self.info.id)
            self.close(QuicErrorCode.CONNECTION_REFUSED, "ALPN mismatch", transport=True)
            self.close_error = TransportError("peer did not negotiate our ALPN protocol")
            return
        if self.pinned_certificate is not None:
            peer = _peer_certificate_der(self.quic)
            if peer is None or not certificates_equal(peer, self.pinned_certificate):
                _log_event(logging.WARNING, "quic_certificate_pin_mismatch", conn=self.info.id)
                self.close(QuicErrorCode.CONNECTION_REFUSED, "certificate", transport=True)
                self.close_error = TransportError(
                    "server certificate does not match the pinned certificate"
                )
                return
        self.info.alpn_protocol = event.alpn_protocol
        _set_ack_delay(self.quic, _ACK_DELAY)
        self.handshake_complete.set()

    def _on_stream_data(self, event: events.StreamDataReceived) -> None:
        stream_id = event.stream_id
        stream = self.streams.get(stream_id)
        if stream is None:
            stream = self._new_peer_stream(stream_id)
            if stream is None:
                return
        if event.end_stream:
            stream._peer_ended = True
        if stream._recv_done:
            # The application stopped reading (or a limit did): late data is dropped.
            if event.end_stream:
                self._maybe_close_stream(stream)
            return
        if event.data:
            size = len(event.data)
            if len(stream._recv_buffer) + size > self.limits.max_stream_buffer:
                self._limit_reset(stream, ErrorCode.FRAME_TOO_LARGE, "stream buffer limit")
                return
            if self.buffered + size > self.limits.max_connection_buffer:
                self._limit_reset(stream, ErrorCode.QUOTA_EXCEEDED, "connection buffer limit")
                return
            stream._recv_buffer += event.data
            self.buffered += size
        if event.end_stream:
            stream._recv_eof = True
            self._mark_recv_done(stream)
        stream._wake()

    def _new_peer_stream(self, stream_id: int) -> QuicStream | None:
        locally_initiated = (stream_id & 1) == (0 if self.is_client else 1)
        if locally_initiated:
            # A stream we opened and already finished: late or duplicate data.
            return None
        if stream_id & 2:
            # Peer-initiated unidirectional streams are not part of our protocol.
            self._try_stop(stream_id, ErrorCode.UNSUPPORTED)
            return None
        if (stream_id >> 2) in self._peer_finished:
            return None
        if self.is_client or self.closing or self.endpoint.handler is None:
            self._refuse_stream(stream_id, ErrorCode.UNSUPPORTED)
            return None
        if self.peer_open >= self.limits.max_streams_per_connection:
            # VALIDATION.md SRV-Q-01: our own cap on concurrently open request streams.
            self.refused_streams += 1
            _log_event(
                logging.WARNING if self.refused_streams == 1 else logging.DEBUG,
                "quic_stream_refused",
                conn=self.info.id,
                reason="too many open streams",
                refused=self.refused_streams,
            )
            self._refuse_stream(stream_id, ErrorCode.RATE_LIMITED)
            return None
        stream = QuicStream(self, stream_id, local=False)
        self.streams[stream_id] = stream
        self.peer_open += 1
        self.last_activity = trio.current_time()
        self.stream_opened()
        self._start_handler(stream)
        return stream

    def _abandon_unknown_stream(self, stream_id: int, code: int) -> None:
        """The peer reset or stopped a stream before any of its data reached us.

        Under loss its STOP_SENDING/RESET_STREAM can overtake the request itself; the peer has
        given up on the stream, so it is finished at once (no handler, not counted) and its
        late data is ignored.
        """
        locally_initiated = (stream_id & 1) == (0 if self.is_client else 1)
        if locally_initiated or stream_id & 2 or (stream_id >> 2) in self._peer_finished:
            return
        self._refuse_stream(stream_id, code)

    def _refuse_stream(self, stream_id: int, code: int) -> None:
        self._try_reset(stream_id, code)
        self._try_stop(stream_id, code)
        self._finish_peer_index(stream_id >> 2)

    def _finish_peer_index(self, index: int) -> None:
        self._peer_finished.add(index)
        if len(self._peer_finished) > _MAX_FINISHED_RANGES and not self.closing:
            _log_event(
                logging.WARNING, "quic_connection_closing", conn=self.info.id, reason="stream ids"
            )
            self.close(ErrorCode.RATE_LIMITED, "stream ID fragmentation")

    def _try_reset(self, stream_id: int, code: int) -> None:
        try:
            self.quic.reset_stream(stream_id, code)
        except (ValueError, RuntimeError):
            pass

    def _try_stop(self, stream_id: int, code: int) -> None:
        try:
            self.quic.stop_stream(stream_id, code)
        except (ValueError, RuntimeError):
            pass

    def _on_peer_reset(self, stream: QuicStream, code: int) -> None:
        stream._peer_ended = True
        if stream._recv_done:
            self._maybe_close_stream(stream)
            return
        stream._recv_error = StreamResetError("stream reset by peer", code)
        self._discard_buffer(stream)
        self._mark_recv_done(stream)
        stream._wake()

    def _limit_reset(self, stream: QuicStream, code: ErrorCode, what: str) -> None:
        _log_event(
            logging.WARNING,
            "quic_stream_limit",
            conn=self.info.id,
            stream=stream.stream_id,
            reason=what,
        )
        self.reset_stream(stream, code, transmit=False)

    # -- stream state ---------------------------------------------------------------------

    def _discard_buffer(self, stream: QuicStream) -> None:
        self.buffered -= len(stream._recv_buffer)
        stream._recv_buffer.clear()

    def _mark_recv_done(self, stream: QuicStream) -> None:
        if not stream._recv_done:
            stream._recv_done = True
            self._maybe_close_stream(stream)

    def _mark_send_done(self, stream: QuicStream) -> None:
        if not stream._send_done:
            stream._send_done = True
            self._maybe_close_stream(stream)

    def _maybe_close_stream(self, stream: QuicStream) -> None:
        if not (stream._recv_done and stream._send_done) or stream._closed:
            return
        if stream._local and not stream._peer_ended and not self.terminated.is_set():
            # We stopped reading our own stream early: keep its slot until the peer's FIN or
            # RESET_STREAM shows the peer has finished it too, so a new stream never pushes
            # the node past its cap while our reset is still in flight.
            return
        stream._closed = True
        self.streams.pop(stream.stream_id, None)
        self.last_activity = trio.current_time()
        if stream._local:
            if self.client_slots is not None:
                self.client_slots.release()
        else:
            self.peer_open -= 1
            self._finish_peer_index(stream.stream_id >> 2)
        # A closed stream only moves the watchdog's deadlines later (the idle deadline counts
        # from now), so it is not woken: it re-evaluates when its current deadline passes.

    def send_stream_data(self, stream: QuicStream, data: bytes, *, end_stream: bool) -> None:
        try:
            self.quic.send_stream_data(stream.stream_id, data, end_stream=end_stream)
        except (ValueError, RuntimeError) as exc:
            # aioquic already reset or finished this stream's sending side.
            stream._send_error = StreamResetError("the stream can no longer send", 0)
            self._mark_send_done(stream)
            raise stream._send_error from exc
        if end_stream:
            stream._send_eof = True
            self._mark_send_done(stream)
        self.last_activity = trio.current_time()
        self.transmit_soon()

    def reset_stream(self, stream: QuicStream, code: int, *, transmit: bool = True) -> None:
        error = StreamResetError("stream reset locally", code)
        if not stream._send_done:
            self._try_reset(stream.stream_id, code)
            stream._send_error = error
            self._mark_send_done(stream)
        if not stream._recv_done:
            self._try_stop(stream.stream_id, code)
            stream._recv_error = error
            self._mark_recv_done(stream)
        self._discard_buffer(stream)
        stream._wake()
        self._send_lot.unpark_all()
        if transmit:
            self.transmit_soon()

    def finish_stream(self, stream: QuicStream) -> None:
        """Release a stream the application is done with.

        Unsent EOF is sent if nothing is being written; unread input is stopped.
        """
        if self.terminated.is_set():
            self._discard_buffer(stream)
            return
        queued = False
        if not stream._send_done:
            queued = True
            if stream._writing:
                self._try_reset(stream.stream_id, ErrorCode.INTERNAL)
                stream._send_error = StreamResetError("stream closed", ErrorCode.INTERNAL)
                self._mark_send_done(stream)
            else:
                try:
                    self.quic.send_stream_data(stream.stream_id, b"", end_stream=True)
                    stream._send_eof = True
                except (ValueError, RuntimeError):
                    pass
                self._mark_send_done(stream)
        if not stream._recv_done:
            queued = True
            self._try_stop(stream.stream_id, ErrorCode.NO_ERROR)
            stream._recv_error = StreamResetError("stream closed", ErrorCode.NO_ERROR)
            self._mark_recv_done(stream)
        self._discard_buffer(stream)
        stream._wake()
        if queued:
            # Nothing new to send for a stream already finished both ways (the common case):
            # a pending ACK then waits for the next request or its timer, not a packet now.
            self.transmit_soon()

    async def wait_send_window(self, stream: QuicStream) -> None:
        """Wait while too much of this stream's sent data is unacknowledged."""
        while (
            stream._send_error is None
            and not self.terminated.is_set()
            and _unacknowledged_bytes(self.quic, stream.stream_id) > _SEND_HIGH_WATER
        ):
            await self._send_lot.park()

    def wake_writers(self) -> None:
        if self._send_lot:
            self._send_lot.unpark_all()

    # -- handlers -------------------------------------------------------------------------

    def _start_handler(self, stream: QuicStream) -> None:
        self.handlers_running += 1
        if self._nursery is None:
            self._pending_handlers.append(stream)
        else:
            self._nursery.start_soon(self._run_handler, stream)

    async def _run_handler(self, stream: QuicStream) -> None:
        handler = self.endpoint.handler
        assert handler is not None
        try:
            with trio.CancelScope() as scope:
                stream._handler_scope = scope
                await handler(stream)
            if scope.cancelled_caught:
                # The peer gave up on the stream (STOP_SENDING): nobody waits for the answer,
                # so a handler parked in a long poll does not hold its slot until it times out.
                _log_event(
                    logging.DEBUG,
                    "quic_handler_abandoned",
                    conn=self.info.id,
                    stream=stream.stream_id,
                )
        except TransportError as exc:
            # The stream was reset or the connection went away under the handler: expected.
            _log_event(
                logging.DEBUG,
                "quic_handler_stopped",
                conn=self.info.id,
                stream=stream.stream_id,
                error=type(exc).__name__,
            )
            if not self.terminated.is_set():
                self.reset_stream(stream, ErrorCode.INTERNAL)
        except Exception as exc:
            _log.error(
                "quic_handler_failed",
                exc_info=True,
                extra={
                    "fields": {
                        "conn": self.info.id,
                        "stream": stream.stream_id,
                        "error": type(exc).__name__,
                    }
                },
            )
            if not self.terminated.is_set():
                self.reset_stream(stream, ErrorCode.INTERNAL)
        else:
            self.finish_stream(stream)
        finally:
            stream._handler_scope = None
            # Only moves deadlines later (idle), so the watchdog need not wake.
            self.handlers_running -= 1
            self.last_activity = trio.current_time()

    # -- output and timer -----------------------------------------------------------------

    def after_receive(self) -> None:
        """After a batch of datagrams for this connection: send what must go out now.

        Once the handshake is done, what a 1-RTT packet makes aioquic want to send is an ACK
        (due by its ACK timer, or at once after two full-size datagrams' worth of bytes: RFC
        9000 §13.2.2), frames that ride along with the next packet anyway (flow-control
        credit, new connection IDs), or a CONNECTION_CLOSE. So only those last cases build
        packets here; otherwise the timer is re-armed and the answer the application is about
        to write carries the ACK. (Building nothing still costs aioquic a packet setup; most
        requests were paying it once more than needed.)
        """
        force_ack = self.rx_unacked >= _ACK_AFTER_BYTES
        if (
            force_ack
            or self.closing
            or not self.handshake_complete.is_set()
            or _close_pending(self.quic)
        ):
            self.transmit(with_ack=force_ack)
        elif not self.terminated.is_set():
            self._arm_timer()
        self.wake_writers()

    def transmit(self, *, with_ack: bool = False) -> None:
        """Send what aioquic has to send now and re-arm the timer task if needed.

        ``with_ack``: the application queued data, so a pending ACK rides along in the same
        packet instead of following in a packet of its own a moment later.
        """
        self._transmit_pending = False
        if self.terminated.is_set():
            return
        now = trio.current_time()
        if with_ack:
            _ack_with_data(self.quic, now)
            self.rx_unacked = 0
        self.endpoint.send(self.quic.datagrams_to_send(now=now))
        self._arm_timer()

    def _arm_timer(self) -> None:
        # Move the timer task's deadline only if the timer moved earlier (in place, without
        # waking the task); a later timer is picked up when the task wakes.
        timer_at = self.quic.get_timer()
        if timer_at is not None and (self._timer_at is None or timer_at < self._timer_at):
            scope = self._timer_scope
            if scope is not None and timer_at != self._timer_stuck_at:
                self._timer_at = scope.deadline = timer_at
            else:
                self._timer_lot.unpark_all()

    def transmit_soon(self) -> None:
        """Ask the timer task to transmit, so writes made in one scheduling round coalesce."""
        if not self._transmit_pending:
            self._transmit_pending = True
            self._timer_lot.unpark_all()

    async def _timer_loop(self) -> None:
        """The connection's one timer task: ``handle_timer`` on Trio's clock, plus transmits
        requested by :meth:`transmit_soon`."""
        last_fired: float | None = None
        while not self.terminated.is_set():
            if self._transmit_pending:
                self.transmit(with_ack=True)
            timer_at = self.quic.get_timer()
            self._timer_stuck_at = None
            if timer_at is not None and timer_at == last_fired:
                # handle_timer left the same deadline in place (aioquic's loss timer can land
                # exactly on `now` through float rounding): retry a granule later rather than
                # spin, which on a mock clock would never end.
                self._timer_stuck_at = timer_at
                timer_at = max(timer_at, trio.current_time()) + _TIMER_GRANULARITY
            self._timer_at = timer_at
            with trio.move_on_at(math.inf if timer_at is None else timer_at) as scope:
                self._timer_scope = scope
                try:
                    await self._timer_lot.park()
                finally:
                    self._timer_scope = None
            if not scope.cancelled_caught or self.terminated.is_set():
                continue
            self._timer_at = None
            last_fired = self.quic.get_timer()
            now = trio.current_time()
            if last_fired is None or last_fired > now:
                # The deadline moved later while we slept (e.g. a pending ACK left with data):
                # nothing is due, so just re-arm.
                last_fired = None
                continue
            self.rx_unacked = 0
            self.quic.handle_timer(now=now)
            self.drain_events()
            self.transmit()
            self.wake_writers()

    # -- lifecycle ------------------------------------------------------------------------

    def close(
        self, error_code: int = ErrorCode.NO_ERROR, reason: str = "", *, transport: bool = False
    ) -> None:
        """Start closing: send CONNECTION_CLOSE and fail every stream."""
        if self.closing:
            return
        self.closing = True
        self.quic.close(
            error_code=error_code,
            frame_type=0 if transport else None,
            reason_phrase=reason,
        )
        self.transmit()
        self._fail_streams(
            ConnectionClosedError(f"connection closed locally ({reason or 'no reason'})", error_code)
        )
        self._state_lot.unpark_all()

    def _fail_streams(self, error: TransportError) -> None:
        for stream in list(self.streams.values()):
            if not stream._recv_done:
                stream._recv_error = error
            if not stream._send_done:
                stream._send_error = error
            self._discard_buffer(stream)
            stream._recv_done = stream._send_done = stream._peer_ended = True
            self._maybe_close_stream(stream)
            stream._wake()
        self._send_lot.unpark_all()

    def terminate_now(self) -> None:
        """Terminate without a closing period (the peer is known to be unreachable)."""
        self._terminate(self.close_error or TransportError("connection closed"))

    def _terminate(self, error: TransportError) -> None:
        if self.terminated.is_set():
            return
        self.closing = True
        if self.close_error is None:
            self.close_error = error
        self._fail_streams(self.close_error)
        self.terminated.set()
        self.endpoint.forget(self)
        self._timer_lot.unpark_all()
        self._state_lot.unpark_all()
        _log_event(logging.INFO, "quic_connection_terminated", conn=self.info.id)

    async def run(self) -> None:
        """Run timers, handlers and the idle/age watchdog until the connection terminates."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._timer_loop)
                for stream in self._pending_handlers:
                    nursery.start_soon(self._run_handler, stream)
                self._pending_handlers.clear()
                await self._watchdog()
                nursery.cancel_scope.cancel()
        finally:
            if not self.terminated.is_set():
                # Cancelled: the server is shutting down (peers may retry elsewhere or later),
                # or the client is leaving. close() only queues and sends, it never blocks.
                if self.is_client:
                    self.close(ErrorCode.NO_ERROR, "client closed")
                else:
                    self.close(ErrorCode.UNAVAILABLE, "server shutting down")
                self._terminate(self.close_error or TransportError("connection closed"))

    async def _watchdog(self) -> None:
        age_deadline = self.created_at + self.limits.max_connection_age
        handshake_deadline = self.created_at + self.limits.handshake_timeout
        while not self.terminated.is_set():
            if self.closing:
                # Wait for aioquic's closing period (about three PTOs) to end, bounded.
                with trio.move_on_after(1.0):
                    await self.terminated.wait()
                self._terminate(self.close_error or TransportError("connection closed"))
                return
            now = trio.current_time()
            deadline = math.inf
            if not self.handshake_complete.is_set():
                if now >= handshake_deadline:
                    _log_event(
                        logging.INFO, "quic_connection_closing", conn=self.info.id, reason="handshake"
                    )
                    self.close(QuicErrorCode.CONNECTION_REFUSED, "handshake timeout", transport=True)
                    self.close_error = TransportError("handshake timed out")
                    continue
                deadline = min(deadline, handshake_deadline)
            if not self.is_client:
                if now >= age_deadline:
                    _log_event(
                        logging.INFO, "quic_connection_closing", conn=self.info.id, reason="age"
                    )
                    self.close(ErrorCode.NO_ERROR, "max connection age")
                    continue
                deadline = min(deadline, age_deadline)
            if self.streams and self.handshake_complete.is_set():
                # Keep the QUIC idle timer of both ends fresh while a request is open (a long
                # poll sends nothing for a while); a vanished peer never acknowledges these, so
                # QUIC's idle timeout still detects it.
                ping_at = self._last_ping + self.limits.idle_timeout / 3
                if now >= ping_at:
                    self._last_ping = now
                    self.quic.send_ping(next(_ping_ids))
                    self.transmit_soon()
                    continue
                deadline = min(deadline, ping_at)
            if not self.is_client and not self.streams and self.handlers_running == 0:
                # VALIDATION.md SRV-Q-03: idle between requests, at the application layer.
                idle_deadline = self.last_activity + self.limits.idle_timeout
                if now >= idle_deadline:
                    _log_event(
                        logging.INFO, "quic_connection_closing", conn=self.info.id, reason="idle"
                    )
                    self.close(ErrorCode.NO_ERROR, "idle timeout")
                    continue
                deadline = min(deadline, idle_deadline)
            self._watchdog_at = deadline
            with trio.move_on_at(deadline):
                await self._state_lot.park()
            self._watchdog_at = -math.inf


def _encode_refusal(header: QuicHeader, error_code: QuicErrorCode) -> bytes:
    """An Initial packet answering a client's Initial with CONNECTION_CLOSE(error_code).

    Initial keys derive from the client's chosen destination CID (RFC 9001 §5.2), so no
    connection state is kept; the reply is smaller than the 1200-byte Initial it answers.
    """
    assert header.version is not None
    crypto = CryptoPair()
    crypto.setup_initial(cid=header.destination_cid, is_client=False, version=header.version)
    builder = QuicPacketBuilder(
        host_cid=header.destination_cid,
        peer_cid=header.source_cid,
        version=header.version,
        is_client=False,
        max_datagram_size=SMALLEST_MAX_DATAGRAM_SIZE,
    )
    builder.start_packet(QuicPacketType.INITIAL, crypto)
    frame = builder.start_frame(QuicFrameType.TRANSPORT_CLOSE, capacity=32)
    frame.push_uint_var(error_code)
    frame.push_uint_var(QuicFrameType.PADDING)  # the frame type that triggered the close
    frame.push_uint_var(0)  # no reason phrase
    datagrams, _ = builder.flush()
    return bytes(datagrams[0])


def _unacknowledged_bytes(quic: QuicConnection, stream_id: int) -> int:
    """Bytes written to a stream and not yet acknowledged by the peer.

    aioquic has no public accessor for a stream's send buffer, so this is the one place that
    reads its internals; if they change shape, backpressure degrades to none rather than break.
    """
    streams = getattr(quic, "_streams", None)
    stream = streams.get(stream_id) if isinstance(streams, dict) else None
    if stream is None:
        return 0
    sender = stream.sender
    try:
        return int(sender._buffer_stop - sender._buffer_start)
    except AttributeError:
        return 0


def _ack_with_data(quic: QuicConnection, now: float) -> None:
    """Make a pending 1-RTT ACK due now, so it is written into the packet about to carry
    application data (RFC 9000 §13.2.1 lets an ACK go out earlier than ``max_ack_delay``).

    aioquic only writes an ACK once its delayed-ACK time has passed, which costs every
    request/response exchange an extra ACK-only packet each way. No public API sets it, so this
    reads its packet-space internals; if they change shape it does nothing.
    """
    spaces = getattr(quic, "_spaces", None)
    space = spaces.get(tls.Epoch.ONE_RTT) if isinstance(spaces, dict) else None
    ack_at = getattr(space, "ack_at", None)
    if isinstance(ack_at, float) and ack_at > now:
        space.ack_at = now  # type: ignore[union-attr]


def _close_pending(quic: QuicConnection) -> bool:
    """Whether aioquic decided to close and has not sent its CONNECTION_CLOSE yet (no public
    accessor; if the internal attribute is gone this answers True, so we always transmit)."""
    pending = getattr(quic, "_close_pending", True)
    return pending if isinstance(pending, bool) else True


def _set_ack_delay(quic: QuicConnection, delay: float) -> None:
    """Set how long aioquic delays an ACK (see :data:`_ACK_DELAY`); aioquic has no public
    setting, so this writes its internal attribute, and does nothing if that is gone."""
    if isinstance(getattr(quic, "_ack_delay", None), float):
        quic._ack_delay = delay


def _peer_certificate_der(quic: QuicConnection) -> bytes | None:
    """The DER certificate the peer presented, or ``None`` if unavailable.

    aioquic exposes no public accessor; ``None`` makes the pin check fail closed.
    """
    certificate = getattr(quic.tls, "_peer_certificate", None)
    if certificate is None:
        return None
    try:
        return bytes(certificate.public_bytes(serialization.Encoding.DER))
    except Exception:
        return None


def _make_socket(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_SIZE)
            except OSError:
                pass
    except BaseException:
        sock.close()
        raise
    return sock


async def _resolve(host: str, port: int, *, passive: bool) -> tuple[int, NetworkAddress]:
    try:
        infos = await trio.socket.getaddrinfo(
            host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE if passive else 0
        )
    except OSError as exc:
        raise TransportError(f"cannot resolve {host!r}") from exc
    if not infos:
        raise TransportError(f"cannot resolve {host!r}")
    family, _, _, _, sockaddr = infos[0]
    return int(family), sockaddr


async def serve_quic(
    host: str,
    port: int,
    *,
    certificate: bytes,
    private_key: bytes,
    alpn: str,
    handler: Callable[[QuicStream], Awaitable[None]],
    limits: TransportLimits | None = None,
    retry: bool = False,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve QUIC on ``host:port`` and run ``handler`` for every peer-opened stream.

    Each peer-opened bidirectional stream gets its own handler task in its connection's
    nursery. When the handler returns, the stream is finished (EOF sent if the handler did
    not, unread input stopped); if it raises, the error is logged and the stream is reset with
    ``ErrorCode.INTERNAL``; if the peer sends STOP_SENDING, the handler is cancelled (its
    answer has nowhere to go). Handlers never bring the server down.

    Args:
        host: address to bind (``"0.0.0.0"``, ``"127.0.0.1"``, ``"::"``...).
        port: UDP port; 0 picks a free one.
        certificate: the node certificate, DER.
        private_key: its private key, DER (PKCS#8, EC P-256 or Ed25519).
        alpn: the only ALPN protocol accepted.
        handler: ``async def handler(stream: QuicStream) -> None``.
        limits: transport limits (defaults: :class:`TransportLimits`).
        retry: validate client addresses with a Retry round trip before keeping any state
            for them (RFC 9000 §8.1.2); costs one round trip per connection.
        task_status: receives ``(host, bound_port)`` once the socket is bound.

    Cancellation:
        Cancelling the surrounding scope closes every connection and the socket.

    Resource handling:
        One UDP socket, one task per connection plus one per open stream.

    Raises:
        TransportError: the address cannot be resolved or bound.
        ConfigError: the certificate or key is malformed.
    """
    limits = limits or TransportLimits()
    configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=[alpn],
        idle_timeout=limits.idle_timeout,
        certificate=parse_certificate(certificate),
        private_key=parse_private_key(private_key),
    )
    family, sockaddr = await _resolve(host, port, passive=True)
    sock = _make_socket(family)
    with sock:
        try:
            sock.bind(sockaddr)
        except OSError as exc:
            raise TransportError(f"cannot bind UDP {host}:{port}: {exc.strerror}") from exc
        endpoint = _Endpoint(
            sock, configuration=configuration, limits=limits, handler=handler, retry=retry
        )
        bound_port = int(sock.getsockname()[1])
        _log_event(logging.INFO, "quic_listening", port=bound_port)
        try:
            async with trio.open_nursery() as nursery:
                endpoint.nursery = nursery
                nursery.start_soon(endpoint.sender_loop)
                nursery.start_soon(endpoint.receiver_loop)
                task_status.started((host, bound_port))
        finally:
            for conn in list(endpoint.connections):
                conn.close(ErrorCode.UNAVAILABLE, "server shutting down")


class QuicClient:
    """A client's QUIC connection to a node; streams are opened with :meth:`open_stream`."""

    def __init__(self, connection: _Connection) -> None:
        self._conn = connection
        self.info: ConnectionInfo = connection.info

    async def open_stream(self) -> QuicStream:
        """Open a new bidirectional stream.

        Waits while ``max_streams_per_connection`` of our streams are still open, so the node's
        cap is never exceeded. A stream stays open until both sides finished it (or it was
        reset); use it as an ``async with`` block, or read it to EOF after ``send_all(...,
        end_stream=True)``, so the slot is released.

        Raises:
            TransportError: the connection is closed.
        """
        conn = self._conn
        if conn.closing:
            raise conn.close_error or TransportError("connection closed")
        assert conn.client_slots is not None
        try:
            # A free slot costs no scheduling round trip (the write that follows yields).
            await trio.lowlevel.checkpoint_if_cancelled()
            conn.client_slots.acquire_nowait()
        except trio.WouldBlock:
            await conn.client_slots.acquire()
        if conn.closing:
            conn.client_slots.release()
            raise conn.close_error or TransportError("connection closed")
        stream_id = conn.quic.get_next_available_stream_id()
        stream = QuicStream(conn, stream_id, local=True)
        conn.streams[stream_id] = stream
        conn.last_activity = trio.current_time()
        conn.stream_opened()
        # An empty write creates the stream in aioquic so the next ID is allocated.
        conn.quic.send_stream_data(stream_id, b"")
        return stream

    @property
    def is_closed(self) -> bool:
        """Whether the connection is closing or closed (by either side, or a timeout)."""
        return self._conn.closing

    async def wait_closed(self) -> None:
        """Wait until the connection has terminated."""
        await self._conn.terminated.wait()

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close(ErrorCode.NO_ERROR, "client closed")
        await trio.lowlevel.checkpoint()


@asynccontextmanager
async def open_quic_connection(
    host: str,
    port: int,
    *,
    server_certificate: bytes,
    alpn: str,
    limits: TransportLimits | None = None,
) -> AsyncIterator[QuicClient]:
    """Connect to a node, trusting exactly ``server_certificate``, and yield a client.

    The handshake fails unless the server presents that very certificate (DER bytes compared
    after aioquic verified the chain against it as the only trust anchor) and negotiates
    ``alpn``.

    Raises:
        TransportError: resolution, handshake failure or timeout, pin or ALPN mismatch.
        ConfigError: ``server_certificate`` is not a DER certificate.
    """
    limits = limits or TransportLimits()
    pinned = parse_certificate(server_certificate)
    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=[alpn],
        idle_timeout=limits.idle_timeout,
        verify_mode=ssl.CERT_REQUIRED,
        cadata=pinned.public_bytes(serialization.Encoding.PEM),
    )
    family, sockaddr = await _resolve(host, port, passive=False)
    sock = _make_socket(family)
    body_error: BaseException | None = None
    handshake_error: TransportError | None = None
    with sock:
        try:
            # Connected, so ICMP errors are reported to us; bound to an ephemeral port.
            sock.connect(sockaddr)
        except OSError as exc:
            raise TransportError(f"cannot reach {host}:{port}: {exc.strerror}") from exc
        endpoint = _Endpoint(sock, configuration=None, limits=limits, handler=None)
        quic = QuicConnection(configuration=configuration)
        conn = _Connection(
            endpoint, quic, sockaddr, is_client=True, pinned_certificate=server_certificate
        )
        endpoint.client_connection = conn
        async with trio.open_nursery() as nursery:
            nursery.start_soon(endpoint.sender_loop)
            nursery.start_soon(endpoint.receiver_loop)
            nursery.start_soon(conn.run)
            quic.connect(sockaddr, now=trio.current_time())
            conn.transmit()
            with trio.move_on_after(limits.handshake_timeout):
                await _wait_first(conn.handshake_complete, conn.terminated)
            if not conn.handshake_complete.is_set():
                handshake_error = conn.close_error or TransportError("handshake timed out")
                conn.close(QuicErrorCode.CONNECTION_REFUSED, "handshake", transport=True)
                nursery.cancel_scope.cancel()
            else:
                try:
                    yield QuicClient(conn)
                except BaseException as exc:
                    # Re-raised below, outside the nursery, so callers see it unwrapped.
                    body_error = exc
                finally:
                    conn.close(ErrorCode.NO_ERROR, "client closed")
                    nursery.cancel_scope.cancel()
    if handshake_error is not None:
        raise handshake_error
    if body_error is not None:
        raise body_error


async def _wait_first(*waitables: trio.Event) -> None:
    async with trio.open_nursery() as nursery:
        for event in waitables:

            async def waiter(event: trio.Event = event) -> None:
                await event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(waiter)
