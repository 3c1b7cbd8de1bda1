"""Ratchet tree / TreeKEM timings on fully populated trees (RFC 9420 §7.4-7.8); prints JSON.

    .venv/bin/python benchmarks/tree.py [--sizes 1000 10000] [--suite 1] [--repeat 5]

For each size N it builds a tree with N members (leaves 0..N-1 of the next power of two) and
every parent above them non-blank, then measures, as the median of ``--repeat`` runs:

* ``create_update_path_ms``: the member with the longest filtered direct path (leaf 0 in a
  tree filled from the left: every copath subtree holds a member, so its path has one node per
  tree level; the JSON gives the length) refreshes its path (key derivation, parent hashes,
  leaf signature, new root tree hash, one HPKE encryption per copath node);
* ``process_update_path_ms``: the last member merges that path and decrypts it (signature
  check, COM-05/06 counts, key uniqueness, parent hash, one HPKE decryption, key checks);
* ``root_hash_after_path_change_ms``: the root tree hash after one direct path changed, from
  the cache (``O(log N)`` hashes), next to ``root_hash_from_scratch_ms`` (``O(N)``);
* ``tree_copy_ms``: the ``RatchetTree.copy()`` a caller makes to stage a commit (two list
  copies and a dict copy; kept out of the two timings above).

To build big trees cheaply, the members' leaves are unsigned placeholders sharing one HPKE key
pair, and all parents share another. Joiner validation would reject such a tree (TREE-09/10
duplicate keys, bad signatures, no parent-hash chains), so the benchmark never validates it;
only the committer's leaf (re-signed by create_update_path) is verified when processing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mls.credentials import Credential  # noqa: E402
from mls.crypto.ciphersuite import Suite, get_suite  # noqa: E402
from mls.group_context import GroupContext, ProtocolVersion  # noqa: E402
from mls.leaf_node import Capabilities, LeafNode, LeafNodeSource, Lifetime  # noqa: E402
from mls.ratchet_tree import RatchetTree
from mls.tree_math import LeafIndex, NodeIndex, direct_path, level, node_of  # noqa: E402
from mls.tree_nodes import Node, ParentNode
from mls.treekem import (  # noqa: E402
    TreeKEMPrivateKey,
    create_update_path,
    node_key_pair,
    process_update_path,
)

GROUP_ID = b"benchmark group"


def build(
    suite: Suite, n: int, sender: int, receiver: int
) -> tuple[RatchetTree, bytes, TreeKEMPrivateKey]:
    """A tree with ``n`` members and every parent above them set; returns the tree, the
    signature key of leaf ``sender`` and the private view of leaf ``receiver``."""
    width = 1
    while width < n:
        width *= 2
    leaf_priv, leaf_pub = suite.hpke.derive_key_pair(b"\x01" * suite.hash_length)
    parent_secret = b"\x02" * suite.hash_length
    _, parent_pub = node_key_pair(suite, parent_secret)
    sig_priv, sig_pub = suite.generate_signature_key_pair()
    caps = Capabilities((1,), (int(suite.id),), (), (), (1,))
    nodes: list[Node | None] = [None] * (2 * width - 1)
    for i in range(n):
        nodes[2 * i] = Node.leaf(
            LeafNode(
                encryption_key=leaf_pub,
                signature_key=sig_pub if i == sender else os.urandom(32),
                credential=Credential.basic(b"member-%d" % i),
                capabilities=caps,
                leaf_node_source=LeafNodeSource.KEY_PACKAGE,
                lifetime=Lifetime(0, 2**64 - 1),
                extensions=(),
                signature=b"\x00" * 64,
            )
        )
    for x in range(1, 2 * width - 1, 2):
        first_leaf = (x - ((1 << level(NodeIndex(x))) - 1)) // 2
        if first_leaf < n:
            nodes[x] = Node.parent(ParentNode(parent_pub, b"", ()))
    tree = RatchetTree(suite, nodes)
    me = LeafIndex(receiver)
    # Every parent shares one key pair, so the receiver knows all its ancestors' keys.
    secrets = {p: parent_secret for p in direct_path(node_of(me), tree.n_leaves)}
    return tree, sig_priv, TreeKEMPrivateKey(suite, me, leaf_priv, secrets)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn``; the cyclic garbage collector is paused while it runs, so a
    collection over the large tree built for the benchmark is not billed to the operation."""
    times = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return round(statistics.median(times) * 1000, 3)


def run(suite: Suite, n: int, repeat: int) -> dict[str, object]:
    t0 = time.perf_counter()
    # leaf 0's copath subtrees all hold members: its filtered direct path is the longest
    sender = LeafIndex(0)
    tree, sig_priv, receiver = build(suite, n, sender, n - 1)
    build_s = time.perf_counter() - t0
    scratch_ms = median_ms(tree.tree_hash_uncached, 1)
    tree.tree_hash()  # warm the cache once: O(N)
    context = GroupContext(
        ProtocolVersion.MLS10, int(suite.id), GROUP_ID, 1, tree.tree_hash(), b"\x00" * 32, ()
    )

    copies = [tree.copy() for _ in range(repeat)]
    created = []

    def create() -> None:
        created.append(create_update_path(copies[len(created)], sender, context, sig_priv))

    create_ms = median_ms(create, repeat)
    path = created[0].update_path

    targets = [tree.copy() for _ in range(repeat)]
    done = []

    def process() -> None:
        done.append(process_update_path(targets[len(done)], sender, path, context, receiver))

    process_ms = median_ms(process, repeat)
    assert done[0].commit_secret == created[0].commit_secret

    def changed_copy() -> RatchetTree:
        work = tree.copy()
        keys = [os.urandom(32) for _ in work.filtered_direct_path(sender)]
        work.set_path(sender, keys)
        return work

    # Each run changes one path in a fresh copy, then times only the root hash.
    root_times = []
    for _ in range(repeat):
        work = changed_copy()
        root_times.append(median_ms(work.tree_hash, 1))
    root_ms = round(statistics.median(root_times), 3)
    copy_ms = median_ms(tree.copy, repeat)
    return {
        "members": n,
        "leaf_slots": tree.n_leaves,
        "filtered_direct_path_length": len(path.nodes),
        "build_tree_s": round(build_s, 3),
        "create_update_path_ms": create_ms,
        "process_update_path_ms": process_ms,
        "root_hash_after_path_change_ms": root_ms,
        "root_hash_from_scratch_ms": scratch_ms,
        "tree_copy_ms": copy_ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--suite", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    suite = get_suite(args.suite)
    results = [run(suite, n, args.repeat) for n in args.sizes]
    print(
        json.dumps(
            {
                "benchmark": "ratchet tree / TreeKEM (RFC 9420 §7.4-7.8)",
                "cipher_suite": int(suite.id),
                "python": sys.version.split()[0],
                "repeat": args.repeat,
                "statistic": "median",
                "note": (
                    "trees built cheaply: unsigned placeholder leaves sharing one HPKE key pair, "
                    "parents sharing another; joiner validation would reject them (TREE-09/10, "
                    "signatures, parent hashes) so it is skipped; only the committer's new leaf "
                    "signature is verified while processing"
                ),
                "results": results,
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
