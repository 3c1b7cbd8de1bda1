from __future__ import annotations

import pytest

from mls.codec import Reader, Writer
from mls.errors import DecodeError, UsageError
from mls.framing import (
    AuthenticatedContent,
    AuthenticatedContentTBM,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    FramedContentTBS,
    MLSMessage,
    PrivateContentAAD,
    PrivateMessage,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    SenderType,
    WireFormat,
    decode_private_message_content,
    encode_private_message_content,
)
from mls.group_context import GroupContext, ProtocolVersion
from mls.messages import Commit, GroupInfo, Proposal, Remove, Welcome
from mls.tree_nodes import Node, ParentNode, decode_ratchet_tree

from ._build import key_package, keys

CONTEXT = GroupContext(ProtocolVersion.MLS10, 1, b"g", 0, b"t", b"c", ())
COMMIT = Commit((), None)


def _content(sender: Sender, body: bytes | Proposal | Commit = b"hi") -> FramedContent:
    return FramedContent.with_body(b"g", 1, sender, b"", body)


def _auth(content: FramedContent) -> FramedContentAuthData:
    tag = b"T" if content.content_type == ContentType.COMMIT else None
    return FramedContentAuthData(b"S", tag)


# -- Sender and FramedContent ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "encoded"),
    [
        (Sender.member(7), "01 00000007"),
        (Sender.external(2), "02 00000002"),
        (Sender.new_member_proposal(), "03"),
        (Sender.new_member_commit(), "04"),
    ],
)
def test_sender_bytes(sender: Sender, encoded: str) -> None:
    assert sender.encode() == bytes.fromhex(encoded)
    assert Sender.decode(bytes.fromhex(encoded)) == sender


def test_framed_content_bytes_and_body() -> None:
    content = _content(Sender.member(1), Proposal.of(Remove(3)))
    assert content.encode() == bytes.fromhex(
        "0167 0000000000000001 01 00000001 00 02 0003 00000003"
    )
    decoded = FramedContent.decode(content.encode())
    assert decoded.content_type == ContentType.PROPOSAL
    assert decoded.body == Proposal.of(Remove(3))
    assert decoded.application_data is None and decoded.commit is None


def test_application_data_is_not_in_repr() -> None:
    assert "secret-words" not in repr(_content(Sender.member(0), b"secret-words"))


# -- FramedContentAuthData: the tag depends on the content type ---------------------------------


def test_auth_data_carries_confirmation_tag_only_for_commits() -> None:
    assert FramedContentAuthData.decode_exact_for(b"\x01S\x01T", ContentType.COMMIT) == (
        FramedContentAuthData(b"S", b"T")
    )
    assert FramedContentAuthData.decode_exact_for(b"\x01S", ContentType.PROPOSAL) == (
        FramedContentAuthData(b"S", None)
    )
    with pytest.raises(DecodeError):  # the tag is missing
        FramedContentAuthData.decode_exact_for(b"\x01S", ContentType.COMMIT)
    with pytest.raises(DecodeError):  # a tag where none belongs is trailing data
        FramedContentAuthData.decode_exact_for(b"\x01S\x01T", ContentType.APPLICATION)


def test_auth_data_needs_its_content_type_to_decode() -> None:
    with pytest.raises(UsageError):
        FramedContentAuthData.decode_from(Reader(b"\x01S"))


def test_auth_data_encode_for_checks_the_tag() -> None:
    with pytest.raises(UsageError):
        FramedContentAuthData(b"S", None).encode_for(Writer(), ContentType.COMMIT)
    with pytest.raises(UsageError):
        FramedContentAuthData(b"S", b"T").encode_for(Writer(), ContentType.APPLICATION)


def test_authenticated_content_roundtrips_and_checks_the_tag() -> None:
    content = _content(Sender.member(0), COMMIT)
    ac = AuthenticatedContent(WireFormat.MLS_PUBLIC_MESSAGE, content, _auth(content))
    encoded = ac.encode()
    assert encoded == b"\x00\x01" + content.encode() + b"\x01S\x01T"
    assert AuthenticatedContent.decode(encoded) == ac
    with pytest.raises(UsageError):
        AuthenticatedContent(
            WireFormat.MLS_PUBLIC_MESSAGE, content, FramedContentAuthData(b"S", None)
        ).encode()


# -- PublicMessage and FramedContentTBS: presence decided by the sender type ---------------------


@pytest.mark.parametrize(
    "sender",
    [
        Sender.member(0),
        Sender.external(0),
        Sender.new_member_proposal(),
        Sender.new_member_commit(),
    ],
    ids=lambda s: s.sender_type.name,
)
def test_public_message_has_membership_tag_only_for_members(sender: Sender) -> None:
    content = _content(sender, Proposal.of(Remove(1)))
    is_member = sender.sender_type == SenderType.MEMBER
    message = PublicMessage(content, _auth(content), b"M" if is_member else None)
    encoded = message.encode()
    tail = b"\x01S" + (b"\x01M" if is_member else b"")
    assert encoded == content.encode() + tail
    assert PublicMessage.decode(encoded) == message
    with pytest.raises(UsageError):
        PublicMessage(content, _auth(content), None if is_member else b"M").encode()


@pytest.mark.parametrize(
    "sender",
    [
        Sender.member(0),
        Sender.external(0),
        Sender.new_member_proposal(),
        Sender.new_member_commit(),
    ],
    ids=lambda s: s.sender_type.name,
)
def test_framed_content_tbs_has_context_for_member_and_new_member_commit(sender: Sender) -> None:
    content = _content(sender, Proposal.of(Remove(1)))
    wants = sender.sender_type in (SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT)
    tbs = FramedContentTBS(
        ProtocolVersion.MLS10, WireFormat.MLS_PUBLIC_MESSAGE, content, CONTEXT if wants else None
    )
    encoded = tbs.encode()
    assert encoded == b"\x00\x01\x00\x01" + content.encode() + (CONTEXT.encode() if wants else b"")
    assert FramedContentTBS.decode(encoded) == tbs
    tbm = AuthenticatedContentTBM(tbs, _auth(content))
    assert tbm.encode() == encoded + b"\x01S"
    assert AuthenticatedContentTBM.decode(tbm.encode()) == tbm
    with pytest.raises(UsageError):
        FramedContentTBS(
            ProtocolVersion.MLS10,
            WireFormat.MLS_PUBLIC_MESSAGE,
            content,
            None if wants else CONTEXT,
        ).encode()


# -- PrivateMessage and its parts ----------------------------------------------------------------


def test_private_message_structs_bytes() -> None:
    msg = PrivateMessage(b"g", 2, ContentType.APPLICATION, b"ad", b"esd", b"ct")
    assert msg.encode() == bytes.fromhex("0167 0000000000000002 01 026164 03657364 026374")
    assert PrivateContentAAD(b"g", 2, ContentType.APPLICATION, b"ad").encode() == bytes.fromhex(
        "0167 0000000000000002 01 026164"
    )
    assert SenderDataAAD(b"g", 2, ContentType.COMMIT).encode() == bytes.fromhex(
        "0167 0000000000000002 03"
    )
    data = SenderData(1, 2, b"\xde\xad\xbe\xef")
    assert data.encode() == bytes.fromhex("00000001 00000002 deadbeef")
    assert SenderData.decode(data.encode()) == data


def test_sender_data_reuse_guard_is_four_bytes() -> None:
    with pytest.raises(UsageError):
        SenderData(1, 2, b"\x00").encode()
    with pytest.raises(DecodeError):
        SenderData.decode(bytes.fromhex("00000001 00000002 dead"))


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (ContentType.APPLICATION, b"hello"),
        (ContentType.PROPOSAL, Proposal.of(Remove(4))),
        (ContentType.COMMIT, COMMIT),
    ],
    ids=lambda v: getattr(v, "name", type(v).__name__),
)
def test_private_message_content_roundtrip_with_padding(
    content_type: ContentType, body: bytes | Proposal | Commit
) -> None:
    tag = b"T" if content_type == ContentType.COMMIT else None
    auth = FramedContentAuthData(b"S", tag)
    plain = encode_private_message_content(content_type, body, auth, padding_size=5)
    assert plain.endswith(b"\x00" * 5)
    assert decode_private_message_content(content_type, plain) == (body, auth, True)
    assert decode_private_message_content(content_type, plain[:-5]) == (body, auth, True)
    # Non-zero padding is reported, not judged here.
    assert decode_private_message_content(content_type, plain[:-1] + b"\x01")[2] is False


def test_private_message_content_refuses_mismatched_body() -> None:
    auth = FramedContentAuthData(b"S", None)
    with pytest.raises(UsageError):
        encode_private_message_content(ContentType.PROPOSAL, b"not a proposal", auth)
    with pytest.raises(UsageError):
        encode_private_message_content(ContentType.APPLICATION, b"x", auth, padding_size=-1)
    with pytest.raises(DecodeError):
        decode_private_message_content(ContentType.COMMIT, b"\x00\x00\x01S")  # no tag


# -- MLSMessage -----------------------------------------------------------------------------------


def test_mls_message_of_every_wire_format() -> None:
    content = _content(Sender.member(0))
    bodies = [
        PublicMessage(content, _auth(content), b"M"),
        PrivateMessage(b"g", 0, ContentType.APPLICATION, b"", b"", b""),
        Welcome(1, (), b""),
        GroupInfo(CONTEXT, (), b"", 0, b""),
        key_package(keys()),
    ]
    for wire_format, body in zip(WireFormat, bodies, strict=True):
        msg = MLSMessage.of(body)
        assert msg.wire_format == wire_format
        encoded = msg.encode()
        assert encoded == b"\x00\x01" + wire_format.to_bytes(2, "big") + body.encode()
        decoded = MLSMessage.decode(encoded)
        assert decoded.body == body


# -- Wire-decoding rules (VALIDATION.md §1.1) ----------------------------------------------------

PRIVATE = MLSMessage.of(PrivateMessage(b"g", 0, ContentType.APPLICATION, b"", b"", b"x")).encode()
# 0001 0002 | 01 67 | 0000000000000000 | 01 | 00 | 00 | 01 78


def test_private_fixture_layout() -> None:
    assert PRIVATE == bytes.fromhex("0001 0002 0167 0000000000000000 01 00 00 0178")


@pytest.mark.parametrize("header", ["4001", "80000001"])
def test_dec01_non_minimal_length_header_is_rejected(header: str) -> None:
    bad = PRIVATE[:4] + bytes.fromhex(header) + PRIVATE[5:]
    with pytest.raises(DecodeError):
        MLSMessage.decode(bad)


@pytest.mark.parametrize("header", ["c1", "ff"])
def test_dec02_length_header_with_11_prefix_is_rejected(header: str) -> None:
    bad = PRIVATE[:4] + bytes.fromhex(header) + PRIVATE[5:]
    with pytest.raises(DecodeError):
        MLSMessage.decode(bad)


def test_dec03_optional_presence_octet_other_than_0_or_1_is_rejected() -> None:
    with pytest.raises(DecodeError):
        Commit.decode(b"\x00\x02")
    with pytest.raises(DecodeError):
        Commit.decode(b"\x00\xff")


def test_dec04_vector_length_past_the_end_is_rejected() -> None:
    with pytest.raises(DecodeError):
        MLSMessage.decode(PRIVATE[:-2] + b"\x05x")
    with pytest.raises(DecodeError):
        MLSMessage.decode(PRIVATE[:-2] + b"\xbf\xff\xff\xffx")  # 2^30 - 1 claimed


def test_dec04_element_size_mismatch_is_rejected() -> None:
    # uint32 unmerged_leaves<V> holding 5 bytes
    good = ParentNode(b"k", b"", (1,)).encode()
    assert good == bytes.fromhex("016b 00 04 00000001")
    with pytest.raises(DecodeError):
        ParentNode.decode(bytes.fromhex("016b 00 05 00000001 00"))


def test_dec05_trailing_bytes_after_mls_message_are_rejected() -> None:
    MLSMessage.decode(PRIVATE)
    with pytest.raises(DecodeError):
        MLSMessage.decode(PRIVATE + b"\x00")


@pytest.mark.parametrize("version", [0, 2, 0x0100])
def test_dec06_version_other_than_mls10_is_rejected(version: int) -> None:
    with pytest.raises(DecodeError):
        MLSMessage.decode(version.to_bytes(2, "big") + PRIVATE[2:])


@pytest.mark.parametrize("wire_format", [0, 6, 0xFFFF])
def test_dec06_unknown_wire_format_is_rejected(wire_format: int) -> None:
    with pytest.raises(DecodeError):
        MLSMessage.decode(PRIVATE[:2] + wire_format.to_bytes(2, "big") + PRIVATE[4:])


@pytest.mark.parametrize("content_type", [0, 4, 255])
def test_dec06_unknown_content_type_is_rejected(content_type: int) -> None:
    at = len(PRIVATE) - 5
    assert PRIVATE[at] == ContentType.APPLICATION
    with pytest.raises(DecodeError):
        MLSMessage.decode(PRIVATE[:at] + bytes([content_type]) + PRIVATE[at + 1 :])


@pytest.mark.parametrize("sender_type", [0, 5, 255])
def test_dec06_unknown_sender_type_is_rejected(sender_type: int) -> None:
    with pytest.raises(DecodeError):
        Sender.decode(bytes([sender_type]) + b"\x00\x00\x00\x00")


@pytest.mark.parametrize("node_type", [0, 3, 255])
def test_dec06_unknown_node_type_is_rejected(node_type: int) -> None:
    parent = Node.parent(ParentNode(b"k", b"", ()))
    assert parent.encode()[0] == 2
    with pytest.raises(DecodeError):
        Node.decode(bytes([node_type]) + parent.encode()[1:])
    good = b"\x01" + parent.encode()
    assert decode_ratchet_tree(bytes([len(good)]) + good) == (parent,)
    bad = b"\x01" + bytes([node_type]) + parent.encode()[1:]
    with pytest.raises(DecodeError):
        decode_ratchet_tree(bytes([len(bad)]) + bad)


def test_dec07_decoded_message_reencodes_identically() -> None:
    assert MLSMessage.decode(PRIVATE).encode() == PRIVATE
