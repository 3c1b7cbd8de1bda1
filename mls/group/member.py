"""``GroupMember``: the application facade, bytes in and bytes out (RFC 9420).

One member identity, its KeyPackages, and (at most) one group. Every input and output is an
RFC 9420 MLSMessage, so any other implementation can sit on the other side::

    alice = GroupMember(b"alice")            bob = GroupMember(b"bob")
    alice.create_group(b"g")                 kp = bob.generate_key_package()
    commit, welcome = alice.add_member(kp)   bob.join_group(welcome)
    ct = alice.send_message(b"hi")           bob.receive_message(ct) == b"hi"

Commits this member creates are merged at once (the simple model of a Delivery Service that
accepts every Commit); applications that must wait for their Delivery Service use
:class:`~mls.group.group.Group` directly.

Contract: a method that raises leaves the member unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..credentials import Credential
from ..crypto.ciphersuite import CipherSuite, get_suite
from ..errors import UsageError
from ..framing import MLSMessage
from ..key_package import InMemoryKeyPackageStore, KeyPackage, KeyPackageStore
from ..messages import Proposal, Remove
from .config import GroupConfig
from .group import Group, add_proposal
from .process import Result
from .results import ApplicationMessage
from .staged_commit import StagedCommit
from .welcome import JoinKeys

DEFAULT_SUITE = CipherSuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519


class GroupMember:
    """One member of (at most) one MLS group.

    Args:
        identity: the basic credential's identity: any bytes the application chooses.
        suite: the cipher suite of its KeyPackages and groups.
        signature_priv: its signature key; a fresh one by default.
        credential: a credential to use instead of a basic one with ``identity``.
        config: the group policy.
        key_store: where KeyPackage private keys wait for a Welcome (in memory by default).
    """

    def __init__(
        self,
        identity: bytes,
        suite: CipherSuite | int = DEFAULT_SUITE,
        *,
        signature_priv: bytes | None = None,
        credential: Credential | None = None,
        config: GroupConfig | None = None,
        key_store: KeyPackageStore | None = None,
    ) -> None:
        self.identity = bytes(identity)
        self.suite = get_suite(int(suite))
        if signature_priv is None:
            signature_priv, _ = self.suite.generate_signature_key_pair()
        self._signature_priv = signature_priv
        self.signature_key = self.suite.signature_public_key(signature_priv)
        self.credential = Credential.basic(self.identity) if credential is None else credential
        self.config = GroupConfig() if config is None else config
        self.key_store: KeyPackageStore = (
            InMemoryKeyPackageStore() if key_store is None else key_store
        )
        self._key_packages: dict[bytes, KeyPackage] = {}
        self.group: Group | None = None

    def __repr__(self) -> str:
        return f"GroupMember(identity={self.identity!r}, group={self.group!r})"

    # ----------------------------------------------------------------------------------------

    def _new_key_package(self) -> tuple[KeyPackage, JoinKeys]:
        kp, keys = KeyPackage.generate(self.suite, self._signature_priv, self.credential)
        return kp, JoinKeys(kp, keys.init_priv, keys.encryption_priv, keys.signature_priv)

    def generate_key_package(self) -> bytes:
        """A fresh KeyPackage as MLSMessage bytes; its private keys stay in the key store."""
        kp, keys = KeyPackage.generate(self.suite, self._signature_priv, self.credential)
        self.key_store.put(keys)
        self._key_packages[keys.ref] = kp
        return MLSMessage.of(kp).encode()

    def _lookup(self, ref: bytes) -> JoinKeys | None:
        kp = self._key_packages.get(ref)
        keys = self.key_store.get(ref)
        if kp is None or keys is None:
            return None
        return JoinKeys(kp, keys.init_priv, keys.encryption_priv, keys.signature_priv)

    def _require_group(self) -> Group:
        if self.group is None:
            raise UsageError("not in a group: create_group or join_group first")
        return self.group

    def _no_group(self) -> None:
        if self.group is not None and self.group.active:
            raise UsageError("already in a group")

    # ----------------------------------------------------------------------------------------
    # Forming the group

    def create_group(self, group_id: bytes) -> None:
        """Creates a one-member group (RFC 9420 §11)."""
        self._no_group()
        kp, keys = self._new_key_package()
        self.group = Group.create(
            kp, keys.encryption_priv, self._signature_priv, group_id, config=self.config
        )

    def add_member(self, key_package: bytes) -> tuple[bytes, bytes]:
        """Adds the holder of ``key_package``: ``(commit, welcome)``, merged at once."""
        return self.add_members([key_package])

    def add_members(self, key_packages: Sequence[bytes]) -> tuple[bytes, bytes]:
        """Adds several members in one Commit: ``(commit, welcome)``, merged at once."""
        group = self._require_group()
        proposals = [add_proposal(kp) for kp in key_packages]
        if not proposals:
            raise UsageError("no KeyPackage given")
        created = group.commit(proposals)
        group.merge_pending_commit()
        assert created.welcome is not None
        return created.message.encode(), MLSMessage.of(created.welcome).encode()

    def join_group(self, welcome: bytes, ratchet_tree: bytes | None = None) -> None:
        """Joins from a Welcome; the KeyPackage it used is deleted (KP-08)."""
        self._no_group()
        group, ref = Group.join_from_welcome(
            welcome, self._lookup, ratchet_tree=ratchet_tree, config=self.config
        )
        self.group = group
        self.key_store.delete(ref)
        self._key_packages.pop(ref, None)

    def join_external(self, group_info: bytes) -> bytes:
        """Joins by external commit (RFC 9420 §12.4.3.2); returns the Commit to send."""
        self._no_group()
        kp, _ = self._new_key_package()
        group, commit = Group.join_external(
            group_info, kp.leaf_node, self._signature_priv, config=self.config
        )
        self.group = group
        return commit

    # ----------------------------------------------------------------------------------------
    # Talking

    def send_message(self, plaintext: bytes) -> bytes:
        """Encrypts application data as a PrivateMessage."""
        return self._require_group().encrypt_application(plaintext)

    def receive(self, message: bytes) -> Result:
        """Processes a message and returns the typed result; Commits are merged."""
        group = self._require_group()
        result = group.process(message)
        if isinstance(result, StagedCommit):
            group.merge(result)
        return result

    def receive_message(self, message: bytes) -> bytes | None:
        """The plaintext of an application message; ``None`` for a handshake message
        (which is applied)."""
        result = self.receive(message)
        return result.data if isinstance(result, ApplicationMessage) else None

    def update(self) -> bytes:
        """A self-update Commit with a fresh path, merged at once."""
        group = self._require_group()
        created = group.commit(force_path=True)
        group.merge_pending_commit()
        return created.message.encode()

    def remove_member(self, identity: bytes) -> bytes:
        """Removes the member whose basic credential is ``identity``; merged at once."""
        group = self._require_group()
        leaves = [i for i, cred, _ in group.members() if cred.identity == identity]
        if not leaves:
            raise UsageError("no member with that identity")
        created = group.commit([Proposal.of(Remove(leaf)) for leaf in leaves])
        group.merge_pending_commit()
        return created.message.encode()

    # ----------------------------------------------------------------------------------------
    # Reading

    @property
    def members(self) -> list[bytes]:
        """The members' identities, in leaf order."""
        return [cred.identity or b"" for _, cred, _ in self._require_group().members()]

    @property
    def epoch(self) -> int:
        return self._require_group().epoch

    @property
    def epoch_authenticator(self) -> bytes:
        return self._require_group().epoch_authenticator

    def export_secret(self, label: bytes, context: bytes, length: int) -> bytes:
        return self._require_group().export_secret(label, context, length)

    def group_info(self) -> bytes:
        """A signed GroupInfo (with the tree and ``external_pub``) as MLSMessage bytes."""
        return self._require_group().group_info()
