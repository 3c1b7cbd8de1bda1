"""``message-protection.json``: PublicMessage and PrivateMessage protection, both directions
(RFC 9420 §6.1-§6.3)."""

from __future__ import annotations

from typing import Any

from ..crypto.ciphersuite import Suite, get_suite
from ..errors import UsageError
from ..framing import (
    AuthenticatedContent,
    ContentBody,
    FramedContent,
    MLSMessage,
    PrivateMessage,
    PublicMessage,
    Sender,
    WireFormat,
)
from ..group_context import GroupContext, ProtocolVersion
from ..message_protection import (
    protect_private_message,
    protect_public_message,
    sign_content,
    unprotect_private_message,
    unprotect_public_message,
)
from ..messages import Commit, Proposal
from ..secret_tree import SecretTree
from ..tree_math import LeafIndex
from . import Mismatch, expect

SENDER = 1
"""The vectors' messages are all sent by the member at leaf 1 of a two-member group."""

def _body_bytes(body: ContentBody) -> bytes:
    return body if isinstance(body, bytes) else body.encode()


def check(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    h = bytes.fromhex
    # The GroupContext has the vector's suite, group id, epoch, tree hash and confirmed
    # transcript hash, and no extensions.
    context = GroupContext(
        version=ProtocolVersion.MLS10,
        cipher_suite=case["cipher_suite"],
        group_id=h(case["group_id"]),
        epoch=case["epoch"],
        tree_hash=h(case["tree_hash"]),
        confirmed_transcript_hash=h(case["confirmed_transcript_hash"]),
        extensions=(),
    )
    keys = _Keys(
        suite,
        context,
        # message-protection[4] carries a 65-byte P-521 scalar (leading zero dropped); the
        # suite's signer accepts short big-endian scalars.
        signature_priv=h(case["signature_priv"]),
        signature_pub=h(case["signature_pub"]),
        encryption_secret=h(case["encryption_secret"]),
        sender_data_secret=h(case["sender_data_secret"]),
        membership_key=h(case["membership_key"]),
    )
    bodies: dict[str, ContentBody] = {
        "proposal": Proposal.decode(h(case["proposal"])),
        "commit": Commit.decode(h(case["commit"])),
        "application": h(case["application"]),
    }
    for name, body in bodies.items():
        raw = case[name]
        if name != "application":
            # The given PublicMessage verifies with membership_key and signature_pub and
            # carries the raw proposal / commit.
            got = keys.unprotect_public(f"{name}_pub", h(case[f"{name}_pub"]))
            expect(f"{name}_pub (content)", _body_bytes(got.content.body), raw)
        # Our own PublicMessage of the raw value verifies the same way (and for application
        # data, protecting as a PublicMessage must fail).
        keys.round_trip_public(name, body)
        # The given PrivateMessage opens with a fresh two-member secret tree and
        # signature_pub, and carries the raw value.
        got = keys.unprotect_private(f"{name}_priv", h(case[f"{name}_priv"]), keys.fresh_tree())
        expect(f"{name}_priv (content)", _body_bytes(got.content.body), raw)
        # Our own PrivateMessage of the raw value opens with a fresh tree on the other side.
        keys.round_trip_private(name, body)


class _Keys:
    def __init__(
        self,
        suite: Suite,
        context: GroupContext,
        *,
        signature_priv: bytes,
        signature_pub: bytes,
        encryption_secret: bytes,
        sender_data_secret: bytes,
        membership_key: bytes,
    ) -> None:
        self.suite = suite
        self.context = context
        self.signature_priv = signature_priv
        self.signature_pub = signature_pub
        self.encryption_secret = encryption_secret
        self.sender_data_secret = sender_data_secret
        self.membership_key = membership_key

    def fresh_tree(self) -> SecretTree:
        return SecretTree(self.suite, self.encryption_secret, 2)

    def key_of(self, leaf: LeafIndex) -> bytes | None:
        return self.signature_pub if leaf == SENDER else None

    def unprotect_public(self, field: str, data: bytes) -> AuthenticatedContent:
        msg = MLSMessage.decode(data)
        if not isinstance(msg.body, PublicMessage):
            raise Mismatch(field, "not a PublicMessage")
        if msg.body.content.sender != Sender.member(SENDER):
            raise Mismatch(field, "sender is not member 1")
        return unprotect_public_message(
            self.suite,
            msg.body,
            signature_key=self.signature_pub,
            group_context=self.context,
            membership_key=self.membership_key,
        )

    def unprotect_private(self, field: str, data: bytes, tree: SecretTree) -> AuthenticatedContent:
        msg = MLSMessage.decode(data)
        if not isinstance(msg.body, PrivateMessage):
            raise Mismatch(field, "not a PrivateMessage")
        got = unprotect_private_message(
            self.suite,
            msg.body,
            secret_tree=tree,
            sender_data_secret=self.sender_data_secret,
            group_context=self.context,
            signature_key_of=self.key_of,
        )
        expect(f"{field} (sender)", got.content.sender.leaf_index, SENDER)
        return got

    def _content(self, body: ContentBody) -> FramedContent:
        return FramedContent.with_body(
            self.context.group_id, self.context.epoch, Sender.member(SENDER), b"", body
        )

    def _sign(self, body: ContentBody, wire_format: WireFormat) -> AuthenticatedContent:
        content = self._content(body)
        # A commit's confirmation tag is opaque to this test: any value round-trips.
        tag = bytes(self.suite.hash_length) if isinstance(body, Commit) else None
        return sign_content(
            self.suite,
            content,
            wire_format=wire_format,
            signature_priv=self.signature_priv,
            group_context=self.context,
            confirmation_tag=tag,
        )

    def round_trip_public(self, name: str, body: ContentBody) -> None:
        field = f"{name} (our PublicMessage)"
        if name == "application":
            try:
                protect_public_message(
                    self.suite,
                    self._sign(body, WireFormat.MLS_PUBLIC_MESSAGE),
                    membership_key=self.membership_key,
                    group_context=self.context,
                )
            except UsageError:
                return
            raise Mismatch(field, "application data was protected as a PublicMessage")
        signed = self._sign(body, WireFormat.MLS_PUBLIC_MESSAGE)
        msg = protect_public_message(
            self.suite, signed, membership_key=self.membership_key, group_context=self.context
        )
        got = self.unprotect_public(field, MLSMessage.of(msg).encode())
        expect(field, got.encode(), signed.encode().hex())

    def round_trip_private(self, name: str, body: ContentBody) -> None:
        field = f"{name} (our PrivateMessage)"
        signed = self._sign(body, WireFormat.MLS_PRIVATE_MESSAGE)
        msg = protect_private_message(
            self.suite,
            signed,
            secret_tree=self.fresh_tree(),
            sender_data_secret=self.sender_data_secret,
            padding_size=7,
        )
        got = self.unprotect_private(field, MLSMessage.of(msg).encode(), self.fresh_tree())
        expect(field, got.encode(), signed.encode().hex())
