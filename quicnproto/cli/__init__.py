"""The ``quicnproto`` command line (typer).

Each command parses its flags, calls ``trio.run`` exactly once, and turns a failure into one
line on stderr (``error: ...``) and the exit code of its class (:data:`EXIT_CODES`). Flags fall
back to ``QUICNPROTOCHAT_*`` environment variables where listed. Node commands live in
:mod:`.node_commands`, client commands in :mod:`.client_commands`; heavy imports happen inside
the commands, so ``--help`` and a command's startup stay quick.
"""

from __future__ import annotations

import sys

from . import client_commands, node_commands  # noqa: F401  (registers the commands)
from .app import EXIT_CODES, app, exit_code, fail, quiet_libraries
from .node_commands import (
    GC_FIRST_GENERATION_THRESHOLD,
    GIL_SWITCH_INTERVAL,
    tune_interpreter_for_serving,
)

__all__ = [
    "EXIT_CODES",
    "GC_FIRST_GENERATION_THRESHOLD",
    "GIL_SWITCH_INTERVAL",
    "app",
    "exit_code",
    "fail",
    "main",
    "quiet_libraries",
    "tune_interpreter_for_serving",
]


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
