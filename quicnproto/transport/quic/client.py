"""The client side: :func:`open_quic_connection` and :class:`QuicClient`.

Guarantees:

- the handshake succeeds only if the server presents exactly the pinned certificate and
  negotiates our ALPN (SRV-Q-06); it fails with :class:`~quicnproto.errors.TransportError`
  (``reason`` saying why) after ``handshake_timeout``, or at once when nothing listens at the
  address;
- the client never has more than ``max_streams_per_connection`` of its streams open, so it
  never runs into the server's cap: :meth:`QuicClient.open_stream` waits instead;
- peer-initiated streams are refused (``ErrorCode.UNSUPPORTED``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from quicnproto.errors import ErrorCode, TransportError, TransportReason
from quicnproto.transport.quic import backends, endpoint
from quicnproto.transport.quic.backends import QuicBackend, QuicCore
from quicnproto.transport.quic.connection import CONNECTION_REFUSED, Connection, closed_error
from quicnproto.transport.quic.endpoint import Datagrams, Endpoint, NetworkAddress
from quicnproto.transport.quic.limits import TransportLimits
from quicnproto.transport.quic.stream import ConnectionInfo, QuicStream

if TYPE_CHECKING:
    from aioquic.quic.connection import QuicConnection


STREAM_CREDIT_POLL = 0.05
"""Seconds between looks at the peer's stream credit while it is used up."""


class ClientConnection(Connection):
    """A client's connection: bounds its own open streams with a semaphore."""

    shutdown_close = (ErrorCode.NO_ERROR, "client closed")

    def __init__(
        self,
        quic: QuicConnection,
        remote_address: NetworkAddress,
        *,
        core: QuicCore,
        limits: TransportLimits,
        send_datagrams: Callable[[Datagrams], None],
        pinned_certificate: bytes,
    ) -> None:
        super().__init__(
            quic,
            remote_address,
            core=core,
            limits=limits,
            send_datagrams=send_datagrams,
            on_terminated=lambda conn: conn.cids.clear(),
            pinned_certificate=pinned_certificate,
        )
        self.slots = trio.Semaphore(limits.max_streams_per_connection)

    def _local_stream_closed(self) -> None:
        self.slots.release()

    def peer_unreachable(self) -> None:
        """The socket reported the server's address refused: fail a pending handshake now
        instead of at its timeout."""
        if not self.handshake_complete.is_set():
            self.close_error = TransportError(
                "connection refused: nothing listens there", TransportReason.CONNECTION_REFUSED
            )
            self.terminate_now()

    async def open_stream(self) -> QuicStream:
        """See :meth:`QuicClient.open_stream`."""
        if self.closing:
            raise self.close_error or closed_error()
        try:
            # A free slot costs no scheduling round trip (the write that follows yields).
            await trio.lowlevel.checkpoint_if_cancelled()
            self.slots.acquire_nowait()
        except trio.WouldBlock:
            await self.slots.acquire()
        if self.closing:
            self.slots.release()
            raise self.close_error or closed_error()
        while not self.core.may_open_stream(self.quic, self.quic.get_next_available_stream_id()):
            # The peer's MAX_STREAMS has not caught up with the streams we finished (RFC 9000
            # §4.6): wait for its next packets (they wake the writers) and look again.
            with trio.move_on_after(STREAM_CREDIT_POLL):
                await self._send_lot.park()
            if self.closing:
                self.slots.release()
                raise self.close_error or closed_error()
        # No checkpoint from here on: another task cannot take the same stream ID.
        stream_id = self.quic.get_next_available_stream_id()
        try:
            # An empty write creates the stream in the core so the next ID is allocated.
            self.quic.send_stream_data(stream_id, b"")
        except self.core.STREAM_ERRORS:
            # The core closed the connection before its event reached us.
            self.slots.release()
            raise self.close_error or closed_error() from None
        stream = QuicStream(self, stream_id, local=True)
        self.streams[stream_id] = stream
        self.last_activity = trio.current_time()
        self.stream_opened()
        return stream


class QuicClient:
    """A client's QUIC connection to a node; streams are opened with :meth:`open_stream`."""

    def __init__(self, connection: ClientConnection) -> None:
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
        return await self._conn.open_stream()

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
    backend: QuicBackend = QuicBackend.AIOQUIC,
) -> AsyncIterator[QuicClient]:
    """Connect to a node, trusting exactly ``server_certificate``, and yield a client.

    The handshake fails unless the server presents that very certificate (DER bytes compared
    after the QUIC core verified the chain against it as the only trust anchor) and
    negotiates ``alpn``. Leaving the block closes the connection (``ErrorCode.NO_ERROR``).
    ``backend`` picks the sans-I/O QUIC core (:class:`~.backends.QuicBackend`).

    Raises:
        TransportError: resolution, handshake failure or timeout, pin or ALPN mismatch
            (``reason`` tells which).
        ConfigError: ``server_certificate`` is not a DER certificate, or ``backend`` is not
            installed.
    """
    limits = limits or TransportLimits()
    core = backends.load(backend)
    configuration = core.client_configuration(
        alpn=alpn, idle_timeout=limits.idle_timeout, pinned_certificate=server_certificate
    )
    sock, sockaddr = await endpoint.open_socket(host, port, server=False)
    body_error: BaseException | None = None
    handshake_error: TransportError | None = None
    with sock:
        udp = Endpoint(sock, on_refused=lambda: conn.peer_unreachable())
        quic = core.client_connection(configuration)
        conn = ClientConnection(
            quic,
            sockaddr,
            core=core,
            limits=limits,
            send_datagrams=udp.send,
            pinned_certificate=server_certificate,
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(udp.sender_loop)
            nursery.start_soon(udp.receiver_loop, lambda data, addr: conn)
            nursery.start_soon(conn.run)
            quic.connect(sockaddr, now=trio.current_time())
            conn.transmit()
            with trio.move_on_after(limits.handshake_timeout):
                await _wait_first(conn.handshake_complete, conn.terminated)
            if not conn.handshake_complete.is_set():
                handshake_error = conn.close_error or TransportError(
                    "handshake timed out", TransportReason.HANDSHAKE_TIMEOUT
                )
                conn.close(CONNECTION_REFUSED, "handshake", transport=True)
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
