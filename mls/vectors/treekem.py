"""``treekem.json``: processing and creating UpdatePaths (RFC 9420 §7.4-7.6, §7.9)."""

from __future__ import annotations

from typing import Any

from ..crypto.ciphersuite import get_suite
from ..group_context import GroupContext, ProtocolVersion
from ..ratchet_tree import RatchetTree
from ..tree_math import LeafIndex, NodeIndex
from ..tree_validation import validate_parent_hashes
from ..treekem import TreeKEMPrivateKey, UpdatePath, create_update_path, process_update_path
from . import Mismatch, expect


def _private_keys(
    tree: RatchetTree, case: dict[str, Any]
) -> tuple[dict[int, TreeKEMPrivateKey], dict[int, bytes]]:
    keys: dict[int, TreeKEMPrivateKey] = {}
    signers: dict[int, bytes] = {}
    for entry in case["leaves_private"]:
        index = entry["index"]
        secrets = {
            NodeIndex(p["node"]): bytes.fromhex(p["path_secret"]) for p in entry["path_secrets"]
        }
        key = TreeKEMPrivateKey(
            tree.suite, LeafIndex(index), bytes.fromhex(entry["encryption_priv"]), secrets
        )
        # The private state agrees with the tree: every node it knows is non-blank and holds
        # the public key of the private key derived here.
        try:
            key.check_against(tree)
        except Exception as exc:
            raise Mismatch(f"leaves_private[{index}]", str(exc)) from exc
        keys[index] = key
        signers[index] = bytes.fromhex(entry["signature_priv"])
    return keys, signers


def check(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    tree = RatchetTree.decode(suite, bytes.fromhex(case["ratchet_tree"]))
    keys, signers = _private_keys(tree, case)
    context = GroupContext(
        version=ProtocolVersion.MLS10,
        cipher_suite=case["cipher_suite"],
        group_id=bytes.fromhex(case["group_id"]),
        epoch=case["epoch"],
        tree_hash=tree.tree_hash(),
        confirmed_transcript_hash=bytes.fromhex(case["confirmed_transcript_hash"]),
        extensions=(),
    )
    members = [i for i, _ in tree.leaves()]
    for u, entry in enumerate(case["update_paths"]):
        sender = LeafIndex(entry["sender"])
        path = UpdatePath.decode(bytes.fromhex(entry["update_path"]))
        for j in members:
            if j == sender:
                continue
            if j not in keys:
                raise Mismatch(f"leaves_private[{j}]", "no private state for a non-blank leaf")
            merged = tree.copy()
            # Processing the path at leaf j (which checks that it is parent-hash valid
            # relative to the tree) yields path_secrets[j] and the commit secret.
            done = process_update_path(merged, sender, path, context, keys[j])
            expect(
                f"update_paths[{u}].path_secrets[{j}]", done.path_secret, entry["path_secrets"][j]
            )
            expect(f"update_paths[{u}].commit_secret", done.commit_secret, entry["commit_secret"])
            # The merged tree has the expected root tree hash, and valid parent hashes.
            expect(
                f"update_paths[{u}].tree_hash_after", merged.tree_hash(), entry["tree_hash_after"]
            )
            try:
                validate_parent_hashes(merged)
            except Exception as exc:
                raise Mismatch(f"update_paths[{u}] (merged parent hashes)", str(exc)) from exc
        # A fresh UpdatePath from the same sender, processed by every other member, gives
        # every one of them the committer's commit secret.
        own = tree.copy()
        created = create_update_path(own, sender, context, signers[sender])
        for j in members:
            if j == sender:
                continue
            merged = tree.copy()
            done = process_update_path(merged, sender, created.update_path, context, keys[j])
            if done.commit_secret != created.commit_secret:
                raise Mismatch(f"update_paths[{u}] (new path commit secret at leaf {j})")
            expect(
                f"update_paths[{u}] (new path tree hash at leaf {j})",
                merged.tree_hash(),
                own.tree_hash().hex(),
            )
