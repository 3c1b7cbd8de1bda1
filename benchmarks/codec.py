"""Codec throughput: a 10,000-leaf ratchet tree and a KeyPackage; prints one JSON object.

    .venv/bin/python benchmarks/codec.py [--leaves 10000]

Times are the best of five runs in process CPU seconds (less sensitive to other load on the
machine than wall time). Leaves and parents carry random keys; nothing is signed or verified,
so only ``encode``/``decode`` are measured. Never asserted on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mls.credentials import Credential  # noqa: E402
from mls.extensions import Extension  # noqa: E402
from mls.group_context import ProtocolVersion  # noqa: E402
from mls.key_package import KeyPackage  # noqa: E402
from mls.leaf_node import Capabilities, LeafNode, LeafNodeSource, Lifetime  # noqa: E402
from mls.tree_nodes import (  # noqa: E402
    Node,
    ParentNode,
    decode_ratchet_tree,
    encode_ratchet_tree,
)


def _leaf(i: int) -> LeafNode:
    commit = i % 2 == 1
    return LeafNode(
        encryption_key=os.urandom(32),
        signature_key=os.urandom(32),
        credential=Credential.basic(b"user-%d" % i),
        capabilities=Capabilities((1,), (1, 2, 3), (0x0A0A,), (), (1, 2)),
        leaf_node_source=LeafNodeSource.COMMIT if commit else LeafNodeSource.KEY_PACKAGE,
        lifetime=None if commit else Lifetime(0, 2**63),
        parent_hash=os.urandom(32) if commit else None,
        extensions=(Extension(0x0A0A, b""),),
        signature=os.urandom(64),
    )


def _tree(n_leaves: int) -> tuple[Node | None, ...]:
    nodes: list[Node | None] = []
    for x in range(2 * n_leaves - 1):
        if x % 2 == 0:
            nodes.append(Node.leaf(_leaf(x // 2)))
        elif x % 4 == 1:
            nodes.append(Node.parent(ParentNode(os.urandom(32), os.urandom(32), (x // 2,))))
        else:
            nodes.append(None)
    return tuple(nodes)


def _best(fn: Callable[[], object], reps: int = 5) -> float:
    times = []
    for _ in range(reps):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leaves", type=int, default=10_000)
    args = parser.parse_args()
    nodes = _tree(args.leaves)
    data = encode_ratchet_tree(nodes)
    kp = KeyPackage(ProtocolVersion.MLS10, 1, os.urandom(32), _leaf(0), (), os.urandom(64))
    kp_bytes = kp.encode()
    n = 2000
    print(
        json.dumps(
            {
                "leaves": args.leaves,
                "tree_bytes": len(data),
                "tree_encode_s": round(_best(lambda: encode_ratchet_tree(nodes)), 4),
                "tree_decode_s": round(_best(lambda: decode_ratchet_tree(data)), 4),
                "key_package_encode_us": round(
                    _best(lambda: [kp.encode() for _ in range(n)]) / n * 1e6, 2
                ),
                "key_package_decode_us": round(
                    _best(lambda: [KeyPackage.decode(kp_bytes) for _ in range(n)]) / n * 1e6, 2
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
