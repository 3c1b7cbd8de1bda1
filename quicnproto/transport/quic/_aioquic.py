"""The aioquic adapter (:class:`~.backends.QuicCore`): how the driver builds aioquic
configurations and connections, and every read or write of aioquic's private state.

aioquic offers no public accessor for these, and the transport needs them:

========================  ==============================================  =====================
helper                    private state                                   if it is gone
========================  ==============================================  =====================
unacknowledged_bytes      ``_streams[id].sender._buffer_stop/_start``     0: no send backpressure
ack_with_data             ``_spaces[ONE_RTT].ack_at``                     nothing: ACKs go later
close_pending             ``_close_pending``                              True: always transmit
set_ack_delay             ``_ack_delay``                                  nothing: 1 ms ACK delay
peer_certificate_der      ``tls._peer_certificate``                       None: the pin fails closed
encode_refusal            ``CryptoPair``, ``QuicPacketBuilder``           raises
discard                   the connection's ``__dict__``                   nothing: freed by gc
========================  ==============================================  =====================

A helper that finds its state gone logs ``aioquic_private_api_missing`` once and falls back as
the table says, so the transport keeps working, only less well. With :data:`strict` set it
raises :class:`~quicnproto.errors.PrivateApiError` instead; the liveness tests
(``tests/quicnproto/unit/test_aioquic_private.py``) run that way against the installed aioquic,
which is why ``pyproject.toml`` caps aioquic's version (docs/dependencies.md).
"""

from __future__ import annotations

import logging
import ssl

from aioquic import tls
from aioquic.quic import events
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.crypto import CryptoPair
from aioquic.quic.packet import QuicFrameType, QuicHeader, QuicPacketType
from aioquic.quic.packet_builder import QuicPacketBuilder
from cryptography.hazmat.primitives import serialization

from quicnproto.errors import PrivateApiError
from quicnproto.log import log_event
from quicnproto.transport.tls import parse_certificate, parse_private_key

__all__ = ["events"]

STREAM_ERRORS: tuple[type[Exception], ...] = (ValueError, RuntimeError)
"""What aioquic raises for a stream operation on a stream already reset or finished."""

_log = logging.getLogger("quicnproto.transport")

strict = False
"""Raise :class:`PrivateApiError` instead of falling back (set by the liveness tests)."""

_reported: set[str] = set()


def _missing(attribute: str) -> None:
    if strict:
        raise PrivateApiError(attribute)
    if attribute not in _reported:
        _reported.add(attribute)
        log_event(logging.WARNING, "aioquic_private_api_missing", logger=_log, attribute=attribute)


def server_configuration(
    *, alpn: str, idle_timeout: float, certificate: bytes, private_key: bytes
) -> QuicConfiguration:
    """A server's configuration from a DER certificate and DER (PKCS#8) key.

    Raises:
        ConfigError: the certificate or key is malformed.
    """
    return QuicConfiguration(
        is_client=False,
        alpn_protocols=[alpn],
        idle_timeout=idle_timeout,
        certificate=parse_certificate(certificate),
        private_key=parse_private_key(private_key),
    )


def client_configuration(
    *, alpn: str, idle_timeout: float, pinned_certificate: bytes
) -> QuicConfiguration:
    """A client's configuration whose only trust anchor is ``pinned_certificate`` (DER).

    Raises:
        ConfigError: ``pinned_certificate`` is not a DER certificate.
    """
    pinned = parse_certificate(pinned_certificate)
    return QuicConfiguration(
        is_client=True,
        alpn_protocols=[alpn],
        idle_timeout=idle_timeout,
        verify_mode=ssl.CERT_REQUIRED,
        cadata=pinned.public_bytes(serialization.Encoding.PEM),
    )


def server_connection(
    configuration: QuicConfiguration,
    *,
    original_destination_connection_id: bytes,
    retry_source_connection_id: bytes | None,
) -> QuicConnection:
    """A new server-side connection."""
    return QuicConnection(
        configuration=configuration,
        original_destination_connection_id=original_destination_connection_id,
        retry_source_connection_id=retry_source_connection_id,
    )


def client_connection(configuration: QuicConfiguration) -> QuicConnection:
    """A new client-side connection."""
    return QuicConnection(configuration=configuration)


def may_open_stream(quic: QuicConnection, stream_id: int) -> bool:
    """Always: aioquic queues a stream beyond the peer's credit until MAX_STREAMS arrives."""
    return True


def unacknowledged_bytes(quic: QuicConnection, stream_id: int) -> int:
    """Bytes written to a stream and not yet acknowledged by the peer (0 for no such stream)."""
    streams = getattr(quic, "_streams", None)
    if not isinstance(streams, dict):
        _missing("QuicConnection._streams")
        return 0
    stream = streams.get(stream_id)
    if stream is None:
        return 0
    sender = stream.sender
    try:
        return int(sender._buffer_stop - sender._buffer_start)
    except AttributeError:
        _missing("QuicStreamSender._buffer_stop/_buffer_start")
        return 0


def ack_with_data(quic: QuicConnection, now: float) -> None:
    """Make a pending 1-RTT ACK due now, so it is written into the packet about to carry
    application data (RFC 9000 §13.2.1 lets an ACK go out earlier than ``max_ack_delay``);
    aioquic otherwise writes an ACK only once its delayed-ACK time has passed."""
    spaces = getattr(quic, "_spaces", None)
    if not isinstance(spaces, dict):
        _missing("QuicConnection._spaces")
        return
    space = spaces.get(tls.Epoch.ONE_RTT)
    if space is None:
        return
    try:
        ack_at = space.ack_at
    except AttributeError:
        _missing("QuicPacketSpace.ack_at")
        return
    if isinstance(ack_at, float) and ack_at > now:
        space.ack_at = now


def close_pending(quic: QuicConnection) -> bool:
    """Whether aioquic decided to close and has not sent its CONNECTION_CLOSE yet (True when
    unknown, so the caller transmits)."""
    pending = getattr(quic, "_close_pending", None)
    if not isinstance(pending, bool):
        _missing("QuicConnection._close_pending")
        return True
    return pending


def set_ack_delay(quic: QuicConnection, delay: float) -> None:
    """Set how long aioquic delays an ACK after an ack-eliciting packet."""
    if not isinstance(getattr(quic, "_ack_delay", None), float):
        _missing("QuicConnection._ack_delay")
        return
    quic._ack_delay = delay


def peer_certificate_der(quic: QuicConnection) -> bytes | None:
    """The DER certificate the peer presented, or ``None`` if unavailable (so a pin check that
    uses it fails closed)."""
    if not hasattr(quic.tls, "_peer_certificate"):
        _missing("tls.Context._peer_certificate")
        return None
    certificate = quic.tls._peer_certificate
    if certificate is None:
        return None
    try:
        return bytes(certificate.public_bytes(serialization.Encoding.DER))
    except Exception:
        return None


def encode_refusal(header: QuicHeader, error_code: int) -> bytes:
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


def discard(quic: QuicConnection) -> None:
    """Drop every attribute of a connection nobody will use again.

    A ``QuicConnection`` holds a few hundred objects in reference cycles (bound methods kept
    by its TLS context, loss recovery and streams); clearing its attributes breaks them all,
    so reference counting frees the lot at once instead of the cyclic garbage collector later.
    """
    state = getattr(quic, "__dict__", None)
    if not isinstance(state, dict):
        _missing("QuicConnection.__dict__")
        return
    state.clear()
