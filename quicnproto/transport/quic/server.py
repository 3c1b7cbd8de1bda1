"""The server side: connection-ID routing, Retry, refusals, per-address caps, handler tasks,
and :func:`serve_quic`.

Guarantees (VALIDATION.md):

- SRV-Q-01: at most ``max_connections_per_address`` connections per source IP and
  ``max_connections`` in all (a further Initial is answered with CONNECTION_CLOSE
  ``CONNECTION_REFUSED`` and no state is kept), and at most ``max_streams_per_connection``
  concurrently open peer streams (a stream beyond it is reset with ``RATE_LIMITED``);
- SRV-Q-03: a connection without an open stream or running handler closes after
  ``idle_timeout``, and any connection after ``max_connection_age``;
- SRV-Q-04: with ``retry`` ``ALWAYS``, and with ``AUTO`` while more than ``retry_threshold``
  unvalidated handshakes are in progress, no state is kept for a client (no ``QuicConnection``)
  before it returned a Retry token (RFC 9000 §8.1.2; :mod:`.retry`), and a bad token gets
  ``INVALID_TOKEN``;
- a connection whose handshake has not completed after ``pre_handshake_timeout`` is dropped at
  once, releasing its per-address and global slots and its routes;
- a terminated connection leaves nothing behind: its routes and its address's count go, and
  its ``QuicConnection`` is broken up (the adapter's ``discard``) so that reference counting,
  not a later full garbage collection, frees it;
- SRV-Q-05: no session tickets, hence no 0-RTT;
- unknown QUIC versions get Version Negotiation (RFC 9000 §6);
- a handler's exception resets only its stream (``ErrorCode.INTERNAL``) and is logged; a
  handler whose peer sent STOP_SENDING is cancelled; no handler stops the server.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

# Stateless packet parsing and encoding is aioquic's whichever core drives the connections:
# the bytes do not depend on it (and aioquic is always installed).
from aioquic.buffer import Buffer  # type: ignore[attr-defined]  # re-exported, untyped
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE
from aioquic.quic.packet import (
    QuicErrorCode,
    QuicHeader,
    QuicPacketType,
    encode_quic_retry,
    encode_quic_version_negotiation,
    pull_quic_header,
)

from quicnproto.errors import ErrorCode, TransportError
from quicnproto.log import log_event
from quicnproto.transport.quic import backends, endpoint
from quicnproto.transport.quic.backends import QuicBackend, QuicCore
from quicnproto.transport.quic.connection import Connection
from quicnproto.transport.quic.endpoint import Datagrams, Endpoint, NetworkAddress
from quicnproto.transport.quic.limits import RetryMode, TransportLimits
from quicnproto.transport.quic.retry import InvalidToken, RetryTokens
from quicnproto.transport.quic.stream import QuicStream

if TYPE_CHECKING:
    from aioquic.quic import events
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

_log = logging.getLogger("quicnproto.transport")

Handler = Callable[[QuicStream], Awaitable[None]]
"""``async def handler(stream: QuicStream) -> None``, run once per peer-opened stream."""


class ServerConnection(Connection):
    """A connection accepted by a server: runs ``handler`` for each peer-opened stream.

    Args:
        handler: the stream handler.
        add_route, remove_route: keep the server's CID routes in step with aioquic.
        on_handshake_completed: called once the handshake completed.
        (the rest as for :class:`Connection`)
    """

    shutdown_close = (ErrorCode.UNAVAILABLE, "server shutting down")

    def __init__(
        self,
        quic: QuicConnection,
        remote_address: NetworkAddress,
        *,
        core: QuicCore,
        limits: TransportLimits,
        send_datagrams: Callable[[Datagrams], None],
        on_terminated: Callable[[Connection], None],
        handler: Handler,
        add_route: Callable[[bytes, Connection], None],
        remove_route: Callable[[bytes, Connection], None],
        on_handshake_completed: Callable[[Connection], None],
    ) -> None:
        super().__init__(
            quic,
            remote_address,
            core=core,
            limits=limits,
            send_datagrams=send_datagrams,
            on_terminated=on_terminated,
        )
        self._handler = handler
        self._route = add_route
        self._unroute = remove_route
        self._on_handshake = on_handshake_completed
        self.handlers_running = 0
        self.refused_streams = 0
        self._nursery: trio.Nursery | None = None
        self._pending_handlers: list[QuicStream] = []

    def add_route(self, cid: bytes) -> None:
        super().add_route(cid)
        self._route(cid, self)

    def remove_route(self, cid: bytes) -> None:
        super().remove_route(cid)
        self._unroute(cid, self)

    def _on_handshake_completed(self, event: events.HandshakeCompleted) -> None:
        super()._on_handshake_completed(event)
        if self.handshake_complete.is_set():
            self._on_handshake(self)

    def _handshake_timeout(self) -> float:
        return min(self.limits.handshake_timeout, self.limits.pre_handshake_timeout)

    def _handshake_timed_out(self) -> None:
        # The slots go now: a peer that never completes (a flood of Initials it cannot
        # finish) holds them no longer than the pre-handshake deadline.
        super()._handshake_timed_out()
        self.terminate_now()

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            # Every task of the connection has ended: nothing uses aioquic's state any more.
            self.discard()

    def _open_peer_stream(self, stream_id: int) -> QuicStream | None:
        if self.closing:
            self._refuse_stream(stream_id, ErrorCode.UNSUPPORTED)
            return None
        if self.peer_open >= self.limits.max_streams_per_connection:
            # VALIDATION.md SRV-Q-01: our own cap on concurrently open request streams.
            self.refused_streams += 1
            log_event(
                logging.WARNING if self.refused_streams == 1 else logging.DEBUG,
                "quic_stream_refused",
                logger=_log,
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
        self.handlers_running += 1
        if self._nursery is None:
            self._pending_handlers.append(stream)
        else:
            self._nursery.start_soon(self._run_handler, stream)
        return stream

    def _on_nursery(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        for stream in self._pending_handlers:
            nursery.start_soon(self._run_handler, stream)
        self._pending_handlers.clear()

    async def _run_handler(self, stream: QuicStream) -> None:
        conn_id, stream_id = self.info.id, stream.stream_id
        try:
            with trio.CancelScope() as scope:
                stream._handler_scope = scope
                await self._handler(stream)
            if scope.cancelled_caught:
                # The peer gave up on the stream (STOP_SENDING): nobody waits for the answer,
                # so a handler parked in a long poll does not hold its slot until it times out.
                log_event(
                    logging.DEBUG,
                    "quic_handler_abandoned",
                    logger=_log,
                    conn=conn_id,
                    stream=stream_id,
                )
        except TransportError as exc:
            # The stream was reset or the connection went away under the handler: expected.
            log_event(
                logging.DEBUG,
                "quic_handler_stopped",
                logger=_log,
                conn=conn_id,
                stream=stream_id,
                error=type(exc).__name__,
            )
            if not self.terminated.is_set():
                self.reset_stream(stream, ErrorCode.INTERNAL)
        except Exception as exc:
            log_event(
                logging.ERROR,
                "quic_handler_failed",
                logger=_log,
                exc_info=True,
                conn=conn_id,
                stream=stream_id,
                error=type(exc).__name__,
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

    def _lifetime_deadline(self, now: float) -> float | None:
        age_deadline = self.created_at + self.limits.max_connection_age
        if now >= age_deadline:
            self._close_for("age", ErrorCode.NO_ERROR, "max connection age")
            return None
        if self.streams or self.handlers_running:
            return age_deadline
        # VALIDATION.md SRV-Q-03: idle between requests, at the application layer.
        idle_deadline = self.last_activity + self.limits.idle_timeout
        if now >= idle_deadline:
            self._close_for("idle", ErrorCode.NO_ERROR, "idle timeout")
            return None
        return min(age_deadline, idle_deadline)


class Router:
    """Picks the connection for each datagram a server receives, and accepts new ones.

    Args:
        configuration: the server's QUIC configuration (made by ``core``).
        limits: the transport limits.
        send: sends datagrams on the server's socket.
        handler: the stream handler of every accepted connection.
        retry: when to validate client addresses with Retry first.
        core: the QUIC core's adapter (default: aioquic's).
    """

    def __init__(
        self,
        configuration: QuicConfiguration,
        *,
        limits: TransportLimits,
        send: Callable[[Datagrams], None],
        handler: Handler,
        retry: RetryMode,
        core: QuicCore | None = None,
    ) -> None:
        self.core = core or backends.load(QuicBackend.AIOQUIC)
        self.configuration = configuration
        self.limits = limits
        self._send = send
        self._handler = handler
        self.retry_mode = retry
        self.tokens = None if retry == RetryMode.NEVER else RetryTokens(limits.retry_token_lifetime)
        self.routes: dict[bytes, Connection] = {}
        self.per_address: Counter[str] = Counter()
        self.connections: set[Connection] = set()
        self.unvalidated: set[Connection] = set()
        """Connections accepted without a Retry token whose handshake has not completed."""
        self.nursery: trio.Nursery | None = None

    def route(self, data: bytes, addr: NetworkAddress) -> Connection | None:
        """The connection ``data`` belongs to (perhaps a new one), or ``None`` to drop it."""
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
            self._send(
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
        if self.tokens is None or not (header.token or self._retry_needed()):
            return self._accept(header, addr, header.destination_cid, None)
        return self._validate_address(header, addr, self.tokens)

    def _retry_needed(self) -> bool:
        """Whether an Initial without a token gets a Retry rather than a connection."""
        return (
            self.retry_mode == RetryMode.ALWAYS
            or len(self.unvalidated) >= self.limits.retry_threshold
        )

    def _validate_address(
        self, header: QuicHeader, addr: NetworkAddress, tokens: RetryTokens
    ) -> Connection | None:
        """Address validation with Retry (RFC 9000 §8.1.2, VALIDATION.md SRV-Q-04)."""
        assert header.version is not None
        now = trio.current_time()
        if not header.token:
            source_cid = os.urandom(self.configuration.connection_id_length)
            token = tokens.create(
                address=addr,
                original_destination_cid=header.destination_cid,
                retry_source_cid=source_cid,
                now=now,
            )
            retry_packet = encode_quic_retry(
                version=header.version,
                source_cid=source_cid,
                destination_cid=header.source_cid,
                original_destination_cid=header.destination_cid,
                retry_token=token,
            )
            self._send([(retry_packet, addr)])
            return None
        try:
            original_cid = tokens.validate(
                address=addr, destination_cid=header.destination_cid, token=header.token, now=now
            )
        except InvalidToken:
            # RFC 9000 §8.1.3: close with INVALID_TOKEN.
            self._send([(self.core.encode_refusal(header, QuicErrorCode.INVALID_TOKEN), addr)])
            return None
        return self._accept(header, addr, original_cid, header.destination_cid)

    def _accept(
        self,
        header: QuicHeader,
        addr: NetworkAddress,
        original_cid: bytes,
        retry_source_cid: bytes | None,
    ) -> Connection | None:
        host = str(addr[0])
        if len(self.connections) >= self.limits.max_connections:
            reason = "server full"
        elif self.per_address[host] >= self.limits.max_connections_per_address:
            # VALIDATION.md SRV-Q-01: connections per source address.
            reason = "too many connections from one address"
        else:
            reason = ""
        if reason or self.nursery is None:
            log_event(
                logging.WARNING, "quic_connection_refused", logger=_log, reason=reason, remote=host
            )
            if header.version is not None:
                refusal = self.core.encode_refusal(header, QuicErrorCode.CONNECTION_REFUSED)
                self._send([(refusal, addr)])
            return None
        quic = self.core.server_connection(
            self.configuration,
            original_destination_connection_id=original_cid,
            retry_source_connection_id=retry_source_cid,
        )
        conn = ServerConnection(
            quic,
            addr,
            core=self.core,
            limits=self.limits,
            send_datagrams=self._send,
            on_terminated=self.forget,
            handler=self._handler,
            add_route=self._add_route,
            remove_route=self._remove_route,
            on_handshake_completed=self.unvalidated.discard,
        )
        self.per_address[host] += 1
        self.connections.add(conn)
        if retry_source_cid is None:
            self.unvalidated.add(conn)
        conn.add_route(header.destination_cid)
        conn.add_route(quic.host_cid)
        self.nursery.start_soon(conn.run)
        log_event(
            logging.INFO, "quic_connection_accepted", logger=_log, conn=conn.info.id, remote=host
        )
        return conn

    def _add_route(self, cid: bytes, conn: Connection) -> None:
        self.routes[cid] = conn

    def _remove_route(self, cid: bytes, conn: Connection) -> None:
        if self.routes.get(cid) is conn:
            del self.routes[cid]

    def forget(self, conn: Connection) -> None:
        """Drop every route and count held by a terminated connection."""
        for cid in conn.cids:
            self._remove_route(cid, conn)
        conn.cids.clear()
        self.unvalidated.discard(conn)
        if conn in self.connections:
            self.connections.discard(conn)
            host = str(conn.remote_address[0])
            self.per_address[host] -= 1
            if self.per_address[host] <= 0:
                del self.per_address[host]


async def serve_quic(
    host: str,
    port: int,
    *,
    certificate: bytes,
    private_key: bytes,
    alpn: str,
    handler: Handler,
    limits: TransportLimits | None = None,
    retry: RetryMode = RetryMode.NEVER,
    backend: QuicBackend = QuicBackend.AIOQUIC,
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
        retry: when to validate client addresses with a Retry round trip before keeping any
            state for them (RFC 9000 §8.1.2; :class:`RetryMode`); a Retry costs the client one
            round trip.
        backend: the sans-I/O QUIC core (:class:`~.backends.QuicBackend`).
        task_status: receives ``(host, bound_port)`` once the socket is bound.

    Cancellation:
        Cancelling the surrounding scope closes every connection (``ErrorCode.UNAVAILABLE``)
        and the socket.

    Resource handling:
        One UDP socket, one task per connection plus one per open stream. A connection's
        routes, slots and aioquic state are released when it terminates.

    Raises:
        TransportError: the address cannot be resolved or bound (``reason``
            ``RESOLVE_FAILED`` or ``BIND_FAILED``).
        ConfigError: the certificate or key is malformed, or ``backend`` is not installed.
    """
    limits = limits or TransportLimits()
    core = backends.load(backend)
    configuration = core.server_configuration(
        alpn=alpn,
        idle_timeout=limits.idle_timeout,
        certificate=certificate,
        private_key=private_key,
    )
    sock, _ = await endpoint.open_socket(host, port, server=True)
    with sock:
        udp = Endpoint(sock)
        router = Router(
            configuration,
            limits=limits,
            send=udp.send,
            handler=handler,
            retry=retry,
            core=core,
        )
        bound_port = int(sock.getsockname()[1])
        log_event(logging.INFO, "quic_listening", logger=_log, port=bound_port)
        try:
            async with trio.open_nursery() as nursery:
                router.nursery = nursery
                nursery.start_soon(udp.sender_loop)
                nursery.start_soon(udp.receiver_loop, router.route)
                task_status.started((host, bound_port))
        finally:
            for conn in list(router.connections):
                conn.close(ErrorCode.UNAVAILABLE, "server shutting down")
