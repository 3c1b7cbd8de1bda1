"""Client commands: identity, groups and messages over a node, with persistent state.

Every command that talks to a node takes ``--server`` (alias ``--ds-server``),
``--server-cert`` and ``--state``; ``--passphrase`` (``QUICNPROTOCHAT_PASSPHRASE``) opens an
encrypted state; ``--json`` prints one JSON object per line for scripts. Commands that name a
group take ``--group-id``, optional when the state holds one group (``send --peer-key`` picks
the group shared with that peer). The shared plumbing is :mod:`.session`.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from quicnproto.errors import ClientStateError, ConfigError

from .app import BackendOpt, app, quiet_libraries, switch
from .session import (
    DEFAULT_BACKEND,
    DEFAULT_CERT,
    DEFAULT_SERVER,
    DEFAULT_STATE,
    CertOpt,
    GroupOpt,
    JsonOpt,
    Options,
    PassOpt,
    ServerOpt,
    StateOpt,
    TimeoutOpt,
    emit,
    errors,
    fingerprint,
    group_id_of,
    open_state,
    options,
    parse_peer_key,
    progress,
    received_record,
    run,
    show_group,
)

if TYPE_CHECKING:
    from quicnproto.client.agent import Agent, Received
    from quicnproto.client.connection import NodeClient


# -- commands -------------------------------------------------------------------------------


def _register(opts: Options, count: int, last_resort: bool) -> None:
    from quicnproto.client.agent import KEY_PACKAGE_BATCH, Agent

    with errors():
        if count < 0:
            raise ConfigError("--count must not be negative")
        if opts.state.exists():
            raise ClientStateError(
                f"{opts.state} already exists: one identity per state file", reason="exists"
            )
        st = open_state(opts, create=True)
        try:
            key = Agent.new_identity(st)
            st.set_setting("server", opts.server)
            st.set_setting("server_cert", str(opts.server_cert))
            n = KEY_PACKAGE_BATCH if count == 0 else count

            async def upload(agent: Agent, client: NodeClient) -> int:
                return await agent.upload_key_packages(client, n, last_resort=last_resort)

            with progress(opts, "uploading KeyPackages"):
                uploaded = run(opts, upload, state=st)
        except BaseException:
            st.close()
            raise
        st.close()
    emit(opts, {"identity": key.hex(), "key_packages": uploaded}, key.hex())


@app.command()
def register(
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    quic_backend: BackendOpt = DEFAULT_BACKEND,
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
        options(
            state, server, server_cert, passphrase, as_json, timeout, quic_backend=quic_backend
        ),
        count,
        last_resort,
    )


@app.command("register-state")
def register_state(
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    quic_backend: BackendOpt = DEFAULT_BACKEND,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    count: Annotated[int, typer.Option(help="KeyPackages to upload (0: the default batch).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """The same as register (kept for users of the original)."""
    _register(
        options(
            state, server, server_cert, passphrase, as_json, timeout, quic_backend=quic_backend
        ),
        count,
        True,
    )


@app.command()
def whoami(
    state: StateOpt = DEFAULT_STATE, passphrase: PassOpt = None, as_json: JsonOpt = False
) -> None:
    """Print this state's identity key."""
    opts = options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    with errors():
        st = open_state(opts)
        try:
            ident = st.identity()
            kps = st.key_package_count()
            groups = len(st.groups())
        finally:
            st.close()
    emit(
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
    quic_backend: BackendOpt = DEFAULT_BACKEND,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Claim one of a peer's KeyPackages and show it (it is used up, as in the original)."""
    opts = options(
        state, server, server_cert, passphrase, as_json, timeout, quic_backend=quic_backend
    )
    with errors():
        peer = parse_peer_key(peer_key)

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

        info = run(opts, op)
    emit(
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

    opts = options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    with errors():
        if not group_id:
            raise ConfigError("--group-id must not be empty")
        st = open_state(opts)
        try:
            group = Agent(st).create_group(group_id.encode())
        finally:
            st.close()
    emit(opts, {"group": group_id, "epoch": group.epoch}, f"created {group_id}")


@app.command()
def invite(
    peer_key: Annotated[
        list[str], typer.Option("--peer-key", help="Identity key to add (repeatable).")
    ],
    group_id: GroupOpt = None,
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    quic_backend: BackendOpt = DEFAULT_BACKEND,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Add members: claim their KeyPackages, send the Commit and their Welcome."""
    opts = options(
        state, server, server_cert, passphrase, as_json, timeout, quic_backend=quic_backend
    )
    with errors():
        peers = [parse_peer_key(k) for k in peer_key]

        async def op(agent: Agent, client: NodeClient) -> tuple[bytes, int]:
            gid = group_id_of(agent, group_id)
            group = await agent.invite(client, gid, peers)
            return gid, group.epoch

        with progress(opts, "inviting"):
            gid, epoch = run(opts, op)
    emit(
        opts,
        {"group": show_group(gid), "epoch": epoch, "added": [p.hex() for p in peers]},
        f"invited {len(peers)} to {show_group(gid)} (epoch {epoch})",
    )


@app.command()
def join(
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    quic_backend: BackendOpt = DEFAULT_BACKEND,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a Welcome.")] = 5.0,
    as_json: JsonOpt = False,
) -> None:
    """Join the groups whose Welcome is waiting on the node."""
    opts = options(
        state, server, server_cert, passphrase, as_json, timeout, quic_backend=quic_backend
    )
    with errors():
        if wait < 0:
            raise ConfigError("--wait must not be negative")

        async def op(agent: Agent, client: NodeClient) -> list[Received]:
            return await agent.receive(client, wait_ms=int(wait * 1000))

        results = run(opts, op)
        joined = [r for r in results if r.kind == "joined"]
        if not joined:
            from quicnproto.client.agent import AgentError

            raise AgentError("no-welcome", "no Welcome for this identity is waiting")
    for r in results:
        record, line = received_record(r)
        emit(opts, record, line)


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
    quic_backend: BackendOpt = DEFAULT_BACKEND,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Encrypt a message to a group."""
    opts = options(
        state, server, server_cert, passphrase, as_json, timeout, quic_backend=quic_backend
    )
    with errors():
        peer = None if peer_key is None else parse_peer_key(peer_key)

        async def op(agent: Agent, client: NodeClient) -> tuple[bytes, int]:
            gid = group_id_of(agent, group_id, peer)
            await agent.receive(client)
            out = await agent.send(client, gid, msg.encode())
            return gid, len(out.recipients)

        gid, n = run(opts, op)
    emit(opts, {"group": show_group(gid), "recipients": n}, f"sent to {n} in {show_group(gid)}")


@app.command()
def recv(
    group_id: GroupOpt = None,
    follow: Annotated[bool, switch("--follow", help="Keep receiving until interrupted.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a message.")] = 0.0,
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    quic_backend: BackendOpt = DEFAULT_BACKEND,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Apply what the node holds for us and print new messages (--follow: keep receiving by
    long-poll until interrupted)."""
    opts = options(
        state, server, server_cert, passphrase, as_json, timeout, quic_backend=quic_backend
    )
    only = None if group_id is None else group_id.encode()

    def show(results: list[Received]) -> None:
        for r in results:
            if only is not None and r.group_id not in (only, b""):
                continue
            record, line = received_record(r)
            emit(opts, record, line)
        sys.stdout.flush()

    with errors():
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
            run(opts, op)
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

    opts = options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    rows = []
    with errors():
        st = open_state(opts)
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
            emit(
                opts,
                {
                    "group": show_group(gid),
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
            show_group(gid), str(epoch), str(n), auth[:16] + "…", "active" if active else "ended"
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
    opts = options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    with errors():
        st = open_state(opts)
        try:
            gid = None if group_id is None else group_id.encode()
            rows = st.messages(gid)
        finally:
            st.close()
    for m in rows:
        text = m.text.decode("utf-8", "replace")
        emit(
            opts,
            {
                "group": show_group(m.group_id),
                "epoch": m.epoch,
                "sender": m.sender.hex(),
                "text": text,
                "at": m.received_at,
            },
            f"[{show_group(m.group_id)}] {fingerprint(m.sender)}: {text}",
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

    opts = options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    with errors():
        st = open_state(opts)
        try:
            agent = Agent(st)
            gid = group_id_of(agent, group_id)
            group = agent.load(gid)
            me = agent.identity_key
            rows = [(leaf, cred.identity or b"") for leaf, cred, _ in group.members()]
            epoch, auth = group.epoch, group.epoch_authenticator.hex()
        finally:
            st.close()
    if opts.json:
        for leaf, key in rows:
            emit(
                opts,
                {
                    "group": show_group(gid),
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
        title=f"{show_group(gid)} · epoch {epoch}",
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
    with errors():

        async def op(agent: Agent, client: NodeClient) -> tuple[bytes, int]:
            gid = group_id_of(agent, group_id)
            await agent.receive(client)
            await build(agent, client, gid)
            return gid, agent.load(gid).epoch if agent.state.group(gid) is not None else -1

        with progress(opts, what):
            gid, epoch = run(opts, op)
    emit(
        opts,
        {"group": show_group(gid), "epoch": epoch},
        f"{what}: {show_group(gid)} epoch {epoch}",
    )


@app.command()
def remove(
    peer_key: Annotated[str, typer.Option("--peer-key", help="The member to remove.")],
    group_id: GroupOpt = None,
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    quic_backend: BackendOpt = DEFAULT_BACKEND,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Remove a member from a group."""
    opts = options(
        state, server, server_cert, passphrase, as_json, timeout, quic_backend=quic_backend
    )
    with errors():
        peer = parse_peer_key(peer_key)
    _commit_command(opts, group_id, "removed", lambda a, c, g: a.remove(c, g, peer))


@app.command()
def update(
    group_id: GroupOpt = None,
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    quic_backend: BackendOpt = DEFAULT_BACKEND,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Refresh this member's keys in a group (a self-update Commit)."""
    opts = options(
        state, server, server_cert, passphrase, as_json, timeout, quic_backend=quic_backend
    )
    _commit_command(opts, group_id, "updated", lambda a, c, g: a.update(c, g))


@app.command()
def leave(
    group_id: GroupOpt = None,
    state: StateOpt = DEFAULT_STATE,
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    quic_backend: BackendOpt = DEFAULT_BACKEND,
    passphrase: PassOpt = None,
    timeout: TimeoutOpt = 10.0,
    as_json: JsonOpt = False,
) -> None:
    """Ask the group to remove us, and forget the group."""
    opts = options(
        state, server, server_cert, passphrase, as_json, timeout, quic_backend=quic_backend
    )
    _commit_command(opts, group_id, "left", lambda a, c, g: a.leave(c, g))


@app.command("safety-number")
def safety_number_command(
    peer_key: Annotated[str, typer.Option("--peer-key", help="The peer's identity key.")],
    state: StateOpt = DEFAULT_STATE,
    passphrase: PassOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A 60-digit number both sides compute identically, to compare out of band."""
    from quicnproto.client.safety import safety_number

    opts = options(state, DEFAULT_SERVER, DEFAULT_CERT, passphrase, as_json)
    with errors():
        peer = parse_peer_key(peer_key)
        st = open_state(opts)
        try:
            me = st.identity().identity
        finally:
            st.close()
    number = safety_number(me, peer)
    grouped = " ".join(number[i : i + 5] for i in range(0, 60, 5))
    emit(opts, {"safety_number": number}, grouped)


@app.command("demo-group")
def demo_group(
    server: ServerOpt = DEFAULT_SERVER,
    server_cert: CertOpt = DEFAULT_CERT,
    quic_backend: BackendOpt = DEFAULT_BACKEND,
    as_json: JsonOpt = False,
) -> None:
    """The original's two-party run (Alice and Bob) against a running node."""
    import tempfile

    from quicnproto.demo import run_two_party

    quiet_libraries()
    with errors(), tempfile.TemporaryDirectory(prefix="quicnproto-demo-group-") as tmp:
        lines = run_two_party(server, server_cert, Path(tmp), quic_backend=quic_backend)
    for line in lines:
        typer.echo(line)
