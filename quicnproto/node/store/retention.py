"""What the periodic purge forgets: records that no longer protect anything (idempotency
records, expired and consumed KeyPackages, Commits of superseded epochs). Message expiry is
:func:`quicnproto.node.store.queues.expire_messages`.
"""

from __future__ import annotations

import sqlite3

from quicnproto.node.store.types import StoreLimits


def purge(conn: sqlite3.Connection, limits: StoreLimits, now: float) -> int:
    """Forget what no longer protects anything; returns how many rows went.

    Idempotency records older than ``dedupe_retention``; expired KeyPackages (never served
    anyway); consumed KeyPackages whose lifetime is over (an upload of one again is refused
    as expired); and Commit records older than ``dedupe_retention`` for an epoch below
    their group's newest (first-Commit-wins compares with the newest only, RFC 9420 §14).
    """
    old = now - limits.dedupe_retention
    removed = conn.execute("DELETE FROM sent WHERE created_at < ?", (old,)).rowcount
    removed += conn.execute("DELETE FROM key_packages WHERE not_after < ?", (int(now),)).rowcount
    removed += conn.execute(
        "DELETE FROM consumed_key_packages WHERE not_after < ?"
        " OR (not_after IS NULL AND consumed_at < ?)",
        (int(now), now - limits.key_package_max_lifetime),
    ).rowcount
    removed += conn.execute(
        "DELETE FROM commits WHERE created_at < ? AND epoch <"
        " (SELECT MAX(newest.epoch) FROM commits AS newest"
        " WHERE newest.group_id = commits.group_id)",
        (old,),
    ).rowcount
    return int(removed)
