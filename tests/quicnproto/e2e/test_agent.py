"""The client agent over a real node: groups formed, messages exchanged, commits raced."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from quicnproto.client.agent import Agent
from quicnproto.client.state import ClientState
from quicnproto.errors import RemoteError

from .node_harness import RunningNode, running_node

pytestmark = pytest.mark.e2e


class Person:
    def __init__(self, tmp: Path, name: str) -> None:
        self.state = ClientState.create(tmp / f"{name}.state")
        self.key = Agent.new_identity(self.state)
        self.agent = Agent(self.state)


async def _with(node: RunningNode, person: Person, op):  # type: ignore[no-untyped-def]
    async with node.client() as client:
        await client.authenticate(person.agent.ed25519())
        return await op(client)


async def test_three_members_form_a_group_and_talk(tmp_path: Path) -> None:
    async with running_node(tmp_path / "node") as node:
        alice, bob, carol = (Person(tmp_path, n) for n in ("alice", "bob", "carol"))
        for p in (alice, bob, carol):
            await _with(node, p, lambda c, p=p: p.agent.upload_key_packages(c, 3, last_resort=True))
        alice.agent.create_group(b"room")
        await _with(node, alice, lambda c: alice.agent.invite(c, b"room", [bob.key, carol.key]))
        for p in (bob, carol):
            got = await _with(node, p, lambda c, p=p: p.agent.receive(c))
            assert [r.kind for r in got] == ["joined"]
        await _with(node, alice, lambda c: alice.agent.send(c, b"room", b"hello all"))
        for p in (bob, carol):
            got = await _with(node, p, lambda c, p=p: p.agent.receive(c))
            assert [(r.kind, r.text, r.sender) for r in got] == [
                ("message", b"hello all", alice.key)
            ]
        auths = {p.agent.load(b"room").epoch_authenticator for p in (alice, bob, carol)}
        assert len(auths) == 1
        # carol updates, alice removes bob; bob learns he was removed and cannot read after
        await _with(node, carol, lambda c: carol.agent.update(c, b"room"))
        await _with(node, alice, lambda c: alice.agent.receive(c))
        await _with(node, bob, lambda c: bob.agent.receive(c))
        await _with(node, alice, lambda c: alice.agent.remove(c, b"room", bob.key))
        got = await _with(node, bob, lambda c: bob.agent.receive(c))
        assert [r.kind for r in got] == ["removed"]
        await _with(node, carol, lambda c: carol.agent.receive(c))
        await _with(node, alice, lambda c: alice.agent.send(c, b"room", b"bob is gone"))
        got = await _with(node, carol, lambda c: carol.agent.receive(c))
        assert [r.text for r in got] == [b"bob is gone"]
        assert (
            alice.agent.load(b"room").epoch_authenticator
            == carol.agent.load(b"room").epoch_authenticator
        )


async def test_concurrent_commits_end_in_one_epoch(tmp_path: Path) -> None:
    async with running_node(tmp_path / "node") as node:
        alice, bob = Person(tmp_path, "alice"), Person(tmp_path, "bob")
        for p in (alice, bob):
            await _with(node, p, lambda c, p=p: p.agent.upload_key_packages(c, 2))
        alice.agent.create_group(b"g")
        await _with(node, alice, lambda c: alice.agent.invite(c, b"g", [bob.key]))
        await _with(node, bob, lambda c: bob.agent.receive(c))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_with, node, alice, lambda c: alice.agent.update(c, b"g"))
            nursery.start_soon(_with, node, bob, lambda c: bob.agent.update(c, b"g"))
        await _with(node, alice, lambda c: alice.agent.receive(c))
        await _with(node, bob, lambda c: bob.agent.receive(c))
        a, b = alice.agent.load(b"g"), bob.agent.load(b"g")
        assert a.epoch == b.epoch == 3
        assert a.epoch_authenticator == b.epoch_authenticator


async def test_a_welcome_for_an_unknown_key_package_is_refused(tmp_path: Path) -> None:
    async with running_node(tmp_path / "node") as node:
        alice, bob = Person(tmp_path, "alice"), Person(tmp_path, "bob")
        await _with(node, alice, lambda c: alice.agent.upload_key_packages(c, 1))
        alice.agent.create_group(b"g")
        # bob's KeyPackage never went through the node: the node cannot route its Welcome
        from mls import Credential, KeyPackage
        from mls.framing import MLSMessage
        from mls.group.group import add_proposal

        kp, _ = KeyPackage.generate(1, bob.agent.signature_priv, Credential.basic(bob.key))
        group = alice.agent.load(b"g")
        created = group.commit([add_proposal(kp)])
        welcome = MLSMessage.of(created.welcome).encode()  # type: ignore[arg-type]
        with pytest.raises(RemoteError) as err:
            await _with(
                node,
                alice,
                lambda c: c.enqueue_commit(
                    [], created.message.encode(), b"m1", group_id=b"g", epoch=0, welcome=welcome
                ),
            )
        assert err.value.code.name == "INVALID"


async def test_a_welcome_whose_commit_lost_is_never_delivered(tmp_path: Path) -> None:
    from quicnproto.errors import ConflictError

    async with running_node(tmp_path / "node") as node:
        alice, bob, carol = (Person(tmp_path, n) for n in ("alice", "bob", "carol"))
        for p in (alice, bob, carol):
            await _with(node, p, lambda c, p=p: p.agent.upload_key_packages(c, 2))
        alice.agent.create_group(b"g")
        await _with(node, alice, lambda c: alice.agent.invite(c, b"g", [bob.key]))
        await _with(node, bob, lambda c: bob.agent.receive(c))
        # bob's update wins epoch 1; alice, not yet aware, commits an Add of carol at epoch 1
        await _with(node, bob, lambda c: bob.agent.update(c, b"g"))

        async def losing_invite(c):  # type: ignore[no-untyped-def]
            from mls.framing import MLSMessage
            from mls.group.group import add_proposal

            fetched = await c.fetch_key_package(carol.key)
            group = alice.agent.load(b"g")
            created = group.commit([add_proposal(fetched.package)])
            welcome = MLSMessage.of(created.welcome).encode()  # type: ignore[arg-type]
            return await c.enqueue_commit(
                [bob.key],
                created.message.encode(),
                b"lost",
                group_id=b"g",
                epoch=1,
                welcome=welcome,
            )

        with pytest.raises(ConflictError):
            await _with(node, alice, losing_invite)
        carol_queue = await _with(node, carol, lambda c: c.count_queue(carol.key))
        assert carol_queue == 0
        # alice catches up and invites again: carol gets exactly one Welcome and joins
        await _with(node, alice, lambda c: alice.agent.invite(c, b"g", [carol.key]))
        got = await _with(node, carol, lambda c: carol.agent.receive(c))
        assert [r.kind for r in got] == ["joined"]
        await _with(node, bob, lambda c: bob.agent.receive(c))
        groups = [p.agent.load(b"g") for p in (alice, bob, carol)]
        assert len({g.epoch_authenticator for g in groups}) == 1


async def test_key_packages_are_replenished_when_they_run_low(tmp_path: Path) -> None:
    from quicnproto.client.agent import KEY_PACKAGE_BATCH

    async with running_node(tmp_path / "node") as node:
        alice, bob = Person(tmp_path, "alice"), Person(tmp_path, "bob")
        await _with(node, alice, lambda c: alice.agent.upload_key_packages(c, 1))
        await _with(node, bob, lambda c: bob.agent.upload_key_packages(c, 1))
        alice.agent.create_group(b"g")
        await _with(node, alice, lambda c: alice.agent.invite(c, b"g", [bob.key]))
        assert await _with(node, bob, lambda c: c.count_key_packages(bob.key)) == 0
        await _with(node, bob, lambda c: bob.agent.receive(c))
        assert await _with(node, bob, lambda c: c.count_key_packages(bob.key)) == KEY_PACKAGE_BATCH
        # the new KeyPackages' keys are in bob's state, and the consumed one's are gone
        assert bob.state.key_package_count() == KEY_PACKAGE_BATCH
