"""Corrupt store records at open (VALIDATION SRV-CR-05): bad rows written with sqlite3 into a
real store file are quarantined with their values intact, the store opens anyway, and a file
SQLite itself reports corrupt is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from quicnproto.errors import StoreError
from quicnproto.node.auth_service import key_package_parses
from quicnproto.node.store import StoreLimits
from tests.quicnproto.key_packages import make_key_package
from tests.quicnproto.store_driver import SyncStore

ALICE = b"A" * 32
BOB = b"B" * 32
NOW = 1_700_000_000.0
LIMITS = StoreLimits(max_payload_size=1000, max_key_package_size=4096)


def write(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for sql, params in statements:
        conn.execute(sql, params)
    conn.close()


def insert_message(
    seq: object, payload: object, message_id: object = b"bad"
) -> tuple[str, tuple[object, ...]]:
    return (
        "INSERT INTO messages (recipient, seq, message_id, payload, enqueued_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (BOB, seq, message_id, payload, NOW),
    )


def quarantine(path: Path) -> list[tuple[str, str, dict[str, tuple[str, object]]]]:
    conn = sqlite3.connect(path)
    conn.text_factory = bytes
    found = []
    for qid, source, reason in conn.execute(
        "SELECT id, source, reason FROM quarantine ORDER BY id"
    ):
        values = {
            name.decode(): (kind.decode(), value)
            for name, kind, value in conn.execute(
                "SELECT name, typeof(value), value FROM quarantine_values WHERE quarantine_id = ?",
                (qid,),
            )
        }
        found.append((source.decode(), reason.decode(), values))
    conn.close()
    return found


def test_bad_message_rows_are_quarantined_and_the_store_opens(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    b = SyncStore(path, LIMITS)
    for i in range(4):
        b.enqueue(ALICE, [BOB], b"good %d" % i, b"m%d" % i, None, NOW)
    b.close()
    write(
        path,
        # A payload torn into TEXT, one over the size bound, an INTEGER payload, a seq beyond
        # the queue's last_seq, a negative seq, an empty message id, a TEXT timestamp.
        ("UPDATE messages SET payload = 'torn text' WHERE seq = 2", ()),
        ("UPDATE messages SET payload = zeroblob(1001) WHERE seq = 3", ()),
        ("UPDATE queues SET last_seq = 6 WHERE recipient = ?", (BOB,)),
        insert_message(99, b"beyond last_seq"),
        insert_message(-1, b"negative"),
        insert_message(5, 12345),
        ("UPDATE messages SET message_id = X'' WHERE seq = 5", ()),
        (
            "INSERT INTO messages (recipient, seq, message_id, payload, enqueued_at)"
            " VALUES (?, 6, ?, ?, 'yesterday')",
            (BOB, b"m6", b"p"),
        ),
    )
    b = SyncStore(path, LIMITS)
    assert b.quarantined == 6
    # The good rows are served; the queue totals follow the remaining rows.
    assert [(m.seq, m.payload) for m in b.fetch(BOB, 0, 10)] == [(1, b"good 0"), (4, b"good 3")]
    assert b.count_queue(BOB) == 2
    # The recipient learns that seqs 2, 3, 5 and 6 are lost.
    page = b.fetch_page(BOB, 0, 10, None, NOW)
    assert (page.expired_count, page.expired_up_to) == (4, 6)
    # Sequence numbers stay monotonic: the next message is not given a quarantined seq.
    assert b.enqueue(ALICE, [BOB], b"next", b"m-next", None, NOW) == (7,)
    assert sorted(reason for _, reason in b.quarantined_rows()) == [
        "messages.enqueued_at",
        "messages.message_id",
        "messages.payload",
        "messages.payload",
        "messages.seq",
        "messages.seq",
    ]
    b.close()
    # Values are kept exactly as they were stored, types included.
    moved = {values["seq"][1]: values for _, _, values in quarantine(path)}
    assert moved[2]["payload"] == ("text", b"torn text")
    assert moved[3]["payload"] == ("blob", b"\x00" * 1001)
    assert moved[99]["payload"] == ("blob", b"beyond last_seq")
    assert moved[5]["payload"] == ("integer", 12345)
    assert moved[6]["enqueued_at"] == ("text", b"yesterday")
    # Opening again finds nothing new, and the quarantine is kept.
    b = SyncStore(path, LIMITS)
    assert b.quarantined == 0
    assert len(b.quarantined_rows()) == 6
    b.close()


def test_null_payload_row_is_quarantined(tmp_path: Path) -> None:
    # NOT NULL cannot be broken through SQL, so this mimics a store written by a buggy older
    # version whose table lacked the constraint.
    path = tmp_path / "n.db"
    SyncStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = replace(sql, 'payload BLOB NOT NULL', 'payload BLOB')"
        " WHERE name = 'messages'"
    )
    conn.close()
    write(
        path,
        ("INSERT INTO queues (recipient, last_seq, count, bytes) VALUES (?, 1, 1, 0)", (BOB,)),
        insert_message(1, None),
    )
    b = SyncStore(path)
    assert b.quarantined == 1
    assert b.quarantined_rows() == [("messages", "messages.payload")]
    assert b.count_queue(BOB) == 0
    b.close()


def test_key_package_rows_that_no_longer_parse_are_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    private_key = Ed25519PrivateKey.generate()
    good = make_key_package(private_key, name=b"good")
    torn = make_key_package(private_key, name=b"torn")[:-7]
    b = SyncStore(path, LIMITS)
    b.add_key_package(ALICE, b"r-good", good, False, int(NOW) + 100, NOW, b"i1")
    b.add_key_package(ALICE, b"r-torn", torn, False, int(NOW) + 100, NOW, b"i2")
    b.add_key_package(ALICE, b"r-last", good + b"", True, int(NOW) + 100, NOW, b"i3")
    b.close()
    write(
        path,
        ("UPDATE key_packages SET last_resort = 7 WHERE ref = ?", (b"r-last",)),
        (
            "INSERT INTO key_packages (identity, ref, package, last_resort, not_after,"
            " created_at, init_key) VALUES (?, ?, ?, 0, 'never', ?, NULL)",
            (ALICE, b"r-text", good, NOW),
        ),
    )
    b = SyncStore(path, LIMITS, key_package_check=key_package_parses)
    assert b.quarantined == 3
    assert sorted(b.quarantined_rows()) == [
        ("key_packages", "key_packages.last_resort"),
        ("key_packages", "key_packages.not_after"),
        ("key_packages", "key_packages.package does not parse"),
    ]
    assert b.claim_key_package(ALICE, NOW) == (good, False)
    assert b.claim_key_package(ALICE, NOW) is None
    b.close()
    torn_row = [v for _, r, v in quarantine(path) if r.endswith("does not parse")][0]
    assert torn_row["package"] == ("blob", torn)


def test_key_package_parses_accepts_real_packages_only() -> None:
    package = make_key_package(Ed25519PrivateKey.generate())
    assert key_package_parses(package)
    assert not key_package_parses(package[:-1])
    assert not key_package_parses(b"\x00\x01garbage")


def test_sqlite_corruption_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    b = SyncStore(path)
    for i in range(60):
        b.enqueue(ALICE, [BOB], bytes([i]) * 2000, b"m%d" % i, None, NOW)
    b.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages'").fetchone()
    conn.close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * 64)
    with pytest.raises(StoreError) as info:
        SyncStore(path)
    assert "corrupt" in str(info.value)
    assert "quick_check" in str(info.value)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    path.write_bytes(b"definitely not SQLite" * 100)
    with pytest.raises(StoreError) as info:
        SyncStore(path)
    assert "not a database" in str(info.value)
