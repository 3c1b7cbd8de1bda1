"""The decoder invariant (VALIDATION.md DEC-01..07; STYLE §14.3): for arbitrary bytes and for
mutations of valid encodings, every top-level decoder returns a value or raises
``DecodeError``; nothing else escapes. A value it accepts re-encodes to exactly the input
(non-canonical encodings are refused), and proper prefixes or extra trailing bytes of a valid
encoding are refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mls.codec import Struct, Vector, decode_exact, encode_value
from mls.credentials import Credential
from mls.errors import DecodeError
from mls.extensions import Extension, ExtensionType, extension_value, make_extension
from mls.framing import (
    AuthenticatedContent,
    ContentType,
    FramedContentAuthData,
    FramedContentTBS,
    MLSMessage,
    PrivateMessage,
    PublicMessage,
    SenderData,
    decode_private_message_content,
    encode_private_message_content,
)
from mls.group_context import GroupContext
from mls.key_package import KeyPackage
from mls.leaf_node import LeafNode
from mls.messages import (
    Add,
    Commit,
    ExternalInit,
    GroupContextExtensions,
    GroupInfo,
    GroupSecrets,
    PreSharedKey,
    Proposal,
    ReInit,
    Remove,
    Update,
    Welcome,
)
from mls.psk_id import PreSharedKeyID
from mls.tree_nodes import RATCHET_TREE, Node, decode_ratchet_tree, encode_ratchet_tree
from mls.treekem import UpdatePath
from tests.mls.vectors._runner import VECTORS
from tests.strategies import for_codec, for_struct

EXTENSIONS = Vector(Extension)


@dataclass(frozen=True)
class Target:
    """A top-level decoder; ``encode`` re-encodes what it returns (``None``: not canonical)."""

    decode: Callable[[bytes], Any]
    encode: Callable[[Any], bytes] | None


def _struct(cls: type[Struct]) -> Target:
    return Target(cls.decode, lambda v: v.encode())


def _auth(content_type: ContentType) -> Target:
    return Target(
        lambda b: FramedContentAuthData.decode_exact_for(b, content_type), lambda v: v.encode()
    )


def _typed_extension(extension_type: ExtensionType) -> Target:
    return Target(
        lambda b: extension_value(Extension(extension_type, b)),
        lambda v: make_extension(extension_type, v).extension_data,
    )


STRUCT_TARGETS: tuple[type[Struct], ...] = (
    MLSMessage,
    KeyPackage,
    Welcome,
    GroupInfo,
    Proposal,
    Commit,
    LeafNode,
    Node,
    GroupSecrets,
    GroupContext,
    PublicMessage,
    PrivateMessage,
    AuthenticatedContent,
    FramedContentTBS,
    SenderData,
    PreSharedKeyID,
    UpdatePath,
    Credential,
)

TARGETS: dict[str, Target] = {
    **{cls.__name__: _struct(cls) for cls in STRUCT_TARGETS},
    "extensions": Target(
        lambda b: decode_exact(EXTENSIONS, b), lambda v: encode_value(EXTENSIONS, v)
    ),
    "ratchet_tree": Target(decode_ratchet_tree, encode_ratchet_tree),
    **{f"auth[{t.name}]": _auth(t) for t in ContentType},
    **{
        f"extension[{t.name}]": _typed_extension(t)
        for t in ExtensionType
        if t != ExtensionType.RATCHET_TREE
    },
    # Padding makes PrivateMessageContent non-canonical: only the DecodeError invariant holds.
    **{
        f"private_content[{t.name}]": Target(
            lambda b, t=t: decode_private_message_content(t, b), None
        )
        for t in ContentType
    },
}


PROPOSAL_VARIANTS: dict[str, type[Struct]] = {
    "add_proposal": Add,
    "update_proposal": Update,
    "remove_proposal": Remove,
    "pre_shared_key_proposal": PreSharedKey,
    "re_init_proposal": ReInit,
    "external_init_proposal": ExternalInit,
    "group_context_extensions_proposal": GroupContextExtensions,
}


def _vector_seeds() -> dict[str, list[bytes]]:
    """Valid encodings for each target, taken from the first cases of messages.json."""
    cases = json.loads((VECTORS / "messages.json").read_text())[:3]
    seeds: dict[str, list[bytes]] = {name: [] for name in TARGETS}

    def add(name: str, data: bytes) -> None:
        seeds[name].append(data)

    for case in cases:
        raw = {k: bytes.fromhex(v) for k, v in case.items()}
        for field in ("mls_welcome", "mls_group_info", "mls_key_package", "private_message"):
            add("MLSMessage", raw[field])
        welcome = MLSMessage.decode(raw["mls_welcome"]).welcome
        group_info = MLSMessage.decode(raw["mls_group_info"]).group_info
        key_package = MLSMessage.decode(raw["mls_key_package"]).key_package
        private = MLSMessage.decode(raw["private_message"]).private_message
        assert welcome and group_info and key_package and private
        add("Welcome", welcome.encode())
        add("GroupInfo", group_info.encode())
        add("GroupContext", group_info.group_context.encode())
        add("extensions", encode_value(EXTENSIONS, group_info.extensions))
        add("KeyPackage", key_package.encode())
        add("LeafNode", key_package.leaf_node.encode())
        add("Credential", key_package.leaf_node.credential.encode())
        add("PrivateMessage", private.encode())
        add("ratchet_tree", raw["ratchet_tree"])
        for node in decode_ratchet_tree(raw["ratchet_tree"])[:2]:
            if node is not None:
                add("Node", node.encode())
        add("GroupSecrets", raw["group_secrets"])
        # Every proposal type, wrapped as a Proposal (the file holds the bare variants).
        for field, variant in PROPOSAL_VARIANTS.items():
            add("Proposal", Proposal.of(variant.decode(raw[field])).encode())  # type: ignore[arg-type]
        add("Commit", raw["commit"])
        commit = Commit.decode(raw["commit"])
        if commit.path is not None:
            add("UpdatePath", commit.path.encode())
        for field in (
            "public_message_application",
            "public_message_proposal",
            "public_message_commit",
        ):
            add("MLSMessage", raw[field])
            public = MLSMessage.decode(raw[field]).public_message
            assert public is not None
            add("PublicMessage", public.encode())
            content_type = public.content.content_type
            add(f"auth[{content_type.name}]", public.auth.encode())
            add(
                "AuthenticatedContent",
                AuthenticatedContent(
                    MLSMessage.decode(raw[field]).wire_format, public.content, public.auth
                ).encode(),
            )
            add(
                f"private_content[{content_type.name}]",
                encode_private_message_content(content_type, public.content.body, public.auth, 3),
            )
            if public.content.proposal is not None:
                add("Proposal", public.content.proposal.encode())
        for ext in group_info.extensions:
            if (
                ext.extension_type in set(ExtensionType)
                and ext.extension_type != ExtensionType.RATCHET_TREE
            ):
                add(f"extension[{ExtensionType(ext.extension_type).name}]", ext.extension_data)
    return seeds


SEEDS = _vector_seeds()
# Targets the vectors do not feed get generated seeds in the hypothesis tests.
SEEDED = sorted(name for name, s in SEEDS.items() if s)
PREFIX_FREE = [name for name in SEEDED if TARGETS[name].encode is not None]


def _check(target: Target, data: bytes) -> None:
    """The invariant: a value (re-encoding to exactly ``data``) or DecodeError."""
    try:
        value = target.decode(data)
    except DecodeError:
        return
    if target.encode is not None:
        assert target.encode(value) == data


def test_vector_seeds_cover_the_main_decoders() -> None:
    for name in (
        "MLSMessage",
        "KeyPackage",
        "Welcome",
        "GroupInfo",
        "Proposal",
        "Commit",
        "LeafNode",
        "extensions",
        "ratchet_tree",
        "GroupSecrets",
        "PublicMessage",
        "UpdatePath",
        "auth[COMMIT]",
        "private_content[COMMIT]",
    ):
        assert SEEDS[name], name


@pytest.mark.parametrize("name", sorted(TARGETS))
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(name: str, data: bytes) -> None:
    _check(TARGETS[name], data)


@pytest.mark.parametrize("name", PREFIX_FREE)
def test_every_truncation_and_trailing_byte_is_refused(name: str) -> None:
    target = TARGETS[name]
    for seed in SEEDS[name]:
        assert target.encode is not None and target.encode(target.decode(seed)) == seed
        for cut in range(len(seed)):
            with pytest.raises(DecodeError):
                target.decode(seed[:cut])
        # DEC-05: trailing bytes after a complete value
        with pytest.raises(DecodeError):
            target.decode(seed + b"\x00")


@pytest.mark.parametrize("content_type", list(ContentType), ids=lambda t: t.name)
def test_private_content_padding_is_reported_not_judged(content_type: ContentType) -> None:
    seed = SEEDS[f"private_content[{content_type.name}]"][0]
    _, _, ok = decode_private_message_content(content_type, seed)
    assert ok
    _, _, ok = decode_private_message_content(content_type, seed + b"\x00\x01")
    assert not ok


MUTATIONS = ("flip", "truncate", "insert", "delete", "header", "trailing", "overwrite")


def _mutate(data: st.DataObject, seed: bytes) -> bytes:
    kind = data.draw(st.sampled_from(MUTATIONS))
    if not seed:
        return data.draw(st.binary(min_size=1, max_size=4))
    pos = data.draw(st.integers(0, len(seed) - 1))
    if kind == "flip":
        bit = data.draw(st.integers(0, 7))
        return seed[:pos] + bytes([seed[pos] ^ (1 << bit)]) + seed[pos + 1 :]
    if kind == "truncate":
        return seed[:pos]
    if kind == "insert":
        return seed[:pos] + data.draw(st.binary(min_size=1, max_size=4)) + seed[pos:]
    if kind == "delete":
        return seed[:pos] + seed[pos + data.draw(st.integers(1, 4)) :]
    if kind == "header":
        # Length-header tweaks: reserved 11 prefix, non-minimal and oversized headers, off-by-one.
        new = data.draw(
            st.sampled_from(
                [
                    b"\xc0",
                    b"\xff",
                    b"\x40\x05",
                    b"\x80\x00\x00\x3f",
                    b"\x7f\xff",
                    b"\xbf\xff\xff\xff",
                    bytes([(seed[pos] + 1) & 0xFF]),
                    bytes([(seed[pos] - 1) & 0xFF]),
                ]
            )
        )
        return seed[:pos] + new + seed[pos + 1 :]
    if kind == "trailing":
        return seed + data.draw(st.binary(min_size=1, max_size=3))
    span = data.draw(st.binary(min_size=1, max_size=4))
    return seed[:pos] + span + seed[pos + len(span) :]


@pytest.mark.parametrize("name", SEEDED)
@given(data=st.data())
def test_mutated_vector_encodings(name: str, data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SEEDS[name]))
    _check(TARGETS[name], _mutate(data, seed))


# Every struct target, the ratchet tree and extension lists also get seeds generated from their
# codec declarations, so mutations reach variants the vectors do not hold (every proposal,
# credential, sender, PSK and node type).
GENERATED: dict[str, st.SearchStrategy[bytes]] = {
    **{cls.__name__: for_struct(cls).map(lambda v: v.encode()) for cls in STRUCT_TARGETS},
    "ratchet_tree": for_codec(RATCHET_TREE).map(encode_ratchet_tree),
    "extensions": for_codec(EXTENSIONS).map(lambda v: encode_value(EXTENSIONS, v)),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
@given(data=st.data())
def test_mutated_generated_encodings(name: str, data: st.DataObject) -> None:
    seed = data.draw(GENERATED[name])
    _check(TARGETS[name], _mutate(data, seed))
