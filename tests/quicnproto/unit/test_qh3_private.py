"""Liveness of every helper in ``transport/quic/_qh3.py`` against the installed qh3.

As ``test_aioquic_private.py`` does for aioquic: a real qh3 client/server pair in memory
(sans-I/O, datagrams carried by the test, time passed explicitly) is driven into the state a
helper reads, and the test checks that the helper sees it, with ``_qh3.strict`` set. Run these
before raising the qh3 cap in pyproject.toml. Skipped when qh3 is not installed (it is an
optional extra; ``.[dev]`` installs it, so CI runs them).
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

pytest.importorskip("qh3")

from aioquic.buffer import Buffer  # type: ignore[attr-defined]  # noqa: E402
from aioquic.quic.packet import QuicErrorCode, QuicPacketType, pull_quic_header  # noqa: E402

from quicnproto.transport.quic import _qh3  # noqa: E402
from quicnproto.transport.tls import generate_self_signed_certificate  # noqa: E402

ALPN = "quicnproto-test"
ADDR = ("127.0.0.1", 4433)
CLIENT_ADDR = ("127.0.0.1", 50000)


@pytest.fixture(autouse=True)
def strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_qh3, "strict", True)


class Pair:
    """A qh3 client and server built by the adapter, datagrams carried across by :meth:`flow`."""

    def __init__(self) -> None:
        self.certificate, private_key = generate_self_signed_certificate()
        self.client: Any = _qh3.client_connection(
            _qh3.client_configuration(
                alpn=ALPN, idle_timeout=60.0, pinned_certificate=self.certificate
            )
        )
        self.server_configuration = _qh3.server_configuration(
            alpn=ALPN, idle_timeout=60.0, certificate=self.certificate, private_key=private_key
        )
        self.server: Any = None
        self.now = 1.0

    def _to_server(self) -> int:
        sent = 0
        for data, _ in self.client.datagrams_to_send(now=self.now):
            if self.server is None:
                header = pull_quic_header(Buffer(data=data), host_cid_length=8)
                self.server = _qh3.server_connection(
                    self.server_configuration,
                    original_destination_connection_id=header.destination_cid,
                    retry_source_connection_id=None,
                )
            self.server.receive_datagram(data, CLIENT_ADDR, now=self.now)
            sent += 1
        return sent

    def _to_client(self) -> int:
        sent = 0
        for data, _ in self.server.datagrams_to_send(now=self.now):
            self.client.receive_datagram(data, ADDR, now=self.now)
            sent += 1
        return sent

    def flow(self, *, rounds: int = 10) -> None:
        """Carry datagrams both ways until neither side has anything left to send."""
        for _ in range(rounds):
            if not (self._to_server() + self._to_client()):
                return

    def connect(self) -> Pair:
        self.client.connect(ADDR, now=self.now)
        self.flow()
        assert _events_of(self.client, _qh3.events.HandshakeCompleted)
        assert _events_of(self.server, _qh3.events.HandshakeCompleted)
        for _ in range(3):
            self.later(1.0)
            self.flow()
        return self

    def later(self, seconds: float) -> None:
        """Move the clock and fire both sides' due timers."""
        self.now += seconds
        for quic in (self.client, self.server):
            timer = quic.get_timer()
            if timer is not None and timer <= self.now:
                quic.handle_timer(now=self.now)


def _events_of(quic: Any, kind: type) -> list[Any]:
    found = []
    while (event := quic.next_event()) is not None:
        if isinstance(event, kind):
            found.append(event)
    return found


def test_unacknowledged_bytes_counts_written_data_until_it_is_sent() -> None:
    pair = Pair().connect()
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_stream_data(stream_id, b"x" * 10_000)
    assert _qh3.unacknowledged_bytes(pair.client, stream_id) == 10_000
    for _ in range(50):  # pacing spreads the data out
        pair.flow()
        if not _qh3.unacknowledged_bytes(pair.client, stream_id):
            break
        pair.later(0.01)
    assert _qh3.unacknowledged_bytes(pair.client, stream_id) == 0


def test_unacknowledged_bytes_is_zero_for_an_unknown_stream() -> None:
    pair = Pair().connect()
    assert _qh3.unacknowledged_bytes(pair.client, 400) == 0


def test_peer_certificate_der_is_the_servers_certificate_on_the_client() -> None:
    pair = Pair().connect()
    assert _qh3.peer_certificate_der(pair.client) == pair.certificate


def test_close_pending_always_asks_for_a_transmit() -> None:
    pair = Pair().connect()
    assert _qh3.close_pending(pair.client) is True
    pair.client.close(error_code=0)
    pair.client.datagrams_to_send(now=pair.now)
    assert _qh3.close_pending(pair.client) is True


def test_a_stream_write_after_close_raises_one_of_the_stream_errors() -> None:
    # The driver catches exactly STREAM_ERRORS around stream writes: what qh3 raises once
    # its core has closed must be among them.
    pair = Pair().connect()
    pair.client.close(error_code=0)
    pair.flow()
    with pytest.raises(_qh3.STREAM_ERRORS):
        pair.server.send_stream_data(1, b"late")


def test_encode_refusal_closes_the_clients_connection_with_the_code() -> None:
    pair = Pair()
    pair.client.connect(ADDR, now=pair.now)
    (initial, _), *_ = pair.client.datagrams_to_send(now=pair.now)
    header = pull_quic_header(Buffer(data=initial), host_cid_length=8)
    refusal = _qh3.encode_refusal(header, QuicErrorCode.CONNECTION_REFUSED)
    reply = pull_quic_header(Buffer(data=refusal), host_cid_length=8)
    assert reply.packet_type == QuicPacketType.INITIAL
    pair.client.receive_datagram(refusal, ADDR, now=pair.now)
    terminated: list[Any] = []
    for _ in range(5):
        terminated += _events_of(pair.client, _qh3.events.ConnectionTerminated)
        if terminated:
            break
        pair.now += 1.0
        pair.client.handle_timer(now=pair.now)
    assert [event.error_code for event in terminated] == [QuicErrorCode.CONNECTION_REFUSED]


def test_discard_lets_reference_counting_free_a_connected_connection() -> None:
    pair = Pair().connect()
    pair.client.send_stream_data(0, b"x", end_stream=True)
    pair.flow()
    server = pair.server
    gc.collect()
    gc.disable()
    try:
        del pair
        discarded = weakref.ref(server)
        _qh3.discard(server)
        del server
        assert discarded() is None
    finally:
        gc.enable()
