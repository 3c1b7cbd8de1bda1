"""``messages.json``: the syntax of every wire struct (RFC 9420 §6, §7, §10, §12).

Each case holds encodings of the main structs. Each one must decode, and encoding the decoded
value must give back exactly the same bytes. The signatures and MACs inside are not meant to
verify, so nothing here checks them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..codec import Codec, Struct, decode_exact, encode_value
from ..errors import DecodeError
from ..extensions import Extension, ExtensionType, extension_value, make_extension
from ..framing import ContentType, FramedContentAuthData, MLSMessage, WireFormat
from ..messages import (
    Add,
    Commit,
    ExternalInit,
    GroupContextExtensions,
    GroupSecrets,
    PreSharedKey,
    ReInit,
    Remove,
    Update,
)
from ..tree_nodes import RATCHET_TREE, decode_ratchet_tree, ratchet_tree_extension
from . import Mismatch, expect

# The fields holding a whole MLSMessage, with the wire format (and, for PublicMessages, the
# content type) the format description says they carry.
MLS_MESSAGES: dict[str, tuple[WireFormat, ContentType | None]] = {
    "mls_welcome": (WireFormat.MLS_WELCOME, None),
    "mls_group_info": (WireFormat.MLS_GROUP_INFO, None),
    "mls_key_package": (WireFormat.MLS_KEY_PACKAGE, None),
    "public_message_application": (WireFormat.MLS_PUBLIC_MESSAGE, ContentType.APPLICATION),
    "public_message_proposal": (WireFormat.MLS_PUBLIC_MESSAGE, ContentType.PROPOSAL),
    "public_message_commit": (WireFormat.MLS_PUBLIC_MESSAGE, ContentType.COMMIT),
    "private_message": (WireFormat.MLS_PRIVATE_MESSAGE, None),
}

# The fields holding a bare struct (proposals are the variant structs, not Proposal).
BARE: dict[str, Codec[Any] | type[Struct]] = {
    "ratchet_tree": RATCHET_TREE,
    "group_secrets": GroupSecrets,
    "add_proposal": Add,
    "update_proposal": Update,
    "remove_proposal": Remove,
    "pre_shared_key_proposal": PreSharedKey,
    "re_init_proposal": ReInit,
    "external_init_proposal": ExternalInit,
    "group_context_extensions_proposal": GroupContextExtensions,
    "commit": Commit,
}


def _decode(name: str, codec: Codec[Any] | type[Struct], data: bytes) -> Any:
    try:
        return decode_exact(codec, data)
    except DecodeError as exc:
        raise Mismatch(name, f"does not decode: {exc}") from exc


def _check_nested(name: str, value: Any) -> None:
    """Every struct nested in ``value`` round-trips on its own, and so does the data of every
    extension of a type this package declares."""
    if isinstance(value, tuple):
        for item in value:
            _check_nested(name, item)
        return
    if not isinstance(value, Struct):
        return
    cls = type(value)
    where = f"{name}:{cls.__name__}"
    if not isinstance(value, FramedContentAuthData):  # needs its content type to decode
        encoded = value.encode()
        if _decode(where, cls, encoded) != value:
            raise Mismatch(where, "decoding its encoding gives another value")
    if isinstance(value, Extension) and value.extension_type in set(ExtensionType):
        if value.extension_type == ExtensionType.RATCHET_TREE:
            tree = _decode_ext(where, lambda: decode_ratchet_tree(value.extension_data))
            rebuilt = ratchet_tree_extension(tree)
        else:
            typed = _decode_ext(where, lambda: extension_value(value))
            rebuilt = make_extension(value.extension_type, typed)
        expect(f"{where}.extension_data", rebuilt.extension_data, value.extension_data.hex())
    for f in dataclasses.fields(value):
        _check_nested(name, getattr(value, f.name))


def _decode_ext(where: str, decode: Any) -> Any:
    try:
        return decode()
    except DecodeError as exc:
        raise Mismatch(where, f"extension data does not decode: {exc}") from exc


def check(case: dict[str, Any]) -> None:
    for name, (wire_format, content_type) in MLS_MESSAGES.items():
        data = bytes.fromhex(case[name])
        msg: MLSMessage = _decode(name, MLSMessage, data)
        # The envelope carries the wire format the field is documented to hold.
        expect(f"{name}.wire_format", int(msg.wire_format), int(wire_format))
        if content_type is not None:
            assert msg.public_message is not None
            expect(
                f"{name}.content_type",
                int(msg.public_message.content.content_type),
                int(content_type),
            )
        # Re-encoding the decoded message reproduces the input exactly.
        expect(name, msg.encode(), case[name])
        _check_nested(name, msg)
    for name, codec in BARE.items():
        value = _decode(name, codec, bytes.fromhex(case[name]))
        # Re-encoding the decoded struct reproduces the input exactly.
        expect(name, encode_value(codec, value), case[name])
        _check_nested(name, value)
