"""The typer application and the failure-to-exit-code mapping every command uses."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from quicnproto import __version__
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
from quicnproto.transport.quic.backends import QuicBackend

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


def switch(*param_decls: str, help: str) -> Any:
    """A boolean option shown as a plain switch in ``--help``. Typer's help prints every
    option's value type, flags included (``--log-json <bool>``), unless the option has a
    metavar; an empty one hides it."""
    return typer.Option(*param_decls, metavar="", help=help)


BackendOpt = Annotated[
    QuicBackend,
    typer.Option(
        "--quic-backend",
        envvar="QUICNPROTOCHAT_QUIC_BACKEND",
        case_sensitive=False,
        help="QUIC core: aioquic (the reference) or qh3 (native; needs the qh3 extra).",
    ),
]
"""The ``--quic-backend`` option of every command that opens a QUIC connection or serves."""


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def global_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            metavar="",
            is_eager=True,
            callback=_print_version,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """End-to-end encrypted group messaging over QUIC (MLS, RFC 9420)."""


def quiet_libraries() -> None:
    """Client commands print only their own line: library log records go nowhere."""
    logging.getLogger().addHandler(logging.NullHandler())


def exit_code(exc: Exception) -> int:
    return next((c for t, c in EXIT_CODES if isinstance(exc, t)), 1)


def fail(exc: Exception) -> typer.Exit:
    """Prints ``exc`` as one line and returns the Exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(exit_code(exc))
