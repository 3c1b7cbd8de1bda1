"""Message framing: the wire structs of RFC 9420 §6 and the MLSMessage envelope.

Structs only; the cryptography of §6.1-6.3 (signing, membership tags, sender-data and content
encryption) lives in ``mls.message_protection``. How the pieces nest::

    MLSMessage ─ version, wire_format
      ├ PublicMessage ── FramedContent ─ group_id, epoch, Sender, authenticated_data,
      │                  │               content_type ─> application_data | Proposal | Commit
      │                  ├ FramedContentAuthData ─ signature [, confirmation_tag if commit]
      │                  └ membership_tag (sender type member only)
      ├ PrivateMessage ─ group_id, epoch, content_type, authenticated_data,
      │                  encrypted_sender_data (SenderData), ciphertext (PrivateMessageContent)
      ├ Welcome | GroupInfo | KeyPackage

Some fields depend on a value outside their own struct: ``FramedContentAuthData`` carries a
confirmation tag only when the enclosing content is a commit, a ``PublicMessage`` carries a
membership tag only for member senders, and ``FramedContentTBS`` carries the group context only
for member and new-member-commit senders. Those structs have hand-written codecs; decoding
``FramedContentAuthData`` on its own needs the content type (:meth:`FramedContentAuthData.decode_for`).

``PrivateMessageContent`` has no fixed shape either (its body depends on the outer
``content_type`` and it ends in padding), so it is handled by two functions rather than a
struct: :func:`encode_private_message_content` and :func:`decode_private_message_content`.
The latter reports whether the padding is all zero; judging that is the protection layer's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated, Any

from .codec import (
    DEFAULT_MAX_SIZE,
    U32,
    U64,
    Codec,
    Empty,
    Enum,
    Fixed,
    Opaque,
    Optional,
    Reader,
    Select,
    Struct,
    StructCodec,
    Writer,
    reader_for,
)
from .errors import UsageError
from .group_context import VERSION, GroupContext, ProtocolVersion
from .key_package import KeyPackage
from .messages import Commit, GroupInfo, Proposal, Welcome

REUSE_GUARD_SIZE = 4  # RFC 9420 §6.3.2: opaque reuse_guard[4]


class WireFormat(IntEnum):
    """What an MLSMessage carries (RFC 9420 §6, §17.2). A closed enum."""

    MLS_PUBLIC_MESSAGE = 1
    MLS_PRIVATE_MESSAGE = 2
    MLS_WELCOME = 3
    MLS_GROUP_INFO = 4
    MLS_KEY_PACKAGE = 5


class ContentType(IntEnum):
    """What a framed message carries (RFC 9420 §6). A closed enum."""

    APPLICATION = 1
    PROPOSAL = 2
    COMMIT = 3


class SenderType(IntEnum):
    """Who sent a framed message (RFC 9420 §6). A closed enum."""

    MEMBER = 1
    EXTERNAL = 2
    NEW_MEMBER_PROPOSAL = 3
    NEW_MEMBER_COMMIT = 4


WIRE_FORMAT = Enum(WireFormat, 2)
CONTENT_TYPE = Enum(ContentType, 1)
SENDER_TYPE = Enum(SenderType, 1)


def _only(tags: type[IntEnum], tag_field: str, chosen: tuple[IntEnum, ...], codec: Any) -> Select:
    """A ``Select`` under which the ``chosen`` tags carry ``codec`` and the others nothing."""
    variants: dict[Any, Codec[Any] | type[Struct]] = {t: Empty for t in tags}
    for tag in chosen:
        variants[tag] = codec
    return Select(tag_field, variants)


@dataclass(frozen=True)
class Sender(Struct):
    """RFC 9420 §6. ``leaf_index`` is set for members, ``sender_index`` (an index into the
    ``external_senders`` extension) for external senders; new members carry neither."""

    sender_type: Annotated[SenderType, SENDER_TYPE]
    leaf_index: Annotated[
        int | None, _only(SenderType, "sender_type", (SenderType.MEMBER,), U32)
    ] = field(default=None, kw_only=True)
    sender_index: Annotated[
        int | None, _only(SenderType, "sender_type", (SenderType.EXTERNAL,), U32)
    ] = field(default=None, kw_only=True)

    @classmethod
    def member(cls, leaf_index: int) -> Sender:
        return cls(SenderType.MEMBER, leaf_index=leaf_index)

    @classmethod
    def external(cls, sender_index: int) -> Sender:
        return cls(SenderType.EXTERNAL, sender_index=sender_index)

    @classmethod
    def new_member_proposal(cls) -> Sender:
        return cls(SenderType.NEW_MEMBER_PROPOSAL)

    @classmethod
    def new_member_commit(cls) -> Sender:
        return cls(SenderType.NEW_MEMBER_COMMIT)


def _content(chosen: ContentType, codec: Any) -> Select:
    return _only(ContentType, "content_type", (chosen,), codec)


CONTENT_BODY: dict[ContentType, Codec[Any]] = {
    ContentType.APPLICATION: Opaque,
    ContentType.PROPOSAL: StructCodec(Proposal),
    ContentType.COMMIT: StructCodec(Commit),
}
"""The codec of a message body for each content type (``application_data``, ``Proposal``,
``Commit``)."""

ContentBody = bytes | Proposal | Commit
"""A message body: application data, a Proposal or a Commit."""


@dataclass(frozen=True)
class FramedContent(Struct):
    """A message's content and its context (RFC 9420 §6). Exactly the body field named by
    ``content_type`` is set; :attr:`body` returns it."""

    group_id: Annotated[bytes, Opaque]
    epoch: Annotated[int, U64]
    sender: Sender
    authenticated_data: Annotated[bytes, Opaque]
    content_type: Annotated[ContentType, CONTENT_TYPE]
    application_data: Annotated[bytes | None, _content(ContentType.APPLICATION, Opaque)] = field(
        default=None, kw_only=True, repr=False
    )
    proposal: Annotated[Proposal | None, _content(ContentType.PROPOSAL, Proposal)] = field(
        default=None, kw_only=True
    )
    commit: Annotated[Commit | None, _content(ContentType.COMMIT, Commit)] = field(
        default=None, kw_only=True
    )

    @property
    def body(self) -> ContentBody:
        """The application data, Proposal or Commit this content carries."""
        value: ContentBody | None
        if self.content_type == ContentType.APPLICATION:
            value = self.application_data
        elif self.content_type == ContentType.PROPOSAL:
            value = self.proposal
        else:
            value = self.commit
        if value is None:
            raise UsageError(f"FramedContent of type {self.content_type.name} has no body")
        return value

    @classmethod
    def with_body(
        cls,
        group_id: bytes,
        epoch: int,
        sender: Sender,
        authenticated_data: bytes,
        body: ContentBody,
    ) -> FramedContent:
        """Builds a FramedContent, taking ``content_type`` from the body's type."""
        common = (group_id, epoch, sender, authenticated_data)
        if isinstance(body, Proposal):
            return cls(*common, ContentType.PROPOSAL, proposal=body)
        if isinstance(body, Commit):
            return cls(*common, ContentType.COMMIT, commit=body)
        return cls(*common, ContentType.APPLICATION, application_data=bytes(body))


@dataclass(frozen=True)
class FramedContentAuthData(Struct):
    """The signature over a FramedContent and, for commits only, the confirmation tag
    (RFC 9420 §6.1).

    Whether ``confirmation_tag`` is on the wire depends on the enclosing content's type, so
    decode with :meth:`decode_for`; plain :meth:`decode_from` is refused. :meth:`encode_into`
    writes the tag when it is set; :meth:`encode_for` also checks it against a content type.
    """

    signature: Annotated[bytes, Opaque]
    confirmation_tag: Annotated[bytes | None, Optional(Opaque)]
    """Set exactly when the content type is commit. (The wire form has no presence octet; the
    marker only names the field's type.)"""

    def encode_into(self, w: Writer) -> None:
        w.opaque(self.signature)
        if self.confirmation_tag is not None:
            w.opaque(self.confirmation_tag)

    def encode_for(self, w: Writer, content_type: ContentType) -> None:
        """Encodes, checking the tag is present exactly for commits.

        Raises:
            UsageError: the tag's presence does not match ``content_type``.
        """
        if (self.confirmation_tag is not None) != (content_type == ContentType.COMMIT):
            raise UsageError("confirmation_tag must be set exactly for commit content")
        self.encode_into(w)

    @classmethod
    def decode_from(cls, r: Reader) -> FramedContentAuthData:
        raise UsageError("FramedContentAuthData needs its content type: use decode_for")

    @classmethod
    def decode_for(cls, r: Reader, content_type: ContentType) -> FramedContentAuthData:
        """Decodes the auth data of content of type ``content_type``.

        Raises:
            DecodeError: malformed or truncated bytes.
        """
        signature = r.opaque()
        tag = r.opaque() if content_type == ContentType.COMMIT else None
        return cls(signature, tag)

    @classmethod
    def decode_exact_for(
        cls, data: bytes, content_type: ContentType, *, max_size: int = DEFAULT_MAX_SIZE
    ) -> FramedContentAuthData:
        """Decodes exactly one auth data of content of type ``content_type`` from ``data``.

        Raises:
            DecodeError: the bytes are not exactly one valid encoding, or exceed ``max_size``.
        """
        r = reader_for(data, max_size)
        value = cls.decode_for(r, content_type)
        r.expect_end(cls.__name__)
        return value


@dataclass(frozen=True)
class AuthenticatedContent(Struct):
    """A FramedContent with its authentication, as it went on the wire (RFC 9420 §6.1). Its
    encoding is the input of ``MakeProposalRef`` and of the confirmed transcript hash."""

    wire_format: Annotated[WireFormat, WIRE_FORMAT]
    content: FramedContent
    auth: FramedContentAuthData

    def encode_into(self, w: Writer) -> None:
        WIRE_FORMAT.encode(w, self.wire_format)
        self.content.encode_into(w)
        self.auth.encode_for(w, self.content.content_type)

    @classmethod
    def decode_from(cls, r: Reader) -> AuthenticatedContent:
        wire_format = WIRE_FORMAT.decode(r)
        content = FramedContent.decode_from(r)
        auth = FramedContentAuthData.decode_for(r, content.content_type)
        return cls(wire_format, content, auth)


_CONTEXT_SENDERS = (SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT)
"""Sender types whose framing signature covers the group context (RFC 9420 §6.1)."""


@dataclass(frozen=True)
class FramedContentTBS(Struct):
    """The content a framing signature covers (RFC 9420 §6.1). ``context`` is set exactly for
    member and new-member-commit senders."""

    version: Annotated[ProtocolVersion, VERSION]
    wire_format: Annotated[WireFormat, WIRE_FORMAT]
    content: FramedContent
    context: Annotated[GroupContext | None, Optional(GroupContext)]
    """The group context (no presence octet on the wire: the sender type decides)."""

    def encode_into(self, w: Writer) -> None:
        VERSION.encode(w, self.version)
        WIRE_FORMAT.encode(w, self.wire_format)
        self.content.encode_into(w)
        wants = self.content.sender.sender_type in _CONTEXT_SENDERS
        if wants != (self.context is not None):
            raise UsageError("context must be set exactly for member and new_member_commit senders")
        if self.context is not None:
            self.context.encode_into(w)

    @classmethod
    def decode_from(cls, r: Reader) -> FramedContentTBS:
        version = VERSION.decode(r)
        wire_format = WIRE_FORMAT.decode(r)
        content = FramedContent.decode_from(r)
        context = None
        if content.sender.sender_type in _CONTEXT_SENDERS:
            context = GroupContext.decode_from(r)
        return cls(version, wire_format, content, context)


@dataclass(frozen=True)
class AuthenticatedContentTBM(Struct):
    """The input of the membership tag MAC (RFC 9420 §6.2)."""

    content_tbs: FramedContentTBS
    auth: FramedContentAuthData

    def encode_into(self, w: Writer) -> None:
        self.content_tbs.encode_into(w)
        self.auth.encode_for(w, self.content_tbs.content.content_type)

    @classmethod
    def decode_from(cls, r: Reader) -> AuthenticatedContentTBM:
        content_tbs = FramedContentTBS.decode_from(r)
        auth = FramedContentAuthData.decode_for(r, content_tbs.content.content_type)
        return cls(content_tbs, auth)


@dataclass(frozen=True)
class PublicMessage(Struct):
    """A signed, unencrypted handshake message (RFC 9420 §6.2). ``membership_tag`` is set
    exactly for member senders."""

    content: FramedContent
    auth: FramedContentAuthData
    membership_tag: Annotated[bytes | None, Optional(Opaque)]
    """The MAC under the membership key (no presence octet on the wire: the sender type
    decides)."""

    def encode_into(self, w: Writer) -> None:
        self.content.encode_into(w)
        self.auth.encode_for(w, self.content.content_type)
        is_member = self.content.sender.sender_type == SenderType.MEMBER
        if is_member != (self.membership_tag is not None):
            raise UsageError("membership_tag must be set exactly for member senders")
        if self.membership_tag is not None:
            w.opaque(self.membership_tag)

    @classmethod
    def decode_from(cls, r: Reader) -> PublicMessage:
        content = FramedContent.decode_from(r)
        auth = FramedContentAuthData.decode_for(r, content.content_type)
        tag = r.opaque() if content.sender.sender_type == SenderType.MEMBER else None
        return cls(content, auth, tag)


@dataclass(frozen=True)
class PrivateMessage(Struct):
    """An encrypted message (RFC 9420 §6.3). ``encrypted_sender_data`` seals a
    :class:`SenderData`; ``ciphertext`` seals a PrivateMessageContent."""

    group_id: Annotated[bytes, Opaque]
    epoch: Annotated[int, U64]
    content_type: Annotated[ContentType, CONTENT_TYPE]
    authenticated_data: Annotated[bytes, Opaque]
    encrypted_sender_data: Annotated[bytes, Opaque]
    ciphertext: Annotated[bytes, Opaque]


@dataclass(frozen=True)
class PrivateContentAAD(Struct):
    """The AAD of a PrivateMessage's content encryption (RFC 9420 §6.3.1)."""

    group_id: Annotated[bytes, Opaque]
    epoch: Annotated[int, U64]
    content_type: Annotated[ContentType, CONTENT_TYPE]
    authenticated_data: Annotated[bytes, Opaque]


@dataclass(frozen=True)
class SenderData(Struct):
    """Who sent a PrivateMessage and with which key generation (RFC 9420 §6.3.2)."""

    leaf_index: Annotated[int, U32]
    generation: Annotated[int, U32]
    reuse_guard: Annotated[bytes, Fixed(REUSE_GUARD_SIZE)]


@dataclass(frozen=True)
class SenderDataAAD(Struct):
    """The AAD of a PrivateMessage's sender-data encryption (RFC 9420 §6.3.2)."""

    group_id: Annotated[bytes, Opaque]
    epoch: Annotated[int, U64]
    content_type: Annotated[ContentType, CONTENT_TYPE]


def encode_private_message_content(
    content_type: ContentType,
    body: ContentBody,
    auth: FramedContentAuthData,
    padding_size: int = 0,
) -> bytes:
    """Encodes a PrivateMessageContent: the body, the auth data, then ``padding_size`` zero
    bytes (RFC 9420 §6.3.1).

    Raises:
        UsageError: ``body`` or the auth's confirmation tag does not fit ``content_type``, or
            ``padding_size`` is negative.
    """
    if padding_size < 0:
        raise UsageError("padding_size must not be negative")
    expected = {
        ContentType.APPLICATION: (bytes, bytearray),
        ContentType.PROPOSAL: (Proposal,),
        ContentType.COMMIT: (Commit,),
    }[content_type]
    if not isinstance(body, expected):
        raise UsageError(f"a {content_type.name} body cannot be a {type(body).__name__}")
    w = Writer()
    CONTENT_BODY[content_type].encode(w, body)
    auth.encode_for(w, content_type)
    w.write(bytes(padding_size))
    return w.getvalue()


def decode_private_message_content(
    content_type: ContentType, plaintext: bytes, *, max_size: int = DEFAULT_MAX_SIZE
) -> tuple[ContentBody, FramedContentAuthData, bool]:
    """Decodes a decrypted PrivateMessageContent (RFC 9420 §6.3.1).

    Returns:
        ``(body, auth, padding_ok)``: the application data, Proposal or Commit; the auth data;
        and whether every byte after the auth data (the padding) is zero. The caller must
        reject the message when ``padding_ok`` is false (RFC 9420 §6.3.1).

    Raises:
        DecodeError: the body or auth data is malformed or truncated, or the plaintext exceeds
            ``max_size``.
    """
    r = reader_for(plaintext, max_size)
    body: ContentBody = CONTENT_BODY[content_type].decode(r)
    auth = FramedContentAuthData.decode_for(r, content_type)
    padding = r.read(r.remaining)
    return body, auth, not padding.strip(b"\x00")


def _wire(chosen: WireFormat, codec: Any) -> Select:
    return _only(WireFormat, "wire_format", (chosen,), codec)


@dataclass(frozen=True)
class MLSMessage(Struct):
    """The envelope of every MLS message (RFC 9420 §6). Exactly the field named by
    ``wire_format`` is set; :attr:`body` returns it, :meth:`of` builds one."""

    version: Annotated[ProtocolVersion, VERSION]
    wire_format: Annotated[WireFormat, WIRE_FORMAT]
    public_message: Annotated[
        PublicMessage | None, _wire(WireFormat.MLS_PUBLIC_MESSAGE, PublicMessage)
    ] = field(default=None, kw_only=True)
    private_message: Annotated[
        PrivateMessage | None, _wire(WireFormat.MLS_PRIVATE_MESSAGE, PrivateMessage)
    ] = field(default=None, kw_only=True)
    welcome: Annotated[Welcome | None, _wire(WireFormat.MLS_WELCOME, Welcome)] = field(
        default=None, kw_only=True
    )
    group_info: Annotated[GroupInfo | None, _wire(WireFormat.MLS_GROUP_INFO, GroupInfo)] = field(
        default=None, kw_only=True
    )
    key_package: Annotated[KeyPackage | None, _wire(WireFormat.MLS_KEY_PACKAGE, KeyPackage)] = (
        field(default=None, kw_only=True)
    )

    @classmethod
    def of(
        cls, body: PublicMessage | PrivateMessage | Welcome | GroupInfo | KeyPackage
    ) -> MLSMessage:
        """Wraps ``body`` in an mls10 MLSMessage of the matching wire format."""
        wire_format, name = _WIRE_OF[type(body)]
        fields: dict[str, Any] = {name: body}
        return cls(ProtocolVersion.MLS10, wire_format, **fields)

    @property
    def body(self) -> PublicMessage | PrivateMessage | Welcome | GroupInfo | KeyPackage:
        value: PublicMessage | PrivateMessage | Welcome | GroupInfo | KeyPackage | None = getattr(
            self, _WIRE_FIELD[self.wire_format]
        )
        if value is None:
            raise UsageError(f"MLSMessage of format {self.wire_format.name} has no body")
        return value


_WIRE_BODIES: dict[WireFormat, tuple[str, type[Struct]]] = {
    WireFormat.MLS_PUBLIC_MESSAGE: ("public_message", PublicMessage),
    WireFormat.MLS_PRIVATE_MESSAGE: ("private_message", PrivateMessage),
    WireFormat.MLS_WELCOME: ("welcome", Welcome),
    WireFormat.MLS_GROUP_INFO: ("group_info", GroupInfo),
    WireFormat.MLS_KEY_PACKAGE: ("key_package", KeyPackage),
}
_WIRE_FIELD: dict[WireFormat, str] = {t: name for t, (name, _) in _WIRE_BODIES.items()}
_WIRE_OF: dict[type[Struct], tuple[WireFormat, str]] = {
    cls: (t, name) for t, (name, cls) in _WIRE_BODIES.items()
}
