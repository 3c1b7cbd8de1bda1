"""The driver of one sans-I/O ``QuicConnection`` (aioquic's or qh3's, :mod:`.backends`): event
dispatch, stream state and limits, the timer task with ACK pacing, and the idle/handshake watchdog.

:class:`Connection` is what server and client connections share; ``server.ServerConnection``
adds handler tasks and the server's age and idle limits, ``client.ClientConnection`` the
client's stream slots. A connection reaches its endpoint only through callables passed in:
``send_datagrams`` to send, ``on_terminated`` to be forgotten.

Guarantees:

- time is Trio's clock (``trio.current_time()``) everywhere, so tests may use a mock clock;
- after a batch of received datagrams (:meth:`Connection.after_receive`) packets are built at
  once only when an ACK is due at once (after :data:`~.limits.ACK_AFTER_BYTES`), during the
  handshake, or to close; otherwise the timer is re-armed and the next packet carrying
  application data carries the pending ACK (RFC 9000 §13.2). Writes made in one scheduling
  round are sent together by the timer task (:meth:`Connection.transmit_soon`);
- a pending 1-RTT ACK waits at most :data:`~.limits.ACK_DELAY`;
- received bytes the application has not read are capped per stream and per connection
  (VALIDATION.md SRV-Q-02): the stream that passes a cap is reset;
- a writer waits while more than :data:`~.limits.SEND_HIGH_WATER` bytes of its stream are
  unacknowledged;
- the ALPN is pinned (SRV-Q-06), and a client's pinned certificate is checked on handshake
  completion;
- while a stream is open, a PING goes out every ``idle_timeout / 3`` so a long poll is not taken
  for an idle connection;
- a peer that fragments the set of finished stream IDs past
  :data:`~.limits.MAX_FINISHED_RANGES` ranges is disconnected.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from quicnproto.errors import (
    ConnectionClosedError,
    ErrorCode,
    StreamResetError,
    TransportError,
    TransportReason,
)
from quicnproto.log import log_event
from quicnproto.transport.quic.backends import QuicCore
from quicnproto.transport.quic.endpoint import Datagrams, NetworkAddress
from quicnproto.transport.quic.limits import (
    ACK_AFTER_BYTES,
    ACK_DELAY,
    TIMER_GRANULARITY,
    TransportLimits,
)
from quicnproto.transport.quic.stream import ConnectionInfo, QuicStream
from quicnproto.transport.quic.streams import StreamBook
from quicnproto.transport.tls import certificates_equal

if TYPE_CHECKING:
    from aioquic.quic import events
    from aioquic.quic.connection import QuicConnection

CONNECTION_REFUSED = 0x2
"""QUIC transport error CONNECTION_REFUSED (RFC 9000 §20.1)."""

_log = logging.getLogger("quicnproto.transport")

_connection_ids = itertools.count(1)
_ping_ids = itertools.count(1)


def closed_error() -> TransportError:
    """The error of a connection that ended without a more precise one."""
    return TransportError("connection closed", TransportReason.CONNECTION_CLOSED)


class Connection(StreamBook):
    """Drives one ``QuicConnection``: events, streams, timer, limits.

    Args:
        quic: the core's connection, configured for our side.
        core: the adapter of the core ``quic`` belongs to (:mod:`.backends`).
        remote_address: the peer's address.
        limits: the transport limits.
        send_datagrams: sends datagrams on the endpoint's socket, never blocking.
        on_terminated: called once when the connection has terminated.
        pinned_certificate: the DER certificate the peer must present (clients).
    """

    shutdown_close: tuple[int, str] = (ErrorCode.NO_ERROR, "closed")
    """The close sent when the connection's task is cancelled."""

    def __init__(
        self,
        quic: QuicConnection,
        remote_address: NetworkAddress,
        *,
        core: QuicCore,
        limits: TransportLimits,
        send_datagrams: Callable[[Datagrams], None],
        on_terminated: Callable[[Connection], None],
        pinned_certificate: bytes | None = None,
    ) -> None:
        self.quic = quic
        self.core = core
        kinds = core.events
        cls = type(self)
        # Unbound functions (called with self), so the table holds no reference cycle back to
        # this connection: reference counting alone frees it once it terminated.
        self._event_handlers: dict[type, Callable[[Any, Any], None]] = {
            kinds.StreamDataReceived: cls._on_stream_data,
            kinds.StreamReset: cls._on_stream_reset,
            kinds.StopSendingReceived: cls._on_stop_sending,
            kinds.ConnectionIdIssued: cls._on_cid_issued,
            kinds.ConnectionIdRetired: cls._on_cid_retired,
            kinds.HandshakeCompleted: cls._on_handshake_completed,
            kinds.ConnectionTerminated: cls._on_terminated_event,
        }
        """Event class -> handler; events of other classes are ignored."""
        self.limits = limits
        self.remote_address = remote_address
        self._send_datagrams = send_datagrams
        self._on_terminated = on_terminated
        self.pinned_certificate = pinned_certificate
        protocols = quic.configuration.alpn_protocols
        self.alpn = protocols[0] if protocols else None
        self._local_bit = 0 if quic.configuration.is_client else 1
        """Low bit of the IDs of streams we initiate (RFC 9000 §2.1)."""
        self.info = ConnectionInfo(
            id=next(_connection_ids),
            remote_address=(str(remote_address[0]), int(remote_address[1])),
            _is_closing=lambda: self.closing,
            _close=self.close,
        )
        self.cids: set[bytes] = set()
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
        StreamBook.__init__(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.info.id}>"

    def stream_opened(self) -> None:
        """A stream opened: wake the watchdog only if its keep-alive PING is due earlier than
        the deadline it sleeps until (waking it for every stream costs a task switch and a
        cancel scope per request)."""
        if self._watchdog_at > self._last_ping + self.limits.idle_timeout / 3:
            self._state_lot.unpark_all()

    # -- hooks for the server and client sides ----------------------------------------------

    def add_route(self, cid: bytes) -> None:
        """aioquic issued a connection ID for us."""
        self.cids.add(cid)

    def remove_route(self, cid: bytes) -> None:
        """aioquic retired one of our connection IDs."""
        self.cids.discard(cid)

    def _open_peer_stream(self, stream_id: int) -> QuicStream | None:
        """A new peer-initiated bidirectional stream: refused unless a subclass serves it."""
        self._refuse_stream(stream_id, ErrorCode.UNSUPPORTED)
        return None

    def _lifetime_deadline(self, now: float) -> float | None:
        """The next deadline of side-specific lifetime limits, or ``None`` after closing."""
        return math.inf

    def _on_nursery(self, nursery: trio.Nursery) -> None:
        """The connection's nursery opened."""

    def _handshake_timeout(self) -> float:
        """Seconds after creation by which the handshake must have completed."""
        return self.limits.handshake_timeout

    def _handshake_timed_out(self) -> None:
        """The handshake did not complete in time: close."""
        self._close_for("handshake", CONNECTION_REFUSED, "handshake timeout", transport=True)
        self.close_error = TransportError("handshake timed out", TransportReason.HANDSHAKE_TIMEOUT)

    # -- input ----------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: NetworkAddress) -> None:
        """Feed one datagram to the core and handle every event it produced."""
        self.rx_unacked += len(data)
        if self.terminated.is_set():
            return
        try:
            self.quic.receive_datagram(data, addr, now=trio.current_time())
        except Exception:
            # The core is expected to swallow bad packets; if it ever raises, lose only this
            # connection, never the endpoint.
            self._core_failed()
            return
        self.drain_events()

    def _core_failed(self) -> None:
        """The core raised where it should not (a bug in it): log it and terminate only this
        connection, never the endpoint."""
        log_event(
            logging.ERROR, "quic_internal_error", logger=_log, exc_info=True, conn=self.info.id
        )
        self._terminate(TransportError("internal transport error", TransportReason.INTERNAL))

    def drain_events(self) -> None:
        """Handle every pending event of the core."""
        event = self.quic.next_event()
        while event is not None:
            self._handle_event(event)
            event = self.quic.next_event()

    def _handle_event(self, event: object) -> None:
        handler = self._event_handlers.get(type(event))
        if handler is not None:
            handler(self, event)

    def _on_stream_reset(self, event: events.StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            self._on_peer_reset(stream, event.error_code)
        else:
            self._abandon_unknown_stream(event.stream_id, event.error_code)

    def _on_stop_sending(self, event: events.StopSendingReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            self._abandon_unknown_stream(event.stream_id, event.error_code)
        elif not stream._send_done:
            # The core already reset our sending side (RFC 9000 §3.5).
            stream._send_error = StreamResetError(
                "peer asked to stop sending", event.error_code, TransportReason.STOP_SENDING
            )
            self._mark_send_done(stream)
            stream._wake()
            self._send_lot.unpark_all()
            if stream._handler_scope is not None:
                stream._handler_scope.cancel()

    def _on_cid_issued(self, event: events.ConnectionIdIssued) -> None:
        self.add_route(event.connection_id)

    def _on_cid_retired(self, event: events.ConnectionIdRetired) -> None:
        self.remove_route(event.connection_id)

    def _on_terminated_event(self, event: events.ConnectionTerminated) -> None:
        self._terminate(
            ConnectionClosedError(
                f"connection closed (error code {event.error_code})", event.error_code
            )
        )

    def _on_handshake_completed(self, event: events.HandshakeCompleted) -> None:
        # VALIDATION.md SRV-Q-06: the ALPN is pinned; a peer that negotiated none is refused.
        if event.alpn_protocol != self.alpn:
            log_event(logging.WARNING, "quic_alpn_mismatch", logger=_log, conn=self.info.id)
            self.close(CONNECTION_REFUSED, "ALPN mismatch", transport=True)
            self.close_error = TransportError(
                "peer did not negotiate our ALPN protocol", TransportReason.ALPN_MISMATCH
            )
            return
        if self.pinned_certificate is not None:
            peer = self.core.peer_certificate_der(self.quic)
            if peer is None or not certificates_equal(peer, self.pinned_certificate):
                log_event(
                    logging.WARNING, "quic_certificate_pin_mismatch", logger=_log, conn=self.info.id
                )
                self.close(CONNECTION_REFUSED, "certificate", transport=True)
                self.close_error = TransportError(
                    "server certificate does not match the pinned certificate",
                    TransportReason.CERTIFICATE_MISMATCH,
                )
                return
        self.info.alpn_protocol = event.alpn_protocol
        self.core.set_ack_delay(self.quic, ACK_DELAY)
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

    def _is_new_peer_bidi(self, stream_id: int) -> bool:
        """Whether ``stream_id`` may be a new peer-initiated bidirectional stream."""
        return (
            (stream_id & 1) != self._local_bit
            and not stream_id & 2
            and (stream_id >> 2) not in self._peer_finished
        )

    def _new_peer_stream(self, stream_id: int) -> QuicStream | None:
        if (stream_id & 1) == self._local_bit:
            # A stream we opened and already finished: late or duplicate data.
            return None
        if stream_id & 2:
            # Peer-initiated unidirectional streams are not part of our protocol.
            self._try_stop(stream_id, ErrorCode.UNSUPPORTED)
            return None
        if (stream_id >> 2) in self._peer_finished:
            return None
        return self._open_peer_stream(stream_id)

    def _abandon_unknown_stream(self, stream_id: int, code: int) -> None:
        """The peer reset or stopped a stream before any of its data reached us.

        Under loss its STOP_SENDING/RESET_STREAM can overtake the request itself; the peer has
        given up on the stream, so it is finished at once (no handler, not counted) and its
        late data is ignored.
        """
        if self._is_new_peer_bidi(stream_id):
            self._refuse_stream(stream_id, code)

    # -- output and timer -----------------------------------------------------------------

    def after_receive(self) -> None:
        """After a batch of datagrams for this connection: send what must go out now.

        Once the handshake is done, what a 1-RTT packet makes aioquic want to send is an ACK
        (due by its ACK timer, or at once after two full-size datagrams' worth of bytes: RFC
        9000 §13.2.2), frames that ride along with the next packet anyway (flow-control
        credit, new connection IDs), or a CONNECTION_CLOSE. So only those last cases build
        packets here; otherwise the timer is re-armed and the answer the application is about
        to write carries the ACK.
        """
        force_ack = self.rx_unacked >= ACK_AFTER_BYTES
        if (
            force_ack
            or self.closing
            or not self.handshake_complete.is_set()
            or self.core.close_pending(self.quic)
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
            self.core.ack_with_data(self.quic, now)
            self.rx_unacked = 0
        try:
            datagrams = self.quic.datagrams_to_send(now=now)
        except Exception:
            self._core_failed()
            return
        self._send_datagrams(datagrams)
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
                timer_at = max(timer_at, trio.current_time()) + TIMER_GRANULARITY
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
            try:
                self.quic.handle_timer(now=now)
            except Exception:
                self._core_failed()
                return
            self.drain_events()
            self.transmit()
            self.wake_writers()

    # -- lifecycle ------------------------------------------------------------------------

    def close(
        self, error_code: int = ErrorCode.NO_ERROR, reason: str = "", *, transport: bool = False
    ) -> None:
        """Start closing: send CONNECTION_CLOSE and fail every stream (idempotent)."""
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
            ConnectionClosedError(
                f"connection closed locally ({reason or 'no reason'})", error_code
            )
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
        self._terminate(self.close_error or closed_error())

    def _terminate(self, error: TransportError) -> None:
        if self.terminated.is_set():
            return
        self.closing = True
        if self.close_error is None:
            self.close_error = error
        self._fail_streams(self.close_error)
        self.terminated.set()
        self._on_terminated(self)
        self._timer_lot.unpark_all()
        self._state_lot.unpark_all()
        log_event(logging.INFO, "quic_connection_terminated", logger=_log, conn=self.info.id)

    def discard(self) -> None:
        """Break the reference cycles of a terminated connection whose tasks have all ended
        (aioquic's ``QuicConnection`` is full of them), so memory comes back at once rather
        than at a full garbage collection, which an idle process may not run for a long time."""
        assert self.terminated.is_set()
        self.info.detach()
        self.streams.clear()
        self.core.discard(self.quic)

    async def run(self) -> None:
        """Run the timer task and the watchdog until the connection terminates; if cancelled,
        close with :attr:`shutdown_close` first (closing only queues and sends, never blocks)."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._timer_loop)
                self._on_nursery(nursery)
                await self._watchdog()
                nursery.cancel_scope.cancel()
        finally:
            if not self.terminated.is_set():
                self.close(*self.shutdown_close)
                self._terminate(self.close_error or closed_error())

    async def _watchdog(self) -> None:
        handshake_deadline = self.created_at + self._handshake_timeout()
        while not self.terminated.is_set():
            if self.closing:
                # Wait for aioquic's closing period (about three PTOs) to end, bounded.
                with trio.move_on_after(1.0):
                    await self.terminated.wait()
                self._terminate(self.close_error or closed_error())
                return
            now = trio.current_time()
            deadline = math.inf
            if not self.handshake_complete.is_set():
                if now >= handshake_deadline:
                    self._handshake_timed_out()
                    continue
                deadline = min(deadline, handshake_deadline)
            lifetime = self._lifetime_deadline(now)
            if lifetime is None:
                continue
            deadline = min(deadline, lifetime)
            if self.streams and self.handshake_complete.is_set():
                # Keep the QUIC idle timer of both ends fresh while a request is open (a long
                # poll sends nothing for a while); a vanished peer never acknowledges these, so
                # QUIC's idle timeout still detects it.
                ping_at = self._last_ping + self.limits.idle_timeout / 3
                if now >= ping_at:
                    self._last_ping = now
                    try:
                        self.quic.send_ping(next(_ping_ids))
                    except self.core.STREAM_ERRORS:
                        continue  # closed under us: the next round sees it
                    self.transmit_soon()
                    continue
                deadline = min(deadline, ping_at)
            self._watchdog_at = deadline
            with trio.move_on_at(deadline):
                await self._state_lot.park()
            self._watchdog_at = -math.inf
