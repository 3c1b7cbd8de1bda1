"""Forging Commits that break exactly one rule (OpenMLS "frankenstein" style).

* :func:`forge_commit` lets our own committer build a Commit a validator would refuse, by
  disabling that validator for the creation only: the result is correctly signed, carries a
  valid membership tag and the confirmation tag of the epoch the committer computed.
* :func:`reframe` re-signs and re-tags a (public) Commit after its FramedContent or its
  confirmation tag was changed.
* :func:`repath` changes the UpdatePath of a Commit, then recomputes the path leaf's
  ``parent_hash`` and signature so that only the rule under test can fail.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from types import ModuleType
from typing import Any
from unittest import mock

import pytest

from mls.credentials import Credential
from mls.crypto.ciphersuite import get_suite
from mls.framing import AuthenticatedContent, FramedContent, MLSMessage, PublicMessage
from mls.group.group import Group
from mls.group.welcome import JoinKeys
from mls.key_package import KeyPackage
from mls.leaf_node import LeafNodeSource
from mls.message_protection import protect_public_message, sign_framed_content
from mls.messages import Commit, Proposal, ProposalOrRef, Update
from mls.treekem import UpdatePath, node_key_pair
from tests.mls.group_harness import Identity, unchanged


def _noop(*_args: Any, **_kwargs: Any) -> None:
    return None


@contextmanager
def relaxed(*targets: tuple[ModuleType | type, str]) -> Iterator[None]:
    """Replaces each ``(owner, name)`` by a function that accepts everything."""
    with ExitStack() as stack:
        for owner, name in targets:
            stack.enter_context(mock.patch.object(owner, name, _noop))
        yield


def forge_commit(
    committer: Group,
    proposals: Sequence[Proposal] = (),
    *,
    relax: Sequence[tuple[ModuleType | type, str]] = (),
    **kw: Any,
) -> bytes:
    """A Commit by ``committer`` built with the validators ``relax`` names disabled.

    The committer's pending Commit is dropped: its state stays in the current epoch.
    """
    with relaxed(*relax):
        created = committer.commit(proposals, **kw)
    committer.clear_pending_commit()
    return created.message.encode()


def public_message(message: bytes) -> PublicMessage:
    body = MLSMessage.decode(message).body
    assert isinstance(body, PublicMessage)
    return body


def reframe(
    committer: Group,
    message: bytes,
    mutate: Callable[[FramedContent], FramedContent] = lambda c: c,
    *,
    confirmation_tag: bytes | None = None,
) -> bytes:
    """``message`` (a PublicMessage of ``committer``) with its content changed by ``mutate``,
    re-signed by the committer and re-tagged with the epoch's membership key; the
    confirmation tag is kept unless ``confirmation_tag`` is given."""
    state = committer.state
    public = public_message(message)
    content = mutate(public.content)
    wire_format = MLSMessage.decode(message).wire_format
    signature = sign_framed_content(
        state.suite, state.signature_priv, wire_format, content, state.group_context
    )
    tag = public.auth.confirmation_tag if confirmation_tag is None else confirmation_tag
    auth = dataclasses.replace(public.auth, signature=signature, confirmation_tag=tag)
    authenticated = AuthenticatedContent(wire_format, content, auth)
    protected = protect_public_message(
        state.suite,
        authenticated,
        membership_key=state.secrets.membership_key,
        group_context=state.group_context,
    )
    return MLSMessage.of(protected).encode()


def commit_of(content: FramedContent) -> Commit:
    commit = content.commit
    assert commit is not None
    return commit


def repath(
    committer: Group,
    message: bytes,
    mutate: Callable[[UpdatePath], UpdatePath],
    *,
    fix_parent_hash: bool = True,
) -> bytes:
    """``message`` with its UpdatePath changed by ``mutate``; with ``fix_parent_hash`` the
    leaf's ``parent_hash`` is recomputed for the new path keys and the leaf re-signed.

    The parent hash is computed on the committer's current tree, which is the tree after the
    proposals for Commits without Add/Remove/Update (the only ones this is used with).
    """
    state = committer.state

    def change(content: FramedContent) -> FramedContent:
        commit = commit_of(content)
        assert commit.path is not None
        path = mutate(commit.path)
        if fix_parent_hash:
            tree = state.tree
            fdp = tree.filtered_direct_path(state.own_leaf)
            keys = [node.encryption_key for node in path.nodes]
            if len(keys) == len(fdp):
                _, parent_hash = tree.path_parent_hashes(fdp, keys)
                leaf = dataclasses.replace(
                    path.leaf_node, parent_hash=parent_hash, signature=b""
                ).signed(
                    state.suite,
                    state.signature_priv,
                    group_id=state.group_id,
                    leaf_index=state.own_leaf,
                )
                path = dataclasses.replace(path, leaf_node=leaf)
        return dataclasses.replace(content, commit=dataclasses.replace(commit, path=path))

    return reframe(committer, message, change)


def identity_with(
    suite_id: int,
    name: bytes,
    *,
    signature_priv: bytes | None = None,
    **generate: Any,
) -> Identity:
    """Like :func:`tests.mls.group_harness.new_identity`, with ``KeyPackage.generate``
    keyword arguments (``capabilities``, ``extensions``, ``leaf_extensions``...)."""
    suite = get_suite(suite_id)
    if signature_priv is None:
        signature_priv, _ = suite.generate_signature_key_pair()
    kp, keys = KeyPackage.generate(suite, signature_priv, Credential.basic(name), **generate)
    join = JoinKeys(kp, keys.init_priv, keys.encryption_priv, keys.signature_priv)
    return Identity(suite, name, signature_priv, kp, join)


def with_proposals(
    committer: Group,
    message: bytes,
    items: Callable[[tuple[ProposalOrRef, ...]], Sequence[ProposalOrRef]],
) -> bytes:
    """``message`` with its Commit's proposal list replaced by ``items(old list)``,
    re-signed and re-tagged (:func:`reframe`)."""

    def change(content: FramedContent) -> FramedContent:
        commit = commit_of(content)
        new = dataclasses.replace(commit, proposals=tuple(items(commit.proposals)))
        return dataclasses.replace(content, commit=new)

    return reframe(committer, message, change)


def update_proposal(group: Group, **changes: Any) -> Proposal:
    """An Update for ``group``'s own leaf with a fresh encryption key, ``changes`` applied
    before signing (``leaf_index`` chooses the index signed for)."""
    state = group.state
    leaf = state.tree.leaf_node(state.own_leaf)
    assert leaf is not None
    _, pub = node_key_pair(state.suite, os.urandom(state.suite.hash_length))
    fields: dict[str, Any] = {
        "encryption_key": pub,
        "leaf_node_source": LeafNodeSource.UPDATE,
        "lifetime": None,
        "parent_hash": None,
        "signature": b"",
    }
    fields.update(changes)
    leaf_index = fields.pop("leaf_index", state.own_leaf)
    new = dataclasses.replace(leaf, **fields).signed(
        state.suite, state.signature_priv, group_id=state.group_id, leaf_index=leaf_index
    )
    return Proposal.of(Update(new))


def rejects(receiver: Group, message: bytes, error: type[Exception], rule: str) -> None:
    """``receiver`` refuses ``message`` with ``error`` of rule ``rule`` and is unchanged."""
    with unchanged(receiver), pytest.raises(error) as info:
        receiver.process(message)
    assert info.value.rule == rule  # type: ignore[attr-defined]
