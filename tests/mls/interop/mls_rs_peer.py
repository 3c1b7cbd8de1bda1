"""An mls-rs group member with the verbs of our ``mls.GroupMember`` facade (issue 13).

mls-rs (awslabs, Rust) reaches Python through ``mls_rs_uniffi``, PyPI distribution
``agentvault-mls-rs-uniffi`` 0.1.x: a fork of upstream ``mls-rs-uniffi`` that adds
``Message.to_bytes``/``Message.from_bytes`` and ``Group.export_secret``. What the bindings
offer, as found by reading the generated ``mls_rs_uniffi.py`` and trying each call:

* Cipher suites: ``CipherSuite.CURVE25519_AES128`` only (enum value 0, RFC 9420 suite 0x0001).
* Client: ``generate_signature_keypair(suite)`` gives a ``SignatureKeypair`` whose public and
  secret keys are plain bytes (Ed25519: 32 and 64 bytes). ``Client(id, keypair, config)`` uses
  a basic credential with identity ``id``. ``client_config_default()`` gives an in-memory
  state store and ``use_ratchet_tree_extension=True``. The store can be replaced by a Python
  ``GroupStateStorage`` subclass that receives mls-rs's state snapshots.
* Messages: ``Message`` wraps an RFC 9420 ``MLSMessage``. ``to_bytes``/``from_bytes`` are the
  wire encoding; the five wire formats all decode with our ``mls.framing.MLSMessage``.
* ``Client.generate_key_package_message()`` returns a ``Message`` holding a KeyPackage.
  ``Client.create_group(group_id)`` creates a group at epoch 0.
* Commits: ``Group.add_members([kp])``, ``Group.remove_members([SigningIdentity])`` and
  ``Group.commit()`` (commits the pending proposals; with none pending this is an empty commit
  that carries an UpdatePath, i.e. a self-update) return a ``CommitOutput`` with
  ``commit_message`` (a PublicMessage), ``welcome_message``, ``ratchet_tree`` (set only when
  ``use_ratchet_tree_extension`` is False) and ``group_info`` (always None: the bindings' MLS
  rules never ask for an external-commit GroupInfo). The committer's group does *not* move
  to the new epoch on its own: it applies its own commit by passing ``commit_message`` to
  ``process_incoming_message``.
* Welcome: with ``use_ratchet_tree_extension=True`` the GroupInfo inside the Welcome carries
  the ``ratchet_tree`` extension, and ``Client.join_group(None, welcome)`` succeeds. With
  False, the joiner must receive the tree out of band (``CommitOutput.ratchet_tree`` or
  ``Group.export_tree()``: a ``RatchetTree`` whose ``bytes`` is the encoded
  ``optional<Node> ratchet_tree<V>``), or ``join_group`` fails with "ratchet tree not
  provided or discovered in GroupInfo".
* ``Group.encrypt_application_message(data)`` gives a PrivateMessage.
  ``Group.process_incoming_message(msg)`` returns a ``ReceivedMessage``:
  ``APPLICATION_MESSAGE(sender, data)``, ``COMMIT(committer, effect)`` with effect
  ``NEW_EPOCH``/``REMOVED``/``RE_INIT``, or ``RECEIVED_PROPOSAL``.
* ``Group.export_secret(label, context, length)`` is the RFC 9420 §8.5 exporter.
* Missing: the epoch, the group context, the member list and the epoch authenticator are not
  exposed; ``SigningIdentity`` is opaque (only ``==``) and has no constructor; there is no
  external join and no GroupInfo. This adapter fills the gaps from what it can see:

  - members: ``Group.export_tree()`` decoded with our ``mls.ratchet_tree``;
  - group context and epoch: ``Group.write_to_storage()`` hands a state snapshot to our
    :class:`SnapshotStore`; mls-rs's snapshot starts with a u16 version then the RFC 9420
    ``GroupContext``, which our codec decodes;
  - removal by identity: the member's signature key is read from the exported tree, and a
    throwaway ``Client`` built with that public key (and a dummy secret key, never used to
    sign) yields an equal ``SigningIdentity``.

Errors from the bindings (``mls_rs_uniffi.Error.*``) propagate unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import mls_rs_uniffi as rs

from mls.codec import Reader
from mls.crypto.ciphersuite import CipherSuite, get_suite
from mls.errors import UsageError
from mls.group_context import GroupContext
from mls.ratchet_tree import RatchetTree

SUITE = get_suite(CipherSuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
"""The one cipher suite the bindings offer (RFC 9420 0x0001)."""

RS_SUITE = rs.CipherSuite.CURVE25519_AES128

SNAPSHOT_VERSION = 1
"""The u16 that opens an mls-rs group snapshot (``Snapshot.version``) in 0.1.x."""


class SnapshotStore(rs.GroupStateStorage):
    """In-memory ``GroupStateStorage``: keeps mls-rs's latest snapshot and past epochs."""

    def __init__(self) -> None:
        self.states: dict[bytes, bytes] = {}
        self.epochs: dict[bytes, dict[int, bytes]] = {}

    def state(self, group_id: bytes) -> bytes | None:
        return self.states.get(group_id)

    def epoch(self, group_id: bytes, epoch_id: int) -> bytes | None:
        return self.epochs.get(group_id, {}).get(epoch_id)

    def write(
        self,
        group_id: bytes,
        group_state: bytes,
        epoch_inserts: list[rs.EpochRecord],
        epoch_updates: list[rs.EpochRecord],
    ) -> None:
        self.states[group_id] = group_state
        epochs = self.epochs.setdefault(group_id, {})
        for record in [*epoch_inserts, *epoch_updates]:
            epochs[record.id] = record.data

    def max_epoch_id(self, group_id: bytes) -> int | None:
        epochs = self.epochs.get(group_id)
        return max(epochs) if epochs else None


class MlsRsPeer:
    """One mls-rs client in at most one group; bytes in, bytes out (RFC 9420 MLSMessage).

    Args:
        identity: the basic credential's identity.
        ratchet_tree_extension: whether this peer's Welcomes carry the ratchet tree. When
            False, :attr:`last_ratchet_tree` holds the tree to pass out of band.
    """

    def __init__(self, identity: bytes, *, ratchet_tree_extension: bool = True) -> None:
        self.identity = identity
        self.signature_keypair = rs.generate_signature_keypair(RS_SUITE)
        self._store = SnapshotStore()
        config = rs.ClientConfig(
            group_state_storage=self._store,
            use_ratchet_tree_extension=ratchet_tree_extension,
        )
        self._client = rs.Client(identity, self.signature_keypair, config)
        self._group: rs.Group | None = None
        self.removed = False
        self.last_ratchet_tree: bytes | None = None
        """The ratchet tree of the last commit this peer made, when its Welcome lacks one."""

    # ---------------------------------------------------------------- joining and leaving

    def generate_key_package(self) -> bytes:
        return self._client.generate_key_package_message().to_bytes()

    def create_group(self, group_id: bytes) -> None:
        if self._group is not None:
            raise UsageError("this peer is already in a group")
        self._group = self._client.create_group(group_id)

    def join_group(self, welcome: bytes, ratchet_tree: bytes | None = None) -> None:
        if self._group is not None:
            raise UsageError("this peer is already in a group")
        tree = None if ratchet_tree is None else rs.RatchetTree(bytes=ratchet_tree)
        self._group = self._client.join_group(tree, rs.Message.from_bytes(welcome)).group

    def group_info(self) -> bytes:
        raise NotImplementedError("mls_rs_uniffi 0.1 exposes no GroupInfo")

    def join_external(self, group_info: bytes) -> bytes:
        raise NotImplementedError("mls_rs_uniffi 0.1 has no external join")

    # ---------------------------------------------------------------- commits

    def add_member(self, key_package: bytes) -> tuple[bytes, bytes]:
        return self.add_members([key_package])

    def add_members(self, key_packages: Sequence[bytes]) -> tuple[bytes, bytes]:
        output = self.group.add_members([rs.Message.from_bytes(kp) for kp in key_packages])
        assert output.welcome_message is not None
        return self._merge(output), output.welcome_message.to_bytes()

    def update(self) -> bytes:
        """A commit with a path and no proposals (or the pending ones): a self-update."""
        return self._merge(self.group.commit())

    def remove_member(self, identity: bytes) -> bytes:
        return self._merge(self.group.remove_members([self.signing_identity_of(identity)]))

    def _merge(self, output: rs.CommitOutput) -> bytes:
        """Applies this peer's own commit (mls-rs leaves it pending) and returns its bytes."""
        received = self.group.process_incoming_message(output.commit_message)
        assert isinstance(received, rs.ReceivedMessage.COMMIT), received
        self.last_ratchet_tree = None if output.ratchet_tree is None else output.ratchet_tree.bytes
        return output.commit_message.to_bytes()

    # ---------------------------------------------------------------- messages

    def send_message(self, plaintext: bytes) -> bytes:
        return self.group.encrypt_application_message(plaintext).to_bytes()

    def receive_message(self, message: bytes) -> bytes | None:
        """The plaintext of an application message; ``None`` for a commit or proposal,
        which is applied (a proposal is kept for this peer's next commit)."""
        received = self.group.process_incoming_message(rs.Message.from_bytes(message))
        if isinstance(received, rs.ReceivedMessage.APPLICATION_MESSAGE):
            return received.data
        if isinstance(received, rs.ReceivedMessage.COMMIT) and received.effect.is_removed():
            self.removed = True
        return None

    # ---------------------------------------------------------------- state

    @property
    def group(self) -> rs.Group:
        if self._group is None:
            raise UsageError("this peer is in no group")
        return self._group

    @property
    def members(self) -> list[bytes]:
        """Identities in leaf order, from the exported ratchet tree."""
        return [leaf.credential.identity for _, leaf in self.tree().leaves()]

    @property
    def group_context(self) -> GroupContext:
        """The current GroupContext, read from the head of mls-rs's state snapshot."""
        self.group.write_to_storage()
        (snapshot,) = self._store.states.values()
        r = Reader(snapshot)
        version = r.uint(2)
        if version != SNAPSHOT_VERSION:
            raise NotImplementedError(f"mls-rs snapshot version {version}")
        return GroupContext.decode_from(r)

    @property
    def epoch(self) -> int:
        return self.group_context.epoch

    @property
    def epoch_authenticator(self) -> bytes:
        raise NotImplementedError("mls_rs_uniffi 0.1 does not expose the epoch authenticator")

    def export_secret(self, label: bytes, context: bytes, length: int) -> bytes:
        return self.group.export_secret(label, context, length)

    def ratchet_tree(self) -> bytes:
        """The encoded ``optional<Node> ratchet_tree<V>`` of the current epoch."""
        return self.group.export_tree().bytes

    def tree(self) -> RatchetTree:
        return RatchetTree.decode(SUITE, self.ratchet_tree())

    def signing_identity_of(self, identity: bytes) -> rs.SigningIdentity:
        """A ``SigningIdentity`` equal to the member's with this identity (basic credential
        plus the leaf's signature key), for the bindings' remove call."""
        keys = [
            leaf.signature_key
            for _, leaf in self.tree().leaves()
            if leaf.credential.identity == identity
        ]
        if len(keys) != 1:
            raise UsageError(f"{len(keys)} members have identity {identity!r}")
        stand_in = rs.SignatureKeypair(
            cipher_suite=RS_SUITE,
            public_key=rs.SignaturePublicKey(bytes=keys[0]),
            # never used: signing_identity() only reads the public key
            secret_key=rs.SignatureSecretKey(bytes=bytes(64)),
        )
        client = rs.Client(identity, stand_in, rs.client_config_default())
        return client.signing_identity()
