"""Message expiry (VALIDATION SRV-DEL-07) on real SQLite files: never served, reported as a gap,
deleted by the purge, sequence numbers never reused; the v2 -> v3 migration keeps the gap exact."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from quicnproto.config import NodeConfig
from quicnproto.errors import ConfigError, ErrorCode
from quicnproto.node.auth_service import AuthService
from quicnproto.node.delivery_service import DeliveryService
from quicnproto.node.server import Node
from quicnproto.node.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    RequestRefused,
    StoreLimits,
    open_sqlite_store,
)
from quicnproto.wire import Enqueue, Fetch
from tests.quicnproto.store_driver import SyncStore
from tests.quicnproto.unit.test_services import NODE_CERT, Clock, login

ALICE = b"A" * 32
BOB = b"B" * 32
NOW = 1_700_000_000.0
TTL = 100.0


@pytest.fixture
def backend(tmp_path: Path):
    b = SyncStore(tmp_path / "n.db", StoreLimits(message_ttl=TTL))
    yield b
    b.close()


def gap(page: Any) -> tuple[list[int], int, int]:
    return [m.seq for m in page.messages], page.expired_count, page.expired_up_to


def test_default_ttl_is_31_days_and_must_be_positive() -> None:
    assert NodeConfig().message_ttl == StoreLimits().message_ttl == 31 * 24 * 3600.0
    with pytest.raises(ConfigError):
        NodeConfig(message_ttl=0).validate()


def test_expired_messages_are_never_served_and_show_as_a_gap(backend: SyncStore) -> None:
    backend.enqueue(ALICE, [BOB], b"one", b"m1", None, NOW)
    backend.enqueue(ALICE, [BOB], b"two", b"m2", None, NOW + 50)
    backend.enqueue(ALICE, [BOB], b"three", b"m3", None, NOW + 60)
    assert gap(backend.fetch_page(BOB, 0, 10, None, NOW + 99)) == ([1, 2, 3], 0, 0)
    # Exactly TTL old is expired.
    assert gap(backend.fetch_page(BOB, 0, 10, None, NOW + TTL)) == ([2, 3], 1, 1)
    assert gap(backend.fetch_page(BOB, 0, 10, None, NOW + 155)) == ([3], 2, 2)
    assert backend.fetch(BOB, 0, 10, now=NOW + 155)[0].payload == b"three"
    # A reader that moved its cursor past the gap is not told again.
    assert gap(backend.fetch_page(BOB, 2, 10, None, NOW + 155)) == ([3], 0, 0)
    # Everything expired: nothing served, the whole range reported.
    assert gap(backend.fetch_page(BOB, 0, 10, None, NOW + 1000)) == ([], 3, 3)
    assert gap(backend.fetch_page(BOB, 3, 10, None, NOW + 1000)) == ([], 0, 0)


def test_gap_is_reported_only_up_to_the_end_of_the_page(backend: SyncStore) -> None:
    # Seq 3 was stamped by a clock that went backwards, so it expires before its neighbours.
    for seq, at in ((1, NOW), (2, NOW), (3, NOW - 500), (4, NOW), (5, NOW)):
        backend.enqueue(ALICE, [BOB], b"x", b"m%d" % seq, None, at)
    # The first page stops at seq 2: the lost seq 3 lies beyond it and is not reported yet.
    assert gap(backend.fetch_page(BOB, 0, 2, None, NOW + 10)) == ([1, 2], 0, 0)
    assert gap(backend.fetch_page(BOB, 2, 2, None, NOW + 10)) == ([4, 5], 1, 3)
    assert gap(backend.fetch_page(BOB, 2, 1, None, NOW + 10)) == ([4], 1, 3)
    assert gap(backend.fetch_page(BOB, 4, 2, None, NOW + 10)) == ([5], 0, 0)


def test_purge_deletes_expired_messages_and_seq_is_never_reused(backend: SyncStore) -> None:
    for i in range(3):
        backend.enqueue(ALICE, [BOB], b"x" * 10, b"m%d" % i, None, NOW + i)
    backend.enqueue(ALICE, [ALICE], b"y", b"other", None, NOW + 50)
    assert backend.expire_messages(NOW + TTL) == 1
    assert backend.expire_messages(NOW + TTL + 2) == 2
    assert backend.count_queue(BOB) == 0
    assert backend.count_queue(ALICE) == 1
    with sqlite3.connect(backend.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (1,)
        assert conn.execute(
            "SELECT count, bytes FROM queues WHERE recipient = ?", (BOB,)
        ).fetchone() == (0, 0)
    now = NOW + TTL + 3
    assert backend.enqueue(ALICE, [BOB], b"new", b"m-new", None, now) == (4,)
    assert gap(backend.fetch_page(BOB, 0, 10, None, now)) == ([4], 3, 3)


def test_acknowledging_past_the_gap_ends_it(backend: SyncStore) -> None:
    for i in range(3):
        backend.enqueue(ALICE, [BOB], b"x", b"m%d" % i, None, NOW)
    backend.expire_messages(NOW + TTL)
    assert gap(backend.fetch_page(BOB, 0, 10, None, NOW + TTL)) == ([], 3, 3)
    assert backend.ack(BOB, 3) == 0
    assert gap(backend.fetch_page(BOB, 0, 10, None, NOW + TTL)) == ([], 0, 0)
    # An ack far beyond the last seq does not hide later losses.
    assert backend.ack(BOB, 2**64 - 1) == 0
    backend.enqueue(ALICE, [BOB], b"x", b"m9", None, NOW + TTL)
    backend.enqueue(ALICE, [BOB], b"y", b"m10", None, NOW + TTL + 10)
    assert gap(backend.fetch_page(BOB, 0, 10, None, NOW + 2 * TTL + 5)) == ([5], 1, 4)


def test_acknowledged_messages_are_not_reported_as_lost(backend: SyncStore) -> None:
    for i in range(4):
        backend.enqueue(ALICE, [BOB], b"x", b"m%d" % i, None, NOW)
    assert backend.ack(BOB, 2) == 2
    # A reader whose cursor is behind its own acknowledgements sees only real losses.
    assert gap(backend.fetch_page(BOB, 0, 10, None, NOW + 1)) == ([3, 4], 0, 0)
    assert gap(backend.fetch_page(BOB, 0, 10, None, NOW + TTL)) == ([], 2, 4)


def test_a_full_queue_makes_room_by_expiring(tmp_path: Path) -> None:
    b = SyncStore(tmp_path / "n.db", StoreLimits(message_ttl=TTL, queue_max_messages=2))
    b.enqueue(ALICE, [BOB], b"1", b"m1", None, NOW)
    b.enqueue(ALICE, [BOB], b"2", b"m2", None, NOW + 10)
    with pytest.raises(RequestRefused) as info:
        b.enqueue(ALICE, [BOB], b"3", b"m3", None, NOW + 50)
    assert info.value.code == ErrorCode.QUOTA_EXCEEDED
    assert b.enqueue(ALICE, [BOB], b"3", b"m3", None, NOW + TTL) == (3,)
    assert gap(b.fetch_page(BOB, 0, 10, None, NOW + TTL)) == ([2, 3], 1, 1)
    b.close()


def test_migration_from_version_2_with_data_keeps_the_gap_exact(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in (*MIGRATIONS[0], *MIGRATIONS[1]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    # Bob's queue gave out seqs 1..5 and 1..2 were acknowledged; Alice's gave 1..4, all acked.
    conn.execute("INSERT INTO queues VALUES (?, 5, 3, 3)", (BOB,))
    conn.execute("INSERT INTO queues VALUES (?, 4, 0, 0)", (ALICE,))
    for seq in (3, 4, 5):
        conn.execute(
            "INSERT INTO messages (recipient, seq, message_id, payload, enqueued_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (BOB, seq, b"m%d" % seq, b"p", NOW),
        )
    conn.close()
    b = SyncStore(path, StoreLimits(message_ttl=TTL))
    assert b.schema_version() == SCHEMA_VERSION == 5
    assert b.quarantined == 0
    with sqlite3.connect(path) as check:
        rows = check.execute("SELECT recipient, acked_up_to FROM queues ORDER BY recipient")
        assert rows.fetchall() == [(ALICE, 4), (BOB, 2)]
    assert gap(b.fetch_page(BOB, 0, 10, None, NOW)) == ([3, 4, 5], 0, 0)
    assert gap(b.fetch_page(ALICE, 0, 10, None, NOW)) == ([], 0, 0)
    # Expiry after the upgrade: only the three unacknowledged messages are lost.
    assert b.expire_messages(NOW + TTL) == 3
    assert gap(b.fetch_page(BOB, 0, 10, None, NOW + TTL)) == ([], 3, 5)
    assert b.enqueue(ALICE, [BOB], b"x", b"m6", None, NOW + TTL) == (6,)
    b.close()


# --- through the services (injected clock, no sleeping for TTLs)


async def test_delivery_fetch_reports_the_gap_and_a_long_poll_carries_it(
    tmp_path: Path,
) -> None:
    clock = Clock()
    clock.now = NOW
    store = open_sqlite_store(tmp_path / "n.db", StoreLimits(message_ttl=TTL), clock=clock)
    config = NodeConfig()
    auth = AuthService(store, config, node_certificate=NODE_CERT, clock=clock)
    delivery = DeliveryService(store, config, clock=clock)
    owner: dict[str, Any] = {}
    sender: dict[str, Any] = {}
    bob = login(auth, owner, Ed25519PrivateKey.generate())
    login(auth, sender, Ed25519PrivateKey.generate())
    try:
        await store.enqueue(ALICE, [bob], b"old", b"m1")
        clock.now += TTL
        answer = await delivery.fetch(owner, Fetch(bob))
        assert (answer.messages, answer.expired_count, answer.expired_up_to_seq) == ((), 1, 1)
        assert await store.fetch(bob, 0, 10) == []
        # A long-poll with only the gap to report waits for a message (a client that never
        # moves its cursor past the gap is not answered at once, over and over), then
        # carries both.
        got: list[Any] = []

        async def long_poll() -> None:
            got.append(await delivery.fetch(owner, Fetch(bob, wait_ms=60_000)))

        # The guard only keeps a broken wake-up from hanging the suite; no timing is asserted.
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(long_poll)
                while delivery.waiting(bob) == 0:
                    await trio.sleep(0.01)
                assert got == []
                await delivery.enqueue(sender, Enqueue((bob,), b"new", b"m2"))
        (answer,) = got
        assert [(m.seq, m.payload) for m in answer.messages] == [(2, b"new")]
        assert (answer.expired_count, answer.expired_up_to_seq) == (1, 1)
        answer = await delivery.fetch(owner, Fetch(bob, after_seq=1))
        assert ([m.payload for m in answer.messages], answer.expired_count) == ([b"new"], 0)
    finally:
        await store.aclose()


async def test_node_purge_deletes_expired_messages(tmp_path: Path) -> None:
    clock = Clock()
    clock.now = NOW
    store = open_sqlite_store(tmp_path / "n.db", StoreLimits(message_ttl=TTL), clock=clock)
    node = Node(NodeConfig(), store)
    try:
        await store.enqueue(ALICE, [BOB], b"a", b"m1")
        await store.enqueue(ALICE, [BOB], b"b", b"m2")
        await node.purge_once()
        assert await store.count_queue(BOB) == 2
        clock.now += TTL
        await node.purge_once()
        assert await store.count_queue(BOB) == 0
        page = await store.fetch_page(BOB, 0, 10)
        assert (page.messages, page.expired_count, page.expired_up_to) == ((), 2, 2)
        assert await store.enqueue(ALICE, [BOB], b"c", b"m3") == (3,)
    finally:
        await store.aclose()
