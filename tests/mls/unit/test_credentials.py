from __future__ import annotations

import pytest

from mls.credentials import Certificate, Credential, CredentialType, x509_signature_key
from mls.errors import DecodeError


def test_basic_credential_bytes() -> None:
    cred = Credential.basic(b"alice")
    assert cred.encode() == bytes.fromhex("000105") + b"alice"
    decoded = Credential.decode(cred.encode())
    assert decoded == cred
    assert decoded.credential_type == CredentialType.BASIC
    assert decoded.certificates is None


def test_x509_credential_bytes() -> None:
    cred = Credential.x509((b"\x30\x01", b"\x30"))
    assert cred.encode() == bytes.fromhex("0002050230010130")
    decoded = Credential.decode(cred.encode())
    assert decoded.certificates == (Certificate(b"\x30\x01"), Certificate(b"\x30"))
    assert decoded.identity is None


@pytest.mark.parametrize("credential_type", [0, 3, 0x0A0A, 0xFFFF])
def test_unknown_credential_type_does_not_decode(credential_type: int) -> None:
    # The body of an unknown type has no length, so it cannot be skipped.
    with pytest.raises(DecodeError):
        Credential.decode(credential_type.to_bytes(2, "big") + b"\x00")


def test_truncated_identity_does_not_decode() -> None:
    with pytest.raises(DecodeError):
        Credential.decode(bytes.fromhex("000105") + b"alic")


def test_x509_signature_key_of_garbage_is_none() -> None:
    assert x509_signature_key(b"") is None
    assert x509_signature_key(b"\x30\x03\x02\x01\x01") is None
