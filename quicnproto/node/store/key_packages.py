"""The KeyPackage directory: upload, single-use claim with a last-resort fallback, and counts.
Free functions over a :class:`sqlite3.Connection`; a write runs inside the caller's savepoint
(see :mod:`quicnproto.node.store.group_commit`).
"""

from __future__ import annotations

import sqlite3

from quicnproto.errors import ErrorCode
from quicnproto.node.store.types import MAX_SQL_INT, RequestRefused, StoreLimits


def add_key_package(
    conn: sqlite3.Connection,
    limits: StoreLimits,
    identity: bytes,
    ref: bytes,
    package: bytes,
    last_resort: bool,
    not_after: int,
    now: float,
    init_key: bytes | None = None,
) -> None:
    """Add a validated KeyPackage for ``identity``.

    Re-uploading a package still stored is a no-op; one already handed out is refused
    (VALIDATION SRV-KP-04), and so is another package reusing a stored or handed-out
    ``init_key`` (SRV-KP-01). A new last-resort package replaces the previous one.

    Raises:
        RequestRefused: CONFLICT (already consumed, init key reused, or stored for another
            identity), QUOTA_EXCEEDED (too many stored for this identity).
        sqlite3.Error: SQLite failed.
    """
    if conn.execute("SELECT 1 FROM consumed_key_packages WHERE ref = ?", (ref,)).fetchone():
        raise RequestRefused(ErrorCode.CONFLICT, "key package already used")
    existing = conn.execute("SELECT identity FROM key_packages WHERE ref = ?", (ref,)).fetchone()
    if existing is not None:
        if bytes(existing[0]) != identity:
            raise RequestRefused(ErrorCode.CONFLICT, "key package already stored")
        return
    if init_key is not None and (
        conn.execute(
            "SELECT 1 FROM consumed_key_packages WHERE init_key = ?", (init_key,)
        ).fetchone()
        or conn.execute("SELECT 1 FROM key_packages WHERE init_key = ?", (init_key,)).fetchone()
    ):
        raise RequestRefused(ErrorCode.CONFLICT, "init key already used")
    conn.execute(
        "DELETE FROM key_packages WHERE identity = ? AND not_after < ?", (identity, int(now))
    )
    if last_resort:
        conn.execute("DELETE FROM key_packages WHERE identity = ? AND last_resort = 1", (identity,))
    (stored,) = conn.execute(
        "SELECT COUNT(*) FROM key_packages WHERE identity = ?", (identity,)
    ).fetchone()
    if stored >= limits.key_packages_per_identity:
        raise RequestRefused(ErrorCode.QUOTA_EXCEEDED, "too many key packages")
    conn.execute(
        "INSERT INTO key_packages"
        " (identity, ref, package, last_resort, not_after, created_at, init_key)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (identity, ref, package, int(last_resort), min(not_after, MAX_SQL_INT), now, init_key),
    )


def claim_key_package(
    conn: sqlite3.Connection, identity: bytes, now: float
) -> tuple[bytes, bool] | None:
    """Hand out one unexpired KeyPackage of ``identity`` exactly once.

    The oldest single-use package is deleted in the same transaction that reads it, so
    concurrent claimers never get the same one (VALIDATION SRV-KP-02). When none is left, the
    last-resort package is returned and kept (RFC 9420 §16.8; SRV-KP-03). Expired packages
    are never served (SRV-KP-05).

    Returns:
        ``(package, last_resort)``, or None when nothing is available.
    """
    conn.execute(
        "DELETE FROM key_packages WHERE identity = ? AND not_after < ?", (identity, int(now))
    )
    row = conn.execute(
        "SELECT id, ref, package, init_key, not_after FROM key_packages"
        " WHERE identity = ? AND last_resort = 0 ORDER BY id LIMIT 1",
        (identity,),
    ).fetchone()
    if row is not None:
        conn.execute("DELETE FROM key_packages WHERE id = ?", (row[0],))
        conn.execute(
            "INSERT OR IGNORE INTO consumed_key_packages"
            " (ref, consumed_at, init_key, not_after, identity) VALUES (?, ?, ?, ?, ?)",
            (row[1], now, row[3], row[4], identity),
        )
        return bytes(row[2]), False
    row = conn.execute(
        "SELECT package FROM key_packages WHERE identity = ? AND last_resort = 1", (identity,)
    ).fetchone()
    if row is not None:
        return bytes(row[0]), True
    return None


def count_key_packages(conn: sqlite3.Connection, identity: bytes, now: float) -> int:
    """Unexpired single-use KeyPackages left for ``identity``."""
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM key_packages"
        " WHERE identity = ? AND last_resort = 0 AND not_after >= ?",
        (identity, int(now)),
    ).fetchone()
    return int(count)


def key_packages_left_histogram(conn: sqlite3.Connection, now: float) -> dict[int, int]:
    """``{left: identities}``: how many identities have ``left`` unexpired single-use
    KeyPackages, over every identity with a KeyPackage stored (last resort or expired ones
    included) or handed out (so one whose last KeyPackage was claimed counts with 0)."""
    rows = conn.execute(
        "SELECT left, COUNT(*) FROM ("
        " SELECT identity, SUM(last_resort = 0 AND not_after >= ?) AS left"
        " FROM key_packages GROUP BY identity"
        " UNION ALL"
        " SELECT DISTINCT identity, 0 FROM consumed_key_packages"
        " WHERE identity IS NOT NULL"
        " AND identity NOT IN (SELECT identity FROM key_packages)"
        ") GROUP BY left",
        (int(now),),
    ).fetchall()
    return {int(left): int(identities) for left, identities in rows}
