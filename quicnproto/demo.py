"""``quicnproto demo``: three clients and a real node on loopback.

What it runs, end to end, over QUIC + TLS 1.3 with the node's certificate pinned:

1. a node on ``127.0.0.1`` (an ephemeral port) with its SQLite store in a fresh directory;
2. alice, bob and carol connect and prove their Ed25519 identities;
3. each publishes real MLS KeyPackages (RFC 9420 §10); alice claims one of bob's and one of
   carol's, checks them (signature, lifetime, keys; §10.1), and sees each handed out once;
4. bob long-polls his queue; alice seals a first-contact note to each claimed KeyPackage's
   ``init_key`` (EncryptWithLabel, RFC 9420 §5.1.3, the way Welcome secrets travel) and
   enqueues it — once more with the same message id, which stores nothing new;
5. bob is woken and reads; carol was offline and reads later (store and forward); both
   decrypt with their KeyPackage's private init key and acknowledge, emptying their queues.

MLS group messaging (Commit, Welcome, application messages) joins the demo with the group
layer; everything shown here is the real node, transport and cryptography.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table

from mls.crypto.ciphersuite import get_suite
from mls.crypto.labels import decrypt_with_label, encrypt_with_label
from mls.errors import MLSError
from mls.framing import MLSMessage
from mls.key_package import KeyPackage, validate_key_package

from .client.connection import NodeClient, identity_key_of, open_client
from .client.keys import KeyPackageSecrets, new_key_package
from .config import ClientConfig, NodeConfig
from .errors import QuicnprotoError
from .node.server import serve

DEMO_LABEL = b"quicnproto first contact"
SUITE = 1


@dataclass
class Member:
    name: str
    identity: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    packages: dict[bytes, KeyPackageSecrets] = field(default_factory=dict)

    @property
    def key(self) -> bytes:
        return identity_key_of(self.identity)


class DemoFailed(Exception):
    """A step of the demo did not give the expected result."""


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(what)


async def _publish(client: NodeClient, member: Member, count: int) -> None:
    for _ in range(count):
        message, secrets_ = new_key_package(member.identity, member.name.encode())
        ref = await client.upload_key_package(member.key, message)
        _check(ref == secrets_.ref, f"{member.name}: node's KeyPackageRef differs from ours")
        member.packages[ref] = secrets_


def _claimed_package(raw: bytes) -> KeyPackage:
    body = MLSMessage.decode(raw).body
    _check(isinstance(body, KeyPackage), "the node handed out something that is not a KeyPackage")
    assert isinstance(body, KeyPackage)
    validate_key_package(body, suite=get_suite(SUITE), now=int(time.time()))
    return body


async def run_demo(console: Console, data_dir: Path) -> None:
    """Runs the scenario; raises :class:`DemoFailed` (or a typed error) if any step fails."""
    suite = get_suite(SUITE)
    config = NodeConfig(host="127.0.0.1", port=0, data_dir=data_dir)
    members = {name: Member(name) for name in ("alice", "bob", "carol")}
    bob, carol = members["bob"], members["carol"]
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(serve, config)
        console.print(f"[bold]node[/] listening on {host}:{port} (QUIC, TLS 1.3), store {config.db_path}")
        client_config = ClientConfig(host=host, port=port, server_cert=config.cert_path)
        async with (
            open_client(client_config) as a,
            open_client(client_config) as b,
            open_client(client_config) as c,
        ):
            clients = {"alice": a, "bob": b, "carol": c}
            for name, client in clients.items():
                await client.ping()
                await client.authenticate(members[name].identity)
                await _publish(client, members[name], 2)
            console.print("alice, bob and carol authenticated and published 2 KeyPackages each")

            claimed: dict[str, KeyPackage] = {}
            for peer in (bob, carol):
                before = await clients[peer.name].count_key_packages(peer.key)
                fetched = await a.fetch_key_package(peer.key)
                claimed[peer.name] = _claimed_package(fetched.package)
                after = await clients[peer.name].count_key_packages(peer.key)
                _check(after == before - 1, f"{peer.name}'s KeyPackage was not consumed")
                console.print(
                    f"alice claimed one of {peer.name}'s KeyPackages "
                    f"(valid; {before} -> {after} left on the node)"
                )

            woke_at: list[float] = []
            bob_inbox: list[bytes] = []

            async def bob_long_poll() -> None:
                batch = await b.fetch(bob.key, wait_ms=10_000)
                woke_at.append(trio.current_time())
                bob_inbox.extend(m.payload for m in batch)
                await b.ack(bob.key, batch[-1].seq)

            async with trio.open_nursery() as inner:
                inner.start_soon(bob_long_poll)
                await trio.sleep(0.2)  # bob is now waiting on the node
                sent_at = trio.current_time()
                for peer in (bob, carol):
                    package = claimed[peer.name]
                    note = f"hello {peer.name}, this is alice".encode()
                    kem_output, ciphertext = encrypt_with_label(
                        suite, package.init_key, DEMO_LABEL, package.ref(suite), note
                    )
                    payload = package.ref(suite) + kem_output + ciphertext
                    message_id = secrets.token_bytes(16)
                    first = await a.enqueue([peer.key], payload, message_id)
                    retry = await a.enqueue([peer.key], payload, message_id)
                    _check(first == retry, "a retried enqueue was stored twice")
            latency_ms = (woke_at[0] - sent_at) * 1000
            console.print(
                f"alice sent a sealed note to bob and carol (a retry with the same id stored "
                f"nothing); bob's long-poll woke after {latency_ms:.1f} ms"
            )

            carol_batch = await c.fetch(carol.key)
            carol_inbox = [m.payload for m in carol_batch]
            _check(len(carol_inbox) == 1, "carol did not find exactly one stored message")
            await c.ack(carol.key, carol_batch[-1].seq)

            table = Table(title="delivered")
            table.add_column("recipient")
            table.add_column("how")
            table.add_column("decrypted note")
            table.add_column("queue after ack")
            for member, inbox, how in (
                (bob, bob_inbox, "long-poll"),
                (carol, carol_inbox, "later fetch (was offline)"),
            ):
                _check(len(inbox) == 1, f"{member.name} did not get exactly one message")
                note = _open(member, inbox[0])
                left = await clients[member.name].count_queue(member.key)
                _check(left == 0, f"{member.name}'s queue is not empty after the ack")
                table.add_row(member.name, how, note.decode(), str(left))
            console.print(table)
        nursery.cancel_scope.cancel()


def _open(member: Member, payload: bytes) -> bytes:
    suite = get_suite(SUITE)
    ref_size = suite.hash_length
    ref, rest = payload[:ref_size], payload[ref_size:]
    secrets_ = member.packages.get(ref)
    _check(secrets_ is not None, f"{member.name} holds no KeyPackage {ref.hex()[:16]}")
    assert secrets_ is not None
    enc_size = suite.hpke.kem.n_enc
    return decrypt_with_label(
        suite, secrets_.init_private, DEMO_LABEL, ref, rest[:enc_size], rest[enc_size:]
    )


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def main(data_dir: Path | None = None) -> int:
    """Runs the demo in ``data_dir`` (a fresh temporary directory when None); 0 on success."""
    console = Console()
    try:
        if data_dir is None:
            with tempfile.TemporaryDirectory(prefix="quicnproto-demo-") as tmp:
                trio.run(run_demo, console, Path(tmp))
        else:
            trio.run(run_demo, console, data_dir)
    except (DemoFailed, QuicnprotoError, MLSError, BaseExceptionGroup) as exc:
        leaves = _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
        if not all(isinstance(e, (DemoFailed, QuicnprotoError, MLSError)) for e in leaves):
            raise
        for leaf in leaves:
            console.print(f"[bold red]demo failed:[/] {type(leaf).__name__}: {leaf}")
        return 1
    console.print("[bold green]demo complete[/]")
    return 0
