"""The qh3 adapter (:class:`~.backends.QuicCore`): qh3 2.1's ``QuicConnection``, a Python
facade over a native (Rust) packet core, driven like aioquic's.

qh3 2.1 keeps its connection state inside the native core, out of reach, but offers public
accessors for two of the things the aioquic adapter reads from private state; the rest is
either not needed or not possible:

========================  ============================================  =====================
helper                    how                                           effect
========================  ============================================  =====================
unacknowledged_bytes      public ``get_send_buffer_size(stream_id)``    bytes not yet sent
                                                                        (not: not yet acked)
ack_with_data             nothing: the core times its own ACKs          ACKs follow its timer
close_pending             nothing to read                               True: always transmit
set_ack_delay             nothing: fixed in the core (25 ms at most)    its delayed ACK
peer_certificate_der      public ``get_peercert()``                     as aioquic
encode_refusal            aioquic's stateless encoder (same wire bytes) as aioquic
discard                   ``__dict__`` of the facade, its TLS bridge    as aioquic
                          and its TLS context
========================  ============================================  =====================

The configuration takes the certificate as PEM through ``load_cert_chain`` (qh3 parses it
natively). Hostname checks are off: the client trusts exactly the pinned certificate, which
the driver compares byte for byte after the handshake (SRV-Q-06). qh3's native core opens at
most 100 concurrent peer streams per connection, whatever ``max_streams_per_connection`` says.

Known limit (qh3 2.1.0, a qh3 bug): a qh3 *server* fails the handshake of an aioquic 1.7
*client* unless a Retry validated the client's address first. aioquic pads its Initial datagram
with zero bytes after the packet; qh3 hands its core each packet of a datagram separately, and
the core's anti-amplification credit counts the packet (497 bytes), not the 1200-byte datagram,
so its native packet builder raises "packet builder capacity exhausted" after the first
1280-byte datagram (the driver then drops that one connection). No setting here changes it; a
node that serves aioquic clients on qh3 runs with ``--retry always`` (docs/dependencies.md).

Liveness tests: ``tests/quicnproto/unit/test_qh3_private.py`` runs these helpers against the
installed qh3 (``strict`` set), as ``test_aioquic_private.py`` does for aioquic;
``pyproject.toml`` caps qh3 at the minor version they passed against (docs/dependencies.md).
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING, Any, cast

from cryptography.hazmat.primitives import serialization
from qh3.quic import events
from qh3.quic.configuration import QuicConfiguration as Qh3Configuration
from qh3.quic.connection import QuicConnection as Qh3Connection
from qh3.quic.connection import QuicConnectionError

from quicnproto.errors import PrivateApiError
from quicnproto.log import log_event
from quicnproto.transport.quic import _aioquic
from quicnproto.transport.tls import parse_certificate, parse_private_key

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.packet import QuicHeader

__all__ = ["events"]

STREAM_ERRORS: tuple[type[Exception], ...] = (ValueError, RuntimeError, QuicConnectionError)
"""What qh3 raises for a stream operation it can no longer do: aioquic's, plus
``QuicConnectionError`` once its native core has closed the connection."""

_log = logging.getLogger("quicnproto.transport")

strict = False
"""Raise :class:`PrivateApiError` instead of falling back (set by the liveness tests)."""

_reported: set[str] = set()


def _missing(attribute: str) -> None:
    if strict:
        raise PrivateApiError(attribute)
    if attribute not in _reported:
        _reported.add(attribute)
        log_event(logging.WARNING, "qh3_private_api_missing", logger=_log, attribute=attribute)


def server_configuration(
    *, alpn: str, idle_timeout: float, certificate: bytes, private_key: bytes
) -> QuicConfiguration:
    """A server's configuration from a DER certificate and DER (PKCS#8) key.

    Raises:
        ConfigError: the certificate or key is malformed.
    """
    # Parsed with cryptography first, so a bad file is a ConfigError as with aioquic.
    cert = parse_certificate(certificate)
    key = parse_private_key(private_key)
    configuration = Qh3Configuration(
        is_client=False, alpn_protocols=[alpn], idle_timeout=idle_timeout
    )
    configuration.load_cert_chain(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return cast("QuicConfiguration", configuration)


def client_configuration(
    *, alpn: str, idle_timeout: float, pinned_certificate: bytes
) -> QuicConfiguration:
    """A client's configuration whose only trust anchor is ``pinned_certificate`` (DER).

    Raises:
        ConfigError: ``pinned_certificate`` is not a DER certificate.
    """
    pinned = parse_certificate(pinned_certificate)
    configuration = Qh3Configuration(
        is_client=True,
        alpn_protocols=[alpn],
        idle_timeout=idle_timeout,
        verify_mode=ssl.CERT_REQUIRED,
        cadata=pinned.public_bytes(serialization.Encoding.PEM),
        verify_hostname=False,
    )
    return cast("QuicConfiguration", configuration)


def server_connection(
    configuration: QuicConfiguration,
    *,
    original_destination_connection_id: bytes,
    retry_source_connection_id: bytes | None,
) -> QuicConnection:
    """A new server-side connection."""
    quic = Qh3Connection(
        configuration=cast(Qh3Configuration, configuration),
        original_destination_connection_id=original_destination_connection_id,
        retry_source_connection_id=retry_source_connection_id,
    )
    return cast("QuicConnection", quic)


def client_connection(configuration: QuicConfiguration) -> QuicConnection:
    """A new client-side connection."""
    quic = Qh3Connection(configuration=cast(Qh3Configuration, configuration))
    return cast("QuicConnection", quic)


def _native(quic: QuicConnection) -> Qh3Connection:
    return cast(Qh3Connection, quic)


def may_open_stream(quic: QuicConnection, stream_id: int) -> bool:
    """Whether the peer's cumulative bidirectional stream limit (public
    ``max_concurrent_bidi_streams``) covers ``stream_id``: qh3 raises ``ValueError`` for a
    stream beyond it where aioquic would queue the stream."""
    return (stream_id >> 2) < int(_native(quic).max_concurrent_bidi_streams)


def unacknowledged_bytes(quic: QuicConnection, stream_id: int) -> int:
    """Bytes written to a stream and not sent yet (qh3 reports no acknowledged offset); 0 for
    no such stream."""
    return int(_native(quic).get_send_buffer_size(stream_id))


def ack_with_data(quic: QuicConnection, now: float) -> None:
    """Nothing: qh3's core schedules its ACKs itself and offers no handle on them."""


def close_pending(quic: QuicConnection) -> bool:
    """Always True: qh3 does not say whether a CONNECTION_CLOSE waits, so the caller transmits
    (a transmit with nothing due costs one native call)."""
    return True


def set_ack_delay(quic: QuicConnection, delay: float) -> None:
    """Nothing: qh3's core fixes its ACK delay (at most its advertised 25 ms)."""


def peer_certificate_der(quic: QuicConnection) -> bytes | None:
    """The DER certificate the peer presented, or ``None`` if unavailable (so a pin check that
    uses it fails closed)."""
    certificate = _native(quic).get_peercert()
    if certificate is None:
        return None
    try:
        return bytes(certificate.public_bytes())
    except Exception:
        return None


def encode_refusal(header: QuicHeader, error_code: int) -> bytes:
    """An Initial packet answering a client's Initial with CONNECTION_CLOSE(error_code): the
    bytes depend only on the client's Initial, so aioquic's stateless encoder serves both
    backends (:func:`._aioquic.encode_refusal`)."""
    return _aioquic.encode_refusal(header, error_code)


def discard(quic: QuicConnection) -> None:
    """Drop every attribute of a connection nobody will use again, and of its TLS bridge and
    TLS context: those three hold each other's bound methods in reference cycles, so breaking
    them lets reference counting free the lot (and the native core) at once."""
    state: Any = getattr(quic, "__dict__", None)
    if not isinstance(state, dict):
        _missing("QuicConnection.__dict__")
        return
    bridge = getattr(state.get("_tls"), "__dict__", None)
    if isinstance(bridge, dict):
        context = getattr(bridge.get("tls"), "__dict__", None)
        if isinstance(context, dict):
            context.clear()
        bridge.clear()
    state.clear()
