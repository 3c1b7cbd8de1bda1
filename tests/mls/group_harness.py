"""Test helpers for the group engine: members, an in-memory delivery queue, no-mutation checks.

``GroupHarness`` (aioquic ``client_and_server``, h11 ``ConnectionPair``, ts-mls ``common.ts``)
holds N members of one group and the messages in flight to each; tests deliver them all, to
one member, or out of order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from mls.credentials import Credential
from mls.crypto.ciphersuite import Suite, get_suite
from mls.framing import MLSMessage
from mls.group.config import GroupConfig
from mls.group.group import Group, add_proposal
from mls.group.process import Result
from mls.group.results import ApplicationMessage
from mls.group.staged_commit import StagedCommit
from mls.group.welcome import JoinKeys
from mls.key_package import KeyPackage
from mls.messages import Proposal, Remove


@dataclass
class Identity:
    """A would-be member: a signature key, a credential and one KeyPackage with its keys."""

    suite: Suite
    name: bytes
    signature_priv: bytes = field(repr=False)
    key_package: KeyPackage
    keys: JoinKeys = field(repr=False)

    def lookup(self, ref: bytes) -> JoinKeys | None:
        return self.keys if ref == self.key_package.ref(self.suite) else None


def new_identity(suite_id: int, name: bytes, *, signature_priv: bytes | None = None) -> Identity:
    """A fresh identity with one KeyPackage (``KeyPackage.generate`` defaults)."""
    suite = get_suite(suite_id)
    if signature_priv is None:
        signature_priv, _ = suite.generate_signature_key_pair()
    kp, keys = KeyPackage.generate(suite, signature_priv, Credential.basic(name))
    join = JoinKeys(kp, keys.init_priv, keys.encryption_priv, keys.signature_priv)
    return Identity(suite, name, signature_priv, kp, join)


def fresh_key_package(ident: Identity) -> Identity:
    """The same signer with a new KeyPackage (a rejoin, a ReInit, a branch)."""
    return new_identity(int(ident.suite.id), ident.name, signature_priv=ident.signature_priv)


def create_group(
    ident: Identity, group_id: bytes = b"group", config: GroupConfig | None = None
) -> Group:
    return Group.create(
        ident.key_package,
        ident.keys.encryption_priv,
        ident.signature_priv,
        group_id,
        config=config,
    )


def join(
    ident: Identity, welcome: MLSMessage | bytes, config: GroupConfig | None = None, **kw: object
) -> Group:
    group, _ = Group.join_from_welcome(welcome, ident.lookup, config=config, **kw)  # type: ignore[arg-type]
    return group


@contextmanager
def unchanged(group: Group) -> Iterator[None]:
    """Asserts the block leaves ``group``'s serialized state byte-identical (ST-01)."""
    before = group.to_bytes()
    try:
        yield
    finally:
        assert group.to_bytes() == before, "the group changed"


class GroupHarness:
    """N members of one group over an in-memory delivery queue.

    ``members[i]`` is a :class:`Group` (``None`` once removed); ``inbox[i]`` the messages not
    yet delivered to it.
    """

    def __init__(self, suite_id: int = 1, n: int = 3, config: GroupConfig | None = None) -> None:
        self.suite_id = suite_id
        self.config = GroupConfig() if config is None else config
        self.idents = [new_identity(suite_id, b"member-0")]
        self.members: list[Group | None] = [create_group(self.idents[0], config=self.config)]
        self.inbox: list[list[bytes]] = [[]]
        if n > 1:
            self.add(0, n - 1)

    def active(self) -> list[int]:
        return [i for i, g in enumerate(self.members) if g is not None and g.active]

    def group(self, i: int) -> Group:
        g = self.members[i]
        assert g is not None
        return g

    def broadcast(self, sender: int, message: bytes) -> None:
        for i in self.active():
            if i != sender:
                self.inbox[i].append(message)

    @classmethod
    def of(
        cls,
        idents: Sequence[Identity],
        members: Sequence[Group],
        config: GroupConfig | None = None,
    ) -> GroupHarness:
        """A harness over groups formed elsewhere (a ReInit successor, a branch)."""
        harness = cls.__new__(cls)
        harness.suite_id = int(members[0].suite.id)
        harness.config = GroupConfig() if config is None else config
        harness.idents = list(idents)
        harness.members = list(members)
        harness.inbox = [[] for _ in members]
        return harness

    def add(self, committer: int, count: int = 1, *, also: Sequence[Proposal] = ()) -> list[int]:
        """``committer`` adds ``count`` new members in one Commit (with the ``also``
        proposals); they join at once."""
        new = [
            new_identity(self.suite_id, f"member-{len(self.idents) + k}".encode())
            for k in range(count)
        ]
        g = self.group(committer)
        created = g.commit([*also, *(add_proposal(ident.key_package) for ident in new)])
        g.merge_pending_commit()
        self.broadcast(committer, created.message.encode())
        assert created.welcome is not None
        indices = []
        for ident in new:
            self.idents.append(ident)
            self.members.append(join(ident, MLSMessage.of(created.welcome), self.config))
            self.inbox.append([])
            indices.append(len(self.members) - 1)
        return indices

    def commit(self, committer: int, proposals: Sequence[Proposal] = (), **kw: object) -> bytes:
        g = self.group(committer)
        created = g.commit(proposals, **kw)  # type: ignore[arg-type]
        g.merge_pending_commit()
        message = created.message.encode()
        self.broadcast(committer, message)
        return message

    def remove(self, committer: int, victim: int) -> bytes:
        leaf = self.group(victim).own_leaf
        message = self.commit(committer, [Proposal.of(Remove(int(leaf)))])
        return message

    def update(self, committer: int) -> bytes:
        return self.commit(committer, force_path=True)

    def send(self, sender: int, data: bytes) -> bytes:
        message = self.group(sender).encrypt_application(data)
        self.broadcast(sender, message)
        return message

    def join_external(self, via: int, *, resync: int | None = None) -> int:
        """A new member joins by external commit with ``via``'s GroupInfo; with ``resync``,
        that member instead rejoins from scratch (same signer, a new leaf), removing its old
        leaf in the same Commit. Returns the joiner's index."""
        if resync is None:
            ident = new_identity(self.suite_id, f"member-{len(self.idents)}".encode())
        else:
            ident = fresh_key_package(self.idents[resync])
        old_leaf = None if resync is None else int(self.group(resync).own_leaf)
        group, commit = Group.join_external(
            self.group(via).group_info(),
            ident.key_package.leaf_node,
            ident.signature_priv,
            resync_leaf=old_leaf,
            config=self.config,
        )
        if resync is None:
            self.idents.append(ident)
            self.members.append(None)
            self.inbox.append([])
            resync = len(self.members) - 1
        self.members[resync] = None
        self.inbox[resync] = []
        self.broadcast(resync, commit)
        self.idents[resync] = ident
        self.members[resync] = group
        return resync

    def propose(self, proposer: int, message: bytes) -> bytes:
        """Broadcasts a proposal message ``proposer`` made (``Group.propose_*``)."""
        self.broadcast(proposer, message)
        return message

    def reload(self, i: int) -> Group:
        """Replaces member ``i`` by ``Group.from_bytes`` of its state (checked byte-identical)."""
        data = self.group(i).to_bytes()
        reloaded = Group.from_bytes(data, self.config)
        assert reloaded.to_bytes() == data
        self.members[i] = reloaded
        return reloaded

    def deliver_one(self, i: int, index: int = 0) -> Result:
        """Processes ``inbox[i][index]`` (merging a Commit) and drops it from the inbox; if
        processing raises, the message stays where it was."""
        g = self.group(i)
        result = g.process(self.inbox[i][index])
        del self.inbox[i][index]
        if isinstance(result, StagedCommit):
            g.merge(result)
            if result.self_removed:
                self.members[i] = None
                self.inbox[i] = []
        return result

    def deliver_to(
        self, i: int, order: Callable[[list[bytes]], list[bytes]] | None = None
    ) -> list[object]:
        """Delivers ``i``'s inbox (in ``order``), merging Commits; returns the results."""
        g = self.group(i)
        queue, self.inbox[i] = self.inbox[i], []
        results = []
        for message in order(queue) if order else queue:
            result = g.process(message)
            if isinstance(result, StagedCommit):
                g.merge(result)
                if result.self_removed:
                    self.members[i] = None
                    break
            results.append(result)
        return results

    def deliver_all(self) -> None:
        for i in list(self.active()):
            self.deliver_to(i)

    def check_agreement(self) -> None:
        groups = [self.group(i) for i in self.active()]
        assert len({g.epoch for g in groups}) == 1
        assert len({g.epoch_authenticator for g in groups}) == 1
        assert len({g.tree.tree_hash() for g in groups}) == 1

    def everyone_can_message_everyone(self) -> None:
        for s in self.active():
            data = os.urandom(8)
            message = self.group(s).encrypt_application(data)
            for r in self.active():
                if r != s:
                    result = self.group(r).process(message)
                    assert isinstance(result, ApplicationMessage) and result.data == data
