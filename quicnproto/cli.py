"""The ``quicnproto`` command line (typer): ``serve``, ``ping`` and ``demo`` so far.

Each command parses its flags into a :class:`NodeConfig` or :class:`ClientConfig`, calls
``trio.run`` exactly once, and turns a :class:`QuicnprotoError` into one line on stderr and a
non-zero exit code (:data:`EXIT_CODES`). Flags fall back to ``QUICNPROTOCHAT_*`` environment
variables where listed.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import trio
import typer

from quicnproto import __version__
from quicnproto.config import DEFAULT_PORT, ClientConfig, NodeConfig, parse_address
from quicnproto.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    QuicnprotoError,
    RemoteError,
    StoreError,
    TransportError,
    TransportReason,
)

app = typer.Typer(
    name="quicnproto",
    help="End-to-end encrypted group messaging over QUIC (MLS, RFC 9420).",
    no_args_is_help=True,
    add_completion=False,
)

EXIT_CODES: tuple[tuple[type[QuicnprotoError], int], ...] = (
    (ConfigError, 2),
    (NotFoundError, 3),
    (ConflictError, 4),
    (RemoteError, 5),
    (TransportError, 6),
    (StoreError, 7),
    (QuicnprotoError, 1),
)
"""Exit code per error type; the first matching row wins."""


def _quiet_libraries() -> None:
    """Client commands print only their own line: library log records go nowhere."""
    logging.getLogger().addHandler(logging.NullHandler())


def _fail(exc: QuicnprotoError) -> typer.Exit:
    code = next(c for t, c in EXIT_CODES if isinstance(exc, t))
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code)


@app.command()
def serve(
    listen: Annotated[
        str, typer.Option(envvar="QUICNPROTOCHAT_LISTEN", help="UDP host:port to bind.")
    ] = f"0.0.0.0:{DEFAULT_PORT}",
    data_dir: Annotated[
        Path, typer.Option(help="Directory for certificate, key and database.")
    ] = Path("data"),
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            envvar="QUICNPROTOCHAT_TLS_CERT",
            help="DER certificate (default <data-dir>/server-cert.der; created if missing).",
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            envvar="QUICNPROTOCHAT_TLS_KEY",
            help="DER private key (default <data-dir>/server-key.der; created if missing).",
        ),
    ] = None,
    db: Annotated[
        Path | None, typer.Option(help="SQLite file (default <data-dir>/node.sqlite3).")
    ] = None,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Structured logs as JSON lines.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Run a node until interrupted."""
    from quicnproto.node.server import configure_logging
    from quicnproto.node.server import serve as serve_node

    try:
        host, port = parse_address(listen)
        config = NodeConfig(
            host=host,
            port=port,
            data_dir=data_dir,
            tls_cert=tls_cert,
            tls_key=tls_key,
            db=db,
            log_json=log_json,
            log_level=log_level,
        )
        config.validate()
    except QuicnprotoError as exc:
        raise _fail(exc) from None
    configure_logging(json_lines=log_json, level=log_level)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_node, config)
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(main)
    except QuicnprotoError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        typer.echo(f"error: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def ping(
    server: Annotated[
        str, typer.Option(envvar="QUICNPROTOCHAT_SERVER", help="Node host:port.")
    ] = f"127.0.0.1:{DEFAULT_PORT}",
    server_cert: Annotated[
        Path,
        typer.Option(
            envvar="QUICNPROTOCHAT_SERVER_CERT", help="The node's DER certificate (pinned)."
        ),
    ] = Path("data/server-cert.der"),
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 10.0,
) -> None:
    """Check that a node answers."""
    from quicnproto.client.connection import open_client

    _quiet_libraries()
    try:
        host, port = parse_address(server)
    except QuicnprotoError as exc:
        raise _fail(exc) from None
    config = ClientConfig(host=host, port=port, server_cert=server_cert, request_timeout=timeout)

    async def main() -> tuple[str, float]:
        started = trio.current_time()
        with trio.fail_after(timeout + 1.0):
            async with open_client(config) as client:
                pong = await client.ping()
        return pong.version, (trio.current_time() - started) * 1000

    try:
        version, ms = trio.run(main)
    except trio.TooSlowError:
        raise _fail(TransportError(f"no answer from {host}:{port}", TransportReason.TIMEOUT)) from None
    except QuicnprotoError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail(TransportError(exc.strerror or str(exc))) from None
    typer.echo(f"pong from {host}:{port} (node {version}) in {ms:.1f} ms")


@app.command()
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where the demo node keeps its files (a fresh temporary directory if unset)."),
    ] = None,
) -> None:
    """Run three clients against a real node on loopback (see quicnproto.demo)."""
    from quicnproto.demo import main as run_demo

    _quiet_libraries()
    raise typer.Exit(run_demo(data_dir))


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
