"""Which sans-I/O QUIC core drives a connection: aioquic (the reference) or qh3 (optional).

Both keep aioquic's sans-I/O shape (``QuicConnection``, ``QuicConfiguration``, events), so the
driver is one; what differs lives in one adapter module per core, ``_aioquic`` and ``_qh3``,
each offering everything :class:`QuicCore` lists. Importing this module loads neither core:
configuration validates a backend name here (:func:`check_installed`) without paying for it.

Contract: :func:`load` returns an adapter or raises :class:`~quicnproto.errors.ConfigError`;
an adapter's functions never raise for state they cannot reach (they fall back, see the
adapter's table), except in its ``strict`` mode used by the liveness tests.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
from types import ModuleType
from typing import TYPE_CHECKING, Protocol, cast

from quicnproto.errors import ConfigError

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.packet import QuicHeader


class QuicBackend(enum.StrEnum):
    """A sans-I/O QUIC core the transport can drive."""

    AIOQUIC = "aioquic"
    """aioquic, pure Python with a C buffer: the reference, always installed."""

    QH3 = "qh3"
    """qh3, aioquic's API over a native (Rust) core: ``pip install quicnproto[qh3]``."""


INSTALL_HINT = {QuicBackend.QH3: "pip install quicnproto[qh3]"}
"""How to install an optional backend."""


class QuicCore(Protocol):
    """What an adapter module (``_aioquic``, ``_qh3``) offers the driver.

    Types are aioquic's, the reference API; qh3's classes have the same attributes and
    methods, and its adapter says so with casts.
    """

    @property
    def events(self) -> ModuleType:
        """The core's events module (``StreamDataReceived``, ``HandshakeCompleted``...)."""
        ...

    STREAM_ERRORS: tuple[type[Exception], ...]
    """What the core raises when a stream or connection can no longer do what was asked
    (a stream already reset or finished, a connection already closed)."""

    def server_configuration(
        self, *, alpn: str, idle_timeout: float, certificate: bytes, private_key: bytes
    ) -> QuicConfiguration:
        """A server's configuration from a DER certificate and DER (PKCS#8) key."""
        ...

    def client_configuration(
        self, *, alpn: str, idle_timeout: float, pinned_certificate: bytes
    ) -> QuicConfiguration:
        """A client's configuration trusting only ``pinned_certificate`` (DER)."""
        ...

    def server_connection(
        self,
        configuration: QuicConfiguration,
        *,
        original_destination_connection_id: bytes,
        retry_source_connection_id: bytes | None,
    ) -> QuicConnection:
        """A new server-side connection."""
        ...

    def client_connection(self, configuration: QuicConfiguration) -> QuicConnection:
        """A new client-side connection."""
        ...

    def may_open_stream(self, quic: QuicConnection, stream_id: int) -> bool:
        """Whether the peer's stream credit (RFC 9000 §4.6) allows opening ``stream_id`` now,
        for a core that refuses a stream beyond it rather than queueing it."""
        ...

    def unacknowledged_bytes(self, quic: QuicConnection, stream_id: int) -> int:
        """Bytes of a stream the writer should count against its send high-water mark."""
        ...

    def ack_with_data(self, quic: QuicConnection, now: float) -> None:
        """Make a pending 1-RTT ACK ride in the packet about to carry application data."""
        ...

    def close_pending(self, quic: QuicConnection) -> bool:
        """Whether a CONNECTION_CLOSE waits to be sent (True when unknown)."""
        ...

    def set_ack_delay(self, quic: QuicConnection, delay: float) -> None:
        """Set how long an ACK is delayed after an ack-eliciting packet, where possible."""
        ...

    def peer_certificate_der(self, quic: QuicConnection) -> bytes | None:
        """The peer's DER certificate, or ``None`` (a pin check then fails closed)."""
        ...

    def encode_refusal(self, header: QuicHeader, error_code: int) -> bytes:
        """A stateless Initial carrying CONNECTION_CLOSE(error_code) for a client's Initial."""
        ...

    def discard(self, quic: QuicConnection) -> None:
        """Free a connection nobody will use again without waiting for the cyclic collector."""
        ...


def is_installed(backend: QuicBackend) -> bool:
    """Whether ``backend``'s package can be imported (found, not loaded)."""
    return importlib.util.find_spec(backend.value) is not None


def check_installed(name: str) -> QuicBackend:
    """The backend called ``name``, checked to be known and installed.

    Raises:
        ConfigError: unknown name, or the backend's package is not installed.
    """
    try:
        backend = QuicBackend(name)
    except ValueError:
        known = ", ".join(b.value for b in QuicBackend)
        raise ConfigError(f"unknown QUIC backend {name!r} (one of: {known})") from None
    if not is_installed(backend):
        raise ConfigError(
            f"{backend.value} is not installed: {INSTALL_HINT.get(backend, 'pip install it')}"
        )
    return backend


def load(backend: QuicBackend | str) -> QuicCore:
    """The adapter module of ``backend``, imported on first use.

    Raises:
        ConfigError: unknown or not installed (see :func:`check_installed`).
    """
    checked = check_installed(str(backend))
    # A module, not a class: mypy cannot match a module against a protocol here, so the
    # members are checked by tests/quicnproto/unit/test_aioquic_private.py instead.
    module = importlib.import_module(f"quicnproto.transport.quic._{checked.value}")
    return cast("QuicCore", module)


CORE_MEMBERS = (
    "events",
    "STREAM_ERRORS",
    "server_configuration",
    "client_configuration",
    "server_connection",
    "client_connection",
    "may_open_stream",
    "unacknowledged_bytes",
    "ack_with_data",
    "close_pending",
    "set_ack_delay",
    "peer_certificate_der",
    "encode_refusal",
    "discard",
)
"""The names every adapter module defines (those of :class:`QuicCore`)."""
