"""Liveness of every helper in ``transport/quic/_aioquic.py`` against the installed aioquic.

Each test drives a real aioquic client/server pair in memory (sans-I/O: datagrams handed across
by the test, time passed explicitly) into the state one helper reads, and checks that the
helper sees it. The module runs with ``_aioquic.strict`` set, so a helper whose private
attribute is gone raises :class:`PrivateApiError` instead of falling back: every test here
fails if aioquic renames what its helper relies on (``test_missing_private_state_is_detected``
shows it for each attribute). Run these before raising the aioquic cap in pyproject.toml.
"""

from __future__ import annotations

import gc
import logging
import ssl
import weakref
from typing import Any

import pytest
from aioquic import tls
from aioquic.buffer import Buffer  # type: ignore[attr-defined]
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicErrorCode, QuicPacketType, pull_quic_header
from cryptography.hazmat.primitives import serialization

from quicnproto.errors import PrivateApiError
from quicnproto.transport.quic import _aioquic
from quicnproto.transport.tls import (
    generate_self_signed_certificate,
    parse_certificate,
    parse_private_key,
)

ALPN = "quicnproto-test"
ADDR = ("127.0.0.1", 4433)
CLIENT_ADDR = ("127.0.0.1", 50000)


@pytest.fixture(autouse=True)
def strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_aioquic, "strict", True)


class Pair:
    """A client and a server ``QuicConnection``, datagrams carried across by :meth:`flow`."""

    def __init__(self) -> None:
        self.certificate, private_key = generate_self_signed_certificate()
        pinned = parse_certificate(self.certificate)
        self.client = QuicConnection(
            configuration=QuicConfiguration(
                is_client=True,
                alpn_protocols=[ALPN],
                verify_mode=ssl.CERT_REQUIRED,
                cadata=pinned.public_bytes(serialization.Encoding.PEM),
            )
        )
        self.server_configuration = QuicConfiguration(
            is_client=False,
            alpn_protocols=[ALPN],
            certificate=pinned,
            private_key=parse_private_key(private_key),
        )
        self.server: QuicConnection | None = None
        self.now = 1.0

    def _to_server(self) -> int:
        sent = 0
        for data, _ in self.client.datagrams_to_send(now=self.now):
            if self.server is None:
                header = pull_quic_header(Buffer(data=data), host_cid_length=8)
                self.server = QuicConnection(
                    configuration=self.server_configuration,
                    original_destination_connection_id=header.destination_cid,
                )
            self.server.receive_datagram(data, CLIENT_ADDR, now=self.now)
            sent += 1
        return sent

    def _to_client(self) -> int:
        assert self.server is not None
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
        assert self.server is not None
        assert _events_of(self.client, events.HandshakeCompleted)
        assert _events_of(self.server, events.HandshakeCompleted)
        for _ in range(3):  # let the delayed ACKs of the handshake go out
            self.later(1.0)
            self.flow()
        return self

    def later(self, seconds: float) -> None:
        """Move the clock and fire both sides' due timers."""
        self.now += seconds
        for quic in (self.client, self.server):
            assert quic is not None
            timer = quic.get_timer()
            if timer is not None and timer <= self.now:
                quic.handle_timer(now=self.now)


def _events_of(quic: QuicConnection, kind: type[events.QuicEvent]) -> list[Any]:
    found = []
    while (event := quic.next_event()) is not None:
        if isinstance(event, kind):
            found.append(event)
    return found


def test_unacknowledged_bytes_counts_sent_data_until_the_ack() -> None:
    pair = Pair().connect()
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_stream_data(stream_id, b"x" * 10_000)
    assert _aioquic.unacknowledged_bytes(pair.client, stream_id) == 10_000
    pair.flow()  # delivered, but the server's ACK is still delayed
    assert _aioquic.unacknowledged_bytes(pair.client, stream_id) > 0
    for _ in range(50):  # pacing spreads the data out; delayed ACKs come due
        pair.later(0.1)
        pair.flow()
        if not _aioquic.unacknowledged_bytes(pair.client, stream_id):
            break
    assert _aioquic.unacknowledged_bytes(pair.client, stream_id) == 0


def test_unacknowledged_bytes_is_zero_for_an_unknown_stream() -> None:
    pair = Pair().connect()
    assert _aioquic.unacknowledged_bytes(pair.client, 400) == 0


def test_ack_with_data_makes_the_pending_ack_due_now() -> None:
    pair = Pair().connect()
    assert pair.server is not None
    pair.client.send_stream_data(0, b"request")
    pair.flow()
    ack_at = pair.server._spaces[tls.Epoch.ONE_RTT].ack_at
    assert ack_at is not None and ack_at > pair.now  # an ACK waits for its delay
    _aioquic.ack_with_data(pair.server, pair.now)
    assert pair.server.get_timer() == pair.now
    pair.server.send_stream_data(0, b"answer", end_stream=True)
    pair._to_client()  # the answer carries the ACK: the client holds nothing unacknowledged
    assert _aioquic.unacknowledged_bytes(pair.client, 0) == 0


def test_close_pending_flips_on_close_and_back_once_sent() -> None:
    pair = Pair().connect()
    assert _aioquic.close_pending(pair.client) is False
    pair.client.close(error_code=0)
    assert _aioquic.close_pending(pair.client) is True
    pair.client.datagrams_to_send(now=pair.now)
    assert _aioquic.close_pending(pair.client) is False


@pytest.mark.parametrize("delay", [0.02, 0.05])
def test_set_ack_delay_sets_when_the_pending_ack_is_due(delay: float) -> None:
    pair = Pair().connect()
    assert pair.server is not None
    _aioquic.set_ack_delay(pair.server, delay)
    pair.client.send_stream_data(0, b"request")
    pair._to_server()
    ack_at = pair.server._spaces[tls.Epoch.ONE_RTT].ack_at
    assert ack_at == pytest.approx(pair.now + delay)


def test_peer_certificate_der_is_the_servers_certificate_on_the_client() -> None:
    pair = Pair().connect()
    assert _aioquic.peer_certificate_der(pair.client) == pair.certificate


def test_encode_refusal_closes_the_clients_connection_with_the_code() -> None:
    pair = Pair()
    pair.client.connect(ADDR, now=pair.now)
    (initial, _), *_ = pair.client.datagrams_to_send(now=pair.now)
    header = pull_quic_header(Buffer(data=initial), host_cid_length=8)
    refusal = _aioquic.encode_refusal(header, QuicErrorCode.CONNECTION_REFUSED)
    reply = pull_quic_header(Buffer(data=refusal), host_cid_length=8)
    assert reply.packet_type == QuicPacketType.INITIAL
    assert reply.destination_cid == header.source_cid
    assert len(refusal) < len(initial)
    pair.client.receive_datagram(refusal, ADDR, now=pair.now)
    terminated: list[events.ConnectionTerminated] = []
    for _ in range(5):
        terminated += _events_of(pair.client, events.ConnectionTerminated)
        if terminated:
            break
        pair.now += 1.0
        pair.client.handle_timer(now=pair.now)
    assert [event.error_code for event in terminated] == [QuicErrorCode.CONNECTION_REFUSED]


def test_discard_lets_reference_counting_free_a_connected_connection() -> None:
    # A connected QuicConnection sits in reference cycles; without discard, only the cyclic
    # collector would free it.
    pair = Pair().connect()
    pair.client.send_stream_data(0, b"x", end_stream=True)
    pair.flow()
    server, client = pair.server, pair.client
    assert server is not None
    gc.collect()
    gc.disable()
    try:
        kept = weakref.ref(client)
        del pair, client
        assert kept() is not None
        discarded = weakref.ref(server)
        _aioquic.discard(server)
        del server
        assert discarded() is None
    finally:
        gc.enable()


def _sender(pair: Pair) -> Any:
    pair.client.send_stream_data(0, b"x")
    return pair.client._streams[0].sender


def _space(pair: Pair) -> Any:
    assert pair.server is not None
    return pair.server._spaces[tls.Epoch.ONE_RTT]


# (object holding the attribute, attribute, the call that must notice it is gone)
MISSING = {
    "sender._buffer_stop": (
        _sender,
        "_buffer_stop",
        lambda p: _aioquic.unacknowledged_bytes(p.client, 0),
    ),
    "connection._streams": (
        lambda p: p.client,
        "_streams",
        lambda p: _aioquic.unacknowledged_bytes(p.client, 0),
    ),
    "connection._spaces": (
        lambda p: p.server,
        "_spaces",
        lambda p: _aioquic.ack_with_data(p.server, p.now),
    ),
    "space.ack_at": (_space, "ack_at", lambda p: _aioquic.ack_with_data(p.server, p.now)),
    "connection._close_pending": (
        lambda p: p.client,
        "_close_pending",
        lambda p: _aioquic.close_pending(p.client),
    ),
    "connection._ack_delay": (
        lambda p: p.server,
        "_ack_delay",
        lambda p: _aioquic.set_ack_delay(p.server, 0.02),
    ),
    "tls._peer_certificate": (
        lambda p: p.client.tls,
        "_peer_certificate",
        lambda p: _aioquic.peer_certificate_der(p.client),
    ),
}


@pytest.mark.parametrize("case", sorted(MISSING))
def test_missing_private_state_is_detected(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    holder, attribute, call = MISSING[case]
    pair = Pair().connect()
    monkeypatch.delattr(holder(pair), attribute)
    with pytest.raises(PrivateApiError) as info:
        call(pair)
    assert attribute in info.value.attribute


def test_missing_private_state_falls_back_and_warns_once_when_not_strict(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_aioquic, "strict", False)
    monkeypatch.setattr(_aioquic, "_reported", set())
    pair = Pair().connect()
    monkeypatch.delattr(_sender(pair), "_buffer_stop")
    with caplog.at_level(logging.WARNING, logger="quicnproto.transport"):
        assert _aioquic.unacknowledged_bytes(pair.client, 0) == 0
        assert _aioquic.unacknowledged_bytes(pair.client, 0) == 0
    warnings = [r for r in caplog.records if r.getMessage() == "aioquic_private_api_missing"]
    assert len(warnings) == 1


def test_our_smallest_datagram_size_is_aioquics() -> None:
    # limits.py restates aioquic's constant so that importing the limits loads no aioquic
    from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE

    from quicnproto.transport.quic import limits

    assert limits.SMALLEST_MAX_DATAGRAM_SIZE == SMALLEST_MAX_DATAGRAM_SIZE
