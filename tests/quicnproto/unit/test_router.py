"""The server's Router without sockets, on Trio's mock clock: Retry modes, and what
handshakes that never complete hold and for how long (issue 11, VALIDATION SRV-Q-01/04)."""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import trio
from aioquic.buffer import Buffer  # type: ignore[attr-defined]  # re-exported, untyped
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicPacketType, pull_quic_header

from quicnproto.transport.quic import RetryMode, TransportLimits
from quicnproto.transport.quic.connection import Connection
from quicnproto.transport.quic.endpoint import Datagrams
from quicnproto.transport.quic.server import Router
from quicnproto.transport.tls import (
    generate_self_signed_certificate,
    parse_certificate,
    parse_private_key,
)

LIMITS = TransportLimits(
    max_connections_per_address=4, max_connections=8, pre_handshake_timeout=2.0, retry_threshold=3
)


def initial(token: bytes = b"") -> bytes:
    """A client Initial with a random DCID and a payload nobody can decrypt."""
    header = b"".join(
        (
            bytes([0xC3]),
            (1).to_bytes(4, "big"),
            bytes([8]),
            os.urandom(8),
            bytes([8]),
            os.urandom(8),
            bytes([len(token)]),
            token,
        )
    )
    length = 1200 - len(header) - 2
    return header + (0x4000 | length).to_bytes(2, "big") + os.urandom(length)


async def no_handler(stream: Any) -> None:
    pass


@asynccontextmanager
async def running_router(retry: RetryMode) -> AsyncIterator[tuple[Router, Datagrams]]:
    certificate, private_key = generate_self_signed_certificate()
    configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=["test"],
        certificate=parse_certificate(certificate),
        private_key=parse_private_key(private_key),
    )
    sent: Datagrams = []
    router = Router(configuration, limits=LIMITS, send=sent.extend, handler=no_handler, retry=retry)
    async with trio.open_nursery() as nursery:
        router.nursery = nursery
        yield router, sent
        nursery.cancel_scope.cancel()


def deliver(router: Router, data: bytes, addr: tuple[str, int]) -> Connection | None:
    """What the endpoint does with one datagram."""
    conn = router.route(data, addr)
    if conn is not None:
        conn.receive_datagram(data, addr)
        conn.after_receive()
    return conn


def packet_types(sent: Datagrams) -> list[QuicPacketType]:
    return [pull_quic_header(Buffer(data=data), host_cid_length=8).packet_type for data, _ in sent]


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_unfinished_handshakes_release_their_slots_at_the_pre_handshake_deadline(
    autojump_clock: Any,
) -> None:
    async with running_router(RetryMode.NEVER) as (router, sent):
        with no_cyclic_gc():
            accepted = [deliver(router, initial(), ("127.0.4.1", 4000 + i)) for i in range(4)]
            assert all(accepted)
            quics = [weakref.ref(conn.quic) for conn in accepted if conn is not None]
            del accepted
            # The address's four slots are taken: a fifth Initial is refused.
            assert deliver(router, initial(), ("127.0.4.1", 5000)) is None
            assert router.per_address["127.0.4.1"] == 4
            await trio.sleep(LIMITS.pre_handshake_timeout - 0.1)
            assert len(router.connections) == 4
            await trio.sleep(0.2)
            # Dropped at the deadline, with no closing period: slots, routes, counts all gone,
            # and aioquic's connections freed by reference counting alone.
            assert not router.connections
            assert not router.routes
            assert not router.per_address
            assert not router.unvalidated
            await trio.sleep(0)
            assert all(ref() is None for ref in quics)
        assert deliver(router, initial(), ("127.0.4.1", 6000)) is not None


async def test_retry_always_keeps_nothing_for_a_client_without_a_token() -> None:
    async with running_router(RetryMode.ALWAYS) as (router, sent):
        for i in range(20):
            assert deliver(router, initial(), ("127.0.4.2", 4000 + i)) is None
        assert not router.connections and not router.routes and not router.per_address
        assert packet_types(sent) == [QuicPacketType.RETRY] * 20


async def test_retry_auto_answers_with_retry_only_above_the_threshold() -> None:
    async with running_router(RetryMode.AUTO) as (router, sent):
        for i in range(LIMITS.retry_threshold):
            assert deliver(router, initial(), (f"127.0.4.{10 + i}", 4000)) is not None
        assert not sent
        assert len(router.unvalidated) == LIMITS.retry_threshold
        assert deliver(router, initial(), ("127.0.4.99", 4000)) is None
        assert packet_types(sent) == [QuicPacketType.RETRY]
        assert len(router.connections) == LIMITS.retry_threshold


async def test_retry_auto_accepts_again_once_unfinished_handshakes_expired(
    autojump_clock: Any,
) -> None:
    async with running_router(RetryMode.AUTO) as (router, sent):
        for i in range(LIMITS.retry_threshold):
            deliver(router, initial(), (f"127.0.4.{10 + i}", 4000))
        assert deliver(router, initial(), ("127.0.4.99", 4000)) is None
        await trio.sleep(LIMITS.pre_handshake_timeout + 0.1)
        assert not router.unvalidated
        assert deliver(router, initial(), ("127.0.4.99", 4000)) is not None


async def test_a_forged_token_gets_invalid_token_and_no_state() -> None:
    async with running_router(RetryMode.AUTO) as (router, sent):
        assert deliver(router, initial(token=b"\x00" * 40), ("127.0.4.3", 4000)) is None
        assert not router.connections
        assert packet_types(sent) == [QuicPacketType.INITIAL]  # CONNECTION_CLOSE
