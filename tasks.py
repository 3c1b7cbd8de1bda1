#!/usr/bin/env python3
"""Developer entry point: ``python3 tasks.py demo`` and ``python3 tasks.py test``.

``test`` runs ruff, mypy and the whole pytest suite on the aioquic QUIC core, then (when given
no pytest arguments) ``tests/quicnproto/e2e`` again on qh3.

Needs nothing but Python 3.11+. Each task creates (or reuses) ``.venv`` beside this file,
installs the project with its development extras when ``pyproject.toml`` changed since the last
install, then runs inside that environment.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".installed"


def _ensure_env() -> None:
    if sys.version_info < (3, 11):
        sys.exit("quicnproto needs Python 3.11 or newer")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != digest:
        subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run(
            [str(PY), "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev]"], check=True
        )
        STAMP.write_text(digest)


def _run(*args: str, env: dict[str, str] | None = None) -> int:
    return subprocess.run([str(PY), *args], cwd=ROOT, env=env).returncode


QUIC_BACKEND_ENV = "QUICNPROTOCHAT_QUIC_BACKEND"
"""Read by the e2e harnesses (tests/quicnproto/quic_backend.py) and the CLI's --quic-backend."""


def demo(extra: list[str]) -> int:
    return _run("-m", "quicnproto", "demo", *extra)


def test(extra: list[str]) -> int:
    for step in (
        ["-m", "ruff", "check", "mls", "quicnproto", "tests", "benchmarks", "tasks.py"],
        ["-m", "mypy"],
    ):
        rc = _run(*step)
        if rc:
            return rc
    rc = _run("-m", "pytest", *extra, env={**os.environ, QUIC_BACKEND_ENV: "aioquic"})
    if rc or extra:
        return rc
    # The whole suite ran on aioquic (the reference); the transport, node and CLI tests run a
    # second time on the optional qh3 core, which `.[dev]` installs.
    return _run("-m", "pytest", "tests/quicnproto/e2e", env={**os.environ, QUIC_BACKEND_ENV: "qh3"})


def main() -> int:
    tasks = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in tasks:
        print("usage: python3 tasks.py {demo|test} [args...]", file=sys.stderr)
        return 2
    _ensure_env()
    return tasks[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
