"""Raw echo throughput through the Trio QUIC driver and the frame helpers, with no node logic.

Prints JSON: round trips per second on one stream, requests per second with 64 concurrent
request streams on one connection (one QUIC stream per request, as the node uses them), and
requests per second from 64 clients on 64 connections (the shape of the node's 64-client
benchmark, which pays per-connection costs that 64 streams on one connection share). Also
``sans_io_us``: microseconds aioquic's ``QuicConnection`` alone spends on one request/response
exchange of about one datagram each way (client builds, server receives, server builds, client
receives), with no sockets, no Trio and no driver: the floor under every figure above.
``benchmarks/node.py`` imports :func:`measure_raw_echo` (echo server in this process) and
:func:`measure_raw_echo_process` (echo server in a child process) for its ``raw_echo`` sections
and ratios.

Usage: ``python benchmarks/raw_echo.py [duration_s]``
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quicnproto.errors import ProtocolError  # noqa: E402
from quicnproto.transport.frames import read_frame, write_frame  # noqa: E402
from quicnproto.transport.quic import (  # noqa: E402
    QuicClient,
    QuicStream,
    TransportLimits,
    open_quic_connection,
    serve_quic,
)
from quicnproto.transport.quic.backends import QuicBackend  # noqa: E402
from quicnproto.transport.tls import (  # noqa: E402
    generate_self_signed_certificate,
    parse_certificate,
    parse_private_key,
)

ALPN = "quicnproto-bench"
MAX_FRAME = 1 << 20
PAYLOAD = b"\x00" + b"x" * 63
"""64-byte requests; a first byte of 0 asks for a one-shot reply that finishes the stream."""

_ONE_SHOT = 0
_SESSION = 1

DEFAULT_BACKEND = "aioquic"


async def _echo_handler(stream: QuicStream) -> None:
    while True:
        try:
            payload = await read_frame(stream, MAX_FRAME)
        except ProtocolError:
            return
        if payload[:1] == bytes([_ONE_SHOT]):
            await write_frame(stream, payload, end_stream=True)
            return
        await write_frame(stream, payload, end_stream=False)


async def _one_stream(client: QuicClient, duration_s: float) -> float:
    stream = await client.open_stream()
    payload = bytes([_SESSION]) + PAYLOAD[1:]
    count = 0
    start = trio.current_time()
    deadline = start + duration_s
    while trio.current_time() < deadline:
        await write_frame(stream, payload, end_stream=False)
        if await read_frame(stream, MAX_FRAME) != payload:
            raise AssertionError("echo mismatch")
        count += 1
    elapsed = trio.current_time() - start
    await stream.send_eof()
    await stream.receive_some()
    return count / elapsed


async def _concurrent(client: QuicClient, duration_s: float, workers: int = 64) -> float:
    count = 0
    start = trio.current_time()
    deadline = start + duration_s

    async def worker() -> None:
        nonlocal count
        while trio.current_time() < deadline:
            stream = await client.open_stream()
            await write_frame(stream, PAYLOAD, end_stream=True)
            if await read_frame(stream, MAX_FRAME) != PAYLOAD:
                raise AssertionError("echo mismatch")
            if await stream.receive_some() != b"":
                raise AssertionError("expected the end of the stream")
            count += 1

    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(worker)
    return count / (trio.current_time() - start)


async def _connections(
    port: int,
    certificate: bytes,
    duration_s: float,
    clients: int = 64,
    backend: str = DEFAULT_BACKEND,
) -> float:
    """Requests per second from ``clients`` connections, one request at a time on each."""
    count = 0
    connected = 0
    ready = trio.Event()
    start = 0.0

    async def client_task() -> None:
        nonlocal count, connected, start
        limits = TransportLimits(max_connections_per_address=clients + 8)
        async with open_quic_connection(
            "127.0.0.1",
            port,
            server_certificate=certificate,
            alpn=ALPN,
            limits=limits,
            backend=QuicBackend(backend),
        ) as client:
            connected += 1
            if connected == clients:
                start = trio.current_time()
                ready.set()
            await ready.wait()
            deadline = start + duration_s
            while trio.current_time() < deadline:
                stream = await client.open_stream()
                await write_frame(stream, PAYLOAD, end_stream=True)
                if await read_frame(stream, MAX_FRAME) != PAYLOAD:
                    raise AssertionError("echo mismatch")
                if await stream.receive_some() != b"":
                    raise AssertionError("expected the end of the stream")
                if trio.current_time() < deadline:
                    count += 1

    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(client_task)
    return count / duration_s


async def _measure_against(
    port: int, certificate: bytes, duration_s: float, backend: str = DEFAULT_BACKEND
) -> dict[str, float]:
    async with open_quic_connection(
        "127.0.0.1",
        port,
        server_certificate=certificate,
        alpn=ALPN,
        backend=QuicBackend(backend),
    ) as client:
        one = await _one_stream(client, duration_s)
        concurrent = await _concurrent(client, duration_s)
    connections = await _connections(port, certificate, duration_s, backend=backend)
    return {
        "one_stream_round_trips_per_s": round(one, 1),
        "concurrent64_requests_per_s": round(concurrent, 1),
        "connections64_requests_per_s": round(connections, 1),
    }


def _server_limits() -> TransportLimits:
    return TransportLimits(max_connections_per_address=72)


async def measure_raw_echo(duration_s: float = 2.0) -> dict[str, float]:
    """Measure echo throughput over loopback QUIC, the echo server in this process.

    Args:
        duration_s: seconds spent on each measurement.

    Returns:
        ``one_stream_round_trips_per_s``, ``concurrent64_requests_per_s`` (64 streams on one
        connection) and ``connections64_requests_per_s`` (64 connections).
    """
    certificate, private_key = generate_self_signed_certificate()
    async with trio.open_nursery() as nursery:
        port = await _start_echo_server(nursery, certificate, private_key)
        result = await _measure_against(port, certificate, duration_s)
        nursery.cancel_scope.cancel()
    return result


async def _start_echo_server(
    nursery: trio.Nursery, certificate: bytes, private_key: bytes, backend: str = DEFAULT_BACKEND
) -> int:
    """Starts the echo server on an ephemeral loopback port in ``nursery``; returns the port."""
    _, port = await nursery.start(
        partial(
            serve_quic,
            "127.0.0.1",
            0,
            certificate=certificate,
            private_key=private_key,
            alpn=ALPN,
            handler=_echo_handler,
            limits=_server_limits(),
            backend=QuicBackend(backend),
        )
    )
    return int(port)


async def _serve_child(directory: str, backend: str = DEFAULT_BACKEND) -> None:
    certificate, private_key = generate_self_signed_certificate()
    (Path(directory) / "echo-cert.der").write_bytes(certificate)
    async with trio.open_nursery() as nursery:
        port = await _start_echo_server(nursery, certificate, private_key, backend)
        print(f"ready {port}", flush=True)


async def run_child_server(argv: list[str], directory: str) -> tuple[trio.Process, int]:
    """Start ``argv`` (a server that prints ``ready <port>``) and return it with its port."""
    process = await trio.lowlevel.open_process(
        argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(60):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                if not chunk:
                    raise RuntimeError("benchmark server exited")
                line += chunk
        return process, int(line.split()[1])
    except BaseException:
        process.kill()
        await process.wait()
        raise


async def measure_raw_echo_process(
    duration_s: float = 2.0, backend: str = DEFAULT_BACKEND
) -> dict[str, Any]:
    """The same measurements with the echo server in a child process (its own core), both
    ends on QUIC ``backend``."""
    with tempfile.TemporaryDirectory(prefix="quicnproto-echo-") as tmp:
        process, port = await run_child_server(
            [sys.executable, __file__, "--serve-echo", tmp, backend], tmp
        )
        try:
            certificate = (Path(tmp) / "echo-cert.der").read_bytes()
            return await _measure_against(port, certificate, duration_s, backend)
        finally:
            process.kill()
            await process.wait()


def measure_sans_io(exchanges: int = 3000) -> dict[str, float]:
    """Microseconds spent in aioquic alone per request/response exchange, by step.

    A client and a server ``QuicConnection`` hand datagrams to each other in memory on a
    made-up clock. After the handshake, each exchange opens a stream, sends one framed
    :data:`PAYLOAD` request with its end, and the server answers the same bytes with its end:
    about one datagram each way (counted), each carrying the ACK of the previous one.
    """
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    certificate, private_key = generate_self_signed_certificate()
    client = QuicConnection(
        configuration=QuicConfiguration(
            is_client=True, alpn_protocols=[ALPN], verify_mode=ssl.CERT_NONE
        )
    )
    server_configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=[ALPN],
        certificate=parse_certificate(certificate),
        private_key=parse_private_key(private_key),
    )
    server = QuicConnection(
        configuration=server_configuration,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    address = ("127.0.0.1", 4201)
    now = 0.0

    def hand_over(sender: QuicConnection, receiver: QuicConnection) -> tuple[float, float, int]:
        """``sender``'s datagrams into ``receiver``: seconds building them, seconds receiving
        them, and how many there were; ``receiver``'s events are then drained, untimed."""
        t0 = time.perf_counter()
        datagrams = sender.datagrams_to_send(now=now)
        t1 = time.perf_counter()
        for datagram, _ in datagrams:
            receiver.receive_datagram(datagram, address, now=now)
        t2 = time.perf_counter()
        while receiver.next_event() is not None:
            pass
        return t1 - t0, t2 - t1, len(datagrams)

    client.connect(address, now=now)
    for _ in range(10):  # the handshake
        if hand_over(client, server)[2] + hand_over(server, client)[2] == 0:
            break
    frame = len(PAYLOAD).to_bytes(4, "big") + PAYLOAD
    spent = [0.0, 0.0, 0.0, 0.0]
    datagrams = [0, 0]
    warm_up = 50  # past the post-handshake frames (new connection ids, HANDSHAKE_DONE, ...)
    for exchange in range(warm_up + exchanges):
        now += 0.001
        stream_id = client.get_next_available_stream_id()
        client.send_stream_data(stream_id, frame, end_stream=True)
        client_build, server_receive, requests = hand_over(client, server)
        server.send_stream_data(stream_id, frame, end_stream=True)
        server_build, client_receive, answers = hand_over(server, client)
        if exchange >= warm_up:
            for i, seconds in enumerate(
                (client_build, server_receive, server_build, client_receive)
            ):
                spent[i] += seconds
            datagrams[0] += requests
            datagrams[1] += answers
    client_build, server_receive, server_build, client_receive = (
        round(x / exchanges * 1e6, 1) for x in spent
    )
    return {
        "client_build": client_build,
        "server_receive": server_receive,
        "server_build": server_build,
        "client_receive": client_receive,
        "per_exchange": round(client_build + server_receive + server_build + client_receive, 1),
        "datagrams_per_request": round(datagrams[0] / exchanges, 3),
        "datagrams_per_answer": round(datagrams[1] / exchanges, 3),
    }


def main() -> None:
    """Run the benchmark and print JSON."""
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--serve-echo":
        trio.run(_serve_child, *sys.argv[2:])
        return
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    result = {
        "raw_echo": trio.run(measure_raw_echo, duration),
        "raw_echo_server_in_child_process": trio.run(measure_raw_echo_process, duration),
        "sans_io_us": measure_sans_io(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
