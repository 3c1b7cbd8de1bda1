"""SQLite store on real files: queues, idempotency, commits, KeyPackages, quotas, migrations."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from quicnproto.errors import ErrorCode, StoreError
from quicnproto.node.store import (
    SCHEMA_VERSION,
    Database,
    PendingWrite,
    RequestRefused,
    StoreLimits,
    open_sqlite_store,
)
from quicnproto.node.store.group_commit import BACKGROUND_DELAY
from tests.quicnproto.store_driver import SyncStore

ALICE = b"A" * 32
BOB = b"B" * 32
CAROL = b"C" * 32
NOW = 1_700_000_000.0


@pytest.fixture
def backend(tmp_path: Path):
    b = SyncStore(tmp_path / "node.sqlite3")
    yield b
    b.close()


def test_open_sets_wal_and_schema_version(tmp_path: Path) -> None:
    b = SyncStore(tmp_path / "n.db")
    assert b.schema_version() == SCHEMA_VERSION
    b.close()
    conn = sqlite3.connect(tmp_path / "n.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_open_existing_database_keeps_data(tmp_path: Path) -> None:
    b = SyncStore(tmp_path / "n.db")
    b.enqueue(ALICE, [BOB], b"hello", b"m1", None, NOW)
    b.close()
    b2 = SyncStore(tmp_path / "n.db")
    assert [m.payload for m in b2.fetch(BOB, 0, 10)] == [b"hello"]
    b2.close()


def test_open_refuses_newer_schema(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "n.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError):
        SyncStore(tmp_path / "n.db")


def test_migration_from_empty_file_creates_tables(tmp_path: Path) -> None:
    (tmp_path / "n.db").touch()
    b = SyncStore(tmp_path / "n.db")
    b.close()
    conn = sqlite3.connect(tmp_path / "n.db")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert {"queues", "messages", "sent", "commits", "key_packages"} <= tables


def test_closed_store_raises_store_error(backend: SyncStore) -> None:
    backend.close()
    with pytest.raises(StoreError):
        backend.fetch(BOB, 0, 10)


def test_enqueue_assigns_monotonic_seq_per_recipient(backend: SyncStore) -> None:
    assert backend.enqueue(ALICE, [BOB], b"1", b"m1", None, NOW) == (1,)
    assert backend.enqueue(ALICE, [BOB, CAROL], b"2", b"m2", None, NOW) == (2, 1)
    assert backend.enqueue(CAROL, [BOB], b"3", b"m3", None, NOW) == (3,)
    got = backend.fetch(BOB, 0, 10)
    assert [(m.seq, m.message_id, m.payload) for m in got] == [
        (1, b"m1", b"1"),
        (2, b"m2", b"2"),
        (3, b"m3", b"3"),
    ]
    assert [m.payload for m in backend.fetch(CAROL, 0, 10)] == [b"2"]


def test_fetch_after_seq_and_limit_paginate_without_gaps(backend: SyncStore) -> None:
    for i in range(25):
        backend.enqueue(ALICE, [BOB], bytes([i]), b"m%d" % i, None, NOW)
    seen: list[int] = []
    cursor = 0
    while True:
        page = backend.fetch(BOB, cursor, 10)
        if not page:
            break
        seen.extend(m.seq for m in page)
        cursor = page[-1].seq
    assert seen == list(range(1, 26))


def test_ack_deletes_up_to_seq_only(backend: SyncStore) -> None:
    for i in range(5):
        backend.enqueue(ALICE, [BOB], b"x", b"m%d" % i, None, NOW)
    assert backend.ack(BOB, 3) == 3
    assert [m.seq for m in backend.fetch(BOB, 0, 10)] == [4, 5]
    assert backend.count_queue(BOB) == 2
    assert backend.ack(BOB, 3) == 0
    assert backend.ack(CAROL, 100) == 0


def test_seq_never_reused_after_ack(backend: SyncStore) -> None:
    backend.enqueue(ALICE, [BOB], b"x", b"m1", None, NOW)
    backend.ack(BOB, 1)
    assert backend.enqueue(ALICE, [BOB], b"y", b"m2", None, NOW) == (2,)


def test_enqueue_retry_same_id_stores_nothing_new(backend: SyncStore) -> None:
    first = backend.enqueue(ALICE, [BOB, CAROL], b"p", b"id", None, NOW)
    again = backend.enqueue(ALICE, [BOB, CAROL], b"p", b"id", None, NOW)
    assert first == again == (1, 1)
    assert backend.count_queue(BOB) == 1
    assert backend.count_queue(CAROL) == 1


def test_enqueue_retry_after_ack_stays_idempotent(backend: SyncStore) -> None:
    backend.enqueue(ALICE, [BOB], b"p", b"id", None, NOW)
    backend.ack(BOB, 1)
    assert backend.enqueue(ALICE, [BOB], b"p", b"id", None, NOW) == (1,)
    assert backend.fetch(BOB, 0, 10) == []


def test_enqueue_same_id_different_content_conflicts(backend: SyncStore) -> None:
    backend.enqueue(ALICE, [BOB], b"p", b"id", None, NOW)
    with pytest.raises(RequestRefused) as info:
        backend.enqueue(ALICE, [BOB], b"q", b"id", None, NOW)
    assert info.value.code == ErrorCode.CONFLICT
    assert backend.count_queue(BOB) == 1


def test_same_message_id_from_different_senders_is_independent(backend: SyncStore) -> None:
    backend.enqueue(ALICE, [BOB], b"p", b"id", None, NOW)
    assert backend.enqueue(CAROL, [BOB], b"q", b"id", None, NOW) == (2,)


def test_first_commit_for_epoch_wins(backend: SyncStore) -> None:
    assert backend.enqueue(ALICE, [BOB], b"c1", b"c1", (b"group", 7), NOW) == (1,)
    with pytest.raises(RequestRefused) as info:
        backend.enqueue(CAROL, [BOB], b"c2", b"c2", (b"group", 7), NOW)
    assert info.value.code == ErrorCode.STALE
    # The winner's retry is still idempotent; the next epoch and other groups are open.
    assert backend.enqueue(ALICE, [BOB], b"c1", b"c1", (b"group", 7), NOW) == (1,)
    assert backend.enqueue(CAROL, [BOB], b"c3", b"c3", (b"group", 8), NOW) == (2,)
    assert backend.enqueue(CAROL, [BOB], b"c4", b"c4", (b"other", 7), NOW) == (3,)
    assert [m.message_id for m in backend.fetch(BOB, 0, 10)] == [b"c1", b"c3", b"c4"]


def test_commit_table_survives_reopen(tmp_path: Path) -> None:
    b = SyncStore(tmp_path / "n.db")
    b.enqueue(ALICE, [BOB], b"c1", b"c1", (b"g", 1), NOW)
    b.close()
    b = SyncStore(tmp_path / "n.db")
    with pytest.raises(RequestRefused) as info:
        b.enqueue(CAROL, [BOB], b"c2", b"c2", (b"g", 1), NOW)
    assert info.value.code == ErrorCode.STALE
    b.close()


def test_quota_by_count_refuses_whole_fan_out(tmp_path: Path) -> None:
    b = SyncStore(tmp_path / "n.db", StoreLimits(queue_max_messages=2))
    b.enqueue(ALICE, [BOB], b"1", b"m1", None, NOW)
    b.enqueue(ALICE, [BOB], b"2", b"m2", None, NOW)
    with pytest.raises(RequestRefused) as info:
        b.enqueue(ALICE, [CAROL, BOB], b"3", b"m3", None, NOW)
    assert info.value.code == ErrorCode.QUOTA_EXCEEDED
    # All or nothing: Carol, listed first, got nothing either; the id is not burnt.
    assert b.count_queue(CAROL) == 0
    b.ack(BOB, 1)
    assert b.enqueue(ALICE, [CAROL, BOB], b"3", b"m3", None, NOW) == (1, 3)
    b.close()


def test_quota_by_bytes(tmp_path: Path) -> None:
    b = SyncStore(tmp_path / "n.db", StoreLimits(queue_max_bytes=10))
    b.enqueue(ALICE, [BOB], b"x" * 6, b"m1", None, NOW)
    with pytest.raises(RequestRefused) as info:
        b.enqueue(ALICE, [BOB], b"x" * 5, b"m2", None, NOW)
    assert info.value.code == ErrorCode.QUOTA_EXCEEDED
    b.ack(BOB, 1)
    assert b.enqueue(ALICE, [BOB], b"x" * 10, b"m2", None, NOW) == (2,)
    b.close()


def test_huge_client_numbers_are_clamped(backend: SyncStore) -> None:
    backend.enqueue(ALICE, [BOB], b"x", b"m1", (b"g", 2**64 - 1), NOW)
    assert backend.fetch(BOB, 2**64 - 1, 10) == []
    assert backend.ack(BOB, 2**64 - 1) == 1


def test_purge_forgets_old_idempotency_records(tmp_path: Path) -> None:
    b = SyncStore(tmp_path / "n.db", StoreLimits(dedupe_retention=10.0))
    b.enqueue(ALICE, [BOB], b"p", b"id", None, NOW)
    assert b.purge(NOW + 5) == 0
    assert b.purge(NOW + 11) == 1
    b.close()


# --- KeyPackages


def test_key_package_claimed_once_oldest_first(backend: SyncStore) -> None:
    backend.add_key_package(ALICE, b"r1", b"kp1", False, int(NOW) + 100, NOW)
    backend.add_key_package(ALICE, b"r2", b"kp2", False, int(NOW) + 100, NOW)
    assert backend.count_key_packages(ALICE, NOW) == 2
    assert backend.claim_key_package(ALICE, NOW) == (b"kp1", False)
    assert backend.claim_key_package(ALICE, NOW) == (b"kp2", False)
    assert backend.claim_key_package(ALICE, NOW) is None
    assert backend.claim_key_package(BOB, NOW) is None


def test_last_resort_served_when_exhausted_and_kept(backend: SyncStore) -> None:
    backend.add_key_package(ALICE, b"lr", b"last", True, int(NOW) + 100, NOW)
    backend.add_key_package(ALICE, b"r1", b"kp1", False, int(NOW) + 100, NOW)
    assert backend.count_key_packages(ALICE, NOW) == 1
    assert backend.claim_key_package(ALICE, NOW) == (b"kp1", False)
    assert backend.claim_key_package(ALICE, NOW) == (b"last", True)
    assert backend.claim_key_package(ALICE, NOW) == (b"last", True)


def test_new_last_resort_replaces_old(backend: SyncStore) -> None:
    backend.add_key_package(ALICE, b"lr1", b"last1", True, int(NOW) + 100, NOW)
    backend.add_key_package(ALICE, b"lr2", b"last2", True, int(NOW) + 100, NOW)
    assert backend.claim_key_package(ALICE, NOW) == (b"last2", True)


def test_expired_key_packages_never_served(backend: SyncStore) -> None:
    backend.add_key_package(ALICE, b"r1", b"old", False, int(NOW) + 10, NOW)
    backend.add_key_package(ALICE, b"lr", b"oldlast", True, int(NOW) + 10, NOW)
    backend.add_key_package(ALICE, b"r2", b"new", False, int(NOW) + 1000, NOW)
    assert backend.count_key_packages(ALICE, NOW + 11) == 1
    assert backend.claim_key_package(ALICE, NOW + 11) == (b"new", False)
    assert backend.claim_key_package(ALICE, NOW + 11) is None


def test_consumed_key_package_cannot_be_uploaded_again(backend: SyncStore) -> None:
    backend.add_key_package(ALICE, b"r1", b"kp1", False, int(NOW) + 100, NOW)
    backend.claim_key_package(ALICE, NOW)
    with pytest.raises(RequestRefused) as info:
        backend.add_key_package(ALICE, b"r1", b"kp1", False, int(NOW) + 100, NOW)
    assert info.value.code == ErrorCode.CONFLICT


def test_reupload_of_stored_key_package_is_a_no_op(backend: SyncStore) -> None:
    backend.add_key_package(ALICE, b"r1", b"kp1", False, int(NOW) + 100, NOW)
    backend.add_key_package(ALICE, b"r1", b"kp1", False, int(NOW) + 100, NOW)
    assert backend.count_key_packages(ALICE, NOW) == 1
    with pytest.raises(RequestRefused) as info:
        backend.add_key_package(BOB, b"r1", b"kp1", False, int(NOW) + 100, NOW)
    assert info.value.code == ErrorCode.CONFLICT


def test_key_package_quota_per_identity(tmp_path: Path) -> None:
    b = SyncStore(tmp_path / "n.db", StoreLimits(key_packages_per_identity=3))
    for i in range(3):
        b.add_key_package(ALICE, b"r%d" % i, b"kp", False, int(NOW) + 100, NOW)
    with pytest.raises(RequestRefused) as info:
        b.add_key_package(ALICE, b"r9", b"kp", False, int(NOW) + 100, NOW)
    assert info.value.code == ErrorCode.QUOTA_EXCEEDED
    b.add_key_package(BOB, b"rb", b"kp", False, int(NOW) + 100, NOW)
    b.claim_key_package(ALICE, NOW)
    b.add_key_package(ALICE, b"r9", b"kp", False, int(NOW) + 100, NOW)
    b.close()


async def test_concurrent_claims_never_share_a_package(tmp_path: Path) -> None:
    store = open_sqlite_store(tmp_path / "n.db", clock=lambda: NOW)
    total = 60
    for i in range(total):
        await store.add_key_package(ALICE, b"r%03d" % i, b"kp%03d" % i, False, int(NOW) + 100)
    got: list[bytes] = []

    async def claimer() -> None:
        while True:
            claimed = await store.claim_key_package(ALICE)
            if claimed is None:
                return
            got.append(claimed[0])

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(claimer)
    await store.aclose()
    assert len(got) == total
    assert sorted(got) == sorted(b"kp%03d" % i for i in range(total))


async def test_concurrent_enqueues_get_distinct_seqs(tmp_path: Path) -> None:
    store = open_sqlite_store(tmp_path / "n.db", clock=lambda: NOW)
    seqs: list[int] = []

    async def sender(n: int) -> None:
        for i in range(20):
            (seq,) = await store.enqueue(bytes([n]) * 32, [BOB], b"x", b"%d-%d" % (n, i))
            seqs.append(seq)

    async with trio.open_nursery() as nursery:
        for n in range(4):
            nursery.start_soon(sender, n)
    assert sorted(seqs) == list(range(1, 81))
    assert [m.seq for m in await store.fetch(BOB, 0, 100)] == list(range(1, 81))
    await store.aclose()


async def test_store_runs_every_operation(tmp_path: Path) -> None:
    store = open_sqlite_store(tmp_path / "n.db")
    assert await store.enqueue(ALICE, [BOB], b"p", b"id") == (1,)
    assert [m.payload for m in await store.fetch(BOB, 0, 10)] == [b"p"]
    assert await store.count_queue(BOB) == 1
    assert await store.ack(BOB, 1) == 1
    await store.add_key_package(ALICE, b"r", b"kp", False, 2**40)
    assert await store.count_key_packages(ALICE) == 1
    assert await store.claim_key_package(ALICE) == (b"kp", False)
    assert await store.purge() == 0
    await store.aclose()


def test_group_commit_rolls_back_only_the_refused_operation(tmp_path: Path) -> None:
    b = SyncStore(tmp_path / "n.db", StoreLimits(queue_max_messages=1))
    ok = PendingWrite(
        lambda conn: conn.execute(
            "INSERT INTO queues (recipient, last_seq, count, bytes) VALUES (?, 5, 0, 0)", (ALICE,)
        )
    )

    def refused(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO queues (recipient, last_seq, count, bytes) VALUES (?, 9, 0, 0)", (BOB,)
        )
        raise RequestRefused(ErrorCode.QUOTA_EXCEEDED)

    bad = PendingWrite(refused)
    also_ok = PendingWrite(lambda conn: 42)
    b.run_batch([ok, bad, also_ok])
    assert ok.done and bad.done and also_ok.done
    assert (ok.error, also_ok.error, also_ok.result) == (None, None, 42)
    assert isinstance(bad.error, RequestRefused)
    # Alice's row is committed, Bob's was rolled back to its savepoint.
    assert b.enqueue(CAROL, [ALICE], b"x", b"m", None, NOW) == (6,)
    assert b.enqueue(CAROL, [BOB], b"x", b"m2", None, NOW) == (1,)
    b.close()


def test_group_commit_failure_fails_the_whole_batch(tmp_path: Path) -> None:
    b = SyncStore(tmp_path / "n.db")
    first = PendingWrite(
        lambda conn: conn.execute(
            "INSERT INTO queues (recipient, last_seq, count, bytes) VALUES (?, 1, 0, 0)", (ALICE,)
        )
    )

    def breaker_op(conn: sqlite3.Connection) -> None:
        # Lose the operation's savepoint, then fail: the batch cannot be partly kept.
        conn.execute("RELEASE op")
        raise sqlite3.OperationalError("disk I/O error")

    breaker = PendingWrite(breaker_op)
    b.run_batch([first, breaker])
    assert isinstance(first.error, StoreError)
    assert isinstance(breaker.error, StoreError)
    assert b.count_queue(ALICE) == 0
    assert b.enqueue(CAROL, [ALICE], b"x", b"m", None, NOW) == (1,)
    b.close()


def test_key_package_reusing_an_init_key_is_refused(backend: SyncStore) -> None:
    backend.add_key_package(ALICE, b"r1", b"kp1", False, int(NOW) + 100, NOW, b"init-1")
    with pytest.raises(RequestRefused) as info:
        backend.add_key_package(ALICE, b"r2", b"kp2", False, int(NOW) + 100, NOW, b"init-1")
    assert info.value.code == ErrorCode.CONFLICT
    assert backend.claim_key_package(ALICE, NOW) == (b"kp1", False)
    # Still refused once the first package was handed out.
    with pytest.raises(RequestRefused):
        backend.add_key_package(ALICE, b"r3", b"kp3", False, int(NOW) + 100, NOW, b"init-1")
    backend.add_key_package(ALICE, b"r4", b"kp4", False, int(NOW) + 100, NOW, b"init-2")


def test_migration_from_version_1_keeps_rows(tmp_path: Path) -> None:
    from quicnproto.node.store import MIGRATIONS

    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO key_packages (identity, ref, package, last_resort, not_after, created_at)"
        " VALUES (?, ?, ?, 0, ?, ?)",
        (ALICE, b"old-ref", b"old-kp", int(NOW) + 100, NOW),
    )
    conn.execute(
        "INSERT INTO queues (recipient, last_seq, count, bytes) VALUES (?, 4, 0, 0)", (BOB,)
    )
    conn.close()
    b = SyncStore(path)
    assert b.schema_version() == SCHEMA_VERSION == 5
    # Old rows (init_key NULL) coexist with new ones and are still served.
    b.add_key_package(ALICE, b"new-ref", b"new-kp", False, int(NOW) + 100, NOW, b"init")
    assert b.claim_key_package(ALICE, NOW) == (b"old-kp", False)
    assert b.claim_key_package(ALICE, NOW) == (b"new-kp", False)
    assert b.enqueue(CAROL, [BOB], b"x", b"m", None, NOW) == (5,)
    b.close()


def test_connection_failure_fails_every_write_of_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = SyncStore(tmp_path / "n.db")
    b.close()
    b.db._closed = False  # an open store whose pool is empty, so the batch must connect

    def no_connection(self: Database) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(Database, "_connect", no_connection)
    first, second = PendingWrite(lambda conn: 1), PendingWrite(lambda conn: 2)
    b.run_batch([first, second])
    # Both are finished with a StoreError; an unfinished one would make its caller spin forever.
    assert first.done and second.done
    assert isinstance(first.error, StoreError) and isinstance(second.error, StoreError)
    with pytest.raises(StoreError):
        b.enqueue(ALICE, [BOB], b"x", b"m", None, NOW)


def test_disk_full_refuses_writes_retryably_while_reads_acks_and_claims_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # VALIDATION SRV-CR-04, with a full disk simulated by SQLite's max_page_count.
    path = tmp_path / "n.db"
    b = SyncStore(path)
    for i in range(3):
        b.add_key_package(ALICE, b"r%d" % i, b"k" * 300, False, int(NOW) + 100, NOW, b"i%d" % i)
    with b.read() as conn:
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
    b.close()
    connect = Database._connect

    def small_disk(self: Database) -> sqlite3.Connection:
        conn = connect(self)
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        return conn

    monkeypatch.setattr(Database, "_connect", small_disk)
    b = SyncStore(path)
    stored = 0
    with pytest.raises(StoreError) as info:
        for stored in range(100):  # noqa: B007 - the count is checked below
            b.enqueue(ALICE, [BOB], b"x" * 3000, b"m%d" % stored, None, NOW)
    cause = info.value.__cause__
    assert isinstance(cause, sqlite3.Error) and cause.sqlite_errorcode == sqlite3.SQLITE_FULL
    # The refused enqueue left nothing behind; everything acknowledged before it is readable.
    assert 0 < stored == b.count_queue(BOB) == len(b.fetch(BOB, 0, 1000))
    assert b.claim_key_package(ALICE, NOW) == (b"k" * 300, False)
    assert b.ack(BOB, 2) == 2
    # Space came back (the ack freed pages): the node recovers without a restart, and the
    # refused message id was not burnt.
    assert b.enqueue(ALICE, [BOB], b"x" * 3000, b"m%d" % stored, None, NOW) == (stored + 1,)
    b.close()


def test_commit_for_an_epoch_older_than_a_decided_one_is_stale(backend: SyncStore) -> None:
    # SRV-DEL-05: epoch 5 of the group was decided, so the group is past epochs 4 and below.
    backend.enqueue(ALICE, [BOB], b"c5", b"c5", (b"g", 5), NOW)
    for epoch in (5, 4, 0):
        with pytest.raises(RequestRefused) as info:
            backend.enqueue(CAROL, [BOB], b"late", b"late%d" % epoch, (b"g", epoch), NOW)
        assert info.value.code == ErrorCode.STALE
    # Newer epochs (even with a gap) and other groups are still open.
    assert backend.enqueue(CAROL, [BOB], b"c7", b"c7", (b"g", 7), NOW) == (2,)
    assert backend.enqueue(CAROL, [BOB], b"h1", b"h1", (b"h", 1), NOW) == (3,)
    with pytest.raises(RequestRefused):
        backend.enqueue(CAROL, [BOB], b"c6", b"c6", (b"g", 6), NOW)
    assert [m.message_id for m in backend.fetch(BOB, 0, 10)] == [b"c5", b"c7", b"h1"]


def test_retry_with_same_id_but_another_commit_epoch_conflicts(backend: SyncStore) -> None:
    # The (group, epoch) a Commit claims is part of its content: a "retry" that changes it is
    # not the same message (SRV-DEL-02), and it must not bypass the commit table.
    assert backend.enqueue(ALICE, [BOB], b"c", b"id", (b"g", 1), NOW) == (1,)
    for commit in ((b"g", 2), (b"other", 1), None):
        with pytest.raises(RequestRefused) as info:
            backend.enqueue(ALICE, [BOB], b"c", b"id", commit, NOW)
        assert info.value.code == ErrorCode.CONFLICT
    assert backend.enqueue(ALICE, [BOB], b"c", b"id", (b"g", 1), NOW) == (1,)
    assert backend.count_queue(BOB) == 1


@pytest.mark.parametrize("attempt", range(5))
def test_concurrent_opens_of_a_new_file_migrate_it_once(tmp_path: Path, attempt: int) -> None:
    # Several nodes (or a node and an admin tool) opening one fresh file at the same moment.
    path = tmp_path / f"n{attempt}.db"
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []
    opened: list[SyncStore] = []
    lock = threading.Lock()

    def open_it() -> None:
        barrier.wait()
        try:
            b = SyncStore(path)
        except BaseException as exc:  # collected and asserted on below
            with lock:
                errors.append(exc)
            return
        with lock:
            opened.append(b)

    threads = [threading.Thread(target=open_it) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for b in opened:
        assert b.schema_version() == SCHEMA_VERSION
        b.close()
    assert errors == []


def test_fetch_stops_at_the_byte_budget_but_always_returns_one(backend: SyncStore) -> None:
    for i, size in enumerate((40, 50, 10, 200, 5)):
        backend.enqueue(ALICE, [BOB], b"x" * size, b"m%d" % i, None, NOW)
    assert [m.seq for m in backend.fetch(BOB, 0, 10, 100)] == [1, 2, 3]
    assert [m.seq for m in backend.fetch(BOB, 3, 10, 100)] == [4]  # over budget alone
    assert [m.seq for m in backend.fetch(BOB, 4, 10, 100)] == [5]
    assert [m.seq for m in backend.fetch(BOB, 0, 2, 10_000)] == [1, 2]
    assert [m.seq for m in backend.fetch(BOB, 0, 10)] == [1, 2, 3, 4, 5]
    # A partly read result ends its read: writers and checkpoints are not held up.
    assert backend.ack(BOB, 5) == 5


def test_purge_forgets_what_no_longer_protects_anything(tmp_path: Path) -> None:
    day = 24 * 3600.0
    limits = StoreLimits(dedupe_retention=day, key_package_max_lifetime=90 * day)
    b = SyncStore(tmp_path / "n.db", limits)
    # Commits for epochs 1..3 of group g and 1 of group h, a day apart.
    for epoch in (1, 2, 3):
        b.enqueue(ALICE, [BOB], b"c", b"g%d" % epoch, (b"g", epoch), NOW + epoch * day)
    b.enqueue(ALICE, [BOB], b"c", b"h1", (b"h", 1), NOW)
    # Two KeyPackages handed out (lifetimes ending at +10 days and +60 days), one never claimed
    # that expires at +5 days.
    b.add_key_package(ALICE, b"r1", b"kp1", False, int(NOW + 10 * day), NOW, b"i1")
    b.add_key_package(ALICE, b"r2", b"kp2", False, int(NOW + 60 * day), NOW, b"i2")
    b.add_key_package(CAROL, b"r3", b"kp3", False, int(NOW + 5 * day), NOW, b"i3")
    assert b.claim_key_package(ALICE, NOW) == (b"kp1", False)
    assert b.claim_key_package(ALICE, NOW) == (b"kp2", False)

    def rows(table: str) -> int:
        with sqlite3.connect(tmp_path / "n.db") as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608

    later = NOW + 20 * day
    # 4 idempotency records, kp3 (expired), the consumed kp1 (its lifetime is over), and the
    # Commits of g's epochs 1 and 2 (older than g's newest and than the retention).
    assert b.purge(later) == 4 + 1 + 1 + 2
    assert (rows("commits"), rows("consumed_key_packages"), rows("key_packages")) == (2, 1, 0)
    # First-Commit-wins still holds for every epoch up to the newest, in both groups.
    for group, epoch in ((b"g", 1), (b"g", 3), (b"h", 1)):
        with pytest.raises(RequestRefused) as info:
            b.enqueue(CAROL, [BOB], b"late", b"late-%d" % epoch + group, (group, epoch), later)
        assert info.value.code == ErrorCode.STALE
    # kp2 is still remembered as consumed: uploading it again is refused.
    with pytest.raises(RequestRefused):
        b.add_key_package(ALICE, b"r2", b"kp2", False, int(NOW + 60 * day), later, b"i2")
    assert b.purge(later) == 0
    b.close()


def test_consumed_key_packages_from_before_version_4_are_forgotten_after_the_max_lifetime(
    tmp_path: Path,
) -> None:
    from quicnproto.node.store import MIGRATIONS

    day = 24 * 3600.0
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in (*MIGRATIONS[0], *MIGRATIONS[1], *MIGRATIONS[2]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 3")
    conn.execute(
        "INSERT INTO consumed_key_packages (ref, consumed_at, init_key) VALUES (?, ?, ?)",
        (b"old", NOW, b"i-old"),
    )
    conn.close()
    b = SyncStore(path, StoreLimits(key_package_max_lifetime=90 * day))
    assert b.schema_version() == SCHEMA_VERSION == 5
    # Its lifetime is unknown, but it cannot have outlived the longest one accepted.
    assert b.purge(NOW + 89 * day) == 0
    with pytest.raises(RequestRefused):
        b.add_key_package(ALICE, b"old", b"kp", False, int(NOW + 100 * day), NOW + 89 * day)
    assert b.purge(NOW + 91 * day) == 1
    b.close()


# --- application_id: whose file this is ---------------------------------------------------------


def _pragma(path: Path, name: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        conn.close()


def test_new_database_carries_the_node_application_id(tmp_path: Path) -> None:
    from quicnproto.node.store.schema import APPLICATION_ID

    Database(tmp_path / "n.db").close()
    assert _pragma(tmp_path / "n.db", "application_id") == APPLICATION_ID


def test_node_database_from_before_the_application_id_is_adopted(tmp_path: Path) -> None:
    from quicnproto.node.store import MIGRATIONS
    from quicnproto.node.store.schema import APPLICATION_ID

    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS:
        for statement in statements:
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.close()
    Database(path).close()
    assert _pragma(path, "application_id") == APPLICATION_ID
    assert _pragma(path, "user_version") == SCHEMA_VERSION


@pytest.mark.parametrize(
    "setup",
    [
        ["CREATE TABLE foo(x)"],
        ["CREATE TABLE foo(x)", "PRAGMA user_version = 3"],
        ["PRAGMA application_id = 1234", "CREATE TABLE queues(x)"],
        ["PRAGMA application_id = 1234"],
        ["CREATE TABLE queues(x)", "PRAGMA user_version = 1"],
    ],
    ids=["foreign-table", "foreign-versioned", "other-application", "other-empty", "half-node"],
)
def test_foreign_database_is_refused_and_left_untouched(tmp_path: Path, setup: list[str]) -> None:
    path = tmp_path / "foreign.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in setup:
        conn.execute(statement)
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a node database"):
        Database(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.db"]


def test_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database, just some text" * 50)
    with pytest.raises(StoreError, match="not a database: SQLite"):
        Database(path)
    assert path.read_bytes() == b"this is not a database, just some text" * 50


def test_newer_node_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    Database(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer"):
        Database(path)
    assert path.read_bytes() == before


async def test_a_background_write_waits_for_company_unless_committed_now(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    # Trio's clock jumps only after a real second with nothing to run: a commit that depends on
    # the clock (the wait for company) shows as elapsed Trio time, one started at once does not.
    mock_clock.autojump_threshold = 1.0
    store = open_sqlite_store(tmp_path / "n.db")
    try:
        bob = b"b" * 32
        await store.enqueue(b"a" * 32, (bob,), b"p", b"m1", None)
        for commit_now in (False, True):
            done = trio.Event()
            started = trio.current_time()
            await store.ack_later(bob, 1, done.set)
            if commit_now:
                store.commit_background_now()
            await done.wait()
            waited = trio.current_time() - started
            if commit_now:
                assert waited < BACKGROUND_DELAY
            else:
                assert waited >= BACKGROUND_DELAY
        assert await store.count_queue(bob) == 0
    finally:
        await store.aclose()
