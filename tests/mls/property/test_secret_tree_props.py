"""Properties of the secret tree's hash ratchets (RFC 9420 §9, §15.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mls.crypto.ciphersuite import get_suite
from mls.errors import StaleGenerationError
from mls.secret_tree import RULE_CONSUMED, RULE_WINDOW, RatchetPolicy, RatchetType, SecretTree

SUITE = get_suite(1)
ROOT = bytes(32)
N_LEAVES = 4
MAX_GEN = 24

# Keys of a sequential walk, computed once: leaf -> kind -> [(key, nonce) per generation].
_SEQUENTIAL: dict[tuple[int, RatchetType], list[tuple[bytes, bytes]]] = {}


def sequential(leaf: int, kind: RatchetType) -> list[tuple[bytes, bytes]]:
    if (leaf, kind) not in _SEQUENTIAL:
        t = SecretTree(SUITE, ROOT, N_LEAVES)
        keys = [t.consume(leaf, kind, g) for g in range(MAX_GEN)]
        _SEQUENTIAL[(leaf, kind)] = [(k.key, k.nonce) for k in keys]
    return _SEQUENTIAL[(leaf, kind)]


deliveries = st.lists(
    st.tuples(
        st.integers(0, N_LEAVES - 1),
        st.sampled_from(list(RatchetType)),
        st.integers(0, MAX_GEN - 1),
    ),
    max_size=40,
)


@given(deliveries)
def test_out_of_order_equals_sequential_and_consumed_keys_are_gone(
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
        assert (k.key, k.nonce) == sequential(leaf, kind)[gen]
        used.add((leaf, kind, gen))
    for leaf, kind, gen in used:
        assert not t.has_key(leaf, kind, gen)


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
