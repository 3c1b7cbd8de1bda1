"""The node over real QUIC on 127.0.0.1 with store faults: message expiry visible to the
recipient (VALIDATION SRV-DEL-07, injected clock) and corrupt store rows at start (SRV-CR-05)."""

from __future__ import annotations

import json
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from quicnproto.config import NodeConfig
from quicnproto.errors import StoreError
from quicnproto.node.server import serve
from tests.quicnproto.e2e.node_harness import RunningNode, json_logs, new_identity, node_config
from tests.quicnproto.quic_backend import TEST_BACKEND
from tests.quicnproto.store_driver import SyncStore

pytestmark = pytest.mark.e2e

TTL = 3600.0


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def node_with_clock(
    data_dir: Path, clock: Callable[[], float], **overrides: Any
) -> AsyncIterator[RunningNode]:
    config = node_config(data_dir, **overrides)
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(partial(serve, config, clock=clock))
        try:
            yield RunningNode(config, host, port)
        finally:
            nursery.cancel_scope.cancel()


async def test_expired_messages_are_not_served_and_the_gap_is_visible(tmp_path: Path) -> None:
    alice, bob = new_identity(), new_identity()
    clock = FakeClock()
    async with (
        node_with_clock(tmp_path / "node", clock, message_ttl=TTL) as node,
        node.client(alice) as a,
        node.client(bob) as b,
    ):
        await a.enqueue([bob.key], b"old 1", b"m1")
        await a.enqueue([bob.key], b"old 2", b"m2")
        clock.now += TTL / 2
        await a.enqueue([bob.key], b"new", b"m3")
        clock.now += TTL / 2  # m1 and m2 are TTL old now
        page = await b.fetch_page(bob.key)
        assert [(m.seq, m.payload) for m in page.messages] == [(3, b"new")]
        assert (page.expired_count, page.expired_up_to_seq) == (2, 2)
        # The plain fetch never hands out an expired message either.
        assert [m.payload for m in await b.fetch(bob.key)] == [b"new"]
        # Past the gap, nothing more is reported.
        page = await b.fetch_page(bob.key, after_seq=2)
        assert ([m.seq for m in page.messages], page.expired_count) == ([3], 0)
        # m3 expires too; the queue keeps counting, so the next message gets seq 4.
        clock.now += TTL
        # A short long-poll with only a gap to report still reports it when it answers.
        page = await b.fetch_page(bob.key, after_seq=2, wait_ms=100)
        assert (page.messages, page.expired_count, page.expired_up_to_seq) == ((), 1, 3)
        assert await a.enqueue([bob.key], b"later", b"m4") == (4,)
        page = await b.fetch_page(bob.key, after_seq=2, ack_up_to=3)
        assert [(m.seq, m.payload) for m in page.messages] == [(4, b"later")]
        assert page.expired_count == 0
        # After the acknowledgement, even a cursor at 0 sees no gap below seq 4.
        page = await b.fetch_page(bob.key)
        assert ([m.seq for m in page.messages], page.expired_count) == ([4], 0)


async def test_node_starts_with_corrupt_rows_quarantined_and_logs_the_count(
    tmp_path: Path,
) -> None:
    alice, bob = new_identity(), new_identity()
    data_dir = tmp_path / "node"
    secret = b"SECRET-TORN-PAYLOAD-5e1f"
    async with node_with_clock(data_dir, time.time) as node:
        async with node.client(alice) as a:
            for i in range(3):
                await a.enqueue([bob.key], b"message %d" % i, b"id%d" % i)
    db = node.config.db_path
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("UPDATE messages SET payload = ? WHERE seq = 2", (secret.decode(),))
    conn.execute(
        "INSERT INTO messages (recipient, seq, message_id, payload, enqueued_at)"
        " VALUES (?, 77, ?, ?, ?)",
        (bob.key, b"ghost", secret, time.time()),
    )
    conn.close()
    with json_logs() as sink:
        async with node_with_clock(data_dir, time.time) as node, node.client(bob) as b:
            page = await b.fetch_page(bob.key)
            assert [(m.seq, m.payload) for m in page.messages] == [
                (1, b"message 0"),
                (3, b"message 2"),
            ]
            assert (page.expired_count, page.expired_up_to_seq) == (1, 2)
    text = sink.getvalue()
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["count"] for e in events if e["event"] == "store_quarantined"] == [2]
    assert secret.decode() not in text and secret.hex() not in text
    b2 = SyncStore(db)
    assert sorted(b2.quarantined_rows()) == [
        ("messages", "messages.payload"),
        ("messages", "messages.seq"),
    ]
    b2.close()


async def test_node_refuses_to_start_on_a_store_sqlite_reports_corrupt(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    config = node_config(data_dir)
    data_dir.mkdir()
    b = SyncStore(config.db_path)
    for i in range(40):
        b.enqueue(b"A" * 32, [b"B" * 32], bytes([i]) * 3000, b"m%d" % i, None, time.time())
    b.close()
    conn = sqlite3.connect(config.db_path)
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages'").fetchone()
    conn.close()
    with config.db_path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * 64)
    with pytest.raises(StoreError) as info:
        await serve(config)
    assert "corrupt" in str(info.value)


async def test_new_node_files_are_owner_only(tmp_path: Path) -> None:
    config = NodeConfig(
        host="127.0.0.1", port=0, data_dir=tmp_path / "fresh", quic_backend=TEST_BACKEND
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        nursery.cancel_scope.cancel()
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700
    assert stat.S_IMODE(config.db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.key_path.stat().st_mode) == 0o600
    for journal in config.db_path.parent.glob(config.db_path.name + "-*"):
        assert stat.S_IMODE(journal.stat().st_mode) == 0o600, journal.name
