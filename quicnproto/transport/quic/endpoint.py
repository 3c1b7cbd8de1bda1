"""The UDP socket of one endpoint (a server's listener or a client's connected socket):
batched receive, non-blocking send with a bounded backlog, address resolution.

What happens to a datagram is decided by the ``route`` callable the owner passes to
:meth:`Endpoint.receiver_loop`; the endpoint knows nothing of QUIC.

Guarantees:

- up to :data:`~.limits.RECV_BATCH` datagrams are read per wake-up; each connection that
  received some is then told once (``after_receive``), so it transmits once per batch;
- sending never blocks: datagrams the socket refuses wait in a backlog of at most
  :data:`~.limits.SEND_BACKLOG`, beyond which they are dropped (QUIC recovers from loss);
- socket errors (ICMP errors included) never end the endpoint; a refused destination is
  reported to ``on_refused``.
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import trio

from quicnproto.errors import TransportError, TransportReason
from quicnproto.log import log_event
from quicnproto.transport.quic.limits import (
    MAX_DATAGRAM,
    RECV_BATCH,
    SEND_BACKLOG,
    SOCKET_BUFFER_SIZE,
)

_log = logging.getLogger("quicnproto.transport")

NetworkAddress = Any
"""A socket address as returned by ``recvfrom`` (2-tuple for IPv4, 4-tuple for IPv6)."""

Datagrams = list[tuple[bytes, NetworkAddress]]
"""Datagrams with their destinations, as aioquic's ``datagrams_to_send`` returns them."""


class DatagramReceiver(Protocol):
    """Where :meth:`Endpoint.receiver_loop` delivers a routed datagram."""

    def receive_datagram(self, data: bytes, addr: NetworkAddress) -> None:
        """Handle one datagram."""

    def after_receive(self) -> None:
        """The batch that held this receiver's datagrams is done."""


class Endpoint:
    """Owns one UDP socket: receives in batches, sends without blocking.

    Args:
        sock: a non-blocking UDP socket (see :func:`make_socket`).
        on_refused: called when the socket reports that the destination refused (ICMP port
            unreachable on a connected socket).
    """

    def __init__(
        self, sock: socket.socket, *, on_refused: Callable[[], None] | None = None
    ) -> None:
        self.sock = sock
        self._on_refused = on_refused
        self._backlog: deque[tuple[bytes, NetworkAddress]] = deque()
        self._backlog_lot = trio.lowlevel.ParkingLot()

    # -- sending --------------------------------------------------------------------------

    def send(self, datagrams: Datagrams) -> None:
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
        if len(self._backlog) >= SEND_BACKLOG:
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

    async def receiver_loop(
        self, route: Callable[[bytes, NetworkAddress], DatagramReceiver | None]
    ) -> None:
        """Read datagrams in batches, hand each to the receiver ``route`` picks (or drop it),
        then tell each receiver its batch is done."""
        touched: dict[DatagramReceiver, None] = {}
        while True:
            await trio.lowlevel.wait_readable(self.sock)
            for _ in range(RECV_BATCH):
                try:
                    data, addr = self.sock.recvfrom(MAX_DATAGRAM)
                except BlockingIOError:
                    break
                except OSError as exc:
                    # e.g. ECONNREFUSED from an ICMP error; not fatal for UDP.
                    self._socket_error(exc)
                    continue
                receiver = route(data, addr)
                if receiver is not None:
                    receiver.receive_datagram(data, addr)
                    touched[receiver] = None
            for receiver in touched:
                receiver.after_receive()
            touched.clear()

    def _socket_error(self, exc: OSError) -> None:
        log_event(logging.DEBUG, "udp_socket_error", logger=_log, errno=exc.errno)
        if isinstance(exc, ConnectionRefusedError) and self._on_refused is not None:
            self._on_refused()


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


async def open_socket(
    host: str, port: int, *, server: bool
) -> tuple[socket.socket, NetworkAddress]:
    """Resolve ``host:port`` and return a non-blocking UDP socket (large buffers requested)
    and the resolved address: bound to it for a server, connected to it for a client (so ICMP
    errors are reported; bound to an ephemeral port).

    Raises:
        TransportError: ``reason`` ``RESOLVE_FAILED``, ``BIND_FAILED`` (server) or
            ``UNREACHABLE`` (client).
    """
    try:
        infos = await trio.socket.getaddrinfo(
            host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE if server else 0
        )
    except OSError as exc:
        raise TransportError(f"cannot resolve {host!r}", TransportReason.RESOLVE_FAILED) from exc
    if not infos:
        raise TransportError(f"cannot resolve {host!r}", TransportReason.RESOLVE_FAILED)
    family, _, _, _, sockaddr = infos[0]
    sock = _make_socket(int(family))
    try:
        if server:
            sock.bind(sockaddr)
        else:
            sock.connect(sockaddr)
    except OSError as exc:
        sock.close()
        if server:
            raise TransportError(
                f"cannot bind UDP {host}:{port}: {exc.strerror}", TransportReason.BIND_FAILED
            ) from exc
        raise TransportError(
            f"cannot reach {host}:{port}: {exc.strerror}", TransportReason.UNREACHABLE
        ) from exc
    return sock, sockaddr
