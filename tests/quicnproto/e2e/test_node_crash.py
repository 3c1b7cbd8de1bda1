"""Crash test: a node child process is killed with SIGKILL at random moments during enqueues.

Over 20 cycles, every enqueue the client saw acknowledged must be delivered after a restart, and
no message may be delivered twice under different ids (VALIDATION SRV-CR-01, SRV-DEL-02).
Enqueues whose answer was lost are retried with the same id after the restart, as a real client
would; they must then be stored exactly once.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest
import trio

from quicnproto.client.connection import open_client
from quicnproto.config import ClientConfig
from quicnproto.errors import QuicnprotoError
from tests.quicnproto.e2e.node_harness import drain, free_udp_port, new_identity, start_node
from tests.quicnproto.quic_backend import TEST_BACKEND

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CYCLES = 20
SENDERS = 4


async def test_sigkill_during_enqueues_loses_no_acknowledged_message(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    data_dir = tmp_path / "node"
    port = free_udp_port()
    alice, bob = new_identity(), new_identity()
    acknowledged: dict[bytes, tuple[int, ...]] = {}
    unknown: set[bytes] = set()
    counter = 0
    interrupted = 0

    def client_config() -> ClientConfig:
        return ClientConfig(
            host="127.0.0.1",
            port=port,
            server_cert=data_dir / "server-cert.der",
            request_timeout=5.0,
            quic_backend=TEST_BACKEND,
        )

    for cycle in range(CYCLES):
        process = await start_node(data_dir, port)
        async with trio.open_nursery() as outer:
            outer.start_soon(drain, process)
            async with open_client(client_config()) as client:
                await client.authenticate(alice.private_key)
                # Retry what was in flight at the last kill, with the same ids.
                for message_id in sorted(unknown):
                    acknowledged[message_id] = await client.enqueue(
                        [bob.key], b"payload:" + message_id, message_id
                    )
                unknown.clear()

                async def sender(client=client, cycle=cycle) -> None:  # type: ignore[no-untyped-def]
                    nonlocal counter
                    while True:
                        counter += 1
                        message_id = b"c%02d-m%05d" % (cycle, counter)
                        unknown.add(message_id)
                        try:
                            seqs = await client.enqueue(
                                [bob.key], b"payload:" + message_id, message_id
                            )
                        except QuicnprotoError:
                            return
                        acknowledged[message_id] = seqs
                        unknown.discard(message_id)

                async with trio.open_nursery() as senders:
                    for _ in range(SENDERS):
                        senders.start_soon(sender)
                    await trio.sleep(rng.uniform(0.02, 0.35))
                    process.send_signal(signal.SIGKILL)
                    await process.wait()
                    # Whatever was in flight now has no answer; stop waiting for it.
                    senders.cancel_scope.cancel()
            outer.cancel_scope.cancel()
        assert process.returncode == -signal.SIGKILL
        interrupted += bool(unknown)

    process = await start_node(data_dir, port)
    delivered: list[tuple[int, bytes, bytes]] = []
    try:
        async with trio.open_nursery() as outer:
            outer.start_soon(drain, process)
            async with open_client(client_config()) as client:
                await client.authenticate(alice.private_key)
                for message_id in sorted(unknown):
                    acknowledged[message_id] = await client.enqueue(
                        [bob.key], b"payload:" + message_id, message_id
                    )
                await client.authenticate(bob.private_key)
                cursor = 0
                while True:
                    page = await client.fetch(bob.key, after_seq=cursor, limit=100)
                    if not page:
                        break
                    delivered.extend((m.seq, m.message_id, m.payload) for m in page)
                    cursor = page[-1].seq
            outer.cancel_scope.cancel()
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()

    # The node did real work between kills, and most kills landed with enqueues in flight.
    assert len(acknowledged) > CYCLES
    assert interrupted >= CYCLES // 2
    print(f"acknowledged={len(acknowledged)} interrupted_cycles={interrupted}")
    ids = [message_id for _, message_id, _ in delivered]
    payloads = [payload for _, _, payload in delivered]
    # No message twice, under the same or a different id.
    assert len(ids) == len(set(ids))
    assert len(payloads) == len(set(payloads))
    assert all(payload == b"payload:" + mid for _, mid, payload in delivered)
    # Every acknowledged enqueue is there, at the sequence number the client was given.
    by_id = {message_id: seq for seq, message_id, _ in delivered}
    missing = [mid for mid in acknowledged if mid not in by_id]
    assert missing == []
    assert all(by_id[mid] == seqs[0] for mid, seqs in acknowledged.items())
    # Sequence numbers are strictly increasing.
    seqs_seen = [seq for seq, _, _ in delivered]
    assert seqs_seen == sorted(set(seqs_seen))
