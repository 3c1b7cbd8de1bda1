"""KeyPackages: a client's signed offer to be added to groups (RFC 9420 §10).

A :class:`KeyPackage` is signed with the label ``"KeyPackageTBS"`` by the key in its own leaf
node, and is named by its reference (``MakeKeyPackageRef``, RFC 9420 §5.2).
:func:`validate_key_package` runs the checks a KeyPackage supports on its own (RFC 9420 §10.1);
checks against a particular group (cipher suite and version match, required capabilities, key
uniqueness, the Authentication Service) belong to the group logic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated

from .codec import U16, Opaque, Struct, Vector
from .crypto.ciphersuite import Suite, get_suite
from .crypto.labels import make_key_package_ref, sign_with_label, verify_with_label
from .errors import MLSError, ValidationError, VerificationError
from .extensions import (
    Extension,
    ExtensionSite,
    duplicate_extension_type,
    misplaced_extension_type,
)
from .group_context import VERSION, ProtocolVersion
from .leaf_node import (
    LeafNode,
    LeafNodeSource,
    check_credential_key,
    check_lifetime,
    check_lifetime_span,
    check_own_capabilities,
)

KEY_PACKAGE_TBS_LABEL = b"KeyPackageTBS"  # RFC 9420 §10


@dataclass(frozen=True)
class KeyPackageTBS(Struct):
    """The content a KeyPackage's signature covers (RFC 9420 §10)."""

    version: Annotated[ProtocolVersion, VERSION]
    cipher_suite: Annotated[int, U16]
    init_key: Annotated[bytes, Opaque]
    leaf_node: LeafNode
    extensions: Annotated[tuple[Extension, ...], Vector(Extension)]


@dataclass(frozen=True)
class KeyPackage(Struct):
    """RFC 9420 §10. ``init_key`` is the HPKE key Welcome secrets are encrypted to; it must
    differ from ``leaf_node.encryption_key``."""

    version: Annotated[ProtocolVersion, VERSION]
    cipher_suite: Annotated[int, U16]
    init_key: Annotated[bytes, Opaque]
    leaf_node: LeafNode
    extensions: Annotated[tuple[Extension, ...], Vector(Extension)]
    signature: Annotated[bytes, Opaque]

    def tbs(self) -> KeyPackageTBS:
        return KeyPackageTBS(
            self.version, self.cipher_suite, self.init_key, self.leaf_node, self.extensions
        )

    def signed(self, suite: Suite, signature_priv: bytes) -> KeyPackage:
        """A copy carrying a fresh signature by ``signature_priv`` (the leaf's signature key)."""
        signature = sign_with_label(
            suite, signature_priv, KEY_PACKAGE_TBS_LABEL, self.tbs().encode()
        )
        return dataclasses.replace(self, signature=signature)

    def verify_signature(self, suite: Suite) -> None:
        """Checks the signature with ``leaf_node.signature_key`` (RFC 9420 §10).

        Raises:
            VerificationError: the signature does not verify.
        """
        verify_with_label(
            suite,
            self.leaf_node.signature_key,
            KEY_PACKAGE_TBS_LABEL,
            self.tbs().encode(),
            self.signature,
        )

    def ref(self, suite: Suite) -> bytes:
        """The KeyPackageRef naming this KeyPackage (RFC 9420 §5.2)."""
        return make_key_package_ref(suite, self.encode())


def validate_key_package(
    kp: KeyPackage,
    *,
    suite: Suite | None = None,
    now: int | None = None,
    max_lifetime: int | None = None,
) -> None:
    """Runs the checks a KeyPackage supports on its own (RFC 9420 §10.1; VALIDATION.md KP-01
    to KP-07 and the LN checks that apply to a lone leaf).

    Args:
        kp: the KeyPackage, already decoded.
        suite: the cipher suite the caller expects (a group's suite); ``None`` takes the
            KeyPackage's own ``cipher_suite``.
        now: the current time in seconds since the Unix epoch; ``None`` skips the lifetime check.
        max_lifetime: the application's longest acceptable ``not_after - not_before`` in
            seconds (RFC 9420 §7.2 makes applications define one); ``None`` skips the check.

    Raises:
        ValidationError: with ``.rule`` naming the broken rule; a bad signature raises its
            :class:`VerificationError` subclass.
    """
    # KP-01 (RFC 9420 §10): the only version this package speaks is mls10
    if kp.version != ProtocolVersion.MLS10:
        raise ValidationError("§10/version", f"KeyPackage version {kp.version}")
    # KP-05 (RFC 9420 §10.1): the cipher suite is the one expected, and supported
    try:
        own_suite = get_suite(kp.cipher_suite)
    except MLSError as exc:
        raise ValidationError(
            "§10.1/cipher-suite", f"unsupported cipher suite {kp.cipher_suite}"
        ) from exc
    if suite is not None and own_suite.id != suite.id:
        raise ValidationError(
            "§10.1/cipher-suite", "KeyPackage cipher suite differs from the group's"
        )
    leaf = kp.leaf_node
    # KP-03 / LN-08 (RFC 9420 §10.1): a KeyPackage's leaf has source key_package
    if leaf.leaf_node_source != LeafNodeSource.KEY_PACKAGE:
        raise ValidationError("§10.1/leaf-node-source", f"leaf source {leaf.leaf_node_source}")
    # KP-03 / LN-05, LN-06, LN-11 (RFC 9420 §7.2, §13.4, §17.3)
    check_own_capabilities(leaf)
    # KP-03 / LN-07 (RFC 9420 §7.2, §7.3)
    if now is not None:
        check_lifetime(leaf, now)
    if max_lifetime is not None:
        check_lifetime_span(leaf, max_lifetime)
    # KP-03 / CRD-03 (RFC 9420 §5.3)
    check_credential_key(leaf)
    # KP-04 (RFC 9420 §10.1): init_key and the leaf's encryption_key differ
    if kp.init_key == leaf.encryption_key:
        raise ValidationError("§10.1/init-key-distinct", "init_key equals the leaf encryption_key")
    # KP-07 (RFC 9420 §13.4): no extension type twice
    dup = duplicate_extension_type(kp.extensions)
    if dup is not None:
        raise ValidationError(
            "§13.4/duplicate-extension", f"KeyPackage extension type {dup} repeated"
        )
    # RFC 9420 §17.3: none of the known extension types may appear in a KeyPackage
    misplaced = misplaced_extension_type(kp.extensions, ExtensionSite.KEY_PACKAGE)
    if misplaced is not None:
        raise ValidationError(
            "§17.3/key-package-extension-type",
            f"extension type {misplaced} is not allowed in a KeyPackage",
        )
    # KP-06, CRD-04 (RFC 9420 §5.1.1, §10): the keys are valid encodings for the suite
    own_suite.check_hpke_public_key(kp.init_key)
    own_suite.check_hpke_public_key(leaf.encryption_key)
    own_suite.check_signature_public_key(leaf.signature_key)
    # KP-03 / LN-02 (RFC 9420 §7.3): the leaf's signature verifies
    try:
        leaf.verify_signature(own_suite)
    except VerificationError as exc:
        raise VerificationError("§7.3/leaf-node-signature", "leaf signature invalid") from exc
    # KP-02 (RFC 9420 §10): the KeyPackage's signature verifies
    try:
        kp.verify_signature(own_suite)
    except VerificationError as exc:
        raise VerificationError(
            "§10/key-package-signature", "KeyPackage signature invalid"
        ) from exc
