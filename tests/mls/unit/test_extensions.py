from __future__ import annotations

import pytest

from mls.codec import decode_exact
from mls.credentials import Credential
from mls.errors import DecodeError
from mls.extensions import (
    EXTERNAL_SENDERS,
    ApplicationId,
    Extension,
    ExtensionSite,
    ExtensionType,
    ExternalPub,
    ExternalSender,
    RequiredCapabilities,
    duplicate_extension_type,
    extension_value,
    find_extension,
    make_extension,
    misplaced_extension_type,
)


def test_extension_bytes() -> None:
    ext = Extension(0x0A0A, b"\x01\x02")
    assert ext.encode() == bytes.fromhex("0a0a020102")
    assert Extension.decode(ext.encode()) == ext


def test_application_id_view() -> None:
    ext = make_extension(ExtensionType.APPLICATION_ID, ApplicationId(b"app"))
    assert ext == Extension(1, b"\x03app")
    assert extension_value(ext) == ApplicationId(b"app")


def test_required_capabilities_view() -> None:
    value = RequiredCapabilities((0xF000,), (0x0A0A,), (1,))
    ext = make_extension(ExtensionType.REQUIRED_CAPABILITIES, value)
    assert ext.extension_data == bytes.fromhex("02f000020a0a020001")
    assert extension_value(ext) == value


def test_external_pub_and_senders_views() -> None:
    pub = make_extension(ExtensionType.EXTERNAL_PUB, ExternalPub(b"k" * 32))
    assert extension_value(pub) == ExternalPub(b"k" * 32)
    senders = (ExternalSender(b"s", Credential.basic(b"ds")),)
    ext = make_extension(ExtensionType.EXTERNAL_SENDERS, senders)
    assert ext.extension_data == b"\x07" + b"\x01s" + b"\x00\x01\x02ds"
    assert extension_value(ext) == senders
    assert decode_exact(EXTERNAL_SENDERS, ext.extension_data) == senders


def test_typed_data_with_trailing_bytes_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        extension_value(Extension(ExtensionType.APPLICATION_ID, b"\x01a\x00"))


def test_unknown_type_has_no_typed_view() -> None:
    with pytest.raises(DecodeError):
        extension_value(Extension(0xF000, b""))


def test_find_and_duplicate() -> None:
    a, b, c = Extension(1, b"a"), Extension(5, b""), Extension(1, b"c")
    assert find_extension((a, b, c), 1) is a
    assert find_extension((a, b), 3) is None
    assert duplicate_extension_type((a, b)) is None
    assert duplicate_extension_type((a, b, c)) == 1


def test_misplaced_extension_type_follows_the_registry() -> None:
    # RFC 9420 §17.3 "Message(s)": application_id LN; ratchet_tree GI; required_capabilities
    # GC; external_pub GI; external_senders GC. Unknown types are not restricted.
    expected = {
        ExtensionSite.LEAF_NODE: {1},
        ExtensionSite.GROUP_INFO: {2, 4},
        ExtensionSite.GROUP_CONTEXT: {3, 5},
        ExtensionSite.KEY_PACKAGE: set(),
    }
    for site, allowed in expected.items():
        for t in (1, 2, 3, 4, 5):
            found = misplaced_extension_type((Extension(0x0A0A, b""), Extension(t, b"")), site)
            assert found == (None if t in allowed else t), (site, t)
