"""Node throughput and latency over loopback QUIC, compared with the raw transport.

Prints JSON::

    raw_echo    round trips/s on one stream and requests/s over 64 concurrent streams, through
                the same Trio driver with no node logic (benchmarks/raw_echo.py)
    node        enqueue_fetch_round_trips_per_s: one client, enqueue then fetch, in turn
                delivered_per_s_64_clients: 64 authenticated clients, each sending to the next
                    one and long-polling its own queue (fetch + ack), messages fetched per second
    latency_ms  p50/p99 from the start of an enqueue to a long-polling recipient holding the
                message, at 1,000 messages/s offered
    ratio       node delivered_per_s_64_clients / raw concurrent64_requests_per_s

The node runs in this process with its SQLite file on disk (WAL, synchronous=FULL), exactly as
``quicnproto serve`` runs it. Targets: ratio >= 0.5, p99 <= 10 ms. Numbers are whatever this
machine measures; they are reported, never asserted.

Usage: ``python benchmarks/node.py [duration_s]``
"""

from __future__ import annotations

import json
import logging
import statistics
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.raw_echo import measure_raw_echo  # noqa: E402
from quicnproto.client.connection import NodeClient, identity_key_of, open_client  # noqa: E402
from quicnproto.config import ClientConfig, NodeConfig  # noqa: E402
from quicnproto.node.server import serve  # noqa: E402

CLIENTS = 64
OFFERED_RATE = 1000.0
PAYLOAD = b"m" * 256


def _identity() -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


async def _round_trips(config: ClientConfig, duration_s: float) -> float:
    me = _identity()
    key = identity_key_of(me)
    async with open_client(config) as client:
        await client.authenticate(me)
        count = 0
        cursor = 0
        start = trio.current_time()
        while trio.current_time() < start + duration_s:
            await client.enqueue([key], PAYLOAD, b"rt-%d" % count)
            messages = await client.fetch(key, after_seq=cursor)
            cursor = messages[-1].seq
            count += 1
            if count % 50 == 0:
                await client.ack(key, cursor)
        return count / (trio.current_time() - start)


async def _delivered(config: ClientConfig, duration_s: float) -> float:
    identities = [_identity() for _ in range(CLIENTS)]
    keys = [identity_key_of(k) for k in identities]
    delivered = 0
    ready = trio.Event()
    connected = 0
    start = 0.0

    async def member(i: int) -> None:
        nonlocal delivered, connected, start
        async with open_client(config) as client:
            await client.authenticate(identities[i])
            connected += 1
            if connected == CLIENTS:
                start = trio.current_time()
                ready.set()
            await ready.wait()
            deadline = start + duration_s

            async def send() -> None:
                n = 0
                while trio.current_time() < deadline:
                    await client.enqueue([keys[(i + 1) % CLIENTS]], PAYLOAD, b"d-%d-%d" % (i, n))
                    n += 1

            async def receive() -> None:
                nonlocal delivered
                cursor = 0
                while trio.current_time() < deadline:
                    wait = max(1, int((deadline - trio.current_time()) * 1000))
                    messages = await client.fetch(keys[i], after_seq=cursor, wait_ms=wait)
                    if messages and trio.current_time() < deadline:
                        delivered += len(messages)
                        cursor = messages[-1].seq
                        await client.ack(keys[i], cursor)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                nursery.start_soon(receive)

    async with trio.open_nursery() as nursery:
        for i in range(CLIENTS):
            nursery.start_soon(member, i)
    return delivered / duration_s


async def _latency(config: ClientConfig, duration_s: float) -> dict[str, float]:
    sender, recipient = _identity(), _identity()
    recipient_key = identity_key_of(recipient)
    total = int(OFFERED_RATE * duration_s)
    samples: list[float] = []
    done = trio.Event()

    async def receive(client: NodeClient) -> None:
        cursor = 0
        ack_send, ack_receive = trio.open_memory_channel[int](100)

        async def acker() -> None:
            async for seq in ack_receive:
                await client.ack(recipient_key, seq)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(acker)
            while len(samples) < total:
                messages = await client.fetch(recipient_key, after_seq=cursor, wait_ms=5000)
                now = trio.current_time()
                for message in messages:
                    (sent,) = struct.unpack(">d", message.payload[:8])
                    samples.append((now - sent) * 1000)
                if messages:
                    cursor = messages[-1].seq
                    ack_send.send_nowait(cursor) if len(samples) % 20 == 0 else None
            done.set()
            nursery.cancel_scope.cancel()

    async with open_client(config) as rclient, open_client(config) as sclient:
        await rclient.authenticate(recipient)
        await sclient.authenticate(sender)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive, rclient)
            await trio.sleep(0.2)
            start = trio.current_time()
            for i in range(total):
                await trio.sleep_until(start + i / OFFERED_RATE)

                async def one(i: int = i) -> None:
                    stamp = struct.pack(">d", trio.current_time())
                    await sclient.enqueue([recipient_key], stamp + PAYLOAD, b"l-%d" % i)

                nursery.start_soon(one)
            with trio.move_on_after(30):
                await done.wait()
            nursery.cancel_scope.cancel()
    samples.sort()
    return {
        "p50": round(statistics.median(samples), 3),
        "p99": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3),
        "max": round(samples[-1], 3),
        "messages": len(samples),
        "offered_per_s": OFFERED_RATE,
    }


async def measure_node(duration_s: float = 2.0) -> dict[str, Any]:
    """Run every node measurement against a fresh node in a temporary directory."""
    logging.getLogger("quicnproto").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="quicnproto-bench-") as tmp:
        node_config = NodeConfig(
            host="127.0.0.1",
            port=0,
            data_dir=Path(tmp),
            max_connections_per_address=CLIENTS * 2 + 8,
            enqueue_burst=10**9,
            enqueue_rate=1e9,
        )
        async with trio.open_nursery() as nursery:
            _, port = await nursery.start(serve, node_config)
            client_config = ClientConfig(
                host="127.0.0.1", port=port, server_cert=node_config.cert_path
            )
            round_trips = await _round_trips(client_config, duration_s)
            delivered = await _delivered(client_config, duration_s)
            latency = await _latency(client_config, duration_s)
            nursery.cancel_scope.cancel()
    return {
        "node": {
            "enqueue_fetch_round_trips_per_s": round(round_trips, 1),
            "delivered_per_s_64_clients": round(delivered, 1),
        },
        "latency_ms": latency,
    }


async def _main(duration_s: float) -> dict[str, Any]:
    raw = await measure_raw_echo(duration_s)
    node = await measure_node(duration_s)
    delivered = node["node"]["delivered_per_s_64_clients"]
    return {
        "raw_echo": raw,
        **node,
        "ratio": round(delivered / raw["concurrent64_requests_per_s"], 3),
        "targets": {"ratio": ">= 0.5", "latency_p99_ms": "<= 10"},
    }


def main() -> None:
    """Run the benchmark and print JSON."""
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    print(json.dumps(trio.run(_main, duration), indent=2))


if __name__ == "__main__":
    main()
