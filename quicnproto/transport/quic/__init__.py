"""A Trio driver for a sans-I/O ``QuicConnection`` (server and client), no asyncio: aioquic's
(the default and reference) or qh3's (optional, ``pip install quicnproto[qh3]``).

::

    endpoint.Endpoint         one UDP socket: batched recvfrom, non-blocking sendto
        |  route(data, addr)
        v
    server.Router             by destination CID (kept in step with ConnectionIdIssued/
        |                     Retired); a new Initial -> Retry, caps, or a new connection
        v                     (the client routes everything to its one connection)
    connection.Connection     receive_datagram(now=trio.current_time()), every event drained:
        |                     stream data -> QuicStream buffers (streams.StreamBook), a new
        |                     peer stream -> a handler task (server.ServerConnection);
        |                     one timer task per connection sleeps until get_timer()
        v
    stream.QuicStream         receive_some / send_all for the application

Modules: ``limits`` (:class:`TransportLimits`, :class:`RetryMode`, constants), ``backends``
(:class:`~.backends.QuicBackend` and the choice of core), ``_aioquic`` and ``_qh3`` (one
adapter per core: its configuration, its connections and every touch of its private state),
``retry`` (stateless Retry tokens), ``stream``, ``streams``, ``connection``, ``endpoint``, ``server``
(:func:`serve_quic`), ``client`` (:func:`open_quic_connection`). Each module's docstring
states what it guarantees, with the VALIDATION.md rule ids (SRV-Q-01..06).

Errors raised to the application are :class:`~quicnproto.errors.TransportError` and its
subclasses :class:`~quicnproto.errors.StreamResetError` and
:class:`~quicnproto.errors.ConnectionClosedError` (both carry ``error_code``); every one
carries a ``reason`` (:class:`~quicnproto.errors.TransportReason`). Logs go to
``quicnproto.transport`` and never contain payloads or keys.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from quicnproto.errors import ConnectionClosedError, StreamResetError, TransportError
from quicnproto.transport.quic.limits import SOCKET_BUFFER_SIZE, RetryMode, TransportLimits

if TYPE_CHECKING:
    from quicnproto.transport.quic.client import QuicClient, open_quic_connection
    from quicnproto.transport.quic.endpoint import NetworkAddress
    from quicnproto.transport.quic.server import serve_quic
    from quicnproto.transport.quic.stream import ConnectionInfo, QuicStream

# The driver (and aioquic) load on first use: configuration and the command line import this
# package for its limits without paying for the QUIC stack.
_LAZY = {
    "QuicClient": "client",
    "open_quic_connection": "client",
    "NetworkAddress": "endpoint",
    "serve_quic": "server",
    "ConnectionInfo": "stream",
    "QuicStream": "stream",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "SOCKET_BUFFER_SIZE",
    "ConnectionClosedError",
    "ConnectionInfo",
    "NetworkAddress",
    "QuicClient",
    "QuicStream",
    "RetryMode",
    "StreamResetError",
    "TransportError",
    "TransportLimits",
    "open_quic_connection",
    "serve_quic",
]
