"""``quicnproto serve`` and ``quicnproto ping`` as subprocesses (each calls trio.run once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.quicnproto.e2e.node_harness import ROOT, free_udp_port, running_node, start_node

pytestmark = pytest.mark.e2e


async def run_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "quicnproto", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


async def test_ping_command_reaches_the_node(tmp_path: Path) -> None:
    async with running_node(tmp_path / "node") as node:
        result = await run_cli(
            "ping",
            "--server",
            f"127.0.0.1:{node.port}",
            "--server-cert",
            str(node.config.cert_path),
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith(f"pong from 127.0.0.1:{node.port} (node 0.1.0)")


async def test_ping_command_reads_environment(tmp_path: Path) -> None:
    async with running_node(tmp_path / "node") as node:
        result = await run_cli(
            "ping",
            env={
                "QUICNPROTOCHAT_SERVER": f"127.0.0.1:{node.port}",
                "QUICNPROTOCHAT_SERVER_CERT": str(node.config.cert_path),
            },
        )
    assert result.returncode == 0, result.stderr


async def test_ping_with_missing_certificate_fails_with_one_line(tmp_path: Path) -> None:
    result = await run_cli("ping", "--server-cert", str(tmp_path / "missing.der"))
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


async def test_ping_with_the_wrong_pinned_certificate_fails(tmp_path: Path) -> None:
    async with running_node(tmp_path / "a") as node, running_node(tmp_path / "b") as other:
        result = await run_cli(
            "ping",
            "--server",
            f"127.0.0.1:{node.port}",
            "--server-cert",
            str(other.config.cert_path),
            "--timeout",
            "3",
        )
    assert result.returncode == 6
    assert len(result.stderr.decode().splitlines()) == 1


async def test_serve_rejects_a_bad_listen_address(tmp_path: Path) -> None:
    result = await run_cli("serve", "--listen", "127.0.0.1:notaport", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.decode().startswith("error: ")


async def test_serve_writes_files_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    process = await start_node(data_dir, free_udp_port())
    try:
        assert (data_dir / "server-cert.der").exists()
        assert (data_dir / "server-key.der").stat().st_mode & 0o777 == 0o600
        assert (data_dir / "node.sqlite3").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            await process.wait()
    assert process.returncode == 0
