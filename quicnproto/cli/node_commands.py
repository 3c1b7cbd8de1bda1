"""Node commands: ``serve``, ``ping``, ``demo``, ``version``."""

from __future__ import annotations

import gc
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from quicnproto import __version__
from quicnproto.config import (
    DEFAULT_METRICS_PORT,
    DEFAULT_PORT,
    ClientConfig,
    NodeConfig,
    parse_address,
)
from quicnproto.errors import QuicnprotoError, TransportError, TransportReason, sole_exception
from quicnproto.transport.quic import RetryMode
from quicnproto.transport.quic.backends import QuicBackend

from .app import BackendOpt, app, fail, quiet_libraries, switch

GIL_SWITCH_INTERVAL = 0.0005
"""Seconds the interpreter lets one thread run before handing the GIL to a waiting one (Python's
default is 5 ms). The store's ``COMMIT`` (the fsync of a group commit) runs in a thread, which
takes the GIL back after the fsync and again to wake the event loop: while the event loop is
busy each of those waits can last the full interval, and every write of the batch waits with
it. Only ever lowered."""

GC_FIRST_GENERATION_THRESHOLD = 20_000
"""Allocations (minus deallocations) between two collections of the youngest generation
(Python's default is 700). Requests allocate and free many short-lived objects, few of them
cyclic; at the default, a busy node spent several percent of its time in collections that
found nothing to free."""


def tune_interpreter_for_serving() -> None:
    """Process-wide settings for a node process (``serve`` only, never a library call): the GIL switch interval is only ever lowered to
    :data:`GIL_SWITCH_INTERVAL`; the youngest GC generation is only ever raised to
    :data:`GC_FIRST_GENERATION_THRESHOLD`; and what exists at start (modules, schemas,
    configuration) is moved out of the collector's sight with ``gc.freeze()`` so later
    collections do not walk it again."""
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    first, second, third = gc.get_threshold()
    if 0 < first < GC_FIRST_GENERATION_THRESHOLD:
        gc.set_threshold(GC_FIRST_GENERATION_THRESHOLD, second, third)
    gc.freeze()


@app.command()
def serve(
    listen: Annotated[
        str, typer.Option(envvar="QUICNPROTOCHAT_LISTEN", help="UDP host:port to bind.")
    ] = f"0.0.0.0:{DEFAULT_PORT}",
    data_dir: Annotated[
        Path,
        typer.Option(
            envvar="QUICNPROTOCHAT_DATA_DIR",
            help="Directory for certificate, key, database and the node lock (one node each).",
        ),
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
    log_json: Annotated[bool, switch("--log-json", help="Structured logs as JSON lines.")] = False,
    log_level: Annotated[
        str, typer.Option(help="Logging level: debug, info, warning, error, critical.")
    ] = "INFO",
    retry: Annotated[
        RetryMode,
        typer.Option(
            envvar="QUICNPROTOCHAT_RETRY",
            case_sensitive=False,
            help="Address validation with a QUIC Retry: auto (only under a flood of "
            "handshakes), always, or never.",
        ),
    ] = RetryMode.AUTO,
    quic_backend: BackendOpt = QuicBackend.AIOQUIC,
    metrics: Annotated[
        str | None,
        typer.Option(help="Serve Prometheus metrics over HTTP on host:port; off if unset."),
    ] = None,
    max_connections: Annotated[
        int, typer.Option(help="QUIC connections held at once, in all.")
    ] = NodeConfig.max_connections,
    max_connections_per_address: Annotated[
        int, typer.Option(help="QUIC connections held at once from one source IP.")
    ] = NodeConfig.max_connections_per_address,
    idle_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a connection may stay without a request (and the QUIC idle timeout "
            "the node offers; a held long-poll sends a PING every third of it)."
        ),
    ] = NodeConfig.idle_timeout,
    max_wait_ms: Annotated[
        int, typer.Option(help="Longest long-poll a fetch may ask for (milliseconds).")
    ] = NodeConfig.max_wait_ms,
) -> None:
    """Run a node until interrupted.

    A start-up failure (configuration, bind, data directory, certificate, database) prints
    one line and exits with its class's code, leaving nothing new on disk.
    """
    import trio

    from quicnproto.node.server import configure_logging
    from quicnproto.node.server import serve as serve_node

    try:
        host, port = parse_address(listen, allow_port_zero=True)
        config = NodeConfig(
            host=host,
            port=port,
            data_dir=data_dir,
            tls_cert=tls_cert,
            tls_key=tls_key,
            db=db,
            log_json=log_json,
            log_level=log_level,
            retry=retry,
            max_connections=max_connections,
            max_connections_per_address=max_connections_per_address,
            idle_timeout=idle_timeout,
            max_wait_ms=max_wait_ms,
            quic_backend=quic_backend,
            metrics=(
                None
                if metrics is None
                else parse_address(metrics, default_port=DEFAULT_METRICS_PORT)
            ),
        )
        config.validate()
    except QuicnprotoError as exc:
        raise fail(exc) from None
    # Logs wait until the node started: a failed start prints only its error line.
    logs = configure_logging(json_lines=log_json, level=log_level, hold=True)
    tune_interpreter_for_serving()

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(serve_node, config)
                logs.release_held()
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    try:
        trio.run(main)
    except Exception as exc:
        logs.discard()
        # Nursery failures arrive as exception groups around their cause.
        cause = sole_exception(exc)
        if isinstance(cause, QuicnprotoError):
            raise fail(cause) from None
        if isinstance(cause, OSError):
            typer.echo(f"error: {cause.strerror or cause}", err=True)
            raise typer.Exit(1) from None
        raise


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
    quic_backend: BackendOpt = QuicBackend.AIOQUIC,
) -> None:
    """Check that a node answers."""
    import trio

    from quicnproto.client.connection import open_client

    quiet_libraries()
    try:
        host, port = parse_address(server)
        config = ClientConfig(
            host=host,
            port=port,
            server_cert=server_cert,
            request_timeout=timeout,
            quic_backend=quic_backend,
        )
        config.validate()
    except QuicnprotoError as exc:
        raise fail(exc) from None

    async def main() -> tuple[str, float]:
        started = trio.current_time()
        with trio.fail_after(timeout + 1.0):
            async with open_client(config) as client:
                pong = await client.ping()
        return pong.version, (trio.current_time() - started) * 1000

    try:
        version, ms = trio.run(main)
    except trio.TooSlowError:
        raise fail(
            TransportError(f"no answer from {host}:{port}", TransportReason.TIMEOUT)
        ) from None
    except QuicnprotoError as exc:
        raise fail(exc) from None
    except OSError as exc:
        raise fail(TransportError(exc.strerror or str(exc))) from None
    typer.echo(f"pong from {host}:{port} (node {version}) in {ms:.1f} ms")


@app.command()
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the demo node keeps its files (a fresh temporary directory if unset)."
        ),
    ] = None,
) -> None:
    """Run three clients against a real node on loopback (see quicnproto.demo)."""
    from quicnproto.demo import main as run_demo

    quiet_libraries()
    raise typer.Exit(run_demo(data_dir))


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)
