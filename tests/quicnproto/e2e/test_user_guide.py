"""docs/user-guide.md's session, run command by command against a real node.

Every ``console`` block of the guide is executed in one shell, in order: lines starting with
``$ `` are commands, the lines after one are its expected output, where ``<...>`` stands for
a value that changes from run to run (keys, fingerprints).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from .node_harness import ROOT, running_node

pytestmark = pytest.mark.e2e

GUIDE = ROOT / "docs" / "user-guide.md"
MARK = "@@@ step done @@@"


def session(text: str) -> list[tuple[str, list[str]]]:
    """``(command, expected lines)`` of every console block, in order."""
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps and line.strip():
                steps[-1][1].append(line)
    return steps


def pattern(expected: str) -> re.Pattern[str]:
    parts = re.split(r"<[^>]+>", expected)
    return re.compile(".+".join(re.escape(p) for p in parts) + r"\Z")


async def test_the_user_guide_session_runs_as_written(tmp_path: Path) -> None:
    steps = session(GUIDE.read_text())
    assert len(steps) > 15
    async with running_node(tmp_path / "node") as node:
        script = ["set -e", f"cd {tmp_path}"]
        for command, _ in steps:
            command = command.replace("127.0.0.1:4201", f"127.0.0.1:{node.port}")
            command = command.replace("node/server-cert.der", str(node.config.cert_path))
            script += [command, f"echo '{MARK}'"]
        bin_dir = Path(sys.executable).parent
        result = await trio.run_process(
            ["bash", "-c", "\n".join(script)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "NO_COLOR": "1"},
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 0, result.stderr.decode()
    outputs = result.stdout.decode().split(MARK + "\n")
    assert outputs[-1] == ""
    for (command, expected), output in zip(steps, outputs[:-1], strict=True):
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == len(expected), (command, lines, expected)
        for line, want in zip(lines, expected, strict=True):
            assert pattern(want).match(line), (command, line, want)
