"""Properties of the secret tree's hash ratchets (RFC 9420 §9, §15.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mls.crypto.ciphersuite import get_suite
from mls.crypto.labels import derive_tree_secret, expand_with_label
from mls.errors import StaleGenerationError
from mls.secret_tree import RULE_CONSUMED, RULE_WINDOW, RatchetPolicy, RatchetType, SecretTree

SUITE = get_suite(1)
ROOT = bytes(32)
N_LEAVES = 4
MAX_GEN = 24

# Reference keys, derived here from the §9 formulas (not by SecretTree), once per ratchet:
# (leaf, kind) -> [(key, nonce) per generation].
_REFERENCE: dict[tuple[int, RatchetType], list[tuple[bytes, bytes]]] = {}


def reference(leaf: int, kind: RatchetType) -> list[tuple[bytes, bytes]]:
    if (leaf, kind) not in _REFERENCE:
        secret, lo, hi = ROOT, 0, N_LEAVES
        while hi - lo > 1:  # walk down from the root, left or right
            mid = (lo + hi) // 2
            side = b"left" if leaf < mid else b"right"
            secret = expand_with_label(SUITE, secret, b"tree", side, SUITE.hash_length)
            lo, hi = (lo, mid) if leaf < mid else (mid, hi)
        secret = expand_with_label(SUITE, secret, kind.value, b"", SUITE.hash_length)
        keys = []
        for g in range(MAX_GEN):
            keys.append(
                (
                    derive_tree_secret(SUITE, secret, b"key", g, SUITE.aead_key_length),
                    derive_tree_secret(SUITE, secret, b"nonce", g, SUITE.aead_nonce_length),
                )
            )
            secret = derive_tree_secret(SUITE, secret, b"secret", g, SUITE.hash_length)
        _REFERENCE[(leaf, kind)] = keys
    return _REFERENCE[(leaf, kind)]


deliveries = st.lists(
    st.tuples(
        st.integers(0, N_LEAVES - 1),
        st.sampled_from(list(RatchetType)),
        st.integers(0, MAX_GEN - 1),
    ),
    max_size=40,
)


@given(deliveries)
def test_any_delivery_order_gives_the_rfc_keys_and_consumed_keys_are_gone(
    order: list[tuple[int, RatchetType, int]],
) -> None:
    t = SecretTree(SUITE, ROOT, N_LEAVES, RatchetPolicy(max_forward=MAX_GEN, max_skipped=MAX_GEN))
    used: set[tuple[int, RatchetType, int]] = set()
    for leaf, kind, gen in order:
        if (leaf, kind, gen) in used:
            before = t.to_bytes()
            with pytest.raises(StaleGenerationError) as exc:
                t.stage(leaf, kind, gen)
            assert exc.value.rule == RULE_CONSUMED
            assert t.to_bytes() == before
            continue
        k = t.consume(leaf, kind, gen)
        assert (k.key, k.nonce) == reference(leaf, kind)[gen]
        used.add((leaf, kind, gen))
    for leaf, kind, gen in used:
        assert not t.has_key(leaf, kind, gen)
    # Every reachable state is one from_bytes accepts (and reproduces exactly).
    data = t.to_bytes()
    assert SecretTree.from_bytes(SUITE, data).to_bytes() == data


@given(
    st.integers(0, 8),
    st.integers(0, 8),
    st.lists(st.integers(0, 30), max_size=12),
)
def test_window_enforced_and_failures_change_nothing(
    max_forward: int, max_skipped: int, gens: list[int]
) -> None:
    t = SecretTree(SUITE, ROOT, N_LEAVES, RatchetPolicy(max_forward, max_skipped))
    kind = RatchetType.APPLICATION
    retained: set[int] = set()
    next_gen = 0
    for gen in gens:
        before = t.to_bytes()
        if gen >= next_gen and gen - next_gen > max_forward:
            with pytest.raises(StaleGenerationError) as exc:
                t.stage(0, kind, gen)
            assert exc.value.rule == RULE_WINDOW
            assert t.to_bytes() == before
        elif gen < next_gen and gen not in retained:
            with pytest.raises(StaleGenerationError) as exc:
                t.stage(0, kind, gen)
            assert exc.value.rule == RULE_CONSUMED
            assert t.to_bytes() == before
        else:
            assert t.consume(0, kind, gen).generation == gen
            if gen >= next_gen:
                retained.update(range(next_gen, gen))
                next_gen = gen + 1
            retained.discard(gen)
            # Only the newest max_skipped skipped keys survive.
            for old in sorted(retained)[: max(0, len(retained) - max_skipped)]:
                retained.discard(old)
        assert t.next_generation(0, kind) == next_gen
        assert {g for g in range(next_gen) if t.has_key(0, kind, g)} == retained
