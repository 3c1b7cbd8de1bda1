"""Rows that SQLite can read but that break the store's invariants, moved aside at open
(VALIDATION SRV-CR-05).

A payload of the wrong type or too large, a sequence number outside its queue, a KeyPackage that
no longer parses, ...: such rows are moved, values intact, into the quarantine tables in one
transaction, and the node starts without them. A quarantined message is reported to its
recipient like an expired one (see :func:`quicnproto.node.store.queues.fetch_page`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable

from quicnproto.node.store.types import MAX_STORED_ID_SIZE, StoreLimits


def quarantine_bad_rows(
    conn: sqlite3.Connection,
    limits: StoreLimits,
    key_package_check: Callable[[bytes], bool] | None,
    now: float,
) -> int:
    """Move rows that break the store's invariants into the quarantine tables; returns how
    many moved. One write transaction; values are copied by SQL, never read into Python
    (a payload is never logged or decoded)."""
    message_rules = (
        ("recipient", "typeof(recipient) != 'blob' OR length(recipient) = 0"),
        (
            "seq",
            "typeof(seq) != 'integer' OR seq < 1 OR seq > COALESCE((SELECT q.last_seq"
            " FROM queues q WHERE q.recipient = messages.recipient), 0)",
        ),
        (
            "message_id",
            "typeof(message_id) != 'blob' OR length(message_id) = 0"
            f" OR length(message_id) > {MAX_STORED_ID_SIZE}",
        ),
        (
            "payload",
            f"typeof(payload) != 'blob' OR length(payload) > {int(limits.max_payload_size)}",
        ),
        ("enqueued_at", "typeof(enqueued_at) NOT IN ('integer', 'real')"),
    )
    key_package_rules = (
        ("identity", "typeof(identity) != 'blob' OR length(identity) = 0"),
        (
            "ref",
            f"typeof(ref) != 'blob' OR length(ref) = 0 OR length(ref) > {MAX_STORED_ID_SIZE}",
        ),
        (
            "package",
            "typeof(package) != 'blob' OR length(package) = 0"
            f" OR length(package) > {int(limits.max_key_package_size)}",
        ),
        ("last_resort", "typeof(last_resort) != 'integer' OR last_resort NOT IN (0, 1)"),
        ("not_after", "typeof(not_after) != 'integer'"),
        ("init_key", "init_key IS NOT NULL AND typeof(init_key) != 'blob'"),
    )
    conn.execute("BEGIN IMMEDIATE")
    try:
        bad: dict[tuple[str, int], str] = {}
        checks = (("messages", message_rules), ("key_packages", key_package_rules))
        # Table names, columns and conditions below are this module's constants.
        for table, rules in checks:
            for column, condition in rules:
                query = f"SELECT rowid FROM {table} WHERE {condition}"  # noqa: S608
                for (rowid,) in conn.execute(query):
                    bad.setdefault((table, int(rowid)), f"{table}.{column}")
        if key_package_check is not None:
            rows = conn.execute("SELECT rowid, package FROM key_packages").fetchall()
            for rowid, package in rows:
                key = ("key_packages", int(rowid))
                if key not in bad and not key_package_check(bytes(package)):
                    bad[key] = "key_packages.package does not parse"
        columns = {
            table: [str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")]
            for table in ("messages", "key_packages")
        }
        for (table, rowid), reason in sorted(bad.items()):
            qid = conn.execute(
                "INSERT INTO quarantine (source, source_rowid, reason, quarantined_at)"
                " VALUES (?, ?, ?, ?)",
                (table, rowid, reason, now),
            ).lastrowid
            for name in columns[table]:
                copy = "INSERT INTO quarantine_values (quarantine_id, name, value) SELECT ?, ?, "
                copy += f'"{name}" FROM {table} WHERE rowid = ?'
                conn.execute(copy, (qid, name, rowid))
            conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))  # noqa: S608
        if any(table == "messages" for table, _ in bad):
            # Queue totals follow the rows that remain (quota accounting stays exact).
            conn.execute(
                "UPDATE queues SET"
                " count = (SELECT COUNT(*) FROM messages m WHERE m.recipient = queues.recipient),"
                " bytes = (SELECT COALESCE(SUM(LENGTH(m.payload)), 0) FROM messages m"
                " WHERE m.recipient = queues.recipient)"
            )
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return len(bad)


def quarantined_rows(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """``(source table, reason)`` of every quarantined row, oldest first (no values)."""
    rows = conn.execute("SELECT source, reason FROM quarantine ORDER BY id").fetchall()
    return [(str(source), str(reason)) for source, reason in rows]
