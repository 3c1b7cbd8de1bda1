"""The transport's limits (:class:`TransportLimits`, VALIDATION.md §5.7) and tuning constants."""

from __future__ import annotations

import enum
from dataclasses import dataclass

SMALLEST_MAX_DATAGRAM_SIZE = 1200  # RFC 9000 §14: the smallest UDP payload QUIC may assume


SOCKET_BUFFER_SIZE = 4 * 1024 * 1024
"""Requested SO_RCVBUF / SO_SNDBUF (the kernel may cap it)."""

RECV_BATCH = 64
"""Datagrams read per wake-up before transmitting and yielding."""

MAX_DATAGRAM = 65535
"""Largest datagram read from the socket."""

SEND_CHUNK = 64 * 1024
"""Bytes handed to aioquic per write; ``send_all`` waits for the send window between chunks."""

SEND_HIGH_WATER = 256 * 1024
"""A writer waits while more than this many bytes of its stream are unacknowledged."""

TIMER_GRANULARITY = 0.001
"""Seconds to wait before firing a timer that did not move when it last fired."""

MAX_FINISHED_RANGES = 1024
"""Gaps allowed in the set of finished peer stream IDs before the connection is closed."""

SEND_BACKLOG = 4096
"""Datagrams queued while the socket would block; beyond this they are dropped (QUIC recovers)."""

ACK_DELAY = 0.02
"""Seconds a 1-RTT ACK may wait for a packet to ride in, once the handshake is done. Well
under the ``max_ack_delay`` aioquic advertises (25 ms, which the peer adds to its PTO); an ACK
is sent at once after :data:`ACK_AFTER_BYTES` (RFC 9000 §13.2.2 asks for every second
ack-eliciting packet), so bulk transfers are not slowed."""

ACK_AFTER_BYTES = 2 * SMALLEST_MAX_DATAGRAM_SIZE
"""Received bytes after which a pending ACK is sent at once. Counted in bytes rather than
datagrams so that small ACK-only datagrams (not ack-eliciting) do not trigger it."""


class RetryMode(enum.StrEnum):
    """When a server validates a client's address with a Retry round trip (RFC 9000 §8.1.2)."""

    AUTO = "auto"
    """Only while more than :attr:`TransportLimits.retry_threshold` unvalidated handshakes are
    in progress (a flood of Initials), so normal connections cost no extra round trip."""

    ALWAYS = "always"
    """Every connection: no state is kept for a client before its token comes back."""

    NEVER = "never"
    """No Retry: every acceptable Initial gets a connection at once."""


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

    pre_handshake_timeout: float = 3.0
    """Seconds a server connection may hold its per-address and global slots before its
    handshake completes (at most ``handshake_timeout``); then it is dropped at once, without a
    closing period. Bounds what a flood of Initials that never complete can hold."""

    retry_threshold: int = 64
    """Unvalidated server handshakes in progress beyond which, with :attr:`RetryMode.AUTO`,
    an Initial without a token is answered with a stateless Retry."""

    retry_token_lifetime: float = 5.0
    """Seconds a Retry token is accepted after it was issued (clients return it at once; RFC
    9000 §8.1.3)."""

    max_connections: int = 4096
    """Connections a server holds in total; further Initial packets are refused."""
