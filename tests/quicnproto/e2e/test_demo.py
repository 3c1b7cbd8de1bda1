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
    assert "hello bob, this is alice" in out
    assert "hello carol, this is alice" in out
    assert "2 -> 1 left on the node" in out
    # The node's store and pinned certificate are real files in the data directory.
    assert (tmp_path / "demo" / "node.sqlite3").stat().st_size > 0
    assert (tmp_path / "demo" / "server-cert.der").stat().st_size > 0
