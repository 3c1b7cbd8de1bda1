"""The ``quicnproto`` command line (typer).

Each command parses its flags, calls ``trio.run`` exactly once, and turns a failure into one
line on stderr (``error: ...``) and the exit code of its class (:data:`EXIT_CODES`). Flags fall
back to ``QUICNPROTOCHAT_*`` environment variables where listed. Node commands live in
:mod:`.node_commands`, client commands in :mod:`.client_commands`; heavy imports happen inside
the commands, so ``--help`` and a command's startup stay quick.
"""

from __future__ import annotations

import logging
import sys

import typer

from quicnproto.errors import (
    ClientStateError,
    ConfigError,
    ConflictError,
    NotFoundError,
    QuicnprotoError,
    RemoteError,
    StoreError,
    TransportError,
)

app = typer.Typer(
    name="quicnproto",
    help="End-to-end encrypted group messaging over QUIC (MLS, RFC 9420).",
    no_args_is_help=True,
    add_completion=False,
)

EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    (ConfigError, 2),
    (NotFoundError, 3),
    (ConflictError, 4),
    (RemoteError, 5),
    (TransportError, 6),
    (StoreError, 7),
    (ClientStateError, 8),
    (QuicnprotoError, 1),
)
"""Exit code per error type; the first matching row wins. Client commands add theirs
(:data:`quicnproto.cli.client_commands.CLIENT_EXIT_CODES`)."""


def quiet_libraries() -> None:
    """Client commands print only their own line: library log records go nowhere."""
    logging.getLogger().addHandler(logging.NullHandler())


def exit_code(exc: Exception) -> int:
    return next((c for t, c in EXIT_CODES if isinstance(exc, t)), 1)


def fail(exc: Exception) -> typer.Exit:
    """Prints ``exc`` as one line and returns the Exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(exit_code(exc))


from . import client_commands, node_commands  # noqa: E402,F401  (registers the commands)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
