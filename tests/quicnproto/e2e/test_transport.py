"""The Trio QUIC driver over real UDP on 127.0.0.1: echo, concurrency, limits, pinning, faults."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
import trio
from aioquic.quic.packet import QuicErrorCode
from hypothesis import given, settings
from hypothesis import strategies as st

from quicnproto.errors import ErrorCode, ProtocolError, TransportError, TransportReason
from quicnproto.transport import quic
from quicnproto.transport.frames import read_frame, write_frame
from quicnproto.transport.quic import (
    ConnectionClosedError,
    ConnectionInfo,
    QuicStream,
    RetryMode,
    StreamResetError,
    TransportLimits,
    backends,
    endpoint,
    open_quic_connection,
    serve_quic,
)
from quicnproto.transport.quic.backends import QuicBackend
from quicnproto.transport.tls import generate_self_signed_certificate
from tests.quicnproto.quic_backend import (
    TEST_BACKEND,
    aioquic_client_meets_the_server,
    backend_core,
)

pytestmark = pytest.mark.e2e

ALPN = "quicnproto-test"
Handler = Callable[[QuicStream], Awaitable[None]]


@dataclass
class Server:
    port: int
    certificate: bytes

    def connect(self, **kwargs: Any) -> Any:
        kwargs.setdefault("alpn", ALPN)
        kwargs.setdefault("server_certificate", self.certificate)
        kwargs.setdefault("backend", TEST_BACKEND)
        return open_quic_connection("127.0.0.1", self.port, **kwargs)


@asynccontextmanager
async def running_server(
    handler: Handler,
    limits: TransportLimits | None = None,
    alpn: str = ALPN,
    retry: RetryMode = RetryMode.NEVER,
    backend: QuicBackend = TEST_BACKEND,
) -> AsyncIterator[Server]:
    certificate, private_key = generate_self_signed_certificate()
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(
            partial(
                serve_quic,
                "127.0.0.1",
                0,
                certificate=certificate,
                private_key=private_key,
                alpn=alpn,
                handler=handler,
                limits=limits,
                retry=retry,
                backend=backend,
            )
        )
        yield Server(port, certificate)
        nursery.cancel_scope.cancel()


async def echo_handler(stream: QuicStream) -> None:
    while data := await stream.receive_some():
        await stream.send_all(data)
    await stream.send_eof()


async def framed_echo_handler(stream: QuicStream) -> None:
    """Echo frames on one stream until the peer finishes it."""
    while True:
        try:
            payload = await read_frame(stream, 1 << 20)
        except ProtocolError:
            return
        await write_frame(stream, payload, end_stream=False)


async def read_all(stream: QuicStream) -> bytes:
    out = bytearray()
    while data := await stream.receive_some():
        out += data
    return bytes(out)


async def echo_once(client: quic.QuicClient, payload: bytes) -> bytes:
    stream = await client.open_stream()
    await stream.send_all(payload, end_stream=True)
    return await read_all(stream)


async def wait_until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await trio.sleep(0.01)


async def test_echo_over_one_stream() -> None:
    async with running_server(echo_handler) as server, server.connect() as client:
        assert client.info.alpn_protocol == ALPN
        assert client.info.remote_address == ("127.0.0.1", server.port)
        assert await echo_once(client, b"hello quic") == b"hello quic"
        payload = os.urandom(300_000)
        assert await echo_once(client, payload) == payload


async def test_framed_echo_many_messages_on_one_stream() -> None:
    async with running_server(framed_echo_handler) as server, server.connect() as client:
        stream = await client.open_stream()
        for i in range(50):
            payload = f"message {i}".encode() * (i + 1)
            await write_frame(stream, payload, end_stream=False)
            assert await read_frame(stream, 1 << 20) == payload
        await stream.send_eof()
        assert await stream.receive_some() == b""


async def test_64_concurrent_streams() -> None:
    async with running_server(echo_handler) as server, server.connect() as client:
        results: dict[int, bytes] = {}

        async def one(i: int) -> None:
            results[i] = await echo_once(client, i.to_bytes(2, "big") * 500)

        async with trio.open_nursery() as nursery:
            for i in range(64):
                nursery.start_soon(one, i)
        assert results == {i: i.to_bytes(2, "big") * 500 for i in range(64)}


async def test_client_waits_instead_of_exceeding_the_stream_cap() -> None:
    limits = TransportLimits(max_streams_per_connection=4)
    async with (
        running_server(echo_handler, limits) as server,
        server.connect(limits=limits) as client,
    ):
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(echo_once, client, bytes([i]) * 10)
        # Every echo succeeded (no RATE_LIMITED reset), with at most 4 open at a time.


async def test_many_connections() -> None:
    seen: set[int] = set()

    async def handler(stream: QuicStream) -> None:
        seen.add(stream.connection.id)
        await echo_handler(stream)

    async with running_server(handler) as server:

        async def one(i: int) -> None:
            async with server.connect() as client:
                for j in range(3):
                    payload = f"{i}-{j}".encode()
                    assert await echo_once(client, payload) == payload

        async with trio.open_nursery() as nursery:
            for i in range(12):
                nursery.start_soon(one, i)
    assert len(seen) == 12


async def test_server_stream_cap_resets_excess_streams() -> None:
    release = trio.Event()
    running = 0

    async def handler(stream: QuicStream) -> None:
        nonlocal running
        running += 1
        await release.wait()
        await echo_handler(stream)

    server_limits = TransportLimits(max_streams_per_connection=4)
    # The client is configured to allow more, so the node's own cap is what is tested.
    client_limits = TransportLimits(max_streams_per_connection=100)
    async with (
        running_server(handler, server_limits) as server,
        server.connect(limits=client_limits) as client,
    ):
        outcomes: dict[int, bytes | int] = {}

        async def one(i: int) -> None:
            stream = await client.open_stream()
            await stream.send_all(bytes([i]), end_stream=True)
            try:
                outcomes[i] = await read_all(stream)
            except StreamResetError as exc:
                outcomes[i] = exc.error_code

        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(one, i)
                await wait_until(lambda i=i: running == min(i + 1, 4) or len(outcomes) > 0)
            await wait_until(lambda: len(outcomes) == 2)
            assert running == 4
            release.set()
        refused = [i for i, v in outcomes.items() if v == ErrorCode.RATE_LIMITED]
        echoed = {i: v for i, v in outcomes.items() if isinstance(v, bytes)}
        assert len(refused) == 2
        assert echoed == {i: bytes([i]) for i in echoed}
        assert len(echoed) == 4
        # Once the first four finished, new streams are accepted again.
        assert await echo_once(client, b"again") == b"again"


async def test_handler_exception_resets_stream_and_server_keeps_serving() -> None:
    async def handler(stream: QuicStream) -> None:
        data = await stream.receive_some()
        if data == b"boom":
            raise RuntimeError("handler bug")
        await stream.send_all(data, end_stream=True)

    async with running_server(handler) as server, server.connect() as client:
        stream = await client.open_stream()
        await stream.send_all(b"boom", end_stream=True)
        with pytest.raises(StreamResetError) as info:
            await read_all(stream)
        assert info.value.error_code == ErrorCode.INTERNAL
        assert await echo_once(client, b"fine") == b"fine"


async def test_unread_stream_data_is_bounded_by_a_reset() -> None:
    blocked = trio.Event()

    async def handler(stream: QuicStream) -> None:
        await blocked.wait()  # never reads

    limits = TransportLimits(max_stream_buffer=50_000)
    async with running_server(handler, limits) as server, server.connect() as client:
        stream = await client.open_stream()
        with pytest.raises(StreamResetError) as info:
            await stream.send_all(b"x" * 2_000_000)
            await read_all(stream)
        assert info.value.error_code == ErrorCode.FRAME_TOO_LARGE
        blocked.set()


async def test_connection_buffer_limit_resets_the_stream_that_overflows(
    autojump_clock: Any,
) -> None:
    blocked = trio.Event()

    async def handler(stream: QuicStream) -> None:
        await blocked.wait()

    limits = TransportLimits(max_stream_buffer=40_000, max_connection_buffer=60_000)
    async with running_server(handler, limits) as server, server.connect() as client:
        codes = []
        for _ in range(2):
            stream = await client.open_stream()
            try:
                await stream.send_all(b"y" * 35_000)
                with trio.move_on_after(1):
                    await stream.receive_some()
            except StreamResetError as exc:
                codes.append(exc.error_code)
        assert codes == [ErrorCode.QUOTA_EXCEEDED]
        blocked.set()


async def test_pinning_refuses_a_different_self_signed_certificate() -> None:
    other_certificate, _ = generate_self_signed_certificate()
    async with running_server(echo_handler) as server:
        with pytest.raises(TransportError):
            async with server.connect(server_certificate=other_certificate):
                pytest.fail("connected to a server whose certificate is not pinned")
        # The right pin still works afterwards.
        async with server.connect() as client:
            assert await echo_once(client, b"ok") == b"ok"


async def test_pin_compares_exact_bytes_even_with_the_same_key(monkeypatch: Any) -> None:
    async with running_server(echo_handler) as server:
        # Pretend the core's chain check passed for a look-alike: the byte comparison refuses.
        other_certificate, _ = generate_self_signed_certificate()
        real = server.certificate
        monkeypatch.setattr(backend_core(), "peer_certificate_der", lambda _quic: other_certificate)
        with pytest.raises(TransportError) as info:
            async with server.connect(server_certificate=real):
                pytest.fail("pin check skipped")
        assert info.value.reason == TransportReason.CERTIFICATE_MISMATCH


async def test_wrong_alpn_is_refused() -> None:
    async with running_server(echo_handler) as server:
        with pytest.raises(TransportError):
            async with server.connect(alpn="something-else"):
                pytest.fail("connected with the wrong ALPN")


async def test_server_survives_garbage_datagrams() -> None:
    rng = random.Random(4)
    async with running_server(echo_handler) as server:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            target = ("127.0.0.1", server.port)
            for size in [0, 1, 5, 20, 1200, 1500]:
                for _ in range(20):
                    await sock.sendto(rng.randbytes(size), target)
            # Long-header Initial look-alikes (version 1, random CIDs, padded to 1200).
            for _ in range(50):
                header = bytes([0xC0]) + (1).to_bytes(4, "big") + b"\x08" + rng.randbytes(8)
                await sock.sendto(header + b"\x08" + rng.randbytes(1200), target)
            # An unknown version gets a Version Negotiation answer, not a crash.
            await sock.sendto(
                bytes([0xC0]) + b"\x0a\x0a\x0a\x0a\x08" + b"A" * 8 + b"\x00" + b"\x00" * 1200,
                target,
            )
            with trio.fail_after(30):  # a guard against hanging, not a deadline under test
                answer = await sock.recv(2048)
            assert answer[1:5] == b"\x00\x00\x00\x00"  # version 0 = negotiation
        async with server.connect() as client:
            assert await echo_once(client, b"still alive") == b"still alive"


async def test_server_survives_a_client_that_vanishes(autojump_clock: Any) -> None:
    failures: list[type[BaseException]] = []
    infos: list[ConnectionInfo] = []

    async def handler(stream: QuicStream) -> None:
        infos.append(stream.connection)
        try:
            await read_all(stream)
        except TransportError as exc:
            failures.append(type(exc))
            raise

    limits = TransportLimits(idle_timeout=20.0)
    async with running_server(handler, limits) as server:
        async with server.connect() as client:
            stream = await client.open_stream()
            await stream.send_all(b"half a request")
            await wait_until(lambda: bool(infos))
            # The client disappears: nothing it sends from now on reaches the network.
            client._conn._send_datagrams = lambda datagrams: None
        with trio.fail_after(60):
            await wait_until(lambda: bool(failures))
        assert failures == [ConnectionClosedError]  # QUIC idle timeout
        assert infos[0].is_closed
        async with server.connect() as client:
            assert await echo_once_eof(client, b"next") == b""


async def echo_once_eof(client: quic.QuicClient, payload: bytes) -> bytes:
    stream = await client.open_stream()
    await stream.send_all(payload, end_stream=True)
    return await read_all(stream)


async def test_idle_connection_is_closed_by_the_server(autojump_clock: Any) -> None:
    async with running_server(echo_handler, TransportLimits(idle_timeout=5.0)) as server:
        async with server.connect(limits=TransportLimits(idle_timeout=600.0)) as client:
            assert await echo_once(client, b"ping") == b"ping"
            started = trio.current_time()
            with trio.fail_after(30):
                await client.wait_closed()
            assert 5.0 <= trio.current_time() - started < 7.0
            with pytest.raises(TransportError):
                await client.open_stream()


async def test_open_stream_keeps_connection_alive_past_idle(autojump_clock: Any) -> None:
    release = trio.Event()

    async def handler(stream: QuicStream) -> None:
        await release.wait()
        await echo_handler(stream)

    async with running_server(handler, TransportLimits(idle_timeout=5.0)) as server:
        async with server.connect(limits=TransportLimits(idle_timeout=600.0)) as client:
            stream = await client.open_stream()
            await stream.send_all(b"long poll", end_stream=True)
            await trio.sleep(20)
            assert not client.is_closed
            release.set()
            assert await read_all(stream) == b"long poll"


async def test_max_connection_age(autojump_clock: Any) -> None:
    limits = TransportLimits(idle_timeout=1000.0, max_connection_age=30.0)
    async with running_server(echo_handler, limits) as server:
        async with server.connect() as client:
            started = trio.current_time()
            with trio.fail_after(100):
                await client.wait_closed()
            assert 30.0 <= trio.current_time() - started < 32.0


async def test_connections_per_address_cap() -> None:
    limits = TransportLimits(max_connections_per_address=2)
    async with running_server(echo_handler, limits) as server:
        async with server.connect() as first, server.connect() as second:
            # Refused at once with CONNECTION_REFUSED, not left to time out.
            with trio.fail_after(5), pytest.raises(ConnectionClosedError) as info:
                async with server.connect():
                    pytest.fail("third connection from one address accepted")
            assert info.value.error_code == QuicErrorCode.CONNECTION_REFUSED
            assert await echo_once(first, b"1") == b"1"
            assert await echo_once(second, b"2") == b"2"
        # Closed connections free their slots (once the server finished closing them; the
        # deadline only guards against hanging).
        with trio.fail_after(30):
            while True:
                try:
                    async with server.connect() as third:
                        assert await echo_once(third, b"3") == b"3"
                        break
                except ConnectionClosedError:
                    await trio.sleep(0.05)


async def test_read_frame_deadline(autojump_clock: Any) -> None:
    # A frame already buffered whole is returned at once (no deadline involved); one that never
    # completes fails at its deadline.
    whole: list[bytes] = []

    async def handler(stream: QuicStream) -> None:
        try:
            whole.append(await read_frame(stream, 100, trio.current_time() + 2.0))
            await read_frame(stream, 100, trio.current_time() + 2.0)
        except ProtocolError as exc:
            await stream.send_all(bytes([exc.code]), end_stream=True)

    async with running_server(handler) as server, server.connect() as client:
        stream = await client.open_stream()
        await write_frame(stream, b"whole", end_stream=False)
        await stream.send_all(b"\x00\x00\x00\x10abc")  # promises 16 bytes, sends 3
        assert await read_all(stream) == bytes([ErrorCode.TIMEOUT])
    assert whole == [b"whole"]


async def test_read_frame_oversize_header() -> None:
    async def handler(stream: QuicStream) -> None:
        try:
            await read_frame(stream, 100)
        except ProtocolError as exc:
            await stream.send_all(bytes([exc.code]), end_stream=True)

    async with running_server(handler) as server, server.connect() as client:
        stream = await client.open_stream()
        await stream.send_all(b"\xff\xff\xff\xff", end_stream=True)
        assert await read_all(stream) == bytes([ErrorCode.FRAME_TOO_LARGE])


async def test_exception_in_client_body_propagates_unwrapped() -> None:
    async with running_server(echo_handler) as server:
        with pytest.raises(KeyError):
            async with server.connect():
                raise KeyError("from the body")


class LossySocket:
    """Wraps a UDP socket: drops, duplicates and delays a seeded fraction of sent datagrams."""

    def __init__(self, sock: socket.socket, rng: random.Random, stats: dict[str, int]) -> None:
        self._sock = sock
        self._rng = rng
        self._stats = stats

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __enter__(self) -> LossySocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._sock.close()

    def sendto(self, data: bytes, addr: Any) -> int:
        roll = self._rng.random()
        if roll < 0.10:
            self._stats["dropped"] += 1
            return len(data)
        if roll < 0.15:
            self._stats["duplicated"] += 1
            self._sock.sendto(data, addr)
        elif roll < 0.25:
            self._stats["delayed"] += 1
            delay = self._rng.uniform(0.001, 0.05)

            async def later() -> None:
                await trio.sleep(delay)
                try:
                    self._sock.sendto(data, addr)
                except OSError:
                    pass

            trio.lowlevel.spawn_system_task(later)
            return len(data)
        return int(self._sock.sendto(data, addr))


async def test_lossy_network_every_echo_arrives_once_in_order(
    autojump_clock: Any, monkeypatch: Any
) -> None:
    rng = random.Random(9420)
    stats = {"dropped": 0, "duplicated": 0, "delayed": 0}
    real_make_socket = endpoint._make_socket
    monkeypatch.setattr(
        endpoint, "_make_socket", lambda family: LossySocket(real_make_socket(family), rng, stats)
    )
    async with running_server(framed_echo_handler) as server, server.connect() as client:
        # Sequential messages on one stream arrive exactly once, in order.
        stream = await client.open_stream()
        received = []
        for i in range(60):
            await write_frame(stream, f"seq {i}".encode(), end_stream=False)
            received.append(await read_frame(stream, 1 << 20))
        assert received == [f"seq {i}".encode() for i in range(60)]
        await stream.send_eof()
        assert await stream.receive_some() == b""

        # Concurrent streams, each with several messages in order.
        results: dict[int, list[bytes]] = {}

        async def worker(n: int) -> None:
            s = await client.open_stream()
            got = []
            for i in range(5):
                await write_frame(s, f"{n}:{i}".encode() * 50, end_stream=False)
                got.append(await read_frame(s, 1 << 20))
            await s.send_eof()
            assert await s.receive_some() == b""
            results[n] = got

        async with trio.open_nursery() as nursery:
            for n in range(16):
                nursery.start_soon(worker, n)
        assert results == {n: [f"{n}:{i}".encode() * 50 for i in range(5)] for n in range(16)}

        # A large frame (beyond the writer's unacknowledged-data window) survives loss too.
        big = random.Random(1).randbytes(600_000)
        stream = await client.open_stream()
        await write_frame(stream, big, end_stream=False)
        assert await read_frame(stream, 1 << 20) == big
        await stream.send_eof()
    assert stats["dropped"] > 10 and stats["duplicated"] > 5 and stats["delayed"] > 10


async def test_nothing_listening_fails_fast() -> None:
    certificate, _ = generate_self_signed_certificate()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with trio.fail_after(5), pytest.raises(TransportError) as info:
        async with open_quic_connection(
            "127.0.0.1", port, server_certificate=certificate, alpn=ALPN, backend=TEST_BACKEND
        ):
            pytest.fail("connected to nothing")
    assert info.value.reason == TransportReason.CONNECTION_REFUSED


async def test_cancelled_requests_at_the_cap_under_loss_are_never_refused(
    autojump_clock: Any, monkeypatch: Any
) -> None:
    """Clients abandoning requests (STOP_SENDING) on a lossy path, 64 at a time, never push the
    node past its stream cap: no stream is refused with RATE_LIMITED."""
    rng = random.Random(2)
    handler_rng = random.Random(5)
    stats = {"dropped": 0, "duplicated": 0, "delayed": 0}
    real_make_socket = endpoint._make_socket
    monkeypatch.setattr(
        endpoint, "_make_socket", lambda family: LossySocket(real_make_socket(family), rng, stats)
    )

    async def slow_echo(stream: QuicStream) -> None:
        payload = await read_frame(stream, 1 << 20)
        await trio.sleep(handler_rng.uniform(0, 0.02))
        await write_frame(stream, payload, end_stream=True)

    answered = abandoned = 0
    refused: list[int] = []
    async with running_server(slow_echo) as server, server.connect() as client:

        async def worker() -> None:
            nonlocal answered, abandoned
            for _ in range(10):
                try:
                    with trio.move_on_after(0.01) as scope:
                        async with await client.open_stream() as stream:
                            await write_frame(stream, b"request", end_stream=True)
                            assert await read_frame(stream, 1 << 20) == b"request"
                            assert await stream.receive_some() == b""
                            answered += 1
                    abandoned += scope.cancelled_caught
                except StreamResetError as exc:
                    refused.append(exc.error_code)

        async with trio.open_nursery() as nursery:
            for _ in range(64):
                nursery.start_soon(worker)
    assert refused == []
    assert answered > 50 and abandoned > 50
    assert stats["dropped"] > 20


class MuteAfterFirstSend:
    """Wraps a UDP socket so that only its first datagram (the client's Initial) goes out."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._sent = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __enter__(self) -> MuteAfterFirstSend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._sock.close()

    def sendto(self, data: bytes, addr: Any) -> int:
        if not self._sent:
            self._sent = True
            return int(self._sock.sendto(data, addr))
        return len(data)


@aioquic_client_meets_the_server
async def test_server_drops_a_stalled_handshake(autojump_clock: Any, monkeypatch: Any) -> None:
    limits = TransportLimits(max_connections_per_address=1, handshake_timeout=2.0, idle_timeout=100)
    async with running_server(echo_handler, limits) as server:
        real_make_socket = endpoint._make_socket
        monkeypatch.setattr(
            endpoint, "_make_socket", lambda family: MuteAfterFirstSend(real_make_socket(family))
        )
        # The client completes its side of the handshake from the server's first flight, but
        # the server never hears the client's Finished (nor its CONNECTION_CLOSE). That is how
        # aioquic's client behaves (qh3's fails its handshake instead), so the stalling client
        # is aioquic's whatever the server under test runs.
        async with server.connect(backend=QuicBackend.AIOQUIC):
            pass
        monkeypatch.setattr(endpoint, "_make_socket", real_make_socket)
        with pytest.raises(ConnectionClosedError):
            async with server.connect():
                pytest.fail("second connection accepted while the first holds the slot")
        await trio.sleep(4.0)  # handshake timeout, then the closing period
        # The stalled connection no longer holds the only slot for this address.
        async with server.connect() as client:
            assert await echo_once(client, b"after") == b"after"


async def test_retry_address_validation() -> None:
    async with running_server(echo_handler, retry=RetryMode.ALWAYS) as server:
        async with server.connect() as client:
            assert await echo_once(client, b"validated") == b"validated"


qh3_installed = pytest.mark.skipif(
    not backends.is_installed(QuicBackend.QH3), reason="qh3 is not installed"
)


@qh3_installed
async def test_an_aioquic_client_reaches_a_qh3_node_through_retry() -> None:
    # The workaround docs/dependencies.md gives for qh3 2.1's anti-amplification bug: once a
    # Retry has validated the client's address, the qh3 server's first flight is not limited.
    async with running_server(
        echo_handler, retry=RetryMode.ALWAYS, backend=QuicBackend.QH3
    ) as server:
        with trio.fail_after(5):
            async with server.connect(backend=QuicBackend.AIOQUIC) as client:
                assert await echo_once(client, b"validated") == b"validated"


@qh3_installed
async def test_a_qh3_node_does_not_answer_an_aioquic_client_without_retry() -> None:
    # A known qh3 2.1 bug (docs/dependencies.md): its core credits only the Initial packet, not
    # aioquic's zero-padded 1200-byte datagram, toward the anti-amplification limit, and drops
    # the connection without a word. When this fails, qh3 fixed it: update the docs.
    async with running_server(echo_handler, backend=QuicBackend.QH3) as server:
        with trio.move_on_after(3) as waited:
            async with server.connect(backend=QuicBackend.AIOQUIC) as client:
                await echo_once(client, b"direct")
        assert waited.cancelled_caught, "qh3 answered an aioquic client: update the qh3 docs"


async def test_retry_refuses_a_forged_token(monkeypatch: Any) -> None:
    # The forging client is aioquic's (its configuration takes an Initial token; qh3's has no
    # such field); the server under test runs on the backend under test.
    aioquic_core = backends.load(QuicBackend.AIOQUIC)
    real_configuration = aioquic_core.client_configuration

    def with_forged_token(**kwargs: Any) -> Any:
        configuration = real_configuration(**kwargs)
        configuration.token = b"\x00" * 40
        return configuration

    async with running_server(echo_handler, retry=RetryMode.ALWAYS) as server:
        monkeypatch.setattr(aioquic_core, "client_configuration", with_forged_token)
        with trio.fail_after(5), pytest.raises(ConnectionClosedError) as info:
            async with server.connect(backend=QuicBackend.AIOQUIC):
                pytest.fail("forged token accepted")
        assert info.value.error_code == QuicErrorCode.INVALID_TOKEN


async def test_server_shutdown_closes_connections_with_unavailable() -> None:
    started = trio.Event()

    async def handler(stream: QuicStream) -> None:
        started.set()
        await trio.sleep_forever()

    certificate, private_key = generate_self_signed_certificate()
    async with trio.open_nursery() as outer:
        server_scope = trio.CancelScope()

        async def run_server(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with server_scope:
                await serve_quic(
                    "127.0.0.1",
                    0,
                    certificate=certificate,
                    private_key=private_key,
                    alpn=ALPN,
                    handler=handler,
                    backend=TEST_BACKEND,
                    task_status=task_status,
                )

        _, port = await outer.start(run_server)
        async with open_quic_connection(
            "127.0.0.1", port, server_certificate=certificate, alpn=ALPN, backend=TEST_BACKEND
        ) as client:
            stream = await client.open_stream()
            await stream.send_all(b"waiting", end_stream=True)
            await started.wait()
            server_scope.cancel()
            with trio.fail_after(5), pytest.raises(ConnectionClosedError) as info:
                await stream.receive_some()
            assert info.value.error_code == ErrorCode.UNAVAILABLE


@settings(max_examples=12)
@given(
    writes=st.lists(st.integers(0, 150_000), min_size=1, max_size=5),
    read_sizes=st.lists(st.integers(1, 100_000), min_size=1, max_size=5),
)
def test_any_write_and_read_sizes_reassemble(writes: list[int], read_sizes: list[int]) -> None:
    """Arbitrary send_all sizes (across the 64 KiB chunking) and receive_some sizes deliver
    the same bytes, in order, once."""
    rng = random.Random(len(writes) * 7919 + sum(writes))
    chunks = [rng.randbytes(n) for n in writes]

    async def scenario() -> bytes:
        async with running_server(echo_handler) as server, server.connect() as client:
            stream = await client.open_stream()
            received = bytearray()

            async def reader() -> None:
                i = 0
                while data := await stream.receive_some(read_sizes[i % len(read_sizes)]):
                    assert len(data) <= read_sizes[i % len(read_sizes)]
                    received.extend(data)
                    i += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                for chunk in chunks:
                    await stream.send_all(chunk)
                await stream.send_eof()
            return bytes(received)

    assert trio.run(scenario) == b"".join(chunks)


@aioquic_client_meets_the_server
async def test_a_request_is_acknowledged_while_its_answer_is_still_pending() -> None:
    # After a receive, packets are built at once only when an ACK is due at once; otherwise the
    # ACK waits for the answer or for the core's ACK timer. A handler that takes long to answer
    # must still see its request acknowledged by that timer, without the request ever being
    # sent again.
    answered = trio.Event()

    async def slow(stream: QuicStream) -> None:
        await read_frame(stream, 1 << 20)
        await answered.wait()
        await write_frame(stream, b"late", end_stream=True)

    # The probe reads aioquic's loss recovery on the client, so the client is aioquic's; the
    # server whose ACK timer is under test runs the backend under test.
    async with (
        running_server(slow) as server,
        server.connect(backend=QuicBackend.AIOQUIC) as client,
    ):
        stream = await client.open_stream()
        quic_connection = client._conn.quic
        loss = quic_connection._loss
        # What is under test is that the server's ACK timer fires at all, not that it beats
        # our probe timeout by the few milliseconds it does on an idle machine (a busy one can
        # delay either). Allowing the peer a long ACK delay moves our probe timeout out to
        # seconds, so a probe, and with it a resend, can only mean that no ACK came.
        loss.max_ack_delay = 10.0
        carrying: list[int] = []
        """Packet numbers of the packets that carried this stream's data."""
        on_packet_sent = loss.on_packet_sent

        def record(*, packet: Any, space: Any) -> None:
            for handler, _ in packet.delivery_handlers:
                sender = getattr(handler, "__self__", None)
                if getattr(sender, "_stream_id", None) == stream.stream_id:
                    carrying.append(packet.packet_number)
                    break
            on_packet_sent(packet=packet, space=space)

        loss.on_packet_sent = record  # type: ignore[method-assign]
        await write_frame(stream, b"request", end_stream=True)
        sender = quic_connection._streams[stream.stream_id].sender
        with trio.fail_after(5):
            # The whole request, FIN included, is acknowledged while the answer still waits.
            while not sender.is_finished:
                await trio.sleep(0.005)
        assert not answered.is_set()
        # It went out in one packet, never resent (no probe, nothing declared lost).
        assert len(carrying) == 1
        assert loss._pto_count == 0
        answered.set()
        assert await read_frame(stream, 1 << 20) == b"late"


async def test_a_handler_whose_peer_stops_the_stream_is_cancelled() -> None:
    cancelled = trio.Event()
    started = trio.Event()

    async def waits_forever(stream: QuicStream) -> None:
        request = await read_frame(stream, 1 << 20)
        if request != b"long poll":
            await write_frame(stream, request, end_stream=True)
            return
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    async with running_server(waits_forever) as server, server.connect() as client:
        stream = await client.open_stream()
        await write_frame(stream, b"long poll", end_stream=True)
        with trio.fail_after(30):  # a guard against hanging
            await started.wait()
            stream.reset(ErrorCode.NO_ERROR)  # the client gives up: STOP_SENDING
            await cancelled.wait()
        # The connection serves on.
        stream = await client.open_stream()
        await write_frame(stream, b"next", end_stream=True)
        assert await read_frame(stream, 1 << 20) == b"next"
