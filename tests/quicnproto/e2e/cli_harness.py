"""Running ``python -m quicnproto`` client commands as real subprocesses against a node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from .node_harness import ROOT


@dataclass
class Cli:
    """One node's address and certificate, and a directory for client state files."""

    server: str
    cert: Path
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "QUICNPROTOCHAT_SERVER": self.server,
            "QUICNPROTOCHAT_SERVER_CERT": str(self.cert),
            "COLUMNS": "200",
            "NO_COLOR": "1",
            **extra,
        }

    def state(self, name: str) -> Path:
        return self.home / f"{name}.state"

    async def run(
        self, *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        result = await trio.run_process(
            [sys.executable, "-m", "quicnproto", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd=ROOT,
            env=env or self.env(),
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{args[0]} exited {result.returncode}: {result.stderr.decode(errors='replace')}"
            )
        return result

    async def json(self, *args: str) -> list[dict[str, Any]]:
        result = await self.run(*args, "--json")
        return [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]

    async def register(self, name: str, *extra: str) -> str:
        records = await self.json("register", "--state", str(self.state(name)), *extra)
        return str(records[0]["identity"])

    async def group_info(self, name: str) -> dict[str, Any]:
        records = await self.json("groups", "--state", str(self.state(name)))
        assert len(records) == 1, records
        return records[0]

    async def history(self, name: str) -> list[dict[str, Any]]:
        return await self.json("history", "--state", str(self.state(name)))
