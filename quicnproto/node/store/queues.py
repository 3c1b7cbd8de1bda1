"""Delivery queues: enqueue with idempotency and first-Commit-wins, fetch with the expiry gap,
acknowledgement and expiry. Free functions over a :class:`sqlite3.Connection`; a write runs
inside the caller's savepoint (see :mod:`quicnproto.node.store.group_commit`), a read inside
one read transaction.

Queued messages expire ``StoreLimits.message_ttl`` seconds after they were enqueued (VALIDATION
SRV-DEL-07). An expired message is never served, is deleted by :func:`expire_messages` (or to
make room in a full queue), and its sequence number is never reused. Expiry is not silent: every
sequence number of a queue up to ``last_seq`` was given to exactly one message, and
acknowledgements delete only at or below ``acked_up_to``, so a sequence number above both the
reader's cursor and ``acked_up_to`` with no live message is a lost one; :func:`fetch_page`
reports how many there are (and the highest) up to where its page reaches.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Sequence

from quicnproto.errors import ErrorCode
from quicnproto.node.store.types import (
    MAX_SQL_INT,
    FetchedPage,
    RequestRefused,
    StoredMessage,
    StoreLimits,
)


def enqueue_digest(
    recipients: Sequence[bytes],
    payload: bytes,
    commit: tuple[bytes, int] | None = None,
    welcome: bytes | None = None,
) -> bytes:
    """What an idempotent retry must repeat exactly: the recipients, the payload, the
    ``(group_id, epoch)`` a Commit claims and its Welcome (absent for other messages)."""
    h = hashlib.sha256()
    h.update(len(recipients).to_bytes(4, "big"))
    for r in recipients:
        h.update(len(r).to_bytes(4, "big") + r)
    h.update(payload)
    if commit is not None:
        group_id, epoch = commit
        h.update(b"commit" + len(group_id).to_bytes(4, "big") + group_id)
        h.update(epoch.to_bytes(8, "big"))
    if welcome is not None:
        h.update(b"welcome" + len(welcome).to_bytes(4, "big") + welcome)
    return h.digest()


def enqueue(
    conn: sqlite3.Connection,
    limits: StoreLimits,
    sender: bytes,
    recipients: Sequence[bytes],
    payload: bytes,
    message_id: bytes,
    commit: tuple[bytes, int] | None,
    digest: bytes,
    now: float,
) -> tuple[int, ...]:
    """:func:`enqueue_bundle` without a Welcome; returns the sequence numbers."""
    seqs, _ = enqueue_bundle(
        conn, limits, sender, recipients, payload, message_id, commit, None, digest, now
    )
    return seqs


def enqueue_bundle(
    conn: sqlite3.Connection,
    limits: StoreLimits,
    sender: bytes,
    recipients: Sequence[bytes],
    payload: bytes,
    message_id: bytes,
    commit: tuple[bytes, int] | None,
    welcome: tuple[bytes, Sequence[bytes]] | None,
    digest: bytes,
    now: float,
) -> tuple[tuple[int, ...], tuple[bytes, ...]]:
    """Store ``payload`` in every recipient's queue, or in none; returns the sequence numbers
    and the queues written to.

    With ``welcome=(payload, KeyPackageRefs)`` (a Commit's Welcome), the Welcome goes, in the
    same transaction and only if the Commit wins its epoch, to the identity whose KeyPackage
    the node handed out under each ref (VALIDATION SRV-DEL-06, SRV-KP-06); its sequence
    numbers follow the recipients'.

    ``digest`` is :func:`enqueue_digest` of the request. A retry of an earlier
    (sender, message_id) with the same digest stores nothing and returns the original sequence
    numbers (VALIDATION SRV-DEL-02). With ``commit=(group_id, epoch)``, only the first message
    for that pair is accepted, and none for an epoch older than one already decided (RFC 9420
    §14; SRV-DEL-05); the table survives restarts (SRV-CR-06).

    Raises:
        RequestRefused: CONFLICT (id reused for different content), STALE (another Commit
            won this epoch or a later one), QUOTA_EXCEEDED (some recipient's queue is full),
            INVALID (a Welcome for a KeyPackage the node never handed out).
        sqlite3.Error: SQLite failed.
    """
    row = conn.execute(
        "SELECT digest, seqs FROM sent WHERE sender = ? AND message_id = ?",
        (sender, message_id),
    ).fetchone()
    if row is not None:
        if not hmac.compare_digest(row[0], digest):
            raise RequestRefused(ErrorCode.CONFLICT, "message id reused")
        return tuple(int(s) for s in json.loads(row[1])), ()
    if commit is not None:
        group_id, epoch = commit
        # The first Commit for an epoch wins; one for that epoch or an older one
        # arriving later is stale (the group has already moved past it).
        (decided,) = conn.execute(
            "SELECT MAX(epoch) FROM commits WHERE group_id = ?", (group_id,)
        ).fetchone()
        if decided is not None and min(epoch, MAX_SQL_INT) <= decided:
            raise RequestRefused(ErrorCode.STALE, "epoch already committed")
        conn.execute(
            "INSERT INTO commits (group_id, epoch, sender, message_id, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (group_id, min(epoch, MAX_SQL_INT), sender, message_id, now),
        )
    seqs: list[int] = []
    size = len(payload)
    for recipient in recipients:
        # The queue's counters, moved for this message in the same statement (a refusal
        # below rolls the savepoint back, counters included).
        seq, count, used = conn.execute(
            "INSERT INTO queues (recipient, last_seq, count, bytes) VALUES (?, 1, 1, ?)"
            " ON CONFLICT (recipient) DO UPDATE SET last_seq = last_seq + 1,"
            " count = count + 1, bytes = bytes + excluded.bytes"
            " RETURNING last_seq, count, bytes",
            (recipient, size),
        ).fetchone()
        if _over_quota(limits, count - 1, used - size, size) and _expire_queue(
            conn, limits, recipient, now
        ):
            # Expired messages no longer count against the quota (SRV-DEL-07).
            count, used = conn.execute(
                "SELECT count, bytes FROM queues WHERE recipient = ?", (recipient,)
            ).fetchone()
        if _over_quota(limits, count - 1, used - size, size):
            raise RequestRefused(ErrorCode.QUOTA_EXCEEDED, "recipient queue full")
        conn.execute(
            "INSERT INTO messages (recipient, seq, message_id, payload, enqueued_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (recipient, seq, message_id, payload, now),
        )
        seqs.append(seq)
    written = list(recipients)
    if welcome is not None:
        data, refs = welcome
        joiners = [key_package_holder(conn, ref) for ref in refs]
        for joiner in dict.fromkeys(joiners):
            seqs.append(_append(conn, limits, joiner, message_id, data, now))
            written.append(joiner)
    conn.execute(
        "INSERT INTO sent (sender, message_id, digest, seqs, created_at) VALUES (?, ?, ?, ?, ?)",
        (sender, message_id, digest, json.dumps(seqs), now),
    )
    return tuple(seqs), tuple(written)


def key_package_holder(conn: sqlite3.Connection, ref: bytes) -> bytes:
    """The identity whose KeyPackage the node handed out (or holds as its last resort) under
    ``ref`` (VALIDATION SRV-KP-06).

    Raises:
        RequestRefused: INVALID for a ref the node never handed out.
    """
    row = conn.execute(
        "SELECT identity FROM consumed_key_packages WHERE ref = ? AND identity IS NOT NULL",
        (ref,),
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT identity FROM key_packages WHERE ref = ? AND last_resort = 1", (ref,)
        ).fetchone()
    if row is None:
        raise RequestRefused(ErrorCode.INVALID, "Welcome for an unknown KeyPackage")
    return bytes(row[0])


def _append(
    conn: sqlite3.Connection,
    limits: StoreLimits,
    recipient: bytes,
    message_id: bytes,
    data: bytes,
    now: float,
) -> int:
    """Appends one message to ``recipient``'s queue (quota checked); returns its seq."""
    size = len(data)
    seq, count, used = conn.execute(
        "INSERT INTO queues (recipient, last_seq, count, bytes) VALUES (?, 1, 1, ?)"
        " ON CONFLICT (recipient) DO UPDATE SET last_seq = last_seq + 1,"
        " count = count + 1, bytes = bytes + excluded.bytes"
        " RETURNING last_seq, count, bytes",
        (recipient, size),
    ).fetchone()
    if _over_quota(limits, count - 1, used - size, size):
        raise RequestRefused(ErrorCode.QUOTA_EXCEEDED, "recipient queue full")
    conn.execute(
        "INSERT INTO messages (recipient, seq, message_id, payload, enqueued_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (recipient, seq, message_id, data, now),
    )
    return int(seq)


def _over_quota(limits: StoreLimits, count: int, used: int, size: int) -> bool:
    return count + 1 > limits.queue_max_messages or used + size > limits.queue_max_bytes


def _expire_queue(
    conn: sqlite3.Connection, limits: StoreLimits, recipient: bytes, now: float
) -> int:
    """Delete ``recipient``'s expired messages inside the caller's transaction."""
    return _delete_from_queue(conn, recipient, "enqueued_at <= ?", now - limits.message_ttl)


def _delete_from_queue(
    conn: sqlite3.Connection, recipient: bytes, condition: str, value: float
) -> int:
    """Delete ``recipient``'s messages matching ``condition`` (an SQL fragment with one
    ``?`` for ``value``) and move the queue's counters; returns how many went."""
    count, used = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM messages"  # noqa: S608
        f" WHERE recipient = ? AND {condition}",  # ``condition`` is one of our fixed fragments
        (recipient, value),
    ).fetchone()
    if count:
        conn.execute(
            f"DELETE FROM messages WHERE recipient = ? AND {condition}",  # noqa: S608
            (recipient, value),
        )
        conn.execute(
            "UPDATE queues SET count = count - ?, bytes = bytes - ? WHERE recipient = ?",
            (count, used, recipient),
        )
    return int(count)


def fetch_page(
    conn: sqlite3.Connection,
    limits: StoreLimits,
    recipient: bytes,
    after_seq: int,
    limit: int,
    max_bytes: int | None,
    now: float,
) -> FetchedPage:
    """Up to ``limit`` live messages with ``seq > after_seq``, oldest first, and the gap of
    expired ones before the page's end (see :class:`FetchedPage`); deletes nothing.

    Messages enqueued ``message_ttl`` or more seconds before ``now`` are never returned
    (VALIDATION SRV-DEL-07). With ``max_bytes``, stops before the payloads would exceed it,
    but always returns the first message there is (so any message can be fetched, and an
    answer stays bounded). One read transaction, so the queue's counters and its messages
    are read at the same instant.
    """
    after = min(after_seq, MAX_SQL_INT)
    cutoff = now - limits.message_ttl
    found: list[StoredMessage] = []
    used = 0
    cut_short = False
    conn.execute("BEGIN")
    try:
        queue = conn.execute(
            "SELECT last_seq, acked_up_to FROM queues WHERE recipient = ?", (recipient,)
        ).fetchone()
        if queue is None:
            return FetchedPage(())
        rows = conn.execute(
            "SELECT seq, message_id, payload FROM messages"
            " WHERE recipient = ? AND seq > ? AND enqueued_at > ? ORDER BY seq LIMIT ?",
            (recipient, after, cutoff, limit + 1),
        )
        try:
            for seq, message_id, payload in rows:
                used += len(payload)
                if len(found) >= limit or (found and max_bytes is not None and used > max_bytes):
                    cut_short = True
                    break
                found.append(StoredMessage(int(seq), bytes(message_id), bytes(payload)))
        finally:
            rows.close()  # end the read now, not when the pooled connection is reused
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
    last_seq, acked_up_to = int(queue[0]), int(queue[1])
    # Every seq in (low, end] went to one message; one neither returned nor acknowledged
    # is lost (expired, or quarantined as corrupt).
    low = max(after, acked_up_to)
    end = (found[-1].seq if found else low) if cut_short else last_seq
    returned = {m.seq for m in found if m.seq > low}
    missing = max(0, end - low - len(returned))
    highest = 0
    if missing:
        highest = end
        while highest in returned:
            highest -= 1
    return FetchedPage(tuple(found), missing, highest)


def ack(conn: sqlite3.Connection, recipient: bytes, up_to_seq: int) -> int:
    """Delete every message of ``recipient`` with ``seq <= up_to_seq``; returns how many went."""
    up_to = min(up_to_seq, MAX_SQL_INT)
    # Remember the acknowledged point (never past the last seq given out), so a gap
    # below it is not reported as lost (SRV-DEL-07).
    conn.execute(
        "UPDATE queues SET acked_up_to = MAX(acked_up_to, MIN(?, last_seq)) WHERE recipient = ?",
        (up_to, recipient),
    )
    return _delete_from_queue(conn, recipient, "seq <= ?", up_to)


def count_queue(conn: sqlite3.Connection, recipient: bytes) -> int:
    """Messages waiting for ``recipient``."""
    row = conn.execute("SELECT count FROM queues WHERE recipient = ?", (recipient,)).fetchone()
    return int(row[0]) if row else 0


def queue_totals(conn: sqlite3.Connection, recipient: bytes) -> tuple[int, int]:
    """``(messages, payload bytes)`` in ``recipient``'s queue."""
    row = conn.execute(
        "SELECT count, bytes FROM queues WHERE recipient = ?", (recipient,)
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def all_queue_totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """``(messages, payload bytes)`` in all queues (one scan of ``queues``, a row per recipient)."""
    row = conn.execute("SELECT COALESCE(SUM(count), 0), COALESCE(SUM(bytes), 0) FROM queues")
    messages, size = row.fetchone()
    return int(messages), int(size)


def expire_messages(conn: sqlite3.Connection, limits: StoreLimits, now: float) -> int:
    """Delete every message enqueued ``message_ttl`` or more seconds before ``now``; returns how
    many went (VALIDATION SRV-DEL-07). Queues keep their ``last_seq``, so sequence numbers are
    never reused, and the loss shows in later fetches."""
    cutoff = now - limits.message_ttl
    per_queue = conn.execute(
        "SELECT recipient, COUNT(*), COALESCE(SUM(LENGTH(payload)), 0)"
        " FROM messages INDEXED BY messages_by_age"
        " WHERE enqueued_at <= ? GROUP BY recipient",
        (cutoff,),
    ).fetchall()
    if not per_queue:
        return 0
    conn.execute("DELETE FROM messages WHERE enqueued_at <= ?", (cutoff,))
    for recipient, count, used in per_queue:
        conn.execute(
            "UPDATE queues SET count = count - ?, bytes = bytes - ? WHERE recipient = ?",
            (count, used, recipient),
        )
    return sum(int(count) for _, count, _ in per_queue)
