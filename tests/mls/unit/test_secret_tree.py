"""Unit tests for mls.secret_tree: derivation, deletion, out-of-order window, atomicity."""

from __future__ import annotations

import pytest

from mls.crypto.ciphersuite import get_suite
from mls.crypto.labels import derive_tree_secret, expand_with_label
from mls.errors import DecodeError, StaleGenerationError, UsageError, ValidationError
from mls.secret_tree import (
    RULE_CONSUMED,
    RULE_SENDER_LEAF,
    RULE_WINDOW,
    RatchetPolicy,
    RatchetType,
    SecretTree,
    ratchet_type_for,
)

SUITE = get_suite(1)
ROOT = bytes(range(32))
HS = RatchetType.HANDSHAKE
APP = RatchetType.APPLICATION


def tree(n_leaves: int = 4, **policy: int) -> SecretTree:
    return SecretTree(SUITE, ROOT, n_leaves, RatchetPolicy(**policy) if policy else None)


def manual_leaf_secret(leaf: int, n_leaves: int) -> bytes:
    """Walks from the root to ``leaf`` with the §9 derivation, independently of the tree."""
    secret = ROOT
    lo, hi = 0, n_leaves
    while hi - lo > 1:
        mid = (lo + hi) // 2
        side = b"left" if leaf < mid else b"right"
        secret = expand_with_label(SUITE, secret, b"tree", side, 32)
        lo, hi = (lo, mid) if leaf < mid else (mid, hi)
    return secret


def manual_key(leaf: int, n_leaves: int, kind: bytes, generation: int) -> tuple[bytes, bytes]:
    secret = expand_with_label(SUITE, manual_leaf_secret(leaf, n_leaves), kind, b"", 32)
    for j in range(generation):
        secret = derive_tree_secret(SUITE, secret, b"secret", j, 32)
    return (
        derive_tree_secret(SUITE, secret, b"key", generation, 16),
        derive_tree_secret(SUITE, secret, b"nonce", generation, 12),
    )


def test_keys_match_the_rfc_derivation() -> None:
    t = tree(8)
    for leaf, kind, gen in [(5, APP, 3), (5, HS, 0), (0, APP, 0), (7, HS, 2)]:
        got = t.consume(leaf, kind, gen)
        assert (got.key, got.nonce) == manual_key(leaf, 8, kind.value, gen)
        assert got.generation == gen


def test_single_leaf_tree_uses_root_as_leaf_secret() -> None:
    t = tree(1)
    assert t.consume(0, APP, 0).key == manual_key(0, 1, b"application", 0)[0]
    assert t.stored_nodes() == ()


def test_node_secrets_are_deleted_once_both_children_exist() -> None:
    t = tree(4)
    assert t.stored_nodes() == (3,)
    t.consume(0, APP, 0)
    # Root 3 and node 1 expanded; their other children (5 and leaf 1's node 2) remain.
    assert t.stored_nodes() == (2, 5)
    t.consume(1, HS, 0)
    assert t.stored_nodes() == (5,)
    t.consume(3, HS, 0)
    t.consume(2, HS, 0)
    assert t.stored_nodes() == ()
    assert t.started_leaves() == (0, 1, 2, 3)


def test_replay_is_rejected_with_consumed_rule() -> None:
    t = tree()
    t.consume(1, APP, 0)
    with pytest.raises(StaleGenerationError) as exc:
        t.consume(1, APP, 0)
    assert exc.value.rule == RULE_CONSUMED


def test_out_of_order_within_window_decrypts_each_once() -> None:
    # Deliver g+2 first, then g and g+1 (OpenMLS#453): the ratchet must not be corrupted.
    t = tree()
    expected = [manual_key(2, 4, b"application", g) for g in range(4)]
    for g in (2, 0, 1, 3):
        k = t.consume(2, APP, g)
        assert (k.key, k.nonce) == expected[g]
    for g in range(4):
        with pytest.raises(StaleGenerationError):
            t.consume(2, APP, g)


def test_handshake_and_application_ratchets_are_independent() -> None:
    t = tree()
    t.consume(0, APP, 5)
    assert t.next_generation(0, HS) == 0
    assert t.consume(0, HS, 0).key == manual_key(0, 4, b"handshake", 0)[0]


def test_beyond_window_rejected_without_state_change() -> None:
    t = tree(max_forward=10)
    t.consume(0, APP, 0)
    before = t.to_bytes()
    with pytest.raises(StaleGenerationError) as exc:
        t.stage(0, APP, 12)  # 11 ahead of next generation 1
    assert exc.value.rule == RULE_WINDOW
    assert t.to_bytes() == before
    # Exactly at the edge is fine.
    assert t.consume(0, APP, 11).generation == 11


def test_window_applies_to_fresh_leaf_before_deriving() -> None:
    t = tree(max_forward=5)
    before = t.to_bytes()
    with pytest.raises(StaleGenerationError) as exc:
        t.stage(3, HS, 6)
    assert exc.value.rule == RULE_WINDOW
    assert t.to_bytes() == before
    assert t.started_leaves() == ()


@pytest.mark.parametrize("generation", [2**32 - 1, 2**32, 2**64, -1])
def test_huge_or_negative_generation_rejected(generation: int) -> None:
    t = tree()
    with pytest.raises(StaleGenerationError) as exc:
        t.stage(0, APP, generation)
    assert exc.value.rule == RULE_WINDOW


@pytest.mark.parametrize("leaf", [4, 100, 2**32, -1])
def test_leaf_out_of_range_rejected(leaf: int) -> None:
    t = tree(4)
    with pytest.raises(ValidationError) as exc:
        t.stage(leaf, APP, 0)
    assert exc.value.rule == RULE_SENDER_LEAF


def test_skipped_keys_are_bounded_oldest_evicted() -> None:
    t = tree(max_forward=100, max_skipped=3)
    t.consume(0, APP, 10)  # skips 0..9; only 7, 8, 9 are kept
    for g in range(7):
        with pytest.raises(StaleGenerationError) as exc:
            t.stage(0, APP, g)
        assert exc.value.rule == RULE_CONSUMED
    for g in (7, 8, 9):
        assert t.consume(0, APP, g).key == manual_key(0, 4, b"application", g)[0]


def test_eviction_across_jumps_keeps_newest() -> None:
    t = tree(max_skipped=2)
    t.consume(0, APP, 2)  # keeps 0, 1
    t.consume(0, APP, 4)  # would keep 0, 1, 3 -> evicts 0
    assert not t.has_key(0, APP, 0)
    assert t.has_key(0, APP, 1)
    assert t.has_key(0, APP, 3)


def test_stage_changes_nothing_until_applied() -> None:
    t = tree()
    before = t.to_bytes()
    staged = t.stage(1, HS, 3)
    assert t.to_bytes() == before
    assert t.started_leaves() == ()
    t.apply(staged)
    assert t.next_generation(1, HS) == 4
    assert t.has_key(1, HS, 2)


def test_stale_staged_key_cannot_be_applied() -> None:
    t = tree()
    first = t.stage(0, APP, 0)
    second = t.stage(0, APP, 0)
    t.apply(first)
    with pytest.raises(UsageError):
        t.apply(second)


def test_staged_key_from_original_cannot_be_applied_to_copy() -> None:
    t = tree()
    staged = t.stage(0, APP, 0)
    twin = t.copy()
    with pytest.raises(UsageError):
        twin.apply(staged)


def test_sending_keys_advance_one_by_one() -> None:
    t = tree()
    gens = [t.next_sending_key(3, APP).generation for _ in range(3)]
    assert gens == [0, 1, 2]
    assert t.next_generation(3, APP) == 3


def test_serialization_round_trip_continues_identically() -> None:
    t = tree(8)
    t.consume(3, APP, 4)
    t.consume(6, HS, 0)
    clone = SecretTree.from_bytes(SUITE, t.to_bytes())
    assert clone.same_state(t)
    assert clone.consume(3, APP, 2).key == t.consume(3, APP, 2).key
    assert clone.consume(5, APP, 0).key == t.consume(5, APP, 0).key
    assert clone.to_bytes() == t.to_bytes()


LeafEntry = tuple[int, int, bytes, list[tuple[int, bytes, bytes]]]
"""(leaf, next generation, ratchet secret, [(skipped generation, key, nonce)])."""


def serialized(
    nodes: list[tuple[int, bytes]],
    leaves: list[LeafEntry],
    n_leaves: int = 4,
) -> bytes:
    """A hand-built serialized tree; each leaf's two ratchets are the same given one."""

    def vec(body: bytes) -> bytes:  # a minimal length header (RFC 9420 §2.1.2)
        assert len(body) < 2**14
        return bytes([len(body)]) if len(body) < 64 else (0x4000 | len(body)).to_bytes(2, "big")

    def opaque(b: bytes) -> bytes:
        return bytes([len(b)]) + b

    node_body = b"".join(n.to_bytes(4, "big") + opaque(sec) for n, sec in nodes)
    leaf_body = b""
    for leaf, nxt, secret, skipped in leaves:
        skipped_body = b"".join(g.to_bytes(4, "big") + opaque(k) + opaque(n) for g, k, n in skipped)
        ratchet = nxt.to_bytes(8, "big") + opaque(secret) + vec(skipped_body) + skipped_body
        leaf_body += leaf.to_bytes(4, "big") + ratchet + ratchet
    return n_leaves.to_bytes(4, "big") + vec(node_body) + node_body + vec(leaf_body) + leaf_body


K, N, S = b"k" * 16, b"n" * 12, b"s" * 32
GOOD_LEAVES: list[LeafEntry] = [(0, 3, S, [(1, K, N)])]
GOOD_NODES = [(2, S), (5, S)]


def test_from_bytes_reads_a_hand_built_tree() -> None:
    data = serialized(GOOD_NODES, GOOD_LEAVES)
    t = SecretTree.from_bytes(SUITE, data)
    assert t.stored_nodes() == (2, 5)
    assert t.started_leaves() == (0,)
    assert t.next_generation(0, APP) == 3
    assert t.consume(0, APP, 1).key == K
    assert SecretTree.from_bytes(SUITE, data).to_bytes() == data


def leaf0(
    nxt: int = 3, secret: bytes = S, skipped: list[tuple[int, bytes, bytes]] | None = None
) -> list[LeafEntry]:
    """GOOD_LEAVES with one field changed."""
    return [(0, nxt, secret, [(1, K, N)] if skipped is None else skipped)]


# Each case breaks one thing in the good state (nodes 2 and 5 stored, leaf 0 started).
@pytest.mark.parametrize(
    ("nodes", "leaves", "n_leaves"),
    [
        pytest.param(GOOD_NODES, GOOD_LEAVES, 3, id="leaf-count"),
        pytest.param([(2, S), (5, S), (7, S)], GOOD_LEAVES, 4, id="node-outside"),
        pytest.param([(5, S), (2, S)], GOOD_LEAVES, 4, id="nodes-unordered"),
        pytest.param([(2, S), (2, S), (5, S)], GOOD_LEAVES, 4, id="node-repeated"),
        pytest.param([(2, S[:-1]), (5, S)], GOOD_LEAVES, 4, id="node-secret-size"),
        pytest.param([(0, S), *GOOD_NODES], GOOD_LEAVES, 4, id="started-leaf-keeps-secret"),
        pytest.param([(1, S), (5, S)], GOOD_LEAVES, 4, id="node-above-started-leaf"),
        pytest.param([(5, S)], GOOD_LEAVES, 4, id="leaf-without-secret"),
        pytest.param([], [], 4, id="empty"),
        pytest.param(GOOD_NODES, [*GOOD_LEAVES, (4, 0, S, [])], 4, id="leaf-outside"),
        pytest.param([(5, S)], [(1, 0, S, []), (0, 0, S, [])], 4, id="leaves-unordered"),
        pytest.param(GOOD_NODES, leaf0(secret=S + b"x"), 4, id="ratchet-secret-size"),
        pytest.param(GOOD_NODES, leaf0(nxt=2**32 + 1), 4, id="generation-beyond-uint32"),
        pytest.param(GOOD_NODES, leaf0(skipped=[(3, K, N)]), 4, id="skipped-not-behind"),
        pytest.param(GOOD_NODES, leaf0(skipped=[(1, K, N), (0, K, N)]), 4, id="skipped-unordered"),
        pytest.param(GOOD_NODES, leaf0(skipped=[(1, K[:-1], N)]), 4, id="key-size"),
        pytest.param(GOOD_NODES, leaf0(skipped=[(1, K, N + b"x")]), 4, id="nonce-size"),
    ],
)
def test_from_bytes_rejects_non_canonical_state(
    nodes: list[tuple[int, bytes]],
    leaves: list[LeafEntry],
    n_leaves: int,
) -> None:
    with pytest.raises(DecodeError):
        SecretTree.from_bytes(SUITE, serialized(nodes, leaves, n_leaves))


def test_from_bytes_truncated_or_extended_is_decode_error() -> None:
    t = tree(8)
    t.consume(3, APP, 4)
    data = t.to_bytes()
    for end in range(len(data)):
        with pytest.raises(DecodeError):
            SecretTree.from_bytes(SUITE, data[:end])
    with pytest.raises(DecodeError):
        SecretTree.from_bytes(SUITE, data + b"\x00")


def test_has_key_is_false_outside_uint32() -> None:
    t = tree(max_forward=2**40)
    assert t.has_key(0, APP, 2**32 - 1)
    assert not t.has_key(0, APP, 2**32)
    assert not t.has_key(0, APP, -1)


def test_copy_is_independent() -> None:
    t = tree()
    twin = t.copy()
    twin.consume(0, APP, 0)
    assert t.has_key(0, APP, 0)
    assert not twin.has_key(0, APP, 0)


def test_repr_hides_secrets() -> None:
    t = tree()
    k = t.consume(0, APP, 0)
    assert k.key.hex() not in repr(k)
    assert ROOT.hex() not in repr(t)
    assert "key=" not in repr(k)


def test_leaf_count_must_be_power_of_two() -> None:
    with pytest.raises(UsageError):
        SecretTree(SUITE, ROOT, 3)


def test_ratchet_type_for_content_types() -> None:
    assert ratchet_type_for(1) is APP
    assert ratchet_type_for(2) is HS
    assert ratchet_type_for(3) is HS
