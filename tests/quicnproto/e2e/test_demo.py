"""The README's first command: ``python -m quicnproto demo`` as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_demo_runs_three_clients_over_a_real_node(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "quicnproto", "demo", "--data-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "demo complete" in out
    # messages in every direction
    for reader, writer, text in (
        ("bob", "alice", "hello bob and carol"),
        ("carol", "alice", "hello bob and carol"),
        ("alice", "bob", "hi alice, hi carol"),
        ("carol", "bob", "hi alice, hi carol"),
        ("alice", "carol", "hello both"),
        ("bob", "carol", "hello both"),
        ("carol", "alice", "bob cannot read this"),
    ):
        assert f"{reader} read from {writer}: '{text}'" in out
    assert "bob learned it was removed" in out
    assert "bob read from alice: 'bob cannot read this'" not in out
    assert "bob cannot read it" in out
    # every member agreed on each epoch's authenticator (the demo checks it and says so)
    assert "epoch 1: alice, bob, carol agree on the epoch authenticator" in out
    assert "epoch 2: alice, bob, carol agree on the epoch authenticator" in out
    assert "epoch 3: alice, carol agree on the epoch authenticator" in out
    # each client's state is a real SQLite file, mode 0600
    for name in ("alice", "bob", "carol"):
        state = tmp_path / "demo" / f"{name}.state"
        assert state.stat().st_size > 0
        assert state.stat().st_mode & 0o777 == 0o600
    # The node's store and pinned certificate are real files in the data directory.
    assert (tmp_path / "demo" / "node.sqlite3").stat().st_size > 0
    assert (tmp_path / "demo" / "server-cert.der").stat().st_size > 0
