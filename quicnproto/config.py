"""Configuration of the quicnproto node and client.

Every limit from VALIDATION §5.7 is a field with that value as its default, so an operator can
tune it and a test can shrink it. The dataclasses hold values only; ``cli.py`` fills them from
flags and environment variables and ``config.py`` checks them (:meth:`NodeConfig.validate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from quicnproto.errors import ConfigError
from quicnproto.transport.quic.backends import QuicBackend, check_installed
from quicnproto.transport.quic.limits import RetryMode, TransportLimits

DEFAULT_PORT = 4201
"""The node's UDP port unless told otherwise."""

DEFAULT_METRICS_PORT = 9464
"""TCP port of the metrics endpoint when ``--metrics`` names only a host (the port commonly used
by Prometheus exporters of OpenTelemetry)."""

ALPN = "quicnproto/1"
"""The only ALPN protocol the node and client speak (pinned, VALIDATION SRV-Q-06)."""

KiB = 1024
MiB = 1024 * KiB

MAX_FRAME_SIZE = 4 * MiB
"""Largest request frame. VALIDATION §5.7 allows 1 MiB for ordinary messages and a 4 MiB cap
for a Welcome or GroupInfo carrying a tree; the frame cap is the larger one."""

ENVELOPE_HEADROOM = 64 * KiB
"""Room a frame keeps beside the payloads it carries (the Cap'n Proto envelope, ids, keys)."""

MAX_PAYLOAD_SIZE = MAX_FRAME_SIZE - ENVELOPE_HEADROOM
"""Largest enqueued payload: it and its envelope fit one request frame, and one message fits
one fetch answer."""


@dataclass(frozen=True)
class StoreLimits:
    """The quotas the store enforces inside its transactions, and what a valid row holds. The
    defaults are the node's (VALIDATION §5.7); :class:`NodeConfig` takes its own from here."""

    queue_max_messages: int = 10_000
    """Messages one recipient's queue may hold."""

    queue_max_bytes: int = 100 * MiB
    """Payload bytes one recipient's queue may hold."""

    key_packages_per_identity: int = 200
    """Stored KeyPackages per identity, last resort included."""

    dedupe_retention: float = 7 * 24 * 3600.0
    """Seconds a message id is remembered for idempotent retries."""

    message_ttl: float = 31 * 24 * 3600.0
    """Seconds after its enqueue a message expires (VALIDATION SRV-DEL-07: 31 days, as
    Signal)."""

    max_payload_size: int = MAX_PAYLOAD_SIZE
    """Largest payload a message holds; larger rows are quarantined at open."""

    max_key_package_size: int = 64 * KiB
    """Largest KeyPackage accepted at upload; larger rows are quarantined at open."""

    key_package_max_lifetime: int = 90 * 24 * 3600
    """Longest KeyPackage lifetime accepted at upload, in seconds (90 days): a consumed package
    whose own end of lifetime is unknown (rows from before schema version 4) is forgotten this
    long after its consumption, as it could no longer be accepted again by then."""


def parse_address(
    text: str, *, default_port: int = DEFAULT_PORT, allow_port_zero: bool = False
) -> tuple[str, int]:
    """Parse ``host:port``, ``[v6]:port`` or a bare ``host``.

    Args:
        text: the address.
        default_port: the port of a bare ``host``.
        allow_port_zero: accept port 0 ("any free port"): only an address to bind means
            something with it, a node to reach never listens there.

    Raises:
        ConfigError: the port is not a number in 1..65535 (0..65535 with ``allow_port_zero``)
            or the host is empty.
    """
    text = text.strip()
    host, port_text, has_port = text, "", False
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(f"bad address {text!r}: unclosed '['")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"bad address {text!r}")
            port_text, has_port = rest[1:], True
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        has_port = True
    if not host:
        raise ConfigError(f"bad address {text!r}: empty host")
    if not has_port:
        return host, default_port
    lowest = 0 if allow_port_zero else 1
    if not port_text.isdigit() or not lowest <= int(port_text) <= 65535:
        raise ConfigError(f"bad address {text!r}: port must be {lowest}..65535")
    return host, int(port_text)


def check_log_level(level: str) -> None:
    """Refuse a logging level name :mod:`logging` does not know (case-insensitive).

    Raises:
        ConfigError: not one of ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``, ``CRITICAL``
            (or another name :mod:`logging` registered).
    """
    known = logging.getLevelNamesMapping()
    if level.upper() not in known or level.upper() == "NOTSET":
        raise ConfigError(
            f"unknown log level {level!r} (one of: debug, info, warning, error, critical)"
        )


@dataclass
class NodeConfig:
    """How a node listens, where it keeps its state, and the limits it enforces."""

    host: str = "0.0.0.0"  # noqa: S104 - a server listens on all interfaces by default
    """Address to bind the UDP socket to."""

    port: int = DEFAULT_PORT
    """UDP port; 0 picks a free one (reported through ``task_status.started``)."""

    data_dir: Path = field(default_factory=lambda: Path("data"))
    """Directory for the certificate, key and database unless those are given explicitly."""

    tls_cert: Path | None = None
    """DER certificate; default ``<data_dir>/server-cert.der``; created on first start."""

    tls_key: Path | None = None
    """DER private key; default ``<data_dir>/server-key.der``; created on first start."""

    db: Path | None = None
    """SQLite database file; default ``<data_dir>/node.sqlite3``."""

    alpn: str = ALPN
    """The pinned ALPN protocol."""

    max_frame_size: int = MAX_FRAME_SIZE
    """Largest request frame (see :data:`MAX_FRAME_SIZE`)."""

    max_payload_size: int = StoreLimits.max_payload_size
    """Largest enqueued payload (bytes)."""

    nesting_limit: int = 16
    """Cap'n Proto nesting limit (VALIDATION §5.7); the traversal limit is 2x the frame words."""

    max_streams_per_connection: int = TransportLimits.max_streams_per_connection
    """Concurrently open request streams per QUIC connection (VALIDATION §5.7)."""

    max_connections_per_address: int = TransportLimits.max_connections_per_address
    """Concurrent QUIC connections per source IP (VALIDATION §5.7)."""

    max_connections: int = TransportLimits.max_connections
    """Concurrent QUIC connections in all (VALIDATION SRV-Q-01); raise it with
    ``max_connections_per_address`` for many clients behind one address (a NAT, a load
    generator)."""

    request_deadline: float = 10.0
    """Seconds a client has to deliver a whole request frame (VALIDATION §5.7)."""

    idle_timeout: float = TransportLimits.idle_timeout
    """Seconds of silence between requests before a connection is dropped (VALIDATION §5.7)."""

    max_connection_age: float = TransportLimits.max_connection_age
    """Seconds after which a connection is closed regardless of activity (VALIDATION §5.7)."""

    retry: RetryMode = RetryMode.AUTO
    """When clients must prove their address with a Retry round trip before the node keeps any
    state for them (VALIDATION SRV-Q-04): ``auto`` only while many handshakes are unvalidated
    (a flood of Initials), ``always``, or ``never``."""

    quic_backend: QuicBackend = QuicBackend.AIOQUIC
    """The sans-I/O QUIC core: ``aioquic`` (the reference) or ``qh3`` (native, optional:
    ``pip install quicnproto[qh3]``); see docs/dependencies.md."""

    queue_max_messages: int = StoreLimits.queue_max_messages
    """Messages one recipient's queue may hold (VALIDATION §5.7)."""

    queue_max_bytes: int = StoreLimits.queue_max_bytes
    """Payload bytes one recipient's queue may hold (VALIDATION §5.7)."""

    key_packages_per_identity: int = StoreLimits.key_packages_per_identity
    """Stored KeyPackages per identity, last resort included (VALIDATION §5.7)."""

    key_package_claims: int = 10
    """KeyPackage claims allowed per (requester, target) per ``key_package_claim_window``."""

    key_package_claim_window: float = 600.0
    """Seconds over which ``key_package_claims`` refill (VALIDATION §5.7: 10 per 10 min)."""

    key_package_max_lifetime: int = StoreLimits.key_package_max_lifetime
    """Longest KeyPackage lifetime accepted at upload, in seconds (VALIDATION §5.7: 90 days)."""

    max_key_package_size: int = StoreLimits.max_key_package_size
    """Largest KeyPackage accepted at upload (bytes)."""

    enqueue_burst: int = 1000
    """Per-sender token bucket size for enqueue (messages)."""

    enqueue_rate: float = 200.0
    """Per-sender token refill rate for enqueue (messages per second)."""

    max_recipients: int = 1000
    """Recipients one enqueue may fan out to."""

    max_fanout_bytes: int = 64 * MiB
    """Payload bytes one enqueue may store in total (payload size x recipients): without it one
    request could write ``max_recipients`` copies of the largest payload (4 GiB) at once."""

    max_message_id_size: int = 64
    """Longest client-chosen message id (bytes)."""

    max_identities_per_connection: int = 16
    """Identities one QUIC connection may prove (each later request checks them all)."""

    fetch_max_messages: int = 100
    """Page size cap for fetch; a larger ``limit`` is lowered to this."""

    fetch_max_bytes: int = MAX_PAYLOAD_SIZE
    """Payload bytes one fetch answer may carry (it always carries at least one message), so
    the answer fits a client's ``max_frame_size`` and the node never builds a huge one."""

    max_wait_ms: int = 30_000
    """Longest long-poll a fetch may ask for."""

    dedupe_retention: float = StoreLimits.dedupe_retention
    """Seconds a message id is remembered for idempotent retries."""

    message_ttl: float = StoreLimits.message_ttl
    """Seconds a queued message waits for its recipient before it expires (VALIDATION
    SRV-DEL-07: 31 days, as Signal). Expired messages are never served; a fetch reports them
    as a gap (``Fetched.expired_count``) so the recipient knows it lost them."""

    log_json: bool = False
    """Write structured logs as JSON lines instead of plain text."""

    log_level: str = "INFO"
    """Logging level name."""

    metrics: tuple[str, int] | None = None
    """``(host, port)`` to serve Prometheus metrics on over HTTP (``GET /metrics``); None (the
    default) turns metrics off entirely. Port 0 picks a free one (logged as
    ``metrics_listening``)."""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)

    @property
    def cert_path(self) -> Path:
        """The certificate file actually used."""
        return Path(self.tls_cert) if self.tls_cert else self.data_dir / "server-cert.der"

    @property
    def key_path(self) -> Path:
        """The private key file actually used."""
        return Path(self.tls_key) if self.tls_key else self.data_dir / "server-key.der"

    @property
    def db_path(self) -> Path:
        """The SQLite file actually used."""
        return Path(self.db) if self.db else self.data_dir / "node.sqlite3"

    def store_limits(self) -> StoreLimits:
        """The store's quotas and row bounds as this configuration sets them."""
        return StoreLimits(
            queue_max_messages=self.queue_max_messages,
            queue_max_bytes=self.queue_max_bytes,
            key_packages_per_identity=self.key_packages_per_identity,
            dedupe_retention=self.dedupe_retention,
            message_ttl=self.message_ttl,
            max_payload_size=self.max_payload_size,
            max_key_package_size=self.max_key_package_size,
            key_package_max_lifetime=self.key_package_max_lifetime,
        )

    def transport_limits(self) -> TransportLimits:
        """The transport's caps as this configuration sets them (VALIDATION §5.7); a stream
        buffers one whole request frame and its length prefix."""
        return TransportLimits(
            max_streams_per_connection=self.max_streams_per_connection,
            max_connections_per_address=self.max_connections_per_address,
            max_connections=self.max_connections,
            max_stream_buffer=self.max_frame_size + 64,
            idle_timeout=self.idle_timeout,
            max_connection_age=self.max_connection_age,
        )

    def validate(self) -> None:
        """Check ranges.

        Raises:
            ConfigError: a value is out of range.
        """
        if not 0 <= self.port <= 65535:
            raise ConfigError("port must be 0..65535")
        if self.metrics is not None and not 0 <= self.metrics[1] <= 65535:
            raise ConfigError("metrics port must be 0..65535")
        positive = (
            "max_frame_size",
            "max_payload_size",
            "nesting_limit",
            "max_streams_per_connection",
            "max_connections_per_address",
            "max_connections",
            "request_deadline",
            "idle_timeout",
            "max_connection_age",
            "queue_max_messages",
            "queue_max_bytes",
            "key_packages_per_identity",
            "key_package_claims",
            "key_package_claim_window",
            "key_package_max_lifetime",
            "max_key_package_size",
            "enqueue_burst",
            "enqueue_rate",
            "max_recipients",
            "max_fanout_bytes",
            "max_message_id_size",
            "max_identities_per_connection",
            "fetch_max_messages",
            "fetch_max_bytes",
            "message_ttl",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.max_wait_ms < 0:
            raise ConfigError("max_wait_ms must not be negative")
        if not isinstance(self.retry, RetryMode):
            try:
                self.retry = RetryMode(self.retry)
            except ValueError:
                raise ConfigError(
                    f"unknown retry mode {self.retry!r} (one of: auto, always, never)"
                ) from None
        self.quic_backend = check_installed(self.quic_backend)
        check_log_level(self.log_level)


@dataclass
class ClientConfig:
    """Where a client finds the node and how it trusts it."""

    host: str = "127.0.0.1"
    """The node's host name or address."""

    port: int = DEFAULT_PORT
    """The node's UDP port."""

    server_cert: Path = field(default_factory=lambda: Path("data/server-cert.der"))
    """The node's DER certificate, pinned: the only certificate the client accepts."""

    alpn: str = ALPN
    """The pinned ALPN protocol."""

    request_timeout: float = 10.0
    """Seconds to wait for an answer (a long-poll adds its own wait to this)."""

    connect_timeout: float = TransportLimits.handshake_timeout
    """Seconds allowed for the QUIC + TLS handshake."""

    idle_timeout: float = TransportLimits.idle_timeout
    """The QUIC idle timeout the client offers (the connection uses the lower of the client's
    and the node's); while a request is open, a long-poll included, the client sends a PING
    every third of it. Raise it, with the node's ``idle_timeout``, for many long-polling
    clients: each PING costs the node a datagram in and an ACK out."""

    max_streams_per_connection: int = TransportLimits.max_streams_per_connection
    """Requests in flight at once; more wait for a free stream. Keep it at or below the node's
    ``max_streams_per_connection``, and mind that each long-poll holds one."""

    max_frame_size: int = MAX_FRAME_SIZE + ENVELOPE_HEADROOM
    """Largest response frame accepted."""

    nesting_limit: int = 16
    """Cap'n Proto nesting limit for responses."""

    quic_backend: QuicBackend = QuicBackend.AIOQUIC
    """The sans-I/O QUIC core: ``aioquic`` (the reference) or ``qh3`` (native, optional:
    ``pip install quicnproto[qh3]``). Either speaks to a node running either."""

    def __post_init__(self) -> None:
        self.server_cert = Path(self.server_cert)

    def validate(self) -> None:
        """Check what a connection needs (:func:`~quicnproto.client.connection.open_client`
        calls it).

        Raises:
            ConfigError: the port is not 1..65535 (a node never listens on port 0), a
                timeout or limit is not positive, or the QUIC backend is unknown or not
                installed.
        """
        if not 1 <= self.port <= 65535:
            raise ConfigError("the node's port must be 1..65535")
        if not self.request_timeout > 0:
            raise ConfigError("the request timeout must be positive")
        if not self.connect_timeout > 0:
            raise ConfigError("the connect timeout must be positive")
        if not self.idle_timeout > 0:
            raise ConfigError("the idle timeout must be positive")
        for name in ("max_streams_per_connection", "max_frame_size", "nesting_limit"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        self.quic_backend = check_installed(self.quic_backend)
