"""The state of one member in one epoch of a group (RFC 9420 §8, §9, §12), and its
persistence.

A :class:`GroupState` holds everything a member needs to continue: the GroupContext, the
ratchet tree and the member's private view of it, the interim transcript hash and the
confirmation tag, the epoch's secrets and secret tree, the member's signature key, the
proposals received in this epoch, the secret trees of a few past epochs (so late application
messages still decrypt, §15.2) and the resumption PSKs of recent epochs (§8.6)::

    GroupState
      group_context ──── epoch, tree_hash, confirmed_transcript_hash, extensions
      tree, private_key  the public tree and what this member knows of it (§4.2)
      secrets            the epoch's key schedule output (§8)
      secret_tree        per-sender ratchets of this epoch (§9)
      proposals          cached by ProposalRef until the next Commit (§12.1)
      past_epochs        [PastEpoch]: secret tree + sender data secret + senders' keys
      resumption_psks    epoch -> resumption_psk

:meth:`GroupState.to_bytes` / :meth:`GroupState.from_bytes` serialize it in a versioned
format (a format byte, then TLS-presentation fields). The output contains secrets: store it
like a private key.

Contract: the only mutable parts are the secret trees (a consumed key is deleted, §9.2) and
the proposal cache; everything else changes by building a new state (see
:mod:`mls.group.staged_commit`). ``repr`` never shows secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..codec import Reader, Writer, reader_for
from ..credentials import Credential
from ..crypto.ciphersuite import Suite, get_suite
from ..errors import DecodeError, MLSError
from ..framing import Sender
from ..group_context import GroupContext
from ..key_schedule import EpochSecrets
from ..messages import Proposal
from ..ratchet_tree import RatchetTree
from ..secret_tree import RatchetPolicy, SecretTree
from ..tree_math import LeafIndex, NodeIndex
from ..treekem import TreeKEMPrivateKey

FORMAT_VERSION = 1
"""The first byte of :meth:`GroupState.to_bytes`; :meth:`from_bytes` refuses any other."""

_SECRET_FIELDS = (
    "joiner_secret",
    "welcome_secret",
    "sender_data_secret",
    "encryption_secret",
    "exporter_secret",
    "external_secret",
    "confirmation_key",
    "membership_key",
    "resumption_psk",
    "epoch_authenticator",
    "init_secret",
)


@dataclass(frozen=True)
class CachedProposal:
    """A proposal received (or sent) in this epoch, named by its ProposalRef (RFC 9420 §12.1).

    Attributes:
        ref: ``MakeProposalRef`` of the AuthenticatedContent that carried it (§5.2).
        proposal: the proposal.
        sender: who sent it.
    """

    ref: bytes
    proposal: Proposal
    sender: Sender


@dataclass(eq=False)
class PastEpoch:
    """What is kept of a past epoch so its application messages still decrypt (§15.2).

    Attributes:
        group_context: the epoch's GroupContext.
        secret_tree: its secret tree (consumed keys deleted as they are used).
        sender_data_secret: its sender data secret.
        own_leaf: this member's leaf in that epoch (to recognise its own messages, PRIV-09).
        members: leaf -> (signature key, credential) of every member in that epoch.
    """

    group_context: GroupContext
    secret_tree: SecretTree = field(repr=False)
    sender_data_secret: bytes = field(repr=False)
    own_leaf: LeafIndex
    members: Mapping[int, tuple[bytes, Credential]] = field(repr=False)


@dataclass(eq=False)
class GroupState:
    """One member's state in one epoch (see the module docstring).

    Attributes:
        suite: the group's cipher suite.
        group_context: the epoch's GroupContext (RFC 9420 §8.1).
        tree: the ratchet tree (§7.1).
        private_key: this member's private view of ``tree`` (its leaf index included).
        signature_priv: this member's signature key.
        interim_transcript_hash: the epoch's interim transcript hash (§8.2).
        confirmation_tag: the tag of the Commit that started the epoch (§6.1).
        secrets: the epoch's secrets (§8).
        secret_tree: the epoch's secret tree (§9).
        proposals: proposals cached in this epoch, in arrival order.
        past_epochs: retained past epochs, newest first.
        resumption_psks: epoch -> resumption PSK, for this and recent epochs.
        pending_reinit: the ReInit proposal of the Commit that started this epoch: the group
            is over and only a Welcome into its successor continues it (§11.2).
        removed: this member was removed by the Commit that started this epoch (§12.4.2);
            the group is read-only.
        update_keys: encryption public key -> private key of the Updates this member
            proposed in this epoch (needed if another member commits one, §12.1.2).
    """

    suite: Suite
    group_context: GroupContext
    tree: RatchetTree
    private_key: TreeKEMPrivateKey
    signature_priv: bytes = field(repr=False)
    interim_transcript_hash: bytes
    confirmation_tag: bytes
    secrets: EpochSecrets = field(repr=False)
    secret_tree: SecretTree = field(repr=False)
    proposals: list[CachedProposal] = field(default_factory=list)
    past_epochs: list[PastEpoch] = field(default_factory=list, repr=False)
    resumption_psks: dict[int, bytes] = field(default_factory=dict, repr=False)
    pending_reinit: Proposal | None = None
    removed: bool = False
    update_keys: dict[bytes, bytes] = field(default_factory=dict, repr=False)

    @property
    def group_id(self) -> bytes:
        return self.group_context.group_id

    @property
    def epoch(self) -> int:
        return self.group_context.epoch

    @property
    def own_leaf(self) -> LeafIndex:
        return self.private_key.leaf_index

    def members_snapshot(self) -> dict[int, tuple[bytes, Credential]]:
        """leaf -> (signature key, credential) of every member now."""
        return {int(i): (leaf.signature_key, leaf.credential) for i, leaf in self.tree.leaves()}

    def as_past_epoch(self, secret_tree: SecretTree | None = None) -> PastEpoch:
        """What this epoch leaves behind once the next one starts."""
        return PastEpoch(
            self.group_context,
            self.secret_tree if secret_tree is None else secret_tree,
            self.secrets.sender_data_secret,
            self.own_leaf,
            self.members_snapshot(),
        )

    # ----------------------------------------------------------------------------------------
    # Persistence

    def to_bytes(self) -> bytes:
        """The versioned serialization (secrets included)."""
        w = Writer()
        w.uint(FORMAT_VERSION, 1)
        w.uint(int(self.suite.id), 2)
        w.opaque(self.group_context.encode())
        w.opaque(self.tree.encode())
        _write_private_key(w, self.private_key)
        w.opaque(self.signature_priv)
        w.opaque(self.interim_transcript_hash)
        w.opaque(self.confirmation_tag)
        for name in _SECRET_FIELDS:
            w.opaque(getattr(self.secrets, name))
        w.opaque(self.secret_tree.to_bytes())

        def proposals(v: Writer) -> None:
            for cached in self.proposals:
                v.opaque(cached.ref)
                v.opaque(cached.proposal.encode())
                v.opaque(cached.sender.encode())

        w.vector(proposals)

        def past(v: Writer) -> None:
            for p in self.past_epochs:
                v.opaque(p.group_context.encode())
                v.opaque(p.secret_tree.to_bytes())
                v.opaque(p.sender_data_secret)
                v.uint(p.own_leaf, 4)

                def members(m: Writer, p: PastEpoch = p) -> None:
                    for leaf in sorted(p.members):
                        key, credential = p.members[leaf]
                        m.uint(leaf, 4)
                        m.opaque(key)
                        m.opaque(credential.encode())

                v.vector(members)

        w.vector(past)

        def psks(v: Writer) -> None:
            for epoch in sorted(self.resumption_psks):
                v.uint(epoch, 8)
                v.opaque(self.resumption_psks[epoch])

        w.vector(psks)
        w.uint(self.pending_reinit is not None, 1)
        if self.pending_reinit is not None:
            w.opaque(self.pending_reinit.encode())
        w.uint(self.removed, 1)

        def update_keys(v: Writer) -> None:
            for public in sorted(self.update_keys):
                v.opaque(public)
                v.opaque(self.update_keys[public])

        w.vector(update_keys)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, ratchet_policy: RatchetPolicy | None = None) -> GroupState:
        """The inverse of :meth:`to_bytes`.

        Raises:
            DecodeError: the bytes are not a state this version wrote (any inner failure is
                reported as a DecodeError, without its secret content).
        """
        r = reader_for(data, max_size=1 << 30)
        try:
            version = r.uint(1)
            if version != FORMAT_VERSION:
                raise DecodeError(f"group state format {version}, expected {FORMAT_VERSION}")
            suite = get_suite(r.uint(2))
            context = GroupContext.decode(r.opaque())
            tree = RatchetTree.decode(suite, r.opaque(), max_size=1 << 30)
            private_key = _read_private_key(r, suite)
            signature_priv = r.opaque()
            interim = r.opaque()
            tag = r.opaque()
            secrets = EpochSecrets(**{name: r.opaque() for name in _SECRET_FIELDS})
            secret_tree = SecretTree.from_bytes(suite, r.opaque(), ratchet_policy)
            proposals = []
            v = r.vector()
            while not v.at_end():
                ref = v.opaque()
                proposal = Proposal.decode(v.opaque())
                sender = Sender.decode(v.opaque())
                proposals.append(CachedProposal(ref, proposal, sender))
            past = []
            v = r.vector()
            while not v.at_end():
                p_context = GroupContext.decode(v.opaque())
                p_tree = SecretTree.from_bytes(suite, v.opaque(), ratchet_policy)
                p_sds = v.opaque()
                p_leaf = LeafIndex(v.uint(4))
                members: dict[int, tuple[bytes, Credential]] = {}
                m = v.vector()
                while not m.at_end():
                    leaf = m.uint(4)
                    members[leaf] = (m.opaque(), Credential.decode(m.opaque()))
                past.append(PastEpoch(p_context, p_tree, p_sds, p_leaf, members))
            psks: dict[int, bytes] = {}
            v = r.vector()
            while not v.at_end():
                epoch = v.uint(8)
                psks[epoch] = v.opaque()
            reinit = Proposal.decode(r.opaque()) if _flag(r) else None
            removed = _flag(r)
            update_keys: dict[bytes, bytes] = {}
            v = r.vector()
            while not v.at_end():
                public = v.opaque()
                update_keys[public] = v.opaque()
            r.expect_end("group state")
        except DecodeError:
            raise
        except MLSError as exc:
            raise DecodeError(f"group state does not load: {type(exc).__name__}") from None
        return cls(
            suite=suite,
            group_context=context,
            tree=tree,
            private_key=private_key,
            signature_priv=signature_priv,
            interim_transcript_hash=interim,
            confirmation_tag=tag,
            secrets=secrets,
            secret_tree=secret_tree,
            proposals=proposals,
            past_epochs=past,
            resumption_psks=psks,
            pending_reinit=reinit,
            removed=removed,
            update_keys=update_keys,
        )


def _flag(r: Reader) -> bool:
    value = r.uint(1)
    if value > 1:
        raise DecodeError(f"flag byte {value}")
    return value == 1


def _write_private_key(w: Writer, key: TreeKEMPrivateKey) -> None:
    w.uint(key.leaf_index, 4)
    w.opaque(key.encryption_priv)

    def secrets(v: Writer) -> None:
        for node in sorted(key.path_secrets):
            v.uint(node, 4)
            v.opaque(key.path_secrets[node])

    w.vector(secrets)


def _read_private_key(r: Reader, suite: Suite) -> TreeKEMPrivateKey:
    leaf = LeafIndex(r.uint(4))
    encryption_priv = r.opaque()
    path_secrets: dict[NodeIndex, bytes] = {}
    v = r.vector()
    while not v.at_end():
        node = NodeIndex(v.uint(4))
        path_secrets[node] = v.opaque()
    return TreeKEMPrivateKey(suite, leaf, encryption_priv, path_secrets)
