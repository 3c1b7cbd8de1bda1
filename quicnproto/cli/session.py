"""What every client command shares: its options, opening the state, connecting to the node,
turning failures into one line and an exit code, and printing for people or scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from quicnproto.config import DEFAULT_PORT
from quicnproto.errors import ConfigError, QuicnprotoError
from quicnproto.transport.quic.backends import QuicBackend

from .app import exit_code, quiet_libraries, switch

if TYPE_CHECKING:
    from quicnproto.client.agent import Agent, Received
    from quicnproto.client.connection import NodeClient
    from quicnproto.client.state import ClientState

T = TypeVar("T")

AGENT_EXIT = 9
"""Exit code of an operation the agent refuses (unknown group or peer, no KeyPackage left)."""
MLS_EXIT = 10
"""Exit code of MLS input that is rejected (a message that does not verify or decrypt)."""

# -- shared options -------------------------------------------------------------------------

StateOpt = Annotated[
    Path,
    typer.Option("--state", envvar="QUICNPROTOCHAT_STATE", help="Client state file (SQLite)."),
]
ServerOpt = Annotated[
    str,
    typer.Option(
        "--server",
        "--ds-server",
        envvar="QUICNPROTOCHAT_SERVER",
        help="Node host:port (--ds-server is an alias).",
    ),
]
CertOpt = Annotated[
    Path,
    typer.Option(
        "--server-cert",
        envvar="QUICNPROTOCHAT_SERVER_CERT",
        help="The node's DER certificate (pinned).",
    ),
]
PassOpt = Annotated[
    str | None,
    typer.Option(
        "--passphrase",
        envvar="QUICNPROTOCHAT_PASSPHRASE",
        help="Encrypts the state's secrets at rest.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, switch("--json", help="Print JSON lines for scripts.")]
GroupOpt = Annotated[
    str | None,
    typer.Option("--group-id", help="The group (optional when the state holds one)."),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per node request.")]

DEFAULT_STATE = Path("quicnproto.state")
DEFAULT_SERVER = f"127.0.0.1:{DEFAULT_PORT}"
DEFAULT_CERT = Path("data/server-cert.der")
DEFAULT_BACKEND = QuicBackend.AIOQUIC


@dataclass
class Options:
    state: Path
    server: str
    server_cert: Path
    passphrase: str | None
    json: bool
    timeout: float = 10.0
    quic_backend: QuicBackend = DEFAULT_BACKEND


def client_fail(exc: Exception) -> typer.Exit:
    from mls.errors import MLSError
    from quicnproto.client.agent import AgentError

    if isinstance(exc, AgentError):
        code = AGENT_EXIT
    elif isinstance(exc, MLSError):
        code = MLS_EXIT
        rule = getattr(exc, "rule", None)
        exc = type(exc)(f"rejected: {rule or exc}") if not rule else exc
    else:
        code = exit_code(exc)
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Turns every expected failure into one line and its exit code."""
    from mls.errors import MLSError

    try:
        yield
    except (QuicnprotoError, MLSError) as exc:
        raise client_fail(exc) from None
    except OSError as exc:
        from quicnproto.errors import TransportError

        raise client_fail(TransportError(exc.strerror or str(exc))) from None


def open_state(opts: Options, *, create: bool = False) -> ClientState:
    from quicnproto.client.state import ClientState

    if create:
        return ClientState.create(opts.state, passphrase=opts.passphrase)
    return ClientState.open(opts.state, passphrase=opts.passphrase)


def run(
    opts: Options,
    op: Callable[[Agent, NodeClient], Awaitable[T]],
    *,
    state: ClientState | None = None,
) -> T:
    """Opens the state (unless given), connects, authenticates, runs ``op``, closes."""
    import trio

    from quicnproto.client.agent import Agent
    from quicnproto.client.connection import open_client
    from quicnproto.config import ClientConfig, parse_address
    from quicnproto.errors import TransportError

    host, port = parse_address(opts.server)
    if opts.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    config = ClientConfig(
        host=host,
        port=port,
        server_cert=opts.server_cert,
        request_timeout=opts.timeout,
        quic_backend=opts.quic_backend,
    )
    own = state is None
    st = open_state(opts) if state is None else state
    try:
        agent = Agent(st)

        async def main() -> T:
            async with open_client(config) as client:
                await client.authenticate(agent.ed25519())
                await agent.flush_outbox(client)
                return await op(agent, client)

        try:
            return trio.run(main)
        except trio.TooSlowError:
            raise TransportError(f"no answer from {host}:{port}") from None
    finally:
        if own:
            st.close()


def group_id_of(agent: Agent, group: str | None, peer: bytes | None = None) -> bytes:
    return agent.resolve_group(None if group is None else group.encode(), peer)


def parse_peer_key(hex_key: str) -> bytes:
    try:
        key = bytes.fromhex(hex_key)
    except ValueError:
        raise ConfigError("a peer key is 64 hexadecimal characters") from None
    if len(key) != 32:
        raise ConfigError("a peer key is 64 hexadecimal characters")
    return key


def show_group(group_id: bytes) -> str:
    try:
        text = group_id.decode()
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return group_id.hex()


def fingerprint(key: bytes) -> str:
    """A short, readable form of an identity key for tables."""
    h = key.hex()
    return " ".join(h[i : i + 4] for i in range(0, 16, 4))


def emit(opts: Options, record: dict[str, Any], line: str) -> None:
    if opts.json:
        typer.echo(json.dumps(record, sort_keys=True))
    else:
        typer.echo(line)


@contextmanager
def progress(opts: Options, what: str) -> Iterator[None]:
    """A spinner on a terminal for anything that may take over a second."""
    if opts.json or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(what):
        yield


def received_record(r: Received) -> tuple[dict[str, Any], str]:
    group = show_group(r.group_id)
    record: dict[str, Any] = {"kind": r.kind, "group": group, "epoch": r.epoch}
    if r.kind == "message":
        text = r.text.decode("utf-8", "replace")
        record.update(sender=r.sender.hex(), text=text)
        return record, f"[{group}] {fingerprint(r.sender)}: {text}"
    record["detail"] = r.detail
    if r.kind == "joined":
        return record, f"joined {group} at epoch {r.epoch}"
    if r.kind == "removed":
        return record, f"removed from {group} at epoch {r.epoch}"
    if r.kind == "skipped":
        return record, f"skipped a message ({r.detail})"
    return record, f"{group}: epoch {r.epoch} ({r.detail})"


def options(
    state: Path,
    server: str,
    server_cert: Path,
    passphrase: str | None,
    as_json: bool,
    timeout: float = 10.0,
    *,
    quic_backend: QuicBackend = DEFAULT_BACKEND,
) -> Options:
    quiet_libraries()
    return Options(state, server, server_cert, passphrase, as_json, timeout, quic_backend)
