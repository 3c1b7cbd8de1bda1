"""Raw echo throughput through the Trio QUIC driver and the frame helpers, with no node logic.

Prints JSON: round trips per second on one stream, and requests per second with 64 concurrent
request streams (one QUIC stream per request, as the node uses them). ``benchmarks/node.py``
imports :func:`measure_raw_echo` for its ``raw_echo`` section and ``ratio``.

Usage: ``python benchmarks/raw_echo.py [duration_s]``
"""

from __future__ import annotations

import json
import sys
from functools import partial

import trio

from quicnproto.errors import ProtocolError
from quicnproto.transport.frames import read_frame, write_frame
from quicnproto.transport.quic import QuicClient, QuicStream, open_quic_connection, serve_quic
from quicnproto.transport.tls import generate_self_signed_certificate

ALPN = "quicnproto-bench"
MAX_FRAME = 1 << 20
PAYLOAD = b"\x00" + b"x" * 63
"""64-byte requests; a first byte of 0 asks for a one-shot reply that finishes the stream."""

_ONE_SHOT = 0
_SESSION = 1


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


async def measure_raw_echo(duration_s: float = 2.0) -> dict[str, float]:
    """Measure echo throughput over loopback QUIC.

    Args:
        duration_s: seconds spent on each of the two measurements.

    Returns:
        ``{"one_stream_round_trips_per_s": ..., "concurrent64_requests_per_s": ...}``.
    """
    certificate, private_key = generate_self_signed_certificate()
    async with trio.open_nursery() as nursery:
        _, port = await nursery.start(
            partial(
                serve_quic,
                "127.0.0.1",
                0,
                certificate=certificate,
                private_key=private_key,
                alpn=ALPN,
                handler=_echo_handler,
            )
        )
        async with open_quic_connection(
            "127.0.0.1", port, server_certificate=certificate, alpn=ALPN
        ) as client:
            one = await _one_stream(client, duration_s)
            concurrent = await _concurrent(client, duration_s)
        nursery.cancel_scope.cancel()
    return {
        "one_stream_round_trips_per_s": round(one, 1),
        "concurrent64_requests_per_s": round(concurrent, 1),
    }


def main() -> None:
    """Run the benchmark and print JSON."""
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    print(json.dumps({"raw_echo": trio.run(measure_raw_echo, duration)}, indent=2))


if __name__ == "__main__":
    main()
