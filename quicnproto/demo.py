"""``quicnproto demo``: a three-person MLS group over a real node on loopback.

What it runs, end to end, over QUIC + TLS 1.3 with the node's certificate pinned:

1. a node on ``127.0.0.1`` (an ephemeral port) with its SQLite store in a fresh directory;
2. alice, bob and carol, each a client agent with its own state file and its own
   connection, register: an Ed25519 identity and real MLS KeyPackages (RFC 9420 §10);
3. alice creates a group and invites bob and carol: she claims one KeyPackage of each, and
   the node stores her Commit with its Welcome, routing the Welcome by KeyPackageRef;
4. bob and carol join from the Welcome; messages go in every direction;
5. carol refreshes her keys (a self-update Commit); alice removes bob;
6. alice and carol keep talking; bob, removed, cannot read what they say.

After each step the transcript shows every member's epoch and epoch authenticator (RFC 9420
§8.7), which must agree.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import trio
from rich.console import Console
from rich.table import Table

from mls.errors import MLSError
from mls.framing import MLSMessage
from mls.group.process import process_message

from .client.agent import Agent, Received
from .client.connection import NodeClient, open_client
from .client.state import ClientState
from .config import ClientConfig, NodeConfig, parse_address
from .errors import QuicnprotoError
from .node.server import serve
from .transport.quic.backends import QuicBackend

GROUP = b"demo-room"


class DemoFailed(Exception):
    """A step of the demo did not give the expected result."""


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(what)


@dataclass
class Person:
    name: str
    state: ClientState
    agent: Agent = field(init=False)
    client: NodeClient | None = None

    def __post_init__(self) -> None:
        self.agent = Agent(self.state)

    @property
    def key(self) -> bytes:
        return self.agent.identity_key

    @property
    def node(self) -> NodeClient:
        assert self.client is not None
        return self.client


def _person(directory: Path, name: str) -> Person:
    state = ClientState.create(directory / f"{name}.state")  # mode 0600
    Agent.new_identity(state)
    return Person(name, state)


class Transcript:
    def __init__(self, console: Console | None) -> None:
        self.console = console
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        self.lines.append(line)
        if self.console is not None:
            self.console.print(line)

    def epochs(self, people: list[Person]) -> None:
        table = Table("member", "epoch", "epoch authenticator")
        seen = set()
        for p in people:
            group = p.agent.load(GROUP)
            seen.add((group.epoch, group.epoch_authenticator))
            table.add_row(p.name, str(group.epoch), group.epoch_authenticator.hex()[:32] + "…")
        _check(len(seen) == 1, "the members disagree on the epoch")
        if self.console is not None:
            self.console.print(table)
        epoch, auth = next(iter(seen))
        self.say(
            f"epoch {epoch}: {', '.join(p.name for p in people)} agree on the epoch"
            f" authenticator {auth.hex()[:16]}…"
        )


def _show(person: Person, got: list[Received], names: dict[bytes, str], t: Transcript) -> None:
    for r in got:
        if r.kind == "message":
            t.say(f"  {person.name} read from {names.get(r.sender, '?')}: {r.text.decode()!r}")
        elif r.kind == "joined":
            t.say(f"  {person.name} joined {r.group_id.decode()} at epoch {r.epoch}")
        elif r.kind == "removed":
            t.say(f"  {person.name} learned it was removed (epoch {r.epoch})")
        elif r.kind == "commit":
            t.say(f"  {person.name} moved to epoch {r.epoch} ({r.detail})")


async def _script(people: dict[str, Person], t: Transcript) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    names = {p.key: p.name for p in people.values()}
    for p in people.values():
        await p.agent.upload_key_packages(p.node, 2, last_resort=True)
    t.say("alice, bob and carol registered and uploaded KeyPackages")

    alice.agent.create_group(GROUP)
    await alice.agent.invite(alice.node, GROUP, [bob.key, carol.key])
    t.say("alice created demo-room and invited bob and carol (Commit + Welcome, one bundle)")
    for p in (bob, carol):
        _show(p, await p.agent.receive(p.node, wait_ms=5000), names, t)
    t.epochs([alice, bob, carol])

    for sender, text in (
        (alice, "hello bob and carol"),
        (bob, "hi alice, hi carol"),
        (carol, "hello both"),
    ):
        await sender.agent.send(sender.node, GROUP, text.encode())
        t.say(f"{sender.name} sent {text!r}")
        for p in (alice, bob, carol):
            if p is not sender:
                got = await p.agent.receive(p.node, wait_ms=5000)
                _show(p, got, names, t)
                _check(any(r.text == text.encode() for r in got), f"{p.name} missed a message")

    await carol.agent.update(carol.node, GROUP)
    t.say("carol refreshed her keys (self-update Commit)")
    for p in (alice, bob):
        _show(p, await p.agent.receive(p.node, wait_ms=5000), names, t)
    t.epochs([alice, bob, carol])

    await alice.agent.remove(alice.node, GROUP, bob.key)
    t.say("alice removed bob")
    for p in (bob, carol):
        _show(p, await p.agent.receive(p.node, wait_ms=5000), names, t)
    t.epochs([alice, carol])

    out = await alice.agent.send(alice.node, GROUP, b"bob cannot read this")
    t.say("alice sent 'bob cannot read this'")
    got = await carol.agent.receive(carol.node, wait_ms=5000)
    _show(carol, got, names, t)
    _check(any(r.text == b"bob cannot read this" for r in got), "carol missed a message")
    _check(bob.key not in out.recipients, "alice still sends to bob")
    # Even ignoring that his group state says "removed", bob holds no key of the new epoch.
    state = bob.agent.load(GROUP).state
    state.removed = False
    try:
        process_message(state, MLSMessage.decode(out.payload), bob.agent.config)
        raise DemoFailed("bob decrypted a message after his removal")
    except MLSError as exc:
        rule = getattr(exc, "rule", type(exc).__name__)
        t.say(f"  bob cannot read it: his last epoch is {state.epoch} ({rule})")
    await carol.agent.send(carol.node, GROUP, b"just us now")
    _show(alice, await alice.agent.receive(alice.node, wait_ms=5000), names, t)
    t.epochs([alice, carol])


async def _clients(people: dict[str, Person], config: ClientConfig, t: Transcript) -> None:
    async with (
        open_client(config) as a,
        open_client(config) as b,
        open_client(config) as c,
    ):
        for person, client in zip(people.values(), (a, b, c), strict=True):
            await client.authenticate(person.agent.ed25519())
            person.client = client
        await _script(people, t)


async def _run(directory: Path, t: Transcript) -> None:
    config = NodeConfig(host="127.0.0.1", port=0, data_dir=directory)
    people = {name: _person(directory, name) for name in ("alice", "bob", "carol")}
    try:
        async with trio.open_nursery() as nursery:
            host, port = await nursery.start(serve, config)
            t.say(f"node listening on {host}:{port} (QUIC, TLS 1.3), store {config.db_path}")
            client_config = ClientConfig(host=host, port=port, server_cert=config.cert_path)
            await _clients(people, client_config, t)
            nursery.cancel_scope.cancel()
    finally:
        for p in people.values():
            p.state.close()


def main(data_dir: Path | None = None) -> int:
    """Runs the demo; returns the process exit code."""
    console = Console()
    t = Transcript(console)
    try:
        if data_dir is None:
            with tempfile.TemporaryDirectory(prefix="quicnproto-demo-") as tmp:
                trio.run(_run, Path(tmp), t)
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            trio.run(_run, data_dir, t)
    except (DemoFailed, QuicnprotoError, MLSError) as exc:
        console.print(f"[red]demo failed:[/red] {exc}")
        return 1
    console.print("demo complete")
    return 0


def run_two_party(
    server: str,
    server_cert: Path,
    directory: Path,
    *,
    quic_backend: QuicBackend = QuicBackend.AIOQUIC,
) -> list[str]:
    """The original's two-party run against a running node: alice and bob register, alice
    creates a group and invites bob, they exchange a message each way. Returns the transcript.

    Raises:
        QuicnprotoError, MLSError, DemoFailed: a step failed.
    """
    host, port = parse_address(server)
    config = ClientConfig(host=host, port=port, server_cert=server_cert, quic_backend=quic_backend)
    t = Transcript(None)
    people = {name: _person(directory, name) for name in ("alice", "bob")}

    async def run() -> None:
        alice, bob = people["alice"], people["bob"]
        names = {p.key: p.name for p in people.values()}
        async with open_client(config) as a, open_client(config) as b:
            await a.authenticate(alice.agent.ed25519())
            await b.authenticate(bob.agent.ed25519())
            alice.client, bob.client = a, b
            for p in (alice, bob):
                await p.agent.upload_key_packages(p.node, 1, last_resort=True)
            t.say(f"alice {alice.key.hex()}")
            t.say(f"bob   {bob.key.hex()}")
            alice.agent.create_group(b"alice-bob")
            await alice.agent.invite(a, b"alice-bob", [bob.key])
            got = await bob.agent.receive(b, wait_ms=5000)
            _check(any(r.kind == "joined" for r in got), "bob did not join")
            t.say("bob joined alice-bob")
            await alice.agent.send(a, b"alice-bob", b"hello bob")
            got = await bob.agent.receive(b, wait_ms=5000)
            _check(any(r.text == b"hello bob" for r in got), "bob missed alice's message")
            t.say("bob read: 'hello bob'")
            await bob.agent.send(b, b"alice-bob", b"hello alice")
            got = await alice.agent.receive(a, wait_ms=5000)
            _check(any(r.text == b"hello alice" for r in got), "alice missed bob's message")
            t.say("alice read: 'hello alice'")
            ga, gb = alice.agent.load(b"alice-bob"), bob.agent.load(b"alice-bob")
            _check(ga.epoch_authenticator == gb.epoch_authenticator, "epochs differ")
            t.say(f"both at epoch {ga.epoch}, authenticator {ga.epoch_authenticator.hex()[:32]}…")
            del names

    try:
        trio.run(run)
    finally:
        for p in people.values():
            p.state.close()
    return t.lines
