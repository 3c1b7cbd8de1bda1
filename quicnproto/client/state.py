"""Persistent client state: one SQLite file per client (``--state PATH``).

What it holds::

    identity       the Ed25519 key (MLS signature key) and the credential identity
    key_packages   private keys of uploaded KeyPackages, by KeyPackageRef, until a Welcome
                   consumes them (RFC 9420 §16.8); the last-resort one stays
    groups         each group's ``Group.to_bytes()`` and epoch; members for display
    messages       history, deduplicated by a message key (node message id)
    cursors        the node queue position applied so far
    outbox         messages saved before they are sent, until the node confirms them
    settings       server address, certificate path

Durability: every write runs in a transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, a rollback
journal, ``synchronous=FULL``: the main file changes only when a transaction commits, so a
command that fails leaves it byte-identical); :meth:`ClientState.transaction` groups several writes into one, which
is what lets the agent acknowledge only what it has durably applied. Two processes may use one
file: SQLite's lock serialises their transactions.

Confidentiality: the file is created mode 0600 (SQLite gives its journal the same mode), and
a file readable by others is refused. With a passphrase, every secret value (identity key,
KeyPackage keys, group states, message texts, the outbox) is sealed with AES-256-GCM under a
key derived by scrypt (memory-hard, from ``cryptography``), each value bound to its table and
row as associated data; without one, values are stored in the clear and only the file mode
protects them.

Errors: a missing, foreign, corrupt or newer file, a wrong or missing passphrase and loose
permissions raise :class:`~quicnproto.errors.ClientStateError` with a ``reason``; a failed
open or operation leaves the file as it was.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import ClientStateError

APPLICATION_ID = 0x71634E50  # "qcNP": marks a quicnproto client state file
SCHEMA_VERSION = 1
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
VERIFIER = b"quicnproto client state v1"
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    signature_priv BLOB NOT NULL,
    identity BLOB NOT NULL
);
CREATE TABLE key_packages (
    ref BLOB PRIMARY KEY,
    blob BLOB NOT NULL,
    last_resort INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE groups (
    group_id BLOB PRIMARY KEY,
    blob BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE members (
    group_id BLOB NOT NULL,
    leaf INTEGER NOT NULL,
    identity BLOB NOT NULL,
    PRIMARY KEY (group_id, leaf)
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    sender BLOB NOT NULL,
    body BLOB NOT NULL,
    received_at REAL NOT NULL,
    message_key BLOB NOT NULL UNIQUE
);
CREATE TABLE cursors (queue TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE outbox (message_id BLOB PRIMARY KEY, blob BLOB NOT NULL, created_at REAL NOT NULL);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Identity:
    """The client's identity key (private half hidden from ``repr``) and credential identity."""

    signature_priv: bytes = field(repr=False)
    identity: bytes


@dataclass(frozen=True)
class GroupRow:
    group_id: bytes
    epoch: int
    updated_at: float


@dataclass(frozen=True)
class MemberRow:
    identity: bytes
    leaf: int


@dataclass(frozen=True)
class MessageRow:
    id: int
    group_id: bytes
    epoch: int
    sender: bytes
    text: bytes = field(repr=False)
    received_at: float


class _Sealer:
    """Seals values with AES-256-GCM under the passphrase key; identity when no passphrase."""

    def __init__(self, key: bytes | None) -> None:
        self._aead = None if key is None else AESGCM(key)

    def seal(self, where: str, value: bytes) -> bytes:
        if self._aead is None:
            return value
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value, where.encode())

    def open(self, where: str, value: bytes) -> bytes:
        if self._aead is None:
            return value
        try:
            return self._aead.decrypt(value[:12], value[12:], where.encode())
        except (InvalidTag, ValueError):
            raise ClientStateError(
                f"a sealed value ({where.split(':')[0]}) does not open", reason="corrupt"
            ) from None


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


@contextmanager
def _private_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _check_mode(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ClientStateError(
            f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it",
            reason="permissions",
        )


class ClientState:
    """An open client state file (see the module docstring). Use :meth:`create` or
    :meth:`open`, then :meth:`close` (or use it as a context manager)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, sealer: _Sealer) -> None:
        self.path = path
        self._conn = conn
        self._sealer = sealer
        self._depth = 0

    def __repr__(self) -> str:
        return f"ClientState({str(self.path)!r})"

    # ----------------------------------------------------------------------------------------
    # Opening

    @classmethod
    def create(cls, path: Path, *, passphrase: str | None = None) -> ClientState:
        """Creates a new state file (mode 0600).

        Raises:
            ClientStateError: ``exists`` if the file exists; ``io`` if it cannot be created.
        """
        path = Path(path)
        try:
            with _private_umask():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.close(fd)
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except FileExistsError:
            raise ClientStateError(f"{path} already exists", reason="exists") from None
        except OSError as exc:
            raise ClientStateError(f"cannot create {path}: {exc.strerror}", reason="io") from None
        try:
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    conn.execute(statement)
            key = None
            if passphrase is not None:
                salt = os.urandom(16)
                key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
                params = f"{SCRYPT_N},{SCRYPT_R},{SCRYPT_P}".encode()
                conn.execute("INSERT INTO meta VALUES ('salt', ?)", (salt,))
                conn.execute("INSERT INTO meta VALUES ('scrypt', ?)", (params,))
            sealer = _Sealer(key)
            conn.execute(
                "INSERT INTO meta VALUES ('verifier', ?)", (sealer.seal("verifier", VERIFIER),)
            )
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.close()
            path.unlink(missing_ok=True)
            raise ClientStateError(f"cannot create {path}: {exc}", reason="io") from None
        return cls(path, conn, sealer)

    @classmethod
    def open(cls, path: Path, *, passphrase: str | None = None) -> ClientState:
        """Opens an existing state file.

        Raises:
            ClientStateError: ``missing``, ``permissions``, ``not-a-database``, ``foreign``,
                ``newer-version``, ``corrupt``, ``passphrase-required``, ``wrong-passphrase``.
        """
        path = Path(path)
        if not path.is_file():
            raise ClientStateError(f"no state at {path}: run register first", reason="missing")
        _check_mode(path)
        try:
            with _private_umask():
                conn = sqlite3.connect(
                    f"file:{path}?mode=rw",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                )
        except sqlite3.Error as exc:
            raise ClientStateError(f"cannot open {path}: {exc}", reason="io") from None
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            try:
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
            except sqlite3.DatabaseError:
                raise ClientStateError(
                    f"{path} is not a quicnproto state file (not a database)",
                    reason="not-a-database",
                ) from None
            if app_id != APPLICATION_ID:
                raise ClientStateError(
                    f"{path} is a database of another application", reason="foreign"
                )
            if version > SCHEMA_VERSION:
                raise ClientStateError(
                    f"{path} was written by a newer quicnproto (schema {version})",
                    reason="newer-version",
                )
            try:
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
            except sqlite3.DatabaseError:
                check = "unreadable"
            if check != "ok":
                raise ClientStateError(f"{path} is corrupt", reason="corrupt")
            conn.execute("PRAGMA synchronous=FULL")
            # replaced secrets (old epochs, consumed KeyPackage keys) are zeroed in the file
            conn.execute("PRAGMA secure_delete=ON")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            key = None
            if "salt" in meta:
                if passphrase is None:
                    raise ClientStateError(
                        f"{path} is encrypted: give --passphrase or QUICNPROTOCHAT_PASSPHRASE",
                        reason="passphrase-required",
                    )
                n, r, p = (int(x) for x in bytes(meta["scrypt"]).decode().split(","))
                key = _derive(passphrase, bytes(meta["salt"]), n, r, p)
            sealer = _Sealer(key)
            try:
                ok = sealer.open("verifier", bytes(meta.get("verifier", b""))) == VERIFIER
            except ClientStateError:
                ok = False
            if not ok:
                reason = "wrong-passphrase" if key is not None else "corrupt"
                raise ClientStateError(f"wrong passphrase for {path}", reason=reason)
        except ClientStateError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ClientStateError(f"{path} is corrupt: {exc}", reason="corrupt") from None
        state = cls(path, conn, sealer)
        state._tighten_modes()
        return state

    def _tighten_modes(self) -> None:
        for suffix in ("-wal", "-shm", "-journal"):
            extra = Path(str(self.path) + suffix)
            if extra.exists():
                os.chmod(extra, 0o600)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ClientState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------
    # Transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around the block (nested blocks join the outer one). If the block
        raises, nothing it wrote remains."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise ClientStateError(f"state file busy or unwritable: {exc}", reason="io") from None
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._conn.execute("ROLLBACK")
            raise ClientStateError(f"cannot write the state: {exc}", reason="io") from None

    def _write(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        with self.transaction():
            return self._conn.execute(sql, args)

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, args).fetchall()

    # ----------------------------------------------------------------------------------------
    # Identity

    def set_identity(self, signature_priv: bytes, identity: bytes) -> None:
        self._write(
            "INSERT OR REPLACE INTO identity VALUES (1, ?, ?)",
            (self._sealer.seal("identity:1", signature_priv), identity),
        )

    def has_identity(self) -> bool:
        return bool(self._read("SELECT 1 FROM identity"))

    def identity(self) -> Identity:
        """Raises ClientStateError ``no-identity`` before ``register``."""
        rows = self._read("SELECT signature_priv, identity FROM identity")
        if not rows:
            raise ClientStateError("no identity in this state: run register", reason="no-identity")
        sealed, identity = rows[0]
        return Identity(self._sealer.open("identity:1", bytes(sealed)), bytes(identity))

    # ----------------------------------------------------------------------------------------
    # KeyPackages

    def put_key_package(self, ref: bytes, blob: bytes, *, last_resort: bool = False) -> None:
        self._write(
            "INSERT OR REPLACE INTO key_packages VALUES (?, ?, ?, ?)",
            (
                ref,
                self._sealer.seal(f"key_packages:{ref.hex()}", blob),
                int(last_resort),
                time.time(),
            ),
        )

    def key_package(self, ref: bytes) -> bytes | None:
        rows = self._read("SELECT blob FROM key_packages WHERE ref = ?", (ref,))
        if not rows:
            return None
        return self._sealer.open(f"key_packages:{ref.hex()}", bytes(rows[0][0]))

    def key_package_is_last_resort(self, ref: bytes) -> bool:
        rows = self._read("SELECT last_resort FROM key_packages WHERE ref = ?", (ref,))
        return bool(rows and rows[0][0])

    def delete_key_package(self, ref: bytes) -> None:
        self._write("DELETE FROM key_packages WHERE ref = ?", (ref,))

    def key_package_count(self) -> int:
        return int(self._read("SELECT count(*) FROM key_packages WHERE last_resort = 0")[0][0])

    # ----------------------------------------------------------------------------------------
    # Groups and members

    def put_group(self, group_id: bytes, blob: bytes, epoch: int) -> None:
        self._write(
            "INSERT OR REPLACE INTO groups VALUES (?, ?, ?, ?)",
            (group_id, self._sealer.seal(f"groups:{group_id.hex()}", blob), epoch, time.time()),
        )

    def group(self, group_id: bytes) -> bytes | None:
        rows = self._read("SELECT blob FROM groups WHERE group_id = ?", (group_id,))
        if not rows:
            return None
        return self._sealer.open(f"groups:{group_id.hex()}", bytes(rows[0][0]))

    def groups(self) -> list[GroupRow]:
        rows = self._read("SELECT group_id, epoch, updated_at FROM groups ORDER BY group_id")
        return [GroupRow(bytes(g), int(e), float(u)) for g, e, u in rows]

    def delete_group(self, group_id: bytes) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM groups WHERE group_id = ?", (group_id,))
            self._conn.execute("DELETE FROM members WHERE group_id = ?", (group_id,))

    def set_members(self, group_id: bytes, members: Sequence[tuple[bytes, int]]) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM members WHERE group_id = ?", (group_id,))
            self._conn.executemany(
                "INSERT INTO members VALUES (?, ?, ?)",
                [(group_id, leaf, identity) for identity, leaf in members],
            )

    def members(self, group_id: bytes) -> list[MemberRow]:
        rows = self._read(
            "SELECT identity, leaf FROM members WHERE group_id = ? ORDER BY leaf", (group_id,)
        )
        return [MemberRow(bytes(i), int(leaf)) for i, leaf in rows]

    # ----------------------------------------------------------------------------------------
    # History

    def add_message(
        self,
        group_id: bytes,
        epoch: int,
        sender: bytes,
        text: bytes,
        *,
        message_key: bytes,
        received_at: float | None = None,
    ) -> bool:
        """Adds a history entry; False (and nothing written) if ``message_key`` is known."""
        with self.transaction():
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO messages (group_id, epoch, sender, body, received_at,"
                " message_key) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    group_id,
                    epoch,
                    sender,
                    self._sealer.seal(f"messages:{message_key.hex()}", text),
                    time.time() if received_at is None else received_at,
                    message_key,
                ),
            )
            return cursor.rowcount == 1

    def messages(
        self, group_id: bytes | None = None, *, after_id: int = 0, limit: int | None = None
    ) -> list[MessageRow]:
        sql = (
            "SELECT id, group_id, epoch, sender, body, received_at, message_key FROM messages"
            " WHERE id > ?"
        )
        args: list[object] = [after_id]
        if group_id is not None:
            sql += " AND group_id = ?"
            args.append(group_id)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        out = []
        for i, g, e, s, body, at, key in self._read(sql, args):
            text = self._sealer.open(f"messages:{bytes(key).hex()}", bytes(body))
            out.append(MessageRow(int(i), bytes(g), int(e), bytes(s), text, float(at)))
        return out

    # ----------------------------------------------------------------------------------------
    # Cursors, outbox, settings

    def cursor(self, queue: str) -> int:
        rows = self._read("SELECT seq FROM cursors WHERE queue = ?", (queue,))
        return int(rows[0][0]) if rows else 0

    def set_cursor(self, queue: str, seq: int) -> None:
        self._write("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (queue, seq))

    def put_outbox(self, message_id: bytes, blob: bytes) -> None:
        self._write(
            "INSERT OR REPLACE INTO outbox VALUES (?, ?, ?)",
            (message_id, self._sealer.seal(f"outbox:{message_id.hex()}", blob), time.time()),
        )

    def outbox(self) -> list[bytes]:
        rows = self._read("SELECT message_id, blob FROM outbox ORDER BY created_at, message_id")
        return [self._sealer.open(f"outbox:{bytes(m).hex()}", bytes(b)) for m, b in rows]

    def delete_outbox(self, message_id: bytes) -> None:
        self._write("DELETE FROM outbox WHERE message_id = ?", (message_id,))

    def setting(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_setting(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))
