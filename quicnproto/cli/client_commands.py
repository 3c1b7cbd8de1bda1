"""Client commands: identity, groups and messages over a node, with persistent state.

Every command that talks to a node takes ``--server`` (alias ``--ds-server``),
``--server-cert`` and ``--state``; ``--passphrase`` (``QUICNPROTOCHAT_PASSPHRASE``) opens an
encrypted state; ``--json`` prints one JSON object per line for scripts. Commands that name a
group take ``--group-id``, optional when the state holds one group (``send --peer-key`` picks
the group shared with that peer).
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from quicnproto.config import DEFAULT_PORT
from quicnproto.errors import ClientStateError, ConfigError, QuicnprotoError

from .app import app, exit_code, quiet_libraries, switch

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


@dataclass
class Options:
    state: Path
    server: str
    server_cert: Path
    passphrase: str | None
    json: bool
    timeout: float = 10.0


def _client_fail(exc: Exception) -> typer.Exit:
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
def _errors() -> Iterator[None]:
    """Turns every expected failure into one line and its exit code."""
    from mls.errors import MLSError

    try:
        yield
    except (QuicnprotoError, MLSError) as exc:
        raise _client_fail(exc) from None
    except OSError as exc:
        from quicnproto.errors import TransportError

        raise _client_fail(TransportError(exc.strerror or str(exc))) from None


def _open_state(opts: Options, *, create: bool = False) -> ClientState:
    from quicnproto.client.state import ClientState

    if create:
        return ClientState.create(opts.state, passphrase=opts.passphrase)
    return ClientState.open(opts.state, passphrase=opts.passphrase)


def _run(
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
        host=host, port=port, server_cert=opts.server_cert, request_timeout=opts.timeout
    )
    own = state is None
    st = _open_state(opts) if state is None else state
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


def _group_id(agent: Agent, group: str | None, peer: bytes | None = None) -> bytes:
    return agent.resolve_group(None if group is None else group.encode(), peer)


def _peer(hex_key: str) -> bytes:
    try:
        key = bytes.fromhex(hex_key)
    except ValueError:
        raise ConfigError("a peer key is 64 hexadecimal characters") from None
    if len(key) != 32:
        raise ConfigError("a peer key is 64 hexadecimal characters")
    return key


def _show_group(group_id: bytes) -> str:
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


def _emit(opts: Options, record: dict[str, Any], line: str) -> None:
    if opts.json:
        typer.echo(json.dumps(record, sort_keys=True))
    else:
        typer.echo(line)


@contextmanager
def _progress(opts: Options, what: str) -> Iterator[None]:
    """A spinner on a terminal for anything that may take over a second."""
    if opts.json or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(what):
        yield


def _received_record(r: Received) -> tuple[dict[str, Any], str]:
    group = _show_group(r.group_id)
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


def _options(
    state: Path,
    server: str,
    server_cert: Path,
    passphrase: str | None,
    as_json: bool,
    timeout: float = 10.0,
) -> Options:
    quiet_libraries()
    return Options(state, server, server_cert, passphrase, as_json, timeout)


# -- commands -------------------------------------------------------------------------------


def _register(opts: Options, count: int, last_resort: bool) -> None:
    from quicnproto.client.agent import KEY_PACKAGE_BATCH, Agent

    with _errors():
        if count < 0:
            raise ConfigError("--count must not be negative")
        if opts.state.exists():
            raise ClientStateError(
                f"{opts.state} already exists: one identity per state file", reason="exists"
            )
        st = _open_state(opts, create=True)
        try:
            key = Agent.new_identity(st)
            st.set_setting("server", opts.server)
            st.set_setting("server_cert", str(opts.server_cert))
            n = KEY_PACKAGE_BATCH if count == 0 else count

            async def upload(agent: Agent, client: NodeClient) -> int:
                return await agent.upload_key_packages(client, n, last_resort=last_resort)

            with _progress(opts, "uploading KeyPackages"):
                uploaded = _run(opts, upload, state=st)
        except BaseException:
            st.close()
            raise
        st.close()
    _emit(opts, {"identity": key.hex(), "key_packages": uploaded}, key.hex())


@app.command()
def register(
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    count: Annotated[int, typer.Option(help="KeyPackages to upload (0: the default batch).")] = 0,
    last_resort: Annotated[
        bool,
        switch(
            "--last-resort/--no-last-resort",
            help="Also upload a last-resort KeyPackage (RFC 9420 §16.8).",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Create an identity, upload KeyPackages (plus a last-resort one), print the identity key."""
    _register(
        _options(state, server, server_cert, passphrase, as_json, timeout), count, last_resort
    )


@app.command("register-state")
def register_state(
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    count: Annotated[int, typer.Option(help="KeyPackages to upload (0: the default batch).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """The same as register (kept for users of the original)."""
    _register(_options(state, server, server_cert, passphrase, as_json, timeout), count, True)


@app.command()
def whoami(
    state: StateOpt = DEFAULT_STATE, passphrase: PassOpt = None, as_json: JsonOpt = False
) -> None:
    """Print this state's identity key."""
    opts = _options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    with _errors():
        st = _open_state(opts)
        try:
            ident = st.identity()
            kps = st.key_package_count()
            groups = len(st.groups())
        finally:
            st.close()
    _emit(
        opts,
        {"identity": ident.identity.hex(), "key_packages": kps, "groups": groups},
        ident.identity.hex(),
    )


@app.command("fetch-key")
def fetch_key(
    peer_key: Annotated[str, typer.Argument(help="The peer's identity key (64 hex).")],
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Claim one of a peer's KeyPackages and show it (it is used up, as in the original)."""
    opts = _options(state, server, server_cert, passphrase, as_json, timeout)
    with _errors():
        peer = _peer(peer_key)

        async def op(agent: Agent, client: NodeClient) -> dict[str, Any]:
            import time

            from mls import KeyPackage
            from mls.crypto.ciphersuite import get_suite
            from mls.framing import MLSMessage
            from mls.key_package import validate_key_package

            fetched = await client.fetch_key_package(peer)
            kp = MLSMessage.decode(fetched.package).body
            if not isinstance(kp, KeyPackage):
                raise ConfigError("the node returned something that is not a KeyPackage")
            suite = get_suite(kp.cipher_suite)
            validate_key_package(kp, now=int(time.time()))
            return {
                "ref": kp.ref(suite).hex(),
                "cipher_suite": kp.cipher_suite,
                "identity": (kp.leaf_node.credential.identity or b"").hex(),
                "last_resort": fetched.last_resort,
            }

        info = _run(opts, op)
    _emit(
        opts, info, f"KeyPackage {info['ref']} of {info['identity']} (suite {info['cipher_suite']})"
    )


@app.command("create-group")
def create_group(
    group_id: Annotated[str, typer.Option("--group-id", help="The new group's id.")],
    state: StateOpt = DEFAULT_STATE,
    passphrase: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a one-member group."""
    from quicnproto.client.agent import Agent

    opts = _options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    with _errors():
        if not group_id:
            raise ConfigError("--group-id must not be empty")
        st = _open_state(opts)
        try:
            group = Agent(st).create_group(group_id.encode())
        finally:
            st.close()
    _emit(opts, {"group": group_id, "epoch": group.epoch}, f"created {group_id}")


@app.command()
def invite(
    peer_key: Annotated[
        list[str], typer.Option("--peer-key", help="Identity key to add (repeatable).")
    ],
    group_id: GroupOpt = None,
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Add members: claim their KeyPackages, send the Commit and their Welcome."""
    opts = _options(state, server, server_cert, passphrase, as_json, timeout)
    with _errors():
        peers = [_peer(k) for k in peer_key]

        async def op(agent: Agent, client: NodeClient) -> tuple[bytes, int]:
            gid = _group_id(agent, group_id)
            group = await agent.invite(client, gid, peers)
            return gid, group.epoch

        with _progress(opts, "inviting"):
            gid, epoch = _run(opts, op)
    _emit(
        opts,
        {"group": _show_group(gid), "epoch": epoch, "added": [p.hex() for p in peers]},
        f"invited {len(peers)} to {_show_group(gid)} (epoch {epoch})",
    )


@app.command()
def join(
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a Welcome.")] = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Join the groups whose Welcome is waiting on the node."""
    opts = _options(state, server, server_cert, passphrase, as_json, timeout)
    with _errors():
        if wait < 0:
            raise ConfigError("--wait must not be negative")

        async def op(agent: Agent, client: NodeClient) -> list[Received]:
            return await agent.receive(client, wait_ms=int(wait * 1000))

        results = _run(opts, op)
        joined = [r for r in results if r.kind == "joined"]
        if not joined:
            from quicnproto.client.agent import AgentError

            raise AgentError("no-welcome", "no Welcome for this identity is waiting")
    for r in results:
        record, line = _received_record(r)
        _emit(opts, record, line)


@app.command()
def send(
    msg: Annotated[str, typer.Option("--msg", help="The message text.")],
    group_id: GroupOpt = None,
    peer_key: Annotated[
        str | None, typer.Option("--peer-key", help="Send in the group shared with this peer.")
    ] = None,
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Encrypt a message to a group."""
    opts = _options(state, server, server_cert, passphrase, as_json, timeout)
    with _errors():
        peer = None if peer_key is None else _peer(peer_key)

        async def op(agent: Agent, client: NodeClient) -> tuple[bytes, int]:
            gid = _group_id(agent, group_id, peer)
            await agent.receive(client)
            out = await agent.send(client, gid, msg.encode())
            return gid, len(out.recipients)

        gid, n = _run(opts, op)
    _emit(opts, {"group": _show_group(gid), "recipients": n}, f"sent to {n} in {_show_group(gid)}")


@app.command()
def recv(
    group_id: GroupOpt = None,
    follow: Annotated[bool, switch("--follow", help="Keep receiving until interrupted.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a message.")] = 0.0,
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Apply what the node holds for us and print new messages (--follow: keep receiving by
    long-poll until interrupted)."""
    opts = _options(state, server, server_cert, passphrase, as_json, timeout)
    only = None if group_id is None else group_id.encode()

    def show(results: list[Received]) -> None:
        for r in results:
            if only is not None and r.group_id not in (only, b""):
                continue
            record, line = _received_record(r)
            _emit(opts, record, line)
        sys.stdout.flush()

    with _errors():
        if wait < 0:
            raise ConfigError("--wait must not be negative")

        async def op(agent: Agent, client: NodeClient) -> None:
            if only is not None and agent.state.group(only) is None:
                from quicnproto.client.agent import AgentError

                raise AgentError("no-group", f"no group {group_id} in this state")
            show(await agent.receive(client, wait_ms=int(wait * 1000)))
            while follow:
                show(await agent.receive(client, wait_ms=25_000))

        if follow:
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            _run(opts, op)
        except KeyboardInterrupt:
            if not follow:
                raise
            raise typer.Exit(0) from None


@app.command()
def groups(
    state: StateOpt = DEFAULT_STATE, passphrase: PassOpt = None, as_json: JsonOpt = False
) -> None:
    """List the groups in this state, with their epoch and epoch authenticator."""
    from quicnproto.client.agent import Agent

    opts = _options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    rows = []
    with _errors():
        st = _open_state(opts)
        try:
            agent = Agent(st)
            for g in st.groups():
                group = agent.load(g.group_id)
                rows.append(
                    (
                        g.group_id,
                        group.epoch,
                        len(st.members(g.group_id)),
                        group.epoch_authenticator.hex(),
                        group.active,
                    )
                )
        finally:
            st.close()
    if opts.json:
        for gid, epoch, n, auth, active in rows:
            _emit(
                opts,
                {
                    "group": _show_group(gid),
                    "epoch": epoch,
                    "members": n,
                    "epoch_authenticator": auth,
                    "active": active,
                },
                "",
            )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("group", "epoch", "members", "epoch authenticator", "status")
    for gid, epoch, n, auth, active in rows:
        table.add_row(
            _show_group(gid), str(epoch), str(n), auth[:16] + "…", "active" if active else "ended"
        )
    Console().print(table)


@app.command()
def history(
    group_id: GroupOpt = None,
    state: StateOpt = DEFAULT_STATE,
    passphrase: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the message history this state holds (sent and received)."""
    opts = _options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    with _errors():
        st = _open_state(opts)
        try:
            gid = None if group_id is None else group_id.encode()
            rows = st.messages(gid)
        finally:
            st.close()
    for m in rows:
        text = m.text.decode("utf-8", "replace")
        _emit(
            opts,
            {
                "group": _show_group(m.group_id),
                "epoch": m.epoch,
                "sender": m.sender.hex(),
                "text": text,
                "at": m.received_at,
            },
            f"[{_show_group(m.group_id)}] {fingerprint(m.sender)}: {text}",
        )


@app.command()
def members(
    group_id: GroupOpt = None,
    state: StateOpt = DEFAULT_STATE,
    passphrase: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List a group's members with their key fingerprints."""
    from quicnproto.client.agent import Agent

    opts = _options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    with _errors():
        st = _open_state(opts)
        try:
            agent = Agent(st)
            gid = _group_id(agent, group_id)
            group = agent.load(gid)
            me = agent.identity_key
            rows = [(leaf, cred.identity or b"") for leaf, cred, _ in group.members()]
            epoch, auth = group.epoch, group.epoch_authenticator.hex()
        finally:
            st.close()
    if opts.json:
        for leaf, key in rows:
            _emit(
                opts,
                {
                    "group": _show_group(gid),
                    "leaf": int(leaf),
                    "identity": key.hex(),
                    "you": key == me,
                },
                "",
            )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "leaf",
        "identity",
        "fingerprint",
        title=f"{_show_group(gid)} · epoch {epoch}",
        caption=f"epoch authenticator {auth[:16]}…",
    )
    for leaf, key in rows:
        table.add_row(str(leaf), key.hex() + (" (you)" if key == me else ""), fingerprint(key))
    Console().print(table)


def _commit_command(
    opts: Options,
    group_id: str | None,
    what: str,
    build: Callable[[Agent, NodeClient, bytes], Awaitable[object]],
) -> None:
    with _errors():

        async def op(agent: Agent, client: NodeClient) -> tuple[bytes, int]:
            gid = _group_id(agent, group_id)
            await agent.receive(client)
            await build(agent, client, gid)
            return gid, agent.load(gid).epoch if agent.state.group(gid) is not None else -1

        with _progress(opts, what):
            gid, epoch = _run(opts, op)
    _emit(
        opts,
        {"group": _show_group(gid), "epoch": epoch},
        f"{what}: {_show_group(gid)} epoch {epoch}",
    )


@app.command()
def remove(
    peer_key: Annotated[str, typer.Option("--peer-key", help="The member to remove.")],
    group_id: GroupOpt = None,
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Remove a member from a group."""
    opts = _options(state, server, server_cert, passphrase, as_json, timeout)
    with _errors():
        peer = _peer(peer_key)
    _commit_command(opts, group_id, "removed", lambda a, c, g: a.remove(c, g, peer))


@app.command()
def update(
    group_id: GroupOpt = None,
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Refresh this member's keys in a group (a self-update Commit)."""
    opts = _options(state, server, server_cert, passphrase, as_json, timeout)
    _commit_command(opts, group_id, "updated", lambda a, c, g: a.update(c, g))


@app.command()
def leave(
    group_id: GroupOpt = None,
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Ask the group to remove us, and forget the group."""
    opts = _options(state, server, server_cert, passphrase, as_json, timeout)
    _commit_command(opts, group_id, "left", lambda a, c, g: a.leave(c, g))


@app.command("safety-number")
def safety_number_command(
    peer_key: Annotated[str, typer.Option("--peer-key", help="The peer's identity key.")],
    state: StateOpt = DEFAULT_STATE,
    passphrase: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A 60-digit number both sides compute identically, to compare out of band."""
    from quicnproto.client.agent import safety_number

    opts = _options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    with _errors():
        peer = _peer(peer_key)
        st = _open_state(opts)
        try:
            me = st.identity().identity
        finally:
            st.close()
    number = safety_number(me, peer)
    grouped = " ".join(number[i : i + 5] for i in range(0, 60, 5))
    _emit(opts, {"safety_number": number}, grouped)


@app.command("demo-group")
def demo_group(
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    as_json: JsonOpt = False,
) -> None:
    """The original's two-party run (Alice and Bob) against a running node."""
    import tempfile

    from quicnproto.demo import run_two_party

    quiet_libraries()
    with _errors(), tempfile.TemporaryDirectory(prefix="quicnproto-demo-group-") as tmp:
        lines = run_two_party(server, server_cert, Path(tmp))
    for line in lines:
        typer.echo(line)
