"""The client agent: MLS groups (``mls.Group``) driven over the node (RFC 9420 §14, §16.8).

The agent owns no I/O of its own: every operation takes a connected, authenticated
:class:`~quicnproto.client.connection.NodeClient` and the client's persistent
:class:`~quicnproto.client.state.ClientState`::

    register ── identity, KeyPackages (+ a last-resort one) uploaded, private keys kept
    create_group
    invite ──── claim KeyPackages ─ Commit(Adds) + Welcome as one bundle ─ merge when accepted
    send ────── PrivateMessage to every other member
    receive ─── in queue order: Welcome → join; Commit → merge; proposal → cache (and commit);
                application → history; each applied message is saved, then acknowledged
    remove / update / leave

Durability (VALIDATION ST-05, SRV-DEL-01): a message is acknowledged to the node only after
the state it produced is committed to the state file, together with the queue cursor, so a
crash at any moment neither loses a message nor shows one twice. Outgoing messages go through
an outbox: the state after sending (the consumed ratchet generation, or the staged next epoch
of a Commit) and the message are saved in one transaction before the first send, and a
restart resends what the node has not confirmed, with the same message id (the node stores a
retry once).

Concurrent Commits (RFC 9420 §14): the node accepts the first Commit of a (group, epoch);
the loser gets ``STALE``, receives the winner, and builds its change again on the new epoch.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from mls import (
    ApplicationMessage,
    CreatedCommit,
    Credential,
    Group,
    GroupConfig,
    JoinKeys,
    KeyPackage,
    KeyPackagePrivateKeys,
    StagedCommit,
)
from mls.crypto.ciphersuite import get_suite
from mls.errors import DecodeError, MLSError
from mls.framing import MLSMessage
from mls.group.group import add_proposal
from mls.messages import Proposal, Remove, Welcome

from ..errors import ClientStateError, ConflictError, NotFoundError, QuicnprotoError
from .connection import NodeClient
from .records import Outgoing, decode_key_package_entry, encode_key_package_entry
from .state import ClientState

SUITE = 1
"""MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519: the identity key signs MLS content too."""

KEY_PACKAGE_BATCH = 10
"""KeyPackages uploaded by ``register`` (plus one last-resort package)."""

KEY_PACKAGE_LOW_WATER = 3
"""``replenish`` uploads a new batch when the node holds fewer than this many."""

COMMIT_RETRIES = 5
"""Times a Commit is rebuilt after losing its epoch to another member's (§14)."""

FETCH_LIMIT = 100


class AgentError(QuicnprotoError):
    """A client operation cannot proceed (unknown group or peer, not a member, ...).

    Attributes:
        reason: a short machine-readable reason (``"no-group"``, ``"unknown-peer"``, ...).
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class Received:
    """One thing :meth:`Agent.receive` applied, for display."""

    kind: str  # "message", "joined", "commit", "proposal", "removed", "skipped"
    group_id: bytes
    epoch: int
    sender: bytes = b""
    text: bytes = field(default=b"", repr=False)
    detail: str = ""


def identity_public(private: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


class Agent:
    """Ties the client's MLS groups to the node (see the module docstring).

    Args:
        state: the open client state.
        config: the MLS group policy.
    """

    def __init__(self, state: ClientState, config: GroupConfig | None = None) -> None:
        self.state = state
        self.config = GroupConfig() if config is None else config
        self.suite = get_suite(SUITE)

    # ----------------------------------------------------------------------------------------
    # Identity and KeyPackages

    @property
    def signature_priv(self) -> bytes:
        return self.state.identity().signature_priv

    @property
    def identity_key(self) -> bytes:
        return identity_public(self.signature_priv)

    def ed25519(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.signature_priv)

    @staticmethod
    def new_identity(state: ClientState) -> bytes:
        """Creates the identity (an Ed25519 key; the MLS basic credential is its public key).

        Returns:
            the identity key.
        """
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        public = key.public_key().public_bytes_raw()
        state.set_identity(private, public)
        return public

    def _new_key_package(self) -> tuple[KeyPackage, KeyPackagePrivateKeys]:
        return KeyPackage.generate(
            self.suite, self.signature_priv, Credential.basic(self.identity_key)
        )

    async def upload_key_packages(
        self, client: NodeClient, count: int, *, last_resort: bool = False
    ) -> int:
        """Generates, saves and uploads ``count`` KeyPackages (and a last-resort one).

        The private keys are saved before the upload, so a KeyPackage the node hands out
        always has its keys here (a crash leaves at most unused keys behind).
        """
        made = [self._new_key_package() for _ in range(count)]
        extra = self._new_key_package() if last_resort else None
        with self.state.transaction():
            for kp, keys in made:
                self.state.put_key_package(keys.ref, encode_key_package_entry(kp, keys))
            if extra is not None:
                kp, keys = extra
                self.state.put_key_package(
                    keys.ref, encode_key_package_entry(kp, keys), last_resort=True
                )
        for kp, _ in made:
            await client.upload_key_package(self.identity_key, MLSMessage.of(kp).encode())
        if extra is not None:
            await client.upload_key_package(
                self.identity_key, MLSMessage.of(extra[0]).encode(), last_resort=True
            )
        return count

    async def replenish(self, client: NodeClient) -> int:
        """Uploads a new batch when the node holds few of our KeyPackages; returns how many."""
        left = await client.count_key_packages(self.identity_key)
        if left >= KEY_PACKAGE_LOW_WATER:
            return 0
        return await self.upload_key_packages(client, KEY_PACKAGE_BATCH - left)

    def _lookup(self, ref: bytes) -> JoinKeys | None:
        blob = self.state.key_package(ref)
        return None if blob is None else decode_key_package_entry(blob)

    # ----------------------------------------------------------------------------------------
    # Groups

    def load(self, group_id: bytes) -> Group:
        blob = self.state.group(group_id)
        if blob is None:
            raise AgentError("no-group", f"no group {group_id!r} in this state")
        try:
            return Group.from_bytes(blob, self.config)
        except DecodeError as exc:
            raise ClientStateError(f"group {group_id!r} does not load", reason="corrupt") from exc

    def _save(self, group: Group) -> None:
        self.state.put_group(group.group_id, group.to_bytes(), group.epoch)
        self.state.set_members(
            group.group_id,
            [(cred.identity or b"", int(leaf)) for leaf, cred, _ in group.members()],
        )

    def resolve_group(self, group_id: bytes | None, peer_key: bytes | None = None) -> bytes:
        """The group named, else the one shared with ``peer_key``, else the only one."""
        if group_id is not None:
            return group_id
        rows = self.state.groups()
        if peer_key is not None:
            shared = [g for g in rows if peer_key in self.member_keys(g.group_id)]
            if len(shared) == 1:
                return shared[0].group_id
            if not shared:
                raise AgentError("unknown-peer", "no group shared with that peer")
            raise AgentError("ambiguous", "several groups are shared with that peer: name one")
        if len(rows) == 1:
            return rows[0].group_id
        if not rows:
            raise AgentError("no-group", "this state holds no group")
        raise AgentError("ambiguous", "this state holds several groups: name one")

    def member_keys(self, group_id: bytes) -> list[bytes]:
        return [m.identity for m in self.state.members(group_id)]

    def create_group(self, group_id: bytes) -> Group:
        """A new one-member group (RFC 9420 §11)."""
        if self.state.group(group_id) is not None:
            raise AgentError("group-exists", f"group {group_id!r} already exists")
        kp, keys = self._new_key_package()
        group = Group.create(
            kp, keys.encryption_priv, self.signature_priv, group_id, config=self.config
        )
        with self.state.transaction():
            self._save(group)
        return group

    def _others(self, group: Group) -> tuple[bytes, ...]:
        me = self.identity_key
        return tuple(cred.identity or b"" for _, cred, _ in group.members() if cred.identity != me)

    # ----------------------------------------------------------------------------------------
    # Sending

    async def _flush(self, client: NodeClient, out: Outgoing) -> bool:
        """Sends one outbox entry; True if the node took it, False if its Commit lost."""
        try:
            if out.epoch is not None:
                await client.enqueue_commit(
                    out.recipients,
                    out.payload,
                    out.message_id,
                    group_id=out.group_id,
                    epoch=out.epoch,
                    welcome=out.welcome,
                )
            elif out.recipients:
                await client.enqueue(out.recipients, out.payload, out.message_id)
        except ConflictError:
            with self.state.transaction():
                self.state.delete_outbox(out.message_id)
            return False
        with self.state.transaction():
            if out.staged is not None:
                group = Group.from_bytes(out.staged, self.config)
                self._save(group)
            self.state.delete_outbox(out.message_id)
        return True

    async def flush_outbox(self, client: NodeClient) -> int:
        """Resends what a crash left unconfirmed (same message ids). Returns how many."""
        count = 0
        for blob in self.state.outbox():
            await self._flush(client, Outgoing.decode(blob))
            count += 1
        return count

    async def send(self, client: NodeClient, group_id: bytes, text: bytes) -> Outgoing:
        """Encrypts ``text`` to the group and queues it for every other member."""
        await self.flush_outbox(client)
        group = self.load(group_id)
        payload = group.encrypt_application(text)
        out = Outgoing(secrets.token_bytes(16), group_id, payload, self._others(group))
        with self.state.transaction():
            self._save(group)  # the consumed generation is never used again (ST-05)
            self.state.put_outbox(out.message_id, out.encode())
            self.state.add_message(
                group_id,
                group.epoch,
                self.identity_key,
                text,
                message_key=b"out:" + out.message_id,
            )
        await self._flush(client, out)
        return out

    async def _commit(
        self,
        client: NodeClient,
        group_id: bytes,
        build: _CommitBuilder,
    ) -> Group:
        """Builds a Commit with ``build``, sends it as a bundle and merges it once the node
        accepted it; after a lost race, receives the winner and builds again."""
        await self.flush_outbox(client)
        for _ in range(COMMIT_RETRIES):
            group = self.load(group_id)
            created, welcome_to = build(group)
            staged = created.staged.state.to_bytes()
            recipients = tuple(set(self._others(group)) | set(build.also_to))
            out = Outgoing(
                secrets.token_bytes(16),
                group_id,
                created.message.encode(),
                recipients,
                epoch=group.epoch,
                staged=staged,
                welcome=None
                if created.welcome is None
                else MLSMessage.of(created.welcome).encode(),
                welcome_recipients=welcome_to,
            )
            with self.state.transaction():
                self.state.put_outbox(out.message_id, out.encode())
            if await self._flush(client, out):
                return self.load(group_id)
            await self.receive(client)
        raise AgentError("conflict", "the group kept changing: try again")

    async def invite(self, client: NodeClient, group_id: bytes, peers: Sequence[bytes]) -> Group:
        """Adds the holders of ``peers`` (identity keys), one KeyPackage claimed each."""
        claimed = []
        for peer in peers:
            try:
                fetched = await client.fetch_key_package(peer)
            except NotFoundError:
                raise AgentError(
                    "no-key-package", f"peer {peer.hex()} has no KeyPackage left"
                ) from None
            claimed.append(fetched.package)

        class Build(_CommitBuilder):
            def __call__(self, group: Group) -> tuple[CreatedCommit, tuple[bytes, ...]]:
                return group.commit([add_proposal(kp) for kp in claimed]), tuple(peers)

        return await self._commit(client, group_id, Build())

    async def update(self, client: NodeClient, group_id: bytes) -> Group:
        """A self-update Commit: fresh keys on our path (RFC 9420 §12.4)."""

        class Build(_CommitBuilder):
            def __call__(self, group: Group) -> tuple[CreatedCommit, tuple[bytes, ...]]:
                return group.commit(force_path=True), ()

        return await self._commit(client, group_id, Build())

    async def remove(self, client: NodeClient, group_id: bytes, peer: bytes) -> Group:
        """Removes ``peer``; the removed member is told too (it learns it was removed)."""

        class Build(_CommitBuilder):
            also_to = (peer,)

            def __call__(self, group: Group) -> tuple[CreatedCommit, tuple[bytes, ...]]:
                leaves = [i for i, cred, _ in group.members() if cred.identity == peer]
                if not leaves:
                    raise AgentError("unknown-peer", "that peer is not a member")
                return group.commit([Proposal.of(Remove(int(leaf))) for leaf in leaves]), ()

        return await self._commit(client, group_id, Build())

    async def leave(self, client: NodeClient, group_id: bytes) -> None:
        """Proposes our own removal to the others (RFC 9420 §12.1.3: a member cannot commit
        its own Remove) and forgets the group."""
        group = self.load(group_id)
        payload = group.propose_remove(int(group.own_leaf))
        out = Outgoing(secrets.token_bytes(16), group_id, payload, self._others(group))
        with self.state.transaction():
            self.state.put_outbox(out.message_id, out.encode())
            self.state.delete_group(group_id)
        await self._flush(client, out)

    # ----------------------------------------------------------------------------------------
    # Receiving

    async def receive(
        self, client: NodeClient, *, wait_ms: int = 0, max_batches: int | None = None
    ) -> list[Received]:
        """Applies what the node holds for us, in queue order; see the module docstring.

        Each message is applied and saved with the new cursor in one transaction; the queue is
        acknowledged up to the cursor with the next fetch.
        """
        queue = self.identity_key.hex()
        cursor = self.state.cursor(queue)
        acked = cursor
        applied: list[Received] = []
        batches = 0
        while max_batches is None or batches < max_batches:
            batches += 1
            page = await client.fetch_page(
                self.identity_key,
                cursor,
                limit=FETCH_LIMIT,
                wait_ms=wait_ms if not applied else 0,
                ack_up_to=acked if acked > 0 else 0,
            )
            acked = cursor
            if not page.messages:
                if page.expired_up_to_seq > cursor:
                    with self.state.transaction():
                        cursor = page.expired_up_to_seq
                        self.state.set_cursor(queue, cursor)
                    continue
                break
            for message in page.messages:
                with self.state.transaction():
                    result = self._apply(message.payload, message.message_id)
                    cursor = message.seq
                    self.state.set_cursor(queue, cursor)
                if result is not None:
                    applied.append(result)
                    if result.kind == "proposal":
                        await self._commit_pending(client, result.group_id)
        if cursor > acked:
            await client.ack(self.identity_key, cursor)
        if any(r.kind == "joined" for r in applied):
            # a Welcome consumed one of our KeyPackages: keep a supply on the node
            await self.replenish(client)
        return applied

    async def _commit_pending(self, client: NodeClient, group_id: bytes) -> None:
        """Commits proposals received from others (a member leaving asks for that)."""
        group = self.load(group_id)
        if not group.pending_proposals or not group.active:
            return

        class Build(_CommitBuilder):
            def __call__(self, group: Group) -> tuple[CreatedCommit, tuple[bytes, ...]]:
                return group.commit(), ()

        try:
            await self._commit(client, group_id, Build())
        except (MLSError, AgentError):
            return

    def _apply(self, payload: bytes, message_id: bytes) -> Received | None:
        """Applies one queued message to the state (inside the caller's transaction)."""
        try:
            message = MLSMessage.decode(payload)
        except DecodeError:
            return Received("skipped", b"", 0, detail="not an MLS message")
        body = message.body
        if isinstance(body, Welcome):
            return self._join(message)
        group_id = getattr(body, "group_id", None)
        if group_id is None:
            content = getattr(body, "content", None)
            group_id = getattr(content, "group_id", None)
        if group_id is None or self.state.group(group_id) is None:
            return Received(
                "skipped", group_id or b"", 0, detail="a group this state does not hold"
            )
        group = self.load(group_id)
        try:
            result = group.process(message)
        except MLSError as exc:
            rule = getattr(exc, "rule", type(exc).__name__)
            return Received("skipped", group_id, group.epoch, detail=f"rejected: {rule}")
        if isinstance(result, StagedCommit):
            group.merge(result)
            self._save(group)
            kind = "removed" if result.self_removed else "commit"
            committer = result.committer.leaf_index
            return Received(kind, group_id, group.epoch, detail=_describe(result, committer))
        if isinstance(result, ApplicationMessage):
            self._save(group)
            sender = result.credential.identity or b""
            fresh = self.state.add_message(
                group_id, result.epoch, sender, result.data, message_key=b"in:" + message_id
            )
            if not fresh:
                return None
            return Received("message", group_id, result.epoch, sender, result.data)
        self._save(group)
        return Received("proposal", group_id, group.epoch, detail="proposal cached")

    def _join(self, message: MLSMessage) -> Received | None:
        try:
            group, ref = Group.join_from_welcome(message, self._lookup, config=self.config)
        except MLSError as exc:
            rule = getattr(exc, "rule", type(exc).__name__)
            return Received("skipped", b"", 0, detail=f"Welcome not for us: {rule}")
        if self.state.group(group.group_id) is not None:
            return Received("skipped", group.group_id, group.epoch, detail="already a member")
        self._save(group)
        # RFC 9420 §16.8 (KP-08): a consumed KeyPackage's keys are deleted; the last-resort
        # one stays
        if not self.state.key_package_is_last_resort(ref):
            self.state.delete_key_package(ref)
        return Received("joined", group.group_id, group.epoch)


class _CommitBuilder:
    """Builds a Commit on the current state of a group: ``(created, welcome recipients)``."""

    also_to: tuple[bytes, ...] = ()

    def __call__(self, group: Group) -> tuple[CreatedCommit, tuple[bytes, ...]]:
        raise NotImplementedError


def _describe(staged: StagedCommit, committer: int | None) -> str:
    parts = []
    if staged.added:
        parts.append(f"{len(staged.added)} added")
    if staged.removed:
        parts.append(f"{len(staged.removed)} removed")
    if staged.updated:
        parts.append(f"{len(staged.updated)} updated")
    if not parts:
        parts.append("keys updated")
    who = "" if committer is None else f" by leaf {committer}"
    return ", ".join(parts) + who
