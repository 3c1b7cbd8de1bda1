"""The secret tree and its per-sender hash ratchets (RFC 9420 §9).

The epoch's ``encryption_secret`` sits at the root of a tree shaped like the ratchet tree.
Each node's secret yields its children's (``ExpandWithLabel(s, "tree", "left"|"right", Nh)``)
and each leaf's secret starts two hash ratchets, one for handshake messages and one for
application messages. Step ``j`` of a ratchet yields one key and one nonce
(``DeriveTreeSecret(secret_j, "key"|"nonce", j, Nk|Nn)``) and the next secret
(``DeriveTreeSecret(secret_j, "secret", j, Nh)``).

Deletion (§9.2) is lazy and exact: node secrets are derived on first use of a leaf beneath
them, and a node's secret is dropped as soon as both its children exist; a leaf secret is
dropped once its two ratchets are started; a ratchet keeps only its next secret plus the
keys of skipped generations, each deleted when used.

Out-of-order delivery (§15.3) is bounded by :class:`RatchetPolicy`: a receiver derives at
most ``max_forward`` generations ahead of its ratchet in one step, and keeps at most
``max_skipped`` keys of generations it jumped over (the oldest are evicted first).

Contract: looking up a key is two-phase. :meth:`SecretTree.stage` computes the key and the
state that using it would leave, without changing anything; :meth:`SecretTree.apply` commits
that state. A message that fails any later check is simply never applied, so a rejected
message leaves the tree exactly as it was (VALIDATION ST-01, PRIV-06/07). Every failed
lookup raises before any state changes.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .codec import Reader, Writer
from .crypto.ciphersuite import Suite
from .crypto.labels import derive_tree_secret, expand_with_label
from .errors import (
    DecodeError,
    InternalError,
    StaleGenerationError,
    UsageError,
    ValidationError,
)
from .tree_math import (
    LeafIndex,
    NodeIndex,
    is_power_of_two,
    left,
    node_of,
    right,
    root,
    subtree_leaves,
)

MAX_GENERATION = 2**32 - 1
"""Generations are ``uint32`` on the wire (RFC 9420 §6.3.2)."""

RULE_CONSUMED = "§9.2/generation-consumed"
"""The generation's key was already used, or evicted from the out-of-order window."""
RULE_WINDOW = "§15.3/generation-beyond-window"
"""The generation is further ahead of the ratchet than the policy allows."""
RULE_SENDER_LEAF = "§6.3.2/sender-leaf"
"""The sender leaf index is outside the tree (or blank)."""


class RatchetType(enum.Enum):
    """Which of a leaf's two hash ratchets (RFC 9420 §9)."""

    HANDSHAKE = b"handshake"
    APPLICATION = b"application"


@dataclass(frozen=True)
class RatchetPolicy:
    """Bounds on out-of-order delivery (RFC 9420 §15.3; VALIDATION PRIV-06).

    Attributes:
        max_forward: the largest jump ``generation - next_generation`` accepted in one
            lookup; larger jumps raise before anything is derived.
        max_skipped: the most keys of skipped generations a ratchet keeps; when more are
            skipped, the oldest are deleted (and later count as consumed).
    """

    max_forward: int = 1000
    max_skipped: int = 1000

    def __post_init__(self) -> None:
        if self.max_forward < 0 or self.max_skipped < 0:
            raise UsageError("ratchet policy bounds must not be negative")


@dataclass(frozen=True, eq=False)
class RatchetKey:
    """One generation's AEAD key and nonce (RFC 9420 §9.1). There is no ``==`` (it would
    compare the key in variable time)."""

    generation: int
    key: bytes = field(repr=False)
    nonce: bytes = field(repr=False)


@dataclass(frozen=True)
class _Ratchet:
    """Immutable state of one hash ratchet: its next secret and retained skipped keys."""

    next_generation: int
    secret: bytes = field(repr=False)
    skipped: Mapping[int, tuple[bytes, bytes]] = field(repr=False)


@dataclass(frozen=True)
class _LeafRatchets:
    handshake: _Ratchet
    application: _Ratchet

    def get(self, kind: RatchetType) -> _Ratchet:
        return self.handshake if kind is RatchetType.HANDSHAKE else self.application

    def replace(self, kind: RatchetType, ratchet: _Ratchet) -> _LeafRatchets:
        if kind is RatchetType.HANDSHAKE:
            return _LeafRatchets(ratchet, self.application)
        return _LeafRatchets(self.handshake, ratchet)


@dataclass(frozen=True, eq=False)
class StagedKey:
    """A key looked up but not yet consumed; :meth:`SecretTree.apply` consumes it.

    Attributes:
        leaf, kind, generation: what was looked up.
        key: the generation's key and nonce.
    """

    leaf: LeafIndex
    kind: RatchetType
    key: RatchetKey
    _version: object = field(repr=False)
    _drop_node: NodeIndex | None = field(repr=False)
    _new_nodes: tuple[tuple[NodeIndex, bytes], ...] = field(repr=False)
    _leaf_state: _LeafRatchets = field(repr=False)

    @property
    def generation(self) -> int:
        return self.key.generation


def _empty_skipped() -> Mapping[int, tuple[bytes, bytes]]:
    return MappingProxyType({})


class SecretTree:
    """The secret tree of one epoch, with the hash ratchets of every leaf (RFC 9420 §9).

    Args:
        suite: the group's cipher suite.
        encryption_secret: the epoch's ``encryption_secret`` (the root secret).
        n_leaves: the ratchet tree's leaf count (a power of two).
        policy: out-of-order bounds; the default is ``RatchetPolicy()``.
    """

    def __init__(
        self,
        suite: Suite,
        encryption_secret: bytes,
        n_leaves: int,
        policy: RatchetPolicy | None = None,
    ) -> None:
        if not is_power_of_two(n_leaves):
            raise UsageError(f"secret tree leaf count must be a power of two, got {n_leaves}")
        self._suite = suite
        self._n_leaves = n_leaves
        self.policy = policy or RatchetPolicy()
        self._nodes: dict[NodeIndex, bytes] = {root(n_leaves): encryption_secret}
        self._leaves: dict[LeafIndex, _LeafRatchets] = {}
        self._version = object()

    @property
    def n_leaves(self) -> int:
        return self._n_leaves

    def stored_nodes(self) -> tuple[NodeIndex, ...]:
        """Indices of the node secrets still held (for inspection; never the secrets)."""
        return tuple(sorted(self._nodes))

    def started_leaves(self) -> tuple[LeafIndex, ...]:
        """Leaves whose ratchets have been started (their leaf secret is gone)."""
        return tuple(sorted(self._leaves))

    def __repr__(self) -> str:
        return (
            f"SecretTree(n_leaves={self._n_leaves}, node_secrets={len(self._nodes)}, "
            f"started_leaves={len(self._leaves)})"
        )

    # ----------------------------------------------------------------------------------------
    # Derivations (pure)

    def _ratchet_step(self, secret: bytes, generation: int) -> tuple[bytes, bytes, bytes]:
        s = self._suite
        key = derive_tree_secret(s, secret, b"key", generation, s.aead_key_length)
        nonce = derive_tree_secret(s, secret, b"nonce", generation, s.aead_nonce_length)
        nxt = derive_tree_secret(s, secret, b"secret", generation, s.hash_length)
        return key, nonce, nxt

    def _start_leaf(
        self, leaf: LeafIndex
    ) -> tuple[_LeafRatchets, NodeIndex | None, tuple[tuple[NodeIndex, bytes], ...]]:
        """The leaf's ratchets, plus the node-secret changes starting them would make."""
        existing = self._leaves.get(leaf)
        if existing is not None:
            return existing, None, ()
        target = node_of(leaf)
        # The only stored node on the path from the root to the leaf is where we start.
        node = root(self._n_leaves)
        while node not in self._nodes:
            if node == target:  # pragma: no cover - the path always holds one stored secret
                raise InternalError("secret tree lost a node secret (please report)")
            node = left(node) if target < node else right(node)
        start = node
        secret = self._nodes[start]
        new_nodes: dict[NodeIndex, bytes] = {}
        while node != target:
            lsec = expand_with_label(self._suite, secret, b"tree", b"left", self._suite.hash_length)
            rsec = expand_with_label(
                self._suite, secret, b"tree", b"right", self._suite.hash_length
            )
            if target < node:
                new_nodes[right(node)] = rsec
                node, secret = left(node), lsec
            else:
                new_nodes[left(node)] = lsec
                node, secret = right(node), rsec
        s = self._suite
        hs = expand_with_label(s, secret, b"handshake", b"", s.hash_length)
        app = expand_with_label(s, secret, b"application", b"", s.hash_length)
        ratchets = _LeafRatchets(
            _Ratchet(0, hs, _empty_skipped()), _Ratchet(0, app, _empty_skipped())
        )
        return ratchets, start, tuple(new_nodes.items())

    def _check_leaf(self, leaf: int) -> LeafIndex:
        if not isinstance(leaf, int) or leaf < 0 or leaf >= self._n_leaves:
            raise ValidationError(
                RULE_SENDER_LEAF, f"leaf {leaf} is outside a tree of {self._n_leaves}"
            )
        return LeafIndex(leaf)

    # ----------------------------------------------------------------------------------------
    # Lookup: stage, then apply

    def stage(self, leaf: int, kind: RatchetType, generation: int) -> StagedKey:
        """The key and nonce of ``generation`` in ``leaf``'s ``kind`` ratchet, not yet consumed.

        Nothing changes until :meth:`apply` is called with the result.

        Raises:
            ValidationError: rule ``"§6.3.2/sender-leaf"`` — the leaf is outside the tree.
            StaleGenerationError: rule ``"§9.2/generation-consumed"`` — the generation was
                used already or its key was evicted; rule ``"§15.3/generation-beyond-window"``
                — it is more than ``policy.max_forward`` ahead (checked before deriving).
        """
        leaf_index = self._check_leaf(leaf)
        if not isinstance(generation, int) or not 0 <= generation <= MAX_GENERATION:
            raise StaleGenerationError(RULE_WINDOW, f"generation {generation} is not a uint32")
        existing = self._leaves.get(leaf_index)
        # Window and replay checks come before any derivation (VALIDATION PRIV-06).
        if existing is not None:
            self._check_generation(existing.get(kind), generation)
        elif generation > self.policy.max_forward:
            self._check_generation(_Ratchet(0, b"", _empty_skipped()), generation)
        ratchets, drop, new_nodes = self._start_leaf(leaf_index)
        ratchet = ratchets.get(kind)
        new_ratchet, key = self._advance(ratchet, generation)
        return StagedKey(
            leaf=leaf_index,
            kind=kind,
            key=key,
            _version=self._version,
            _drop_node=drop,
            _new_nodes=new_nodes,
            _leaf_state=ratchets.replace(kind, new_ratchet),
        )

    def _check_generation(self, ratchet: _Ratchet, generation: int) -> None:
        if generation < ratchet.next_generation:
            if generation not in ratchet.skipped:
                raise StaleGenerationError(
                    RULE_CONSUMED, f"generation {generation} was already used or evicted"
                )
        elif generation - ratchet.next_generation > self.policy.max_forward:
            raise StaleGenerationError(
                RULE_WINDOW,
                f"generation {generation} is {generation - ratchet.next_generation} ahead "
                f"(at most {self.policy.max_forward})",
            )

    def _advance(self, ratchet: _Ratchet, generation: int) -> tuple[_Ratchet, RatchetKey]:
        if generation < ratchet.next_generation:
            key, nonce = ratchet.skipped[generation]
            skipped = {g: kn for g, kn in ratchet.skipped.items() if g != generation}
            return (
                _Ratchet(ratchet.next_generation, ratchet.secret, MappingProxyType(skipped)),
                RatchetKey(generation, key, nonce),
            )
        skipped = dict(ratchet.skipped)
        secret = ratchet.secret
        g = ratchet.next_generation
        limit = self.policy.max_skipped
        # Only the last ``max_skipped`` jumped-over keys can survive eviction; skip storing
        # the rest (they are consumed by the jump, §9.2).
        keep_from = max(g, generation - limit)
        while True:
            key, nonce, secret_next = self._ratchet_step(secret, g)
            if g == generation:
                break
            if g >= keep_from:
                skipped[g] = (key, nonce)
            secret = secret_next
            g += 1
        if len(skipped) > limit:
            for old in sorted(skipped)[: len(skipped) - limit]:
                del skipped[old]
        return (
            _Ratchet(generation + 1, secret_next, MappingProxyType(skipped)),
            RatchetKey(generation, key, nonce),
        )

    def apply(self, staged: StagedKey) -> RatchetKey:
        """Consumes a staged key: its generation can never be looked up again (§9.2).

        Raises:
            UsageError: the tree changed since ``staged`` was made (stage again).
        """
        if staged._version is not self._version:
            raise UsageError("the secret tree changed since this key was staged")
        if staged._drop_node is not None:
            del self._nodes[staged._drop_node]
            self._nodes.update(staged._new_nodes)
        self._leaves[staged.leaf] = staged._leaf_state
        self._version = object()
        return staged.key

    def consume(self, leaf: int, kind: RatchetType, generation: int) -> RatchetKey:
        """:meth:`stage` then :meth:`apply`: the key of ``generation``, consumed."""
        return self.apply(self.stage(leaf, kind, generation))

    def next_generation(self, leaf: int, kind: RatchetType) -> int:
        """The lowest generation of ``leaf``'s ``kind`` ratchet not yet derived."""
        ratchets = self._leaves.get(self._check_leaf(leaf))
        return 0 if ratchets is None else ratchets.get(kind).next_generation

    def next_sending_key(self, leaf: int, kind: RatchetType) -> RatchetKey:
        """The sender's next unused key in its own ratchet, consumed (RFC 9420 §6.3.1)."""
        generation = self.next_generation(leaf, kind)
        if generation > MAX_GENERATION:
            raise UsageError("the sending ratchet is exhausted for this epoch")
        return self.consume(leaf, kind, generation)

    def has_key(self, leaf: int, kind: RatchetType, generation: int) -> bool:
        """True if ``generation`` could be looked up now (without deriving anything)."""
        try:
            ratchets = self._leaves.get(self._check_leaf(leaf))
        except ValidationError:
            return False
        if not 0 <= generation <= MAX_GENERATION:
            return False
        if ratchets is None:
            return generation <= self.policy.max_forward
        ratchet = ratchets.get(kind)
        if generation < ratchet.next_generation:
            return generation in ratchet.skipped
        return generation - ratchet.next_generation <= self.policy.max_forward

    # ----------------------------------------------------------------------------------------
    # Persistence and comparison

    def to_bytes(self) -> bytes:
        """A serialization of the whole state (secrets included: store it like a key).

        The policy is not part of it; pass it again to :meth:`from_bytes`.
        """
        w = Writer()
        w.uint(self._n_leaves, 4)

        def nodes(inner: Writer) -> None:
            for node in sorted(self._nodes):
                inner.uint(node, 4)
                inner.opaque(self._nodes[node])

        def ratchet(inner: Writer, r: _Ratchet) -> None:
            inner.uint(r.next_generation, 8)
            inner.opaque(r.secret)

            def skipped(v: Writer) -> None:
                for g in sorted(r.skipped):
                    key, nonce = r.skipped[g]
                    v.uint(g, 4)
                    v.opaque(key)
                    v.opaque(nonce)

            inner.vector(skipped)

        def leaves(inner: Writer) -> None:
            for leaf in sorted(self._leaves):
                inner.uint(leaf, 4)
                ratchet(inner, self._leaves[leaf].handshake)
                ratchet(inner, self._leaves[leaf].application)

        w.vector(nodes)
        w.vector(leaves)
        return w.getvalue()

    @classmethod
    def from_bytes(
        cls, suite: Suite, data: bytes, policy: RatchetPolicy | None = None
    ) -> SecretTree:
        """The inverse of :meth:`to_bytes`. Only a state :meth:`to_bytes` can produce is
        accepted: entries in increasing order, secrets of the suite's sizes, skipped
        generations below the ratchet's next one, and every leaf either started or below
        exactly one stored node secret.

        Raises:
            DecodeError: ``data`` is not a serialized secret tree for ``suite``.
        """
        nh, nk, nn = suite.hash_length, suite.aead_key_length, suite.aead_nonce_length

        def sized(reader: Reader, length: int, what: str) -> bytes:
            value = reader.opaque()
            if len(value) != length:
                raise DecodeError(f"serialized secret tree: {what} is not {length} bytes")
            return value

        def increasing(previous: int, value: int, what: str) -> int:
            if value <= previous:
                raise DecodeError(f"serialized secret tree: {what} out of order or repeated")
            return value

        r = Reader(bytes(data))
        n_leaves = r.uint(4)
        if not is_power_of_two(n_leaves):
            raise DecodeError("serialized secret tree has a bad leaf count")
        tree = cls(suite, b"", n_leaves, policy)
        tree._nodes.clear()
        body = r.vector()
        node = -1
        while not body.at_end():
            node = increasing(node, body.uint(4), "node")
            if node >= 2 * n_leaves - 1:
                raise DecodeError("serialized secret tree names a node outside the tree")
            tree._nodes[NodeIndex(node)] = sized(body, nh, "node secret")

        def ratchet(inner: Reader) -> _Ratchet:
            nxt = inner.uint(8)
            if nxt > MAX_GENERATION + 1:
                raise DecodeError("serialized secret tree: generation beyond uint32")
            secret = sized(inner, nh, "ratchet secret")
            skipped: dict[int, tuple[bytes, bytes]] = {}
            v = inner.vector()
            g = -1
            while not v.at_end():
                g = increasing(g, v.uint(4), "skipped generation")
                if g >= nxt:
                    raise DecodeError("serialized secret tree: skipped key not behind ratchet")
                skipped[g] = (sized(v, nk, "key"), sized(v, nn, "nonce"))
            return _Ratchet(nxt, secret, MappingProxyType(skipped))

        body = r.vector()
        leaf = -1
        while not body.at_end():
            leaf = increasing(leaf, body.uint(4), "leaf")
            if leaf >= n_leaves:
                raise DecodeError("serialized secret tree names a leaf outside the tree")
            tree._leaves[LeafIndex(leaf)] = _LeafRatchets(ratchet(body), ratchet(body))
        r.expect_end("secret tree")
        # Lazy derivation and deletion (§9.2) keep every leaf either started or below exactly
        # one stored node secret: the covered leaf ranges tile [0, n_leaves).
        spans = [subtree_leaves(n) for n in tree._nodes] + [range(x, x + 1) for x in tree._leaves]
        covered = 0
        for span in sorted(spans, key=lambda span: span.start):
            if span.start != covered:
                break
            covered = span.stop
        if covered != n_leaves:
            raise DecodeError("serialized secret tree: node secrets and leaves do not tile it")
        return tree

    def same_state(self, other: SecretTree) -> bool:
        """True if both trees hold exactly the same secrets (constant-time comparison)."""
        return hmac.compare_digest(self.to_bytes(), other.to_bytes())

    def copy(self) -> SecretTree:
        """An independent copy (states are immutable values, so this is shallow and cheap)."""
        twin = SecretTree.__new__(SecretTree)
        twin._suite = self._suite
        twin._n_leaves = self._n_leaves
        twin.policy = self.policy
        twin._nodes = dict(self._nodes)
        twin._leaves = dict(self._leaves)
        twin._version = object()
        return twin


def ratchet_type_for(content_type: int) -> RatchetType:
    """Application content uses the application ratchet; proposals and commits the
    handshake ratchet (RFC 9420 §6.3.1). ``content_type`` is a ContentType value."""
    return RatchetType.APPLICATION if int(content_type) == 1 else RatchetType.HANDSHAKE


__all__ = [
    "MAX_GENERATION",
    "RULE_CONSUMED",
    "RULE_SENDER_LEAF",
    "RULE_WINDOW",
    "RatchetKey",
    "RatchetPolicy",
    "RatchetType",
    "SecretTree",
    "StagedKey",
    "ratchet_type_for",
]
