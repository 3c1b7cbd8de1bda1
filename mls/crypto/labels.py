"""The labeled operations of MLS (RFC 9420 §5.1.2, §5.1.3, §5.2, §8, §9).

Every label a caller passes here is the *short* label (``b"joiner"``, ``b"LeafNodeTBS"``):
the ``"MLS 1.0 "`` prefix is added inside, as the RFC's ``KDFLabel``, ``SignContent`` and
``EncryptContext`` structs require. The one exception is :func:`ref_hash`, whose
``RefHashInput.label`` carries no implicit prefix (§5.2): its callers pass the full label, as
:func:`make_key_package_ref` and :func:`make_proposal_ref` do.
"""

from __future__ import annotations

from ..codec import Writer, opaque_bytes
from ..errors import UsageError
from .ciphersuite import Suite

LABEL_PREFIX = b"MLS 1.0 "
"""The protocol-version prefix of every KDF, signature and encryption label (§5.1.2)."""

KEY_PACKAGE_REF_LABEL = b"MLS 1.0 KeyPackage Reference"
PROPOSAL_REF_LABEL = b"MLS 1.0 Proposal Reference"


def _two_opaques(first: bytes, second: bytes) -> bytes:
    w = Writer()
    w.opaque(first)
    w.opaque(second)
    return w.getvalue()


def expand_with_label(
    suite: Suite, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """ExpandWithLabel (§8): HKDF-Expand over the encoded ``KDFLabel``
    ``{uint16 length; opaque label<V> = "MLS 1.0 " + label; opaque context<V>}``."""
    if not 0 <= length < 1 << 16:
        raise UsageError("ExpandWithLabel length must fit in a uint16")
    info = length.to_bytes(2, "big") + opaque_bytes(LABEL_PREFIX + label) + opaque_bytes(context)
    return suite.kdf_expand(secret, info, length)


def derive_secret(suite: Suite, secret: bytes, label: bytes) -> bytes:
    """DeriveSecret (§8): ``ExpandWithLabel(secret, label, "", Nh)``."""
    return expand_with_label(suite, secret, label, b"", suite.hash_length)


def derive_tree_secret(
    suite: Suite, secret: bytes, label: bytes, generation: int, length: int
) -> bytes:
    """DeriveTreeSecret (§9): ExpandWithLabel with the uint32 ``generation`` as context."""
    if not 0 <= generation < 1 << 32:
        raise UsageError("DeriveTreeSecret generation must fit in a uint32")
    return expand_with_label(suite, secret, label, generation.to_bytes(4, "big"), length)


def ref_hash(suite: Suite, label: bytes, value: bytes) -> bytes:
    """RefHash (§5.2): the hash of ``RefHashInput {opaque label<V>; opaque value<V>}``.
    ``label`` is used as given (no ``"MLS 1.0 "`` prefix is added)."""
    return suite.hash(_two_opaques(label, value))


def make_key_package_ref(suite: Suite, key_package: bytes) -> bytes:
    """KeyPackageRef (§5.2) of an encoded KeyPackage (``MLSMessage`` payload, not the wrapper)."""
    return ref_hash(suite, KEY_PACKAGE_REF_LABEL, key_package)


def make_proposal_ref(suite: Suite, authenticated_content: bytes) -> bytes:
    """ProposalRef (§5.2) of an encoded ``AuthenticatedContent``."""
    return ref_hash(suite, PROPOSAL_REF_LABEL, authenticated_content)


def sign_with_label(suite: Suite, private_key: bytes, label: bytes, content: bytes) -> bytes:
    """SignWithLabel (§5.1.2): a signature over ``SignContent`` with label ``"MLS 1.0 " + label``."""
    return suite.sign(private_key, _two_opaques(LABEL_PREFIX + label, content))


def verify_with_label(
    suite: Suite, public_key: bytes, label: bytes, content: bytes, signature: bytes
) -> None:
    """VerifyWithLabel (§5.1.2); raises :class:`~mls.errors.VerificationError` if the signature
    does not verify and :class:`~mls.errors.ValidationError` for an invalid public key."""
    suite.verify(public_key, _two_opaques(LABEL_PREFIX + label, content), signature)


def encrypt_with_label(
    suite: Suite, public_key: bytes, label: bytes, context: bytes, plaintext: bytes
) -> tuple[bytes, bytes]:
    """EncryptWithLabel (§5.1.3): HPKE SealBase with ``EncryptContext`` as info and an empty
    aad. Returns ``(kem_output, ciphertext)``."""
    info = _two_opaques(LABEL_PREFIX + label, context)
    return suite.hpke.seal(public_key, info, b"", plaintext)


def decrypt_with_label(
    suite: Suite,
    private_key: bytes,
    label: bytes,
    context: bytes,
    kem_output: bytes,
    ciphertext: bytes,
) -> bytes:
    """DecryptWithLabel (§5.1.3); raises :class:`~mls.errors.DecryptionError` on failure."""
    info = _two_opaques(LABEL_PREFIX + label, context)
    return suite.hpke.open(private_key, kem_output, info, b"", ciphertext)
