"""Group operations of the ``mls`` engine at several group sizes (RFC 9420 §12); prints JSON.

    .venv/bin/python benchmarks/mls_ops.py [--quick]

For cipher suite 0x0001, with real KeyPackages, real Commits and real Welcomes throughout:

* ``app_msgs_per_s``: 1 KiB application messages encrypted by one member and decrypted by
  another (both steps counted), at N = 2 and 32.
* ``update_ms``: a self-update Commit (with path) created by the member whose filtered direct
  path is longest, and processed by another member; at N = 32 and 128 right after the
  one-commit build (the committer's path is the only non-blank part of the tree), and at
  N = 1000 on a fully populated tree (every parent node set; see ``fill_tree``). The JSON
  gives the path length.
* ``build_s``: one Commit adding N-1 members, plus every one of them joining from the Welcome
  with full validation (N = 8, 32, 128, 1000).
* ``state_bytes``: ``Group.to_bytes()`` at N = 1000 and 10000.
* ``join_s``: one member joining from a Welcome whose tree holds N members (1000, 10000,
  30000), with full validation (every leaf signature, parent hashes, keys).

``--quick`` runs small sizes only (for the test that checks the output's shape).
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
from mls.framing import MLSMessage  # noqa: E402
from mls.group.config import GroupConfig  # noqa: E402
from mls.group.group import Group, add_proposal  # noqa: E402
from mls.group.staged_commit import StagedCommit  # noqa: E402
from mls.group.welcome import JoinKeys  # noqa: E402
from mls.key_package import KeyPackage  # noqa: E402
from mls.tree_math import NodeIndex, direct_path, node_of  # noqa: E402
from mls.tree_nodes import Node, ParentNode
from mls.treekem import node_key_pair  # noqa: E402

SUITE = 1


class Member:
    """A would-be member with one KeyPackage."""

    def __init__(self, suite: Suite, i: int) -> None:
        self.signature_priv, _ = suite.generate_signature_key_pair()
        kp, keys = KeyPackage.generate(
            suite, self.signature_priv, Credential.basic(b"member-%d" % i)
        )
        self.key_package = kp
        self.keys = JoinKeys(kp, keys.init_priv, keys.encryption_priv, keys.signature_priv)
        self.ref = keys.ref

    def lookup(self, ref: bytes) -> JoinKeys | None:
        return self.keys if ref == self.ref else None


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out
    finally:
        gc.enable()


def build(suite: Suite, n: int, joiners: int | None = None) -> tuple[list[Group], float, bytes]:
    """A group of ``n``: member 0 adds the others in one Commit; ``joiners`` of them (all by
    default) join from the Welcome. Returns the groups, the seconds spent (commit + joins)
    and the Welcome."""
    config = GroupConfig()
    people = [Member(suite, i) for i in range(n)]
    creator = Group.create(
        people[0].key_package,
        people[0].keys.encryption_priv,
        people[0].signature_priv,
        b"benchmark",
        config=config,
    )
    proposals = [add_proposal(p.key_package) for p in people[1:]]

    def commit() -> object:
        created = creator.commit(proposals)
        creator.merge_pending_commit()
        return created

    spent, created = timed(commit)
    welcome = MLSMessage.of(created.welcome).encode()  # type: ignore[attr-defined]
    groups = [creator]
    count = n - 1 if joiners is None else joiners
    for p in people[1 : 1 + count]:
        t, (g, _) = timed(lambda p=p: Group.join_from_welcome(welcome, p.lookup, config=config))
        spent += t
        groups.append(g)  # type: ignore[arg-type]
    return groups, spent, welcome


def longest_path_member(groups: list[Group]) -> int:
    lengths = [len(g.tree.filtered_direct_path(g.own_leaf)) for g in groups]
    return max(range(len(groups)), key=lambda i: lengths[i])


def update_ms(groups: list[Group], repeat: int = 5) -> dict[str, object]:
    """Median create/process time of a self-update by the longest-path member."""
    c = longest_path_member(groups)
    r = 0 if c != 0 else 1
    committer, receiver = groups[c], groups[r]
    # a member's tree hashes are cached once its epoch began (they make its GroupContext);
    # warm them here too, so the figures are those of a running member
    committer.tree.tree_hash()
    receiver.tree.tree_hash()
    length = len(committer.tree.filtered_direct_path(committer.own_leaf))
    creates, processes = [], []
    for _ in range(repeat):
        t, created = timed(lambda: committer.commit(force_path=True))
        creates.append(t)
        message = created.message.encode()  # type: ignore[attr-defined]
        t, staged = timed(lambda message=message: receiver.process(message))
        processes.append(t)
        # keep both in the same epoch; the rest of the group is not needed any more
        committer.clear_pending_commit()
        assert isinstance(staged, StagedCommit)
    return {
        "members": committer.tree.member_count(),
        "committer_leaf": int(committer.own_leaf),
        "filtered_direct_path_length": length,
        "create_ms": round(statistics.median(creates) * 1000, 2),
        "process_ms": round(statistics.median(processes) * 1000, 2),
    }


def fill_tree(groups: list[Group]) -> None:
    """Sets every parent node of the tree, identically in each of ``groups``: a fully
    populated tree, as a long-lived group has after many Commits. Building one with real
    Commits takes one Commit per pair of leaves with every member processing each
    (quadratic), so the parent nodes are set directly, each from its own path secret, and the
    members on a node's direct path are given its secret, as they would hold it. The tree is
    then not parent-hash valid (nobody validates it here); Commits made and processed on it
    run the same code as on any other tree."""
    suite = groups[0].suite
    template = groups[0].tree
    secrets: dict[int, bytes] = {}
    for x in range(1, 2 * template.n_leaves - 1, 2):
        secrets[x] = suite.hash(b"parent %d" % x)
    for g in groups:
        tree = g.state.tree
        for x, secret in secrets.items():
            _, public = node_key_pair(suite, secret)
            tree.set_node(NodeIndex(x), Node.parent(ParentNode(public, b"", ())))
        mine = direct_path(node_of(g.own_leaf), tree.n_leaves)
        key = g.state.private_key
        g.state.private_key = key.with_path_secrets({p: secrets[p] for p in mine})


def app_msgs_per_s(groups: list[Group], seconds: float = 1.0) -> float:
    sender, receiver = groups[0], groups[1]
    payload = os.urandom(1024)
    count = 0
    spent = 0.0
    while spent < seconds:
        start = time.perf_counter()
        for _ in range(50):
            receiver.process(sender.encrypt_application(payload))
        spent += time.perf_counter() - start
        count += 50
    return round(count / spent, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args(argv)
    suite = get_suite(SUITE)
    quick = args.quick
    out: dict[str, object] = {
        "benchmark": "mls group operations (RFC 9420 §12)",
        "cipher_suite": SUITE,
        "python": sys.version.split()[0],
    }
    sizes_app = [2, 8] if quick else [2, 32]
    app = {}
    for n in sizes_app:
        groups, _, _ = build(suite, n, joiners=1)
        app[f"n{n}"] = app_msgs_per_s(groups, 0.2 if quick else 2.0)
    out["app_msgs_per_s"] = app

    update: dict[str, object] = {}
    for n in [8] if quick else [32, 128]:
        groups, _, _ = build(suite, n, joiners=1)
        update[f"n{n}_after_build"] = update_ms(groups)
    full_n = 16 if quick else 1000
    groups, _, _ = build(suite, full_n, joiners=1)
    fill_tree(groups)
    update[f"n{full_n}_full_tree"] = update_ms(groups)
    out["update_ms"] = update

    build_s = {}
    for n in [4, 8] if quick else [8, 32, 128, 1000]:
        _, spent, _ = build(suite, n)
        build_s[f"n{n}"] = round(spent, 3)
    out["build_s"] = build_s

    state_bytes = {}
    join_s = {}
    for n in [16, 64] if quick else [1000, 10000, 30000]:
        groups, _, welcome = build(suite, n - 1, joiners=0)
        # a fresh joiner: the n-th member added, then timed joining from its Welcome
        extra = Member(suite, n)
        created = groups[0].commit([add_proposal(extra.key_package)])
        groups[0].merge_pending_commit()
        w = MLSMessage.of(created.welcome).encode()  # type: ignore[arg-type]
        t, _ = timed(lambda w=w, extra=extra: Group.join_from_welcome(w, extra.lookup))
        join_s[f"n{n}"] = round(t, 3)
        if n <= 10000:
            state_bytes[f"n{n}"] = len(groups[0].to_bytes())
    out["state_bytes"] = state_bytes
    out["join_s"] = join_s
    out["targets"] = {
        "app_msgs_per_s.n32": ">= 5000",
        "update_ms.n128_after_build": "create <= 20, process <= 3",
        "update_ms.n1000_full_tree": "create <= 5, process <= 3",
        "build_s.n128": "<= 1",
        "state_bytes.n10000": "<= 5000000",
        "join_s.n30000": "<= 6",
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
