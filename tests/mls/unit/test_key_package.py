from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from mls.credentials import Credential, CredentialType
from mls.crypto.ciphersuite import Suite, get_suite
from mls.crypto.labels import make_key_package_ref, ref_hash, verify_with_label
from mls.errors import DecodeError, UsageError, ValidationError, VerificationError
from mls.extensions import ApplicationId, Extension, ExtensionType, make_extension
from mls.framing import MLSMessage, WireFormat
from mls.group_context import ProtocolVersion
from mls.key_package import (
    CLOCK_SKEW,
    DEFAULT_KEY_PACKAGE_LIFETIME,
    InMemoryKeyPackageStore,
    KeyPackage,
    KeyPackagePrivateKeys,
    KeyPackageStore,
    validate_key_package,
)
from mls.leaf_node import Capabilities, LeafNode, LeafNodeSource, Lifetime

from .._tree_helpers import deterministic_random
from ._build import LIFETIME, NOW, capabilities, key_package, keys, leaf_node

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
    # RFC 9420 §5.2: RefHash with the full label over the whole encoded KeyPackage (signature
    # included), not over an MLSMessage around it
    assert kp.ref(K.suite) == ref_hash(K.suite, b"MLS 1.0 KeyPackage Reference", kp.encode())
    assert kp.ref(K.suite) != ref_hash(
        K.suite, b"MLS 1.0 KeyPackage Reference", MLSMessage.of(kp).encode()
    )


def test_signature_is_over_key_package_tbs_with_its_label() -> None:
    # KeyPackageTBS is every KeyPackage field but the signature (RFC 9420 §10), so its bytes
    # are the encoding minus the trailing opaque signature (64 bytes: a 0x40 0x40 header).
    kp = key_package(K)
    encoded = kp.encode()
    assert len(kp.signature) == 64 and encoded[-66:-64] == b"\x40\x40"
    tbs = encoded[:-66]
    assert kp.tbs().encode() == tbs
    verify_with_label(K.suite, K.signature_pub, b"KeyPackageTBS", tbs, kp.signature)
    with pytest.raises(VerificationError):
        verify_with_label(K.suite, K.signature_pub, b"LeafNodeTBS", tbs, kp.signature)


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
    kp = key_package(K, cipher_suite=0x0A0A)  # re-signed: only the suite is wrong
    kp.verify_signature(K.suite)
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


def test_kp02_signed_by_another_key_is_rejected() -> None:
    other = keys(seed=b"mallory")
    kp = key_package(K)
    bad = kp.signed(K.suite, other.signature_priv)
    with pytest.raises(VerificationError) as exc:
        validate_key_package(bad, now=NOW)
    assert exc.value.rule == "§10/key-package-signature"


def test_kp06_invalid_leaf_encryption_key_is_rejected() -> None:
    leaf = leaf_node(K, encryption_key=b"\x01" * 31)
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K, leaf), now=NOW)
    assert exc.value.rule == "§5.1.1/public-key-encoding"


def test_kp06_invalid_signature_key_is_rejected() -> None:
    # The leaf and the KeyPackage are signed by K's real key; only the advertised key is bad.
    leaf = leaf_node(K, signature_key=b"\x01" * 31)
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K, leaf), now=NOW)
    assert exc.value.rule == "§5.1.1/public-key-encoding"


@pytest.mark.parametrize(
    "extension_type",
    [
        ExtensionType.APPLICATION_ID,
        ExtensionType.RATCHET_TREE,
        ExtensionType.REQUIRED_CAPABILITIES,
        ExtensionType.EXTERNAL_PUB,
        ExtensionType.EXTERNAL_SENDERS,
    ],
    ids=lambda t: t.name,
)
def test_kp07_known_extension_not_allowed_in_key_package_is_rejected(
    extension_type: ExtensionType,
) -> None:
    # RFC 9420 §17.3: none of the types the RFC defines is allowed in KeyPackage.extensions.
    kp = key_package(K, extensions=(Extension(extension_type, b""),))
    with pytest.raises(ValidationError) as exc:
        validate_key_package(kp, now=NOW)
    assert exc.value.rule == "§17.3/key-package-extension-type"


@pytest.mark.parametrize(
    "extension_type",
    [
        ExtensionType.RATCHET_TREE,
        ExtensionType.REQUIRED_CAPABILITIES,
        ExtensionType.EXTERNAL_PUB,
        ExtensionType.EXTERNAL_SENDERS,
    ],
    ids=lambda t: t.name,
)
def test_ln11_known_extension_not_allowed_in_leaf_is_rejected(
    extension_type: ExtensionType,
) -> None:
    leaf = leaf_node(K, extensions=(Extension(extension_type, b""),))
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K, leaf), now=NOW)
    assert exc.value.rule == "§17.3/leaf-extension-type"


def test_ln07_lifetime_longer_than_the_maximum_is_rejected() -> None:
    span = LIFETIME.not_after - LIFETIME.not_before
    kp = key_package(K)
    validate_key_package(kp, now=NOW, max_lifetime=span)
    with pytest.raises(ValidationError) as exc:
        validate_key_package(kp, now=NOW, max_lifetime=span - 1)
    assert exc.value.rule == "§7.2/max-lifetime"


def test_ln07_reversed_lifetime_is_rejected() -> None:
    leaf = leaf_node(K, lifetime=Lifetime(NOW + 1, NOW))
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K, leaf), max_lifetime=86400)
    assert exc.value.rule == "§7.2/max-lifetime"


_CertificateKey = ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | ec.EllipticCurvePrivateKey


def _certificate(
    public_key: ed25519.Ed25519PublicKey | ed448.Ed448PublicKey | ec.EllipticCurvePublicKey,
    issuer_key: _CertificateKey | None = None,
    algorithm: hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None = None,
) -> bytes:
    """A DER certificate for ``public_key``, signed by ``issuer_key`` (default: a fresh
    Ed25519 key) with ``algorithm`` (``None`` for EdDSA)."""
    if issuer_key is None:
        issuer_key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    start = datetime.datetime(2023, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365))
        .sign(issuer_key, algorithm)
    )
    return cert.public_bytes(Encoding.DER)


_ECDSA: dict[str, tuple[ec.EllipticCurve, hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "ecdsa_secp256r1_sha256": (ec.SECP256R1(), hashes.SHA256()),
    "ecdsa_secp384r1_sha384": (ec.SECP384R1(), hashes.SHA384()),
    "ecdsa_secp521r1_sha512": (ec.SECP521R1(), hashes.SHA512()),
}


def _self_signed(suite: Suite, signature_priv: bytes) -> bytes:
    """A self-signed certificate whose SubjectPublicKeyInfo is the suite signature key of
    ``signature_priv`` (every suite's scheme has an X.509 form)."""
    scheme = suite.signature_scheme.name
    key: _CertificateKey
    if scheme == "ed25519":
        key = ed25519.Ed25519PrivateKey.from_private_bytes(signature_priv)
        return _certificate(key.public_key(), key)
    if scheme == "ed448":
        key = ed448.Ed448PrivateKey.from_private_bytes(signature_priv)
        return _certificate(key.public_key(), key)
    curve, algorithm = _ECDSA[scheme]
    key = ec.derive_private_key(int.from_bytes(signature_priv, "big"), curve)
    return _certificate(key.public_key(), key, algorithm)


def _x509_leaf(cert: bytes) -> LeafNode:
    caps = capabilities(credentials=(CredentialType.X509,))
    return leaf_node(K, credential=Credential.x509((cert,)), capabilities=caps)


def test_crd03_x509_certificate_of_the_signature_key_is_accepted() -> None:
    own = ed25519.Ed25519PublicKey.from_public_bytes(K.signature_pub)
    leaf = _x509_leaf(_certificate(own))
    validate_key_package(key_package(K, leaf), now=NOW)


def test_crd03_x509_certificate_of_another_key_is_rejected() -> None:
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    leaf = _x509_leaf(_certificate(other))
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K, leaf), now=NOW)
    assert exc.value.rule == "§5.3/x509-signature-key"


@pytest.mark.parametrize("chain", [(), (b"\x30\x03\x02\x01\x01",)], ids=["empty", "not-a-cert"])
def test_crd03_x509_credential_without_a_parsable_certificate_is_rejected(
    chain: tuple[bytes, ...],
) -> None:
    caps = capabilities(credentials=(CredentialType.X509,))
    leaf = leaf_node(K, credential=Credential.x509(chain), capabilities=caps)
    with pytest.raises(ValidationError) as exc:
        validate_key_package(key_package(K, leaf), now=NOW)
    assert exc.value.rule == "§5.3/x509-signature-key"


def test_kp01_key_package_of_another_version_is_rejected() -> None:
    # Another version cannot come off the wire (ProtocolVersion is closed, so both the
    # MLSMessage and the KeyPackage version must decode as mls10); an application building a
    # KeyPackage by hand still gets the rule. The version is checked first, and another
    # version cannot even be encoded to sign, so the signature never comes into it.
    kp = key_package(K)
    other = dataclasses.replace(kp, version=2)
    with pytest.raises(ValidationError) as info:
        validate_key_package(other, suite=K.suite, now=NOW)
    assert info.value.rule == "§10/version"
    with pytest.raises(DecodeError):
        KeyPackage.decode(b"\x00\x02" + kp.encode()[2:])


# ============================================================================================
# KeyPackage.generate (RFC 9420 §10, §7.2) and the private keys it returns (§16.8)

ALL_SUITES = [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("kind", ["basic", "x509"])
@pytest.mark.parametrize("suite_id", ALL_SUITES)
def test_generate_passes_validation_in_every_suite(suite_id: int, kind: str) -> None:
    suite = get_suite(suite_id)
    signature_priv, signature_pub = suite.generate_signature_key_pair()
    if kind == "basic":
        credential = Credential.basic(b"alice")
    else:
        credential = Credential.x509((_self_signed(suite, signature_priv),))
    kp, private = KeyPackage.generate(suite, signature_priv, credential, now=NOW)
    validate_key_package(kp, suite=suite, now=NOW, max_lifetime=DEFAULT_KEY_PACKAGE_LIFETIME)
    assert kp.cipher_suite == suite_id and kp.leaf_node.credential == credential
    assert kp.leaf_node.signature_key == signature_pub
    # The private halves belong to the published keys, and the ref names the KeyPackage.
    assert private.ref == kp.ref(suite)
    assert suite.hpke.public_key(private.init_priv) == kp.init_key
    assert suite.hpke.public_key(private.encryption_priv) == kp.leaf_node.encryption_key
    assert private.signature_priv == signature_priv
    assert MLSMessage.decode(MLSMessage.of(kp).encode()).key_package == kp


def test_generate_defaults_list_basic_and_x509_and_start_an_hour_ago_for_90_days() -> None:
    assert CLOCK_SKEW == 3600 and DEFAULT_KEY_PACKAGE_LIFETIME == 90 * 24 * 3600
    kp, _ = KeyPackage.generate(3, K.signature_priv, Credential.basic(b"alice"), now=NOW)
    leaf = kp.leaf_node
    assert leaf.capabilities == Capabilities(
        versions=(ProtocolVersion.MLS10,),
        cipher_suites=(3,),
        extensions=(),
        proposals=(),
        credentials=(CredentialType.BASIC, CredentialType.X509),
    )
    assert leaf.lifetime == Lifetime(NOW - 3600, NOW - 3600 + 90 * 24 * 3600)
    assert leaf.leaf_node_source == LeafNodeSource.KEY_PACKAGE
    assert kp.extensions == () and leaf.extensions == ()


def test_generate_without_now_reads_the_clock() -> None:
    before = int(time.time())
    kp, _ = KeyPackage.generate(K.suite, K.signature_priv, Credential.basic(b"alice"))
    after = int(time.time())
    lifetime = kp.leaf_node.lifetime
    assert lifetime is not None
    assert before - CLOCK_SKEW <= lifetime.not_before <= after - CLOCK_SKEW
    assert lifetime.not_after - lifetime.not_before == DEFAULT_KEY_PACKAGE_LIFETIME


def test_generate_passes_capabilities_lifetime_and_both_extension_lists() -> None:
    caps = capabilities(extensions=(0xF0F0,))
    app_id = make_extension(ExtensionType.APPLICATION_ID, ApplicationId(b"alice-phone"))
    kp, _ = KeyPackage.generate(
        K.suite,
        K.signature_priv,
        Credential.basic(b"alice"),
        capabilities=caps,
        lifetime=7200,
        now=NOW,
        extensions=[Extension(0x0A0A, b"grease")],
        leaf_extensions=[app_id, Extension(0xF0F0, b"")],
    )
    validate_key_package(kp, now=NOW, max_lifetime=7200)
    assert kp.extensions == (Extension(0x0A0A, b"grease"),)
    assert kp.leaf_node.extensions == (app_id, Extension(0xF0F0, b""))
    assert kp.leaf_node.capabilities == caps
    assert kp.leaf_node.lifetime == Lifetime(NOW - CLOCK_SKEW, NOW - CLOCK_SKEW + 7200)


@pytest.mark.parametrize("suite_id", ALL_SUITES)
def test_generate_with_random_is_deterministic(suite_id: int) -> None:
    suite = get_suite(suite_id)
    signature_priv, _ = suite.generate_signature_key_pair()
    asked: list[int] = []
    draw = deterministic_random(b"seed")

    def recording(n: int) -> bytes:
        asked.append(n)
        return draw(n)

    def generate(random: Callable[[int], bytes]) -> tuple[KeyPackage, KeyPackagePrivateKeys]:
        return KeyPackage.generate(
            suite,
            signature_priv,
            Credential.basic(b"alice"),
            now=NOW,
            random=random,
        )

    first, first_keys = generate(recording)
    again, again_keys = generate(deterministic_random(b"seed"))
    other, other_keys = generate(deterministic_random(b"other"))
    # One seed of Nsk bytes for the init key pair, then one for the encryption key pair.
    assert asked == [suite.hpke.kem.n_sk] * 2
    seeds = deterministic_random(b"seed")
    assert first.init_key == suite.hpke.derive_key_pair(seeds(suite.hpke.kem.n_sk))[1]
    assert (
        first.leaf_node.encryption_key == suite.hpke.derive_key_pair(seeds(suite.hpke.kem.n_sk))[1]
    )
    assert (again.init_key, again.leaf_node.encryption_key) == (
        first.init_key,
        first.leaf_node.encryption_key,
    )
    assert (again_keys.init_priv, again_keys.encryption_priv) == (
        first_keys.init_priv,
        first_keys.encryption_priv,
    )
    if suite.signature_scheme.name in ("ed25519", "ed448"):
        # EdDSA signatures are deterministic too, so the whole KeyPackage repeats.
        assert again == first and again_keys == first_keys
    assert other.init_key != first.init_key
    assert other_keys.encryption_priv != first_keys.encryption_priv


def test_generate_without_random_draws_fresh_keys() -> None:
    a, _ = KeyPackage.generate(K.suite, K.signature_priv, Credential.basic(b"a"), now=NOW)
    b, _ = KeyPackage.generate(K.suite, K.signature_priv, Credential.basic(b"a"), now=NOW)
    assert a.init_key != b.init_key
    assert a.leaf_node.encryption_key != b.leaf_node.encryption_key


def test_generate_with_random_repeating_a_seed_is_a_usage_error() -> None:
    # RFC 9420 §10.1: init_key and encryption_key must differ.
    with pytest.raises(UsageError):
        KeyPackage.generate(
            K.suite, K.signature_priv, Credential.basic(b"a"), random=lambda n: b"\x07" * n
        )


@pytest.mark.parametrize(("lifetime", "now"), [(-1, NOW), (60, CLOCK_SKEW - 1)])
def test_generate_with_negative_lifetime_or_start_is_a_usage_error(lifetime: int, now: int) -> None:
    with pytest.raises(UsageError):
        KeyPackage.generate(
            K.suite, K.signature_priv, Credential.basic(b"a"), lifetime=lifetime, now=now
        )


def _private_keys() -> KeyPackagePrivateKeys:
    _, private = KeyPackage.generate(
        K.suite, K.signature_priv, Credential.basic(b"alice"), random=deterministic_random(b"p")
    )
    return private


def _secret_texts(private: KeyPackagePrivateKeys) -> list[str]:
    secrets = (private.init_priv, private.encryption_priv, private.signature_priv)
    return [form for s in secrets for form in (s.hex(), repr(s), str(list(s)))]


def test_private_keys_roundtrip_through_bytes() -> None:
    private = _private_keys()
    encoded = private.to_bytes()
    assert encoded[0] == 1  # the format version
    assert KeyPackagePrivateKeys.from_bytes(encoded) == private


def test_private_keys_repr_shows_no_secret() -> None:
    private = _private_keys()
    text = repr(private)
    assert private.ref.hex() in text or repr(private.ref) in text
    for secret in _secret_texts(private):
        assert secret not in text
    assert "_priv" not in text


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:-1],
        lambda b: b + b"\x00",
        lambda b: b"\x02" + b[1:],
        lambda b: b"",
        lambda b: b"\x01\x00\x00\x00\x00",
    ],
    ids=["truncated", "trailing", "other-version", "empty", "empty-fields"],
)
def test_private_keys_from_malformed_bytes_is_a_decode_error(
    mutate: Callable[[bytes], bytes],
) -> None:
    encoded = _private_keys().to_bytes()
    with pytest.raises(DecodeError):
        KeyPackagePrivateKeys.from_bytes(mutate(encoded))


def test_private_keys_from_every_truncation_is_a_decode_error() -> None:
    encoded = _private_keys().to_bytes()
    for cut in range(len(encoded)):
        with pytest.raises(DecodeError):
            KeyPackagePrivateKeys.from_bytes(encoded[:cut])


def _parses_or_decode_error(data: bytes) -> None:
    try:
        private = KeyPackagePrivateKeys.from_bytes(data)
    except DecodeError:
        return
    assert private.to_bytes() == data


@given(st.binary(max_size=300))
def test_private_keys_from_arbitrary_bytes_raises_only_decode_error(data: bytes) -> None:
    _parses_or_decode_error(data)


@given(st.data())
def test_private_keys_from_mutated_bytes_raises_only_decode_error(data: st.DataObject) -> None:
    encoded = bytearray(_private_keys().to_bytes())
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    _parses_or_decode_error(bytes(encoded[:cut]) + data.draw(st.binary(max_size=4)))


def test_store_puts_gets_and_deletes_by_ref() -> None:
    store: KeyPackageStore = InMemoryKeyPackageStore()
    first = _private_keys()
    _, second = KeyPackage.generate(K.suite, K.signature_priv, Credential.basic(b"b"))
    assert store.get(first.ref) is None
    store.put(first)
    store.put(second)
    assert store.get(first.ref) == first and store.get(second.ref) == second
    store.delete(first.ref)
    assert store.get(first.ref) is None and store.get(second.ref) == second
    store.delete(first.ref)  # deleting what is gone is not an error
    assert store.get(second.ref) == second


def test_store_repr_shows_no_secret() -> None:
    store = InMemoryKeyPackageStore()
    private = _private_keys()
    store.put(private)
    assert len(store) == 1
    text = repr(store)
    for secret in _secret_texts(private):
        assert secret not in text
