"""The sans-I/O group state machine (RFC 9420 §11-§15).

A :class:`Group` is one member's view of one group. Every method takes and returns values or
RFC 9420 MLSMessage bytes; nothing here does I/O::

    Group.create / join_from_welcome / join_external
      │
      ├─ propose_add / propose_remove / propose_update / ...  → proposal message (cached)
      ├─ commit(...)        → CreatedCommit; pending until merge_pending_commit()
      ├─ process(bytes)     → ApplicationMessage | ProposalMessage | StagedCommit | OwnMessage
      ├─ merge(staged)      → the next epoch
      ├─ encrypt_application(data) → PrivateMessage bytes
      └─ export_secret / epoch_authenticator / group_info / to_bytes

Contract: every method either returns or raises; a method that raises leaves the group's
serialized state byte-identical (:meth:`to_bytes` before and after). Processing a Commit never
changes the group: :meth:`merge` does, and cannot fail.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

from ..credentials import Credential
from ..crypto.ciphersuite import Suite, get_suite
from ..crypto.labels import make_proposal_ref
from ..errors import DecodeError, UsageError
from ..extensions import Extension
from ..framing import (
    FramedContent,
    MLSMessage,
    Sender,
    WireFormat,
)
from ..group_context import GroupContext, ProtocolVersion
from ..key_package import KeyPackage
from ..key_schedule import EpochSecrets
from ..leaf_node import LeafNode, LeafNodeSource
from ..message_protection import protect_private_message, sign_content
from ..messages import (
    Add,
    GroupContextExtensions,
    GroupInfo,
    PreSharedKey,
    Proposal,
    ReInit,
    Remove,
    Update,
    Welcome,
)
from ..psk_id import PreSharedKeyID, ResumptionPSKUsage
from ..ratchet_tree import RatchetTree
from ..secret_tree import SecretTree
from ..transcript import interim_transcript_hash
from ..tree_math import LeafIndex
from ..treekem import TreeKEMPrivateKey, node_key_pair
from .commit import CreatedCommit, create_commit, frame, handshake_wire_format
from .config import GroupConfig
from .external import join_external
from .process import Result, process_message
from .proposals import validate_proposal
from .staged_commit import StagedCommit
from .state import CachedProposal, GroupState
from .welcome import JoinKeys, join_from_welcome, sign_group_info

__all__ = ["Group", "add_proposal"]


def _decode(data: bytes | MLSMessage) -> MLSMessage:
    return data if isinstance(data, MLSMessage) else MLSMessage.decode(data)


class Group:
    """One member's state machine for one group (see the module docstring)."""

    def __init__(self, state: GroupState, config: GroupConfig | None = None) -> None:
        self._state = state
        self.config = GroupConfig() if config is None else config
        self._pending: CreatedCommit | None = None

    def __repr__(self) -> str:
        return f"Group(group_id={self.group_id.hex()}, epoch={self.epoch}, leaf={self.own_leaf})"

    # ----------------------------------------------------------------------------------------
    # Creating and joining

    @classmethod
    def create(
        cls,
        key_package: KeyPackage,
        encryption_priv: bytes,
        signature_priv: bytes,
        group_id: bytes,
        *,
        extensions: Sequence[Extension] = (),
        config: GroupConfig | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> Group:
        """A one-member group at epoch 0 whose only leaf is ``key_package``'s (RFC 9420 §11).

        Raises:
            UsageError: the private keys do not match the KeyPackage.
        """
        config = GroupConfig() if config is None else config
        suite = get_suite(key_package.cipher_suite)
        leaf = key_package.leaf_node
        if suite.hpke.public_key(encryption_priv) != leaf.encryption_key:
            raise UsageError("encryption_priv does not match the KeyPackage")
        if suite.signature_public_key(signature_priv) != leaf.signature_key:
            raise UsageError("signature_priv does not match the KeyPackage")
        tree = RatchetTree.create(suite, leaf)
        context = GroupContext(
            ProtocolVersion.MLS10,
            int(suite.id),
            group_id,
            0,
            tree.tree_hash(),
            b"",
            tuple(extensions),
        )
        # RFC 9420 §11: a fresh init secret, a zero commit secret, no PSKs
        secrets = EpochSecrets.from_init_secret(
            suite, random(suite.hash_length), None, None, context
        )
        tag = secrets.confirmation_tag(suite, b"")
        state = GroupState(
            suite=suite,
            group_context=context,
            tree=tree,
            private_key=TreeKEMPrivateKey(suite, LeafIndex(0), encryption_priv, {}),
            signature_priv=signature_priv,
            interim_transcript_hash=interim_transcript_hash(suite, b"", tag),
            confirmation_tag=tag,
            secrets=secrets,
            secret_tree=SecretTree(suite, secrets.encryption_secret, 1, config.ratchet_policy),
            resumption_psks={0: secrets.resumption_psk},
        )
        return cls(state, config)

    @classmethod
    def join_from_welcome(
        cls,
        welcome: bytes | MLSMessage | Welcome,
        lookup: Callable[[bytes], JoinKeys | None],
        *,
        ratchet_tree: bytes | None = None,
        config: GroupConfig | None = None,
        resumed_from: Group | None = None,
    ) -> tuple[Group, bytes]:
        """Joins from a Welcome (RFC 9420 §12.4.3.1).

        Returns:
            the group and the KeyPackageRef it consumed: delete that KeyPackage's private keys
            (KP-08).

        Raises:
            DecodeError, ValidationError: the Welcome is rejected (``.rule``).
        """
        config = GroupConfig() if config is None else config
        if not isinstance(welcome, Welcome):
            body = _decode(welcome).body
            if not isinstance(body, Welcome):
                raise DecodeError("not an MLSMessage(Welcome)")
            welcome = body
        state, ref = join_from_welcome(
            welcome,
            lookup,
            config,
            ratchet_tree=ratchet_tree,
            resumed_from=None if resumed_from is None else resumed_from._state,
        )
        return cls(state, config), ref

    @classmethod
    def join_external(
        cls,
        group_info: bytes | MLSMessage | GroupInfo,
        leaf_node: LeafNode,
        signature_priv: bytes,
        *,
        ratchet_tree: bytes | None = None,
        resync_leaf: int | None = None,
        psks: Sequence[PreSharedKeyID] = (),
        config: GroupConfig | None = None,
    ) -> tuple[Group, bytes]:
        """Joins by external commit (RFC 9420 §12.4.3.2).

        Returns:
            the group (in the epoch the Commit creates) and the Commit to send.
        """
        config = GroupConfig() if config is None else config
        if not isinstance(group_info, GroupInfo):
            body = _decode(group_info).body
            if not isinstance(body, GroupInfo):
                raise DecodeError("not an MLSMessage(GroupInfo)")
            group_info = body
        joined = join_external(
            group_info,
            leaf_node=leaf_node,
            signature_priv=signature_priv,
            config=config,
            ratchet_tree=ratchet_tree,
            resync_leaf=resync_leaf,
            psks=psks,
        )
        return cls(joined.state, config), joined.message.encode()

    # ----------------------------------------------------------------------------------------
    # Reading

    @property
    def state(self) -> GroupState:
        """The current state (read it; change it only through this class)."""
        return self._state

    @property
    def suite(self) -> Suite:
        return self._state.suite

    @property
    def group_id(self) -> bytes:
        return self._state.group_id

    @property
    def epoch(self) -> int:
        return self._state.epoch

    @property
    def own_leaf(self) -> LeafIndex:
        return self._state.own_leaf

    @property
    def active(self) -> bool:
        """False once this member was removed or the group was reinitialised."""
        return not self._state.removed and self._state.pending_reinit is None

    @property
    def epoch_authenticator(self) -> bytes:
        """The epoch authenticator (RFC 9420 §8.7): equal at every member of the epoch."""
        return self._state.secrets.epoch_authenticator

    @property
    def tree(self) -> RatchetTree:
        return self._state.tree

    def members(self) -> list[tuple[LeafIndex, Credential, bytes]]:
        """``(leaf, credential, signature key)`` of every member, in leaf order."""
        return [(i, leaf.credential, leaf.signature_key) for i, leaf in self.tree.leaves()]

    def export_secret(self, label: bytes, context: bytes, length: int) -> bytes:
        """``MLS-Exporter(label, context, length)`` (RFC 9420 §8.5)."""
        if not 0 <= length <= 0xFFFF:
            raise UsageError("exported secret length must fit in 16 bits")
        return self._state.secrets.export(self.suite, label, context, length)

    def group_info(self, *, with_tree: bool = True, with_external_pub: bool = True) -> bytes:
        """A signed GroupInfo of the current epoch as MLSMessage bytes (RFC 9420 §12.4.3)."""
        info = sign_group_info(
            self._state, with_tree=with_tree, with_external_pub=with_external_pub
        )
        return MLSMessage.of(info).encode()

    def ratchet_tree(self) -> bytes:
        """The encoded ``ratchet_tree`` (for joiners given the tree out of band)."""
        return self.tree.encode()

    @property
    def pending_commit(self) -> CreatedCommit | None:
        return self._pending

    @property
    def pending_proposals(self) -> tuple[CachedProposal, ...]:
        return tuple(self._state.proposals)

    # ----------------------------------------------------------------------------------------
    # Sending

    def _check_active(self) -> None:
        if self._state.removed:
            raise UsageError("this member was removed from the group")
        if self._state.pending_reinit is not None:
            raise UsageError("the group was reinitialised: continue in its successor")

    def encrypt_application(self, data: bytes, *, authenticated_data: bytes = b"") -> bytes:
        """Encrypts application data as a PrivateMessage (RFC 9420 §6.3).

        Raises:
            UsageError: proposals are pending in this epoch (ST-03: commit them first), or
                the group has ended for this member.
        """
        self._check_active()
        if self._state.proposals:
            raise UsageError("proposals are pending: commit them before sending (§12.4)")
        state = self._state
        content = FramedContent.with_body(
            state.group_id,
            state.epoch,
            Sender.member(state.own_leaf),
            authenticated_data,
            data,
        )
        authenticated = sign_content(
            state.suite,
            content,
            wire_format=WireFormat.MLS_PRIVATE_MESSAGE,
            signature_priv=state.signature_priv,
            group_context=state.group_context,
        )
        message = protect_private_message(
            state.suite,
            authenticated,
            secret_tree=state.secret_tree,
            sender_data_secret=state.secrets.sender_data_secret,
            padding_size=_padding(len(data), self.config.padding),
        )
        return MLSMessage.of(message).encode()

    def _propose(self, proposal: Proposal, authenticated_data: bytes) -> bytes:
        self._check_active()
        state = self._state
        me = Sender.member(state.own_leaf)
        validate_proposal(state, proposal, me, self.config)
        wire_format = handshake_wire_format(self.config)
        content = FramedContent.with_body(
            state.group_id, state.epoch, me, authenticated_data, proposal
        )
        authenticated = sign_content(
            state.suite,
            content,
            wire_format=wire_format,
            signature_priv=state.signature_priv,
            group_context=state.group_context,
        )
        message, used_tree = frame(state, self.config, authenticated)
        ref = make_proposal_ref(state.suite, authenticated.encode())
        state.proposals.append(CachedProposal(ref, proposal, me))
        if isinstance(used_tree, SecretTree):
            state.secret_tree = used_tree
        return message.encode()

    def propose_add(
        self, key_package: bytes | KeyPackage, *, authenticated_data: bytes = b""
    ) -> bytes:
        """An Add proposal message (RFC 9420 §12.1.1); the proposal is cached."""
        return self._propose(add_proposal(key_package), authenticated_data)

    def propose_remove(self, leaf: int, *, authenticated_data: bytes = b"") -> bytes:
        """A Remove proposal message (RFC 9420 §12.1.3)."""
        return self._propose(Proposal.of(Remove(leaf)), authenticated_data)

    def propose_update(
        self, *, leaf_node: LeafNode | None = None, authenticated_data: bytes = b""
    ) -> bytes:
        """An Update proposal with a fresh leaf key (RFC 9420 §12.1.2). Its private key is
        kept until the next epoch, in case another member commits it."""
        state = self._state
        current = state.tree.leaf_node(state.own_leaf)
        assert current is not None
        template = current if leaf_node is None else leaf_node
        priv, pub = node_key_pair(state.suite, os.urandom(state.suite.hash_length))
        leaf = dataclasses.replace(
            template,
            encryption_key=pub,
            leaf_node_source=LeafNodeSource.UPDATE,
            lifetime=None,
            parent_hash=None,
            signature=b"",
        ).signed(
            state.suite, state.signature_priv, group_id=state.group_id, leaf_index=state.own_leaf
        )
        message = self._propose(Proposal.of(Update(leaf)), authenticated_data)
        state.update_keys[pub] = priv
        return message

    def propose_psk(self, psk: PreSharedKeyID, *, authenticated_data: bytes = b"") -> bytes:
        """A PreSharedKey proposal (RFC 9420 §12.1.4)."""
        return self._propose(Proposal.of(PreSharedKey(psk)), authenticated_data)

    def propose_group_context_extensions(
        self, extensions: Sequence[Extension], *, authenticated_data: bytes = b""
    ) -> bytes:
        """A GroupContextExtensions proposal (RFC 9420 §12.1.7)."""
        return self._propose(
            Proposal.of(GroupContextExtensions(tuple(extensions))), authenticated_data
        )

    def propose_reinit(self, reinit: ReInit, *, authenticated_data: bytes = b"") -> bytes:
        """A ReInit proposal (RFC 9420 §12.1.5)."""
        return self._propose(Proposal.of(reinit), authenticated_data)

    def commit(
        self,
        proposals: Sequence[Proposal] = (),
        *,
        by_reference: bool = True,
        force_path: bool = False,
        leaf_node: LeafNode | None = None,
        authenticated_data: bytes = b"",
        resumed_from: Group | None = None,
    ) -> CreatedCommit:
        """Builds a Commit of the cached proposals and ``proposals`` (RFC 9420 §12.4.1). The
        group does not change until :meth:`merge_pending_commit` (ST-02).

        Raises:
            UsageError: a Commit is already pending, or the group has ended.
            ValidationError: the proposals break a rule (``.rule``).
        """
        self._check_active()
        if self._pending is not None:
            raise UsageError("a Commit is pending: merge or clear it first")
        other = None
        if resumed_from is not None:
            old = resumed_from._state
            other = {(old.group_id, e): v for e, v in old.resumption_psks.items()}
        created = create_commit(
            self._state,
            self.config,
            proposals=proposals,
            by_reference=by_reference,
            force_path=force_path,
            leaf_node=leaf_node,
            authenticated_data=authenticated_data,
            other_groups=other,
        )
        self._pending = created
        return created

    def _resume(
        self,
        usage: ResumptionPSKUsage,
        group_id: bytes,
        key_package: KeyPackage,
        encryption_priv: bytes,
        signature_priv: bytes,
        key_packages: Sequence[bytes | KeyPackage],
        extensions: Sequence[Extension],
    ) -> tuple[Group, CreatedCommit]:
        new = Group.create(
            key_package,
            encryption_priv,
            signature_priv,
            group_id,
            extensions=extensions,
            config=self.config,
        )
        psk = PreSharedKeyID.resumption(
            usage, self.group_id, self.epoch, os.urandom(new.suite.hash_length)
        )
        proposals = [add_proposal(kp) for kp in key_packages]
        proposals.append(Proposal.of(PreSharedKey(psk)))
        created = new.commit(proposals, resumed_from=self)
        new.merge_pending_commit()
        return new, created

    def reinit_successor(
        self,
        key_package: KeyPackage,
        encryption_priv: bytes,
        signature_priv: bytes,
        key_packages: Sequence[bytes | KeyPackage],
    ) -> tuple[Group, CreatedCommit]:
        """Starts the group a committed ReInit asked for (RFC 9420 §11.2): a new group with
        the ReInit's parameters, adding ``key_packages`` (one per other member, in the new
        suite) with a resumption PSK of usage ``reinit`` from this group's last epoch.

        Returns:
            the new group (at epoch 1) and its Commit, whose Welcome the others join with
            ``resumed_from`` set to their old group.

        Raises:
            UsageError: no ReInit was committed in this group.
        """
        reinit = None if self._state.pending_reinit is None else self._state.pending_reinit.reinit
        if reinit is None:
            raise UsageError("no ReInit was committed in this group")
        if key_package.cipher_suite != reinit.cipher_suite:
            raise UsageError("the KeyPackage is not in the ReInit's cipher suite")
        return self._resume(
            ResumptionPSKUsage.REINIT,
            reinit.group_id,
            key_package,
            encryption_priv,
            signature_priv,
            key_packages,
            reinit.extensions,
        )

    def branch(
        self,
        group_id: bytes,
        key_package: KeyPackage,
        encryption_priv: bytes,
        signature_priv: bytes,
        key_packages: Sequence[bytes | KeyPackage],
        *,
        extensions: Sequence[Extension] = (),
    ) -> tuple[Group, CreatedCommit]:
        """Branches a subgroup of this group's members (RFC 9420 §11.3), tied to this epoch
        by a resumption PSK of usage ``branch``.

        Returns:
            the new group (at epoch 1) and its Commit with the Welcome.
        """
        self._check_active()
        if key_package.cipher_suite != int(self.suite.id):
            raise UsageError("a branch keeps the group's cipher suite")
        return self._resume(
            ResumptionPSKUsage.BRANCH,
            group_id,
            key_package,
            encryption_priv,
            signature_priv,
            key_packages,
            extensions,
        )

    def merge_pending_commit(self) -> StagedCommit:
        """Applies the pending Commit (after the Delivery Service accepted it)."""
        if self._pending is None:
            raise UsageError("no pending Commit")
        staged = self._pending.staged
        self._state = staged.state
        self._pending = None
        return staged

    def clear_pending_commit(self) -> None:
        """Drops the pending Commit (the Delivery Service chose another)."""
        self._pending = None

    # ----------------------------------------------------------------------------------------
    # Receiving

    def process(self, message: bytes | MLSMessage) -> Result:
        """Processes an incoming message (the pipeline of :mod:`mls.group.process`).

        A Commit comes back as a :class:`StagedCommit`; call :meth:`merge` to apply it.

        Raises:
            DecodeError, ValidationError (and subclasses): the message is rejected and the
                group is unchanged.
        """
        return process_message(self._state, _decode(message), self.config)

    def merge(self, staged: StagedCommit) -> None:
        """Makes a staged Commit's state the group's (cannot fail)."""
        if staged.state.group_id != self.group_id:
            raise UsageError("a staged Commit of another group")
        self._state = staged.state
        self._pending = None

    # ----------------------------------------------------------------------------------------
    # Persistence

    def to_bytes(self) -> bytes:
        """The versioned serialization of the state (secrets included; store it like a key).
        A pending Commit is not part of it."""
        return self._state.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes, config: GroupConfig | None = None) -> Group:
        """The inverse of :meth:`to_bytes`.

        Raises:
            DecodeError: not a state this version wrote.
        """
        config = GroupConfig() if config is None else config
        return cls(GroupState.from_bytes(data, ratchet_policy=config.ratchet_policy), config)


def add_proposal(key_package: bytes | KeyPackage) -> Proposal:
    """An Add proposal for a KeyPackage or its MLSMessage bytes (RFC 9420 §12.1.1).

    Raises:
        DecodeError: the bytes are not an MLSMessage(KeyPackage).
    """
    if not isinstance(key_package, KeyPackage):
        body = MLSMessage.decode(key_package).body
        if not isinstance(body, KeyPackage):
            raise DecodeError("not an MLSMessage(KeyPackage)")
        key_package = body
    return Proposal.of(Add(key_package))


def _padding(length: int, block: int) -> int:
    if block <= 0:
        return 0
    return (-length) % block
