"""A synchronous handle on a store :class:`Database` for unit tests.

Each write runs alone through the production group commit (:func:`begin_batch`, then
:func:`commit_batch`, the halves :class:`GroupCommit` runs on the event loop and in its
committer thread), each read through the production read functions, with ``now`` given
explicitly. Nothing here is a second implementation: it only calls the store's own functions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from quicnproto.node.store import (
    Database,
    FetchedPage,
    StoredMessage,
    StoreLimits,
    key_packages,
    queues,
    retention,
)
from quicnproto.node.store.group_commit import PendingWrite, begin_batch, commit_batch


class SyncStore:
    """The store's operations on ``path``, one group commit per write."""

    def __init__(
        self,
        path: Path | str,
        limits: StoreLimits | None = None,
        *,
        key_package_check: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.db = Database(path, limits, key_package_check=key_package_check)
        self.path = self.db.path
        self.limits = self.db.limits

    @property
    def quarantined(self) -> int:
        return self.db.quarantined

    def run_batch(self, batch: list[PendingWrite]) -> None:
        """One group commit of ``batch``, as :class:`GroupCommit` runs it."""
        conn = begin_batch(self.db, batch)
        if conn is not None:
            commit_batch(self.db, conn, batch)

    def _write(self, op: Callable[[sqlite3.Connection], Any]) -> Any:
        item = PendingWrite(op)
        self.run_batch([item])
        if item.error is not None:
            raise item.error
        return item.result

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self.db.read() as conn:
            yield conn

    def close(self) -> None:
        self.db.close()

    def schema_version(self) -> int:
        return self.db.schema_version()

    def quarantined_rows(self) -> list[tuple[str, str]]:
        return self.db.quarantined_rows()

    def enqueue(
        self,
        sender: bytes,
        recipients: Sequence[bytes],
        payload: bytes,
        message_id: bytes,
        commit: tuple[bytes, int] | None,
        now: float,
    ) -> tuple[int, ...]:
        digest = queues.enqueue_digest(recipients, payload, commit)
        result: tuple[int, ...] = self._write(
            lambda conn: queues.enqueue(
                conn, self.limits, sender, recipients, payload, message_id, commit, digest, now
            )
        )
        return result

    def fetch_page(
        self, recipient: bytes, after_seq: int, limit: int, max_bytes: int | None, now: float
    ) -> FetchedPage:
        with self.db.read() as conn:
            return queues.fetch_page(conn, self.limits, recipient, after_seq, limit, max_bytes, now)

    def fetch(
        self,
        recipient: bytes,
        after_seq: int,
        limit: int,
        max_bytes: int | None = None,
        now: float | None = None,
    ) -> list[StoredMessage]:
        """The messages of :meth:`fetch_page` (expiry applies only when ``now`` is given)."""
        when = float("-inf") if now is None else now
        return list(self.fetch_page(recipient, after_seq, limit, max_bytes, when).messages)

    def ack(self, recipient: bytes, up_to_seq: int) -> int:
        return int(self._write(lambda conn: queues.ack(conn, recipient, up_to_seq)))

    def count_queue(self, recipient: bytes) -> int:
        with self.db.read() as conn:
            return queues.count_queue(conn, recipient)

    def expire_messages(self, now: float) -> int:
        return int(self._write(lambda conn: queues.expire_messages(conn, self.limits, now)))

    def add_key_package(
        self,
        identity: bytes,
        ref: bytes,
        package: bytes,
        last_resort: bool,
        not_after: int,
        now: float,
        init_key: bytes | None = None,
    ) -> None:
        self._write(
            lambda conn: key_packages.add_key_package(
                conn, self.limits, identity, ref, package, last_resort, not_after, now, init_key
            )
        )

    def claim_key_package(self, identity: bytes, now: float) -> tuple[bytes, bool] | None:
        result: tuple[bytes, bool] | None = self._write(
            lambda conn: key_packages.claim_key_package(conn, identity, now)
        )
        return result

    def count_key_packages(self, identity: bytes, now: float) -> int:
        with self.db.read() as conn:
            return key_packages.count_key_packages(conn, identity, now)

    def purge(self, now: float) -> int:
        return int(self._write(lambda conn: retention.purge(conn, self.limits, now)))
