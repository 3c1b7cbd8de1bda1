"""``quicnproto serve`` start-up faults, each run as a subprocess (one table row per fault).

Every fault must end with one line on stderr (``error: ...``), the exit code of its class
(ConfigError 2, TransportError 6, StoreError 7), no traceback, and the data directory exactly
as it was: every file's bytes and mode, or absent when it was absent.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from quicnproto.node.store import Database
from quicnproto.transport.tls import generate_self_signed_certificate, write_certificate_files

from .node_harness import ROOT, drain, free_udp_port, start_node

pytestmark = pytest.mark.e2e

Snapshot = dict[str, tuple[int, bytes | None]] | None


def snapshot(path: Path) -> Snapshot:
    """Every entry under ``path``: its mode and, for files, its bytes (None: ``path`` absent)."""
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_file():
        return {".": (path.stat().st_mode, path.read_bytes())}
    entries: dict[str, tuple[int, bytes | None]] = {".": (path.stat().st_mode, None)}
    for entry in sorted(path.rglob("*")):
        data = entry.read_bytes() if entry.is_file() else None
        entries[str(entry.relative_to(path))] = (entry.stat().st_mode, data)
    return entries


def certificate_pair(data_dir: Path) -> None:
    cert, key = generate_self_signed_certificate()
    write_certificate_files(data_dir / "server-cert.der", data_dir / "server-key.der", cert, key)


def node_database(path: Path, *, rows: int = 0) -> None:
    Database(path).close()
    if rows:
        conn = sqlite3.connect(path, isolation_level=None)
        for i in range(rows):
            conn.execute(
                "INSERT INTO queues (recipient, last_seq, count, bytes) VALUES (?, 0, 0, 0)",
                (os.urandom(400) + bytes([i % 256]),),
            )
        conn.close()


@dataclass
class Fault:
    """One start-up fault: ``prepare`` builds the data directory (or leaves it absent)."""

    prepare: Callable[[Path], None]
    code: int
    message: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def absent(data_dir: Path) -> None:
    pass


def empty_dir(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700)


def unwritable_dir(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o500)


def a_file(data_dir: Path) -> None:
    data_dir.write_bytes(b"not a directory\n")


def garbage_certificate(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700)
    certificate_pair(data_dir)
    (data_dir / "server-cert.der").write_bytes(b"garbage" * 20)


def mismatched_pair(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700)
    certificate_pair(data_dir)
    other = data_dir.parent / "other"
    other.mkdir()
    certificate_pair(other)
    shutil.copy(other / "server-cert.der", data_dir / "server-cert.der")


def key_readable_by_others(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700)
    certificate_pair(data_dir)
    (data_dir / "server-key.der").chmod(0o644)


def not_a_database(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700)
    certificate_pair(data_dir)
    (data_dir / "node.sqlite3").write_bytes(b"this is no SQLite file\n" * 100)


def corrupt_database(data_dir: Path) -> None:
    # No certificate yet: the node generates one, and must remove it again.
    data_dir.mkdir(mode=0o700)
    db = data_dir / "node.sqlite3"
    node_database(db, rows=200)
    data = bytearray(db.read_bytes())
    page = 4096
    data[3 * page : 6 * page] = b"\xa5" * (3 * page)
    db.write_bytes(bytes(data))


def newer_database(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700)
    db = data_dir / "node.sqlite3"
    node_database(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA user_version = 99")
    conn.close()


def foreign_database(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700)
    conn = sqlite3.connect(data_dir / "node.sqlite3", isolation_level=None)
    conn.execute("create table foo(x)")
    conn.close()


FAULTS: dict[str, Fault] = {
    "unwritable-data-dir": Fault(unwritable_dir, 2, "error: data directory {d} is not writable"),
    "data-dir-is-a-file": Fault(a_file, 2, "error: data directory {d} is not a directory"),
    "data-dir-from-environment-is-a-file": Fault(
        a_file, 2, "error: data directory {d} is not a directory", env={"DATA_DIR": "1"}
    ),
    "garbage-certificate": Fault(
        garbage_certificate, 2, "error: node certificate {d}/server-cert.der: not a DER"
    ),
    "mismatched-certificate-and-key": Fault(
        mismatched_pair, 2, "error: the node private key does not match its certificate"
    ),
    "key-readable-by-others": Fault(key_readable_by_others, 2, "error: private key file"),
    "not-a-database": Fault(
        not_a_database, 7, "error: database {d}/node.sqlite3: not a database: SQLite"
    ),
    "corrupt-database": Fault(
        corrupt_database, 7, "error: database {d}/node.sqlite3: database is corrupt"
    ),
    "newer-database": Fault(
        newer_database, 7, "error: database {d}/node.sqlite3: database schema version 99"
    ),
    "foreign-database": Fault(
        foreign_database, 7, "error: database {d}/node.sqlite3: not a node database"
    ),
    "bogus-log-level": Fault(
        absent, 2, "error: unknown log level 'bogus'", args=["--log-level", "bogus"]
    ),
    "bogus-log-level-existing-dir": Fault(
        empty_dir, 2, "error: unknown log level 'bogus'", args=["--log-level", "bogus"]
    ),
}


def serve_command(data_dir: Path, port: int, fault: Fault) -> list[str]:
    command = [sys.executable, "-m", "quicnproto", "serve", "--listen", f"127.0.0.1:{port}"]
    if not fault.env:
        command += ["--data-dir", str(data_dir)]
    return [*command, *fault.args]


async def run_serve(command: list[str], env: dict[str, str]) -> tuple[int, list[str], str]:
    result = await trio.run_process(
        command,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    stderr = result.stderr.decode(errors="replace")
    return result.returncode, stderr.splitlines(), stderr


def assert_one_error_line(lines: list[str], stderr: str, expected: str) -> None:
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith(expected), stderr


@pytest.mark.parametrize("name", sorted(FAULTS))
async def test_serve_start_fault_leaves_the_data_dir_as_it_was(tmp_path: Path, name: str) -> None:
    fault = FAULTS[name]
    data_dir = tmp_path / "data"
    fault.prepare(data_dir)
    command = serve_command(data_dir, 0, fault)
    env = {"QUICNPROTOCHAT_DATA_DIR": str(data_dir)} if fault.env else {}
    if fault.prepare is unwritable_dir and os.geteuid() == 0:
        # root ignores permission bits; without CAP_DAC_OVERRIDE it does not.
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a directory unwritable")
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    before = snapshot(data_dir)
    code, lines, stderr = await run_serve(command, env)
    assert code == fault.code, stderr
    assert_one_error_line(lines, stderr, fault.message.format(d=data_dir))
    assert snapshot(data_dir) == before


@pytest.mark.parametrize("data_dir_exists", [False, True], ids=["fresh", "existing"])
async def test_serve_on_a_port_in_use_leaves_the_data_dir_as_it_was(
    tmp_path: Path, data_dir_exists: bool
) -> None:
    data_dir = tmp_path / "data"
    if data_dir_exists:
        empty_dir(data_dir)
    before = snapshot(data_dir)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        code, lines, stderr = await run_serve(
            serve_command(data_dir, port, Fault(absent, 6, "")), {}
        )
    assert code == 6, stderr
    assert_one_error_line(lines, stderr, f"error: cannot bind UDP 127.0.0.1:{port}")
    assert snapshot(data_dir) == before


async def test_a_second_node_on_the_same_data_dir_names_the_first(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = await start_node(data_dir, free_udp_port())
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, first)
            before = snapshot(data_dir)
            code, lines, stderr = await run_serve(
                serve_command(data_dir, free_udp_port(), Fault(absent, 2, "")), {}
            )
            assert snapshot(data_dir) == before
            nursery.cancel_scope.cancel()
    finally:
        first.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            await first.wait()
    assert code == 2, stderr
    assert_one_error_line(
        lines,
        stderr,
        f"error: data directory {data_dir} is in use by another node (pid {first.pid})",
    )
    assert first.returncode == 0
    # The lock went with the first node: a new one starts on the same directory.
    again = await start_node(data_dir, free_udp_port())
    again.send_signal(signal.SIGTERM)
    with trio.fail_after(20):
        await again.wait()
    assert again.returncode == 0
