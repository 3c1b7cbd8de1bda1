from __future__ import annotations

import dataclasses

import pytest

from mls.credentials import Credential, CredentialType
from mls.crypto.labels import make_key_package_ref
from mls.errors import DecodeError, ValidationError, VerificationError
from mls.extensions import ApplicationId, Extension, ExtensionType, make_extension
from mls.framing import MLSMessage, WireFormat
from mls.key_package import KeyPackage, validate_key_package
from mls.leaf_node import LeafNodeSource, Lifetime

from ._build import NOW, capabilities, key_package, keys, leaf_node

K = keys()


def test_valid_key_package_passes_every_check() -> None:
    kp = key_package(K)
    validate_key_package(kp, suite=K.suite, now=NOW)
    validate_key_package(kp)  # own suite, no clock


@pytest.mark.parametrize("suite_id", [1, 2, 3, 4, 5, 6, 7])
def test_valid_key_package_in_every_suite(suite_id: int) -> None:
    k = keys(suite_id)
    kp = key_package(k)
    validate_key_package(kp, suite=k.suite, now=NOW)
    assert KeyPackage.decode(kp.encode()) == kp


def test_ref_is_the_key_package_ref_of_the_encoding() -> None:
    kp = key_package(K)
    assert kp.ref(K.suite) == make_key_package_ref(K.suite, kp.encode())
    assert len(kp.ref(K.suite)) == K.suite.hash_length


def test_key_package_in_mls_message_roundtrips() -> None:
    kp = key_package(K)
    msg = MLSMessage.of(kp)
    assert msg.wire_format == WireFormat.MLS_KEY_PACKAGE
    encoded = msg.encode()
    assert encoded[:4] == b"\x00\x01\x00\x05"
    assert MLSMessage.decode(encoded).key_package == kp


def test_kp02_bad_key_package_signature_is_rejected() -> None:
    kp = key_package(K)
    bad = dataclasses.replace(kp, signature=bytes([kp.signature[0] ^ 1]) + kp.signature[1:])
    with pytest.raises(VerificationError) as exc:
        validate_key_package(bad, now=NOW)
    assert exc.value.rule == "§10/key-package-signature"


def test_kp02_signature_over_other_content_is_rejected() -> None:
    kp = key_package(K)
    # Same signature, different extensions: the signed content changed.
    bad = dataclasses.replace(kp, extensions=(Extension(0xF0F0, b"x"),))
    with pytest.raises(VerificationError) as exc:
        validate_key_package(bad, now=NOW)
    assert exc.value.rule == "§10/key-package-signature"


def test_kp03_bad_leaf_signature_is_rejected() -> None:
    leaf = leaf_node(K)
    leaf = dataclasses.replace(
        leaf, signature=leaf_node(K, credential=Credential.basic(b"bob")).signature
    )
    with pytest.raises(VerificationError) as exc:
        validate_key_package(key_package(K, leaf), now=NOW)
    assert exc.value.rule == "§7.3/leaf-node-signature"


@pytest.mark.parametrize("source", [LeafNodeSource.UPDATE, LeafNodeSource.COMMIT])
def test_kp03_leaf_source_other_than_key_package_is_rejected(source: LeafNodeSource) -> None:
    leaf = leaf_node(K, source, group_id=b"g", leaf_index=0)
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K, leaf), now=NOW)
    assert exc.value.rule == "§10.1/leaf-node-source"


def test_kp04_init_key_equal_to_encryption_key_is_rejected() -> None:
    kp = key_package(K, init_key=K.encryption_pub)
    with pytest.raises(ValidationError) as exc:
        validate_key_package(kp, now=NOW)
    assert exc.value.rule == "§10.1/init-key-distinct"


def test_kp05_other_suite_than_expected_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K), suite=keys(3).suite, now=NOW)
    assert exc.value.rule == "§10.1/cipher-suite"


def test_kp05_unsupported_suite_is_rejected() -> None:
    kp = dataclasses.replace(key_package(K), cipher_suite=0x0A0A)
    with pytest.raises(ValidationError) as exc:
        validate_key_package(kp, now=NOW)
    assert exc.value.rule == "§10.1/cipher-suite"


def test_kp06_invalid_init_key_encoding_is_rejected() -> None:
    kp = key_package(K, init_key=b"\x01" * 31)
    with pytest.raises(ValidationError) as exc:
        validate_key_package(kp, now=NOW)
    assert exc.value.rule == "§5.1.1/public-key-encoding"


def test_kp07_duplicate_extension_type_is_rejected() -> None:
    kp = key_package(K, extensions=(Extension(0xF0F0, b"a"), Extension(0xF0F0, b"b")))
    with pytest.raises(ValidationError) as exc:
        validate_key_package(kp, now=NOW)
    assert exc.value.rule == "§13.4/duplicate-extension"


def test_kp07_unknown_extension_types_are_accepted() -> None:
    # ACC-01: unknown extension types in KeyPackage.extensions are ignored.
    kp = key_package(K, extensions=(Extension(0x0A0A, b""), Extension(0xF0F0, b"b")))
    validate_key_package(kp, now=NOW)


def test_ln05_credential_type_missing_from_own_capabilities_is_rejected() -> None:
    leaf = leaf_node(K, capabilities=capabilities(credentials=(CredentialType.X509,)))
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K, leaf), now=NOW)
    assert exc.value.rule == "§7.2/credential-in-capabilities"


def test_ln06_unlisted_non_default_extension_is_rejected() -> None:
    leaf = leaf_node(K, extensions=(Extension(0xF0F0, b""),))
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K, leaf), now=NOW)
    assert exc.value.rule == "§7.2/extension-in-capabilities"


def test_ln06_listed_and_default_extensions_are_accepted() -> None:
    app_id = make_extension(ExtensionType.APPLICATION_ID, ApplicationId(b"alice-phone"))
    leaf = leaf_node(
        K,
        capabilities=capabilities(extensions=(0xF0F0,)),
        extensions=(app_id, Extension(0xF0F0, b"")),
    )
    validate_key_package(key_package(K, leaf), now=NOW)


def test_ln11_duplicate_leaf_extension_is_rejected() -> None:
    ext = Extension(0xF0F0, b"")
    leaf = leaf_node(K, capabilities=capabilities(extensions=(0xF0F0,)), extensions=(ext, ext))
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K, leaf), now=NOW)
    assert exc.value.rule == "§13.4/duplicate-extension"


@pytest.mark.parametrize("now", [NOW - 3601, NOW + 86401])
def test_ln07_lifetime_not_covering_now_is_rejected(now: int) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K), now=now)
    assert exc.value.rule == "§7.3/lifetime"


def test_ln07_lifetime_bounds_are_inclusive() -> None:
    leaf = leaf_node(K, lifetime=Lifetime(NOW, NOW))
    validate_key_package(key_package(K, leaf), now=NOW)


def test_truncated_key_package_is_a_decode_error() -> None:
    encoded = key_package(K).encode()
    for cut in range(len(encoded)):
        with pytest.raises(DecodeError):
            KeyPackage.decode(encoded[:cut])


def test_kp01_unknown_inner_version_does_not_decode() -> None:
    encoded = bytearray(key_package(K).encode())
    encoded[0:2] = b"\x00\x02"
    with pytest.raises(DecodeError):
        KeyPackage.decode(bytes(encoded))
