"""KeyPackages: a client's signed offer to be added to groups (RFC 9420 §10).

A :class:`KeyPackage` is signed with the label ``"KeyPackageTBS"`` by the key in its own leaf
node, and is named by its reference (``MakeKeyPackageRef``, RFC 9420 §5.2).
:func:`validate_key_package` runs the checks a KeyPackage supports on its own (RFC 9420 §10.1);
checks against a particular group (cipher suite and version match, required capabilities, key
uniqueness, the Authentication Service) belong to the group logic.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Protocol

from .codec import U16, Opaque, Reader, Struct, Vector, Writer, reader_for
from .credentials import Credential, CredentialType
from .crypto.ciphersuite import Suite, get_suite
from .crypto.labels import make_key_package_ref, sign_with_label, verify_with_label
from .errors import DecodeError, MLSError, ValidationError, VerificationError
from .extensions import (
    Extension,
    ExtensionSite,
    duplicate_extension_type,
    misplaced_extension_type,
)
from .group_context import VERSION, ProtocolVersion
from .leaf_node import (
    Capabilities,
    LeafNode,
    LeafNodeSource,
    Lifetime,
    check_credential_key,
    check_lifetime,
    check_lifetime_span,
    check_own_capabilities,
)

KEY_PACKAGE_TBS_LABEL = b"KeyPackageTBS"  # RFC 9420 §10

DEFAULT_KEY_PACKAGE_LIFETIME = 90 * 24 * 3600
"""Seconds a generated KeyPackage is valid (RFC 9420 §7.2 leaves the span to applications)."""

CLOCK_SKEW = 3600
"""A generated KeyPackage's ``not_before`` lies this many seconds in the past, so peers whose
clocks run behind accept it."""

_PRIVATE_KEYS_FORMAT = 1


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

    @classmethod
    def generate(
        cls,
        suite: Suite | int,
        signature_priv: bytes,
        credential: Credential,
        *,
        capabilities: Capabilities | None = None,
        lifetime: int = DEFAULT_KEY_PACKAGE_LIFETIME,
        now: int | None = None,
        extensions: Sequence[Extension] = (),
        leaf_extensions: Sequence[Extension] = (),
        random: Callable[[int], bytes] | None = None,
    ) -> tuple[KeyPackage, KeyPackagePrivateKeys]:
        """A fresh signed KeyPackage and its private keys (RFC 9420 §10).

        Args:
            suite: the cipher suite (a ``Suite`` or its id).
            signature_priv: the key that signs the leaf and the KeyPackage.
            credential: the leaf's credential.
            capabilities: default :func:`default_capabilities` (basic and x509 credentials).
            lifetime: seconds of validity from ``not_before``, which lies
                :data:`CLOCK_SKEW` before ``now``.
            extensions: the KeyPackage's extensions; ``leaf_extensions`` the leaf's.
            random: a source of the HPKE key seeds (deterministic tests); default fresh keys.

        Returns:
            the KeyPackage, and the private keys to keep in a :class:`KeyPackageStore`.
        """
        return generate_key_package(
            suite,
            signature_priv,
            credential,
            capabilities=capabilities,
            lifetime=lifetime,
            now=now,
            extensions=extensions,
            leaf_extensions=leaf_extensions,
            random=random,
        )


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


# --------------------------------------------------------------------------------------------
# Generating KeyPackages and keeping their private keys (RFC 9420 §10, §16.8)


@dataclass(frozen=True)
class KeyPackagePrivateKeys:
    """The private halves a KeyPackage's owner keeps until a Welcome consumes it (RFC 9420 §10,
    §16.8). No ``==`` over secrets and no secret in the ``repr``.

    Attributes:
        ref: the KeyPackageRef naming the KeyPackage.
        init_priv: the HPKE private key of ``init_key`` (opens the Welcome's GroupSecrets).
        encryption_priv: the HPKE private key of the leaf's ``encryption_key``.
        signature_priv: the leaf's signature key.
    """

    ref: bytes
    init_priv: bytes = field(repr=False, compare=False)
    encryption_priv: bytes = field(repr=False, compare=False)
    signature_priv: bytes = field(repr=False, compare=False)

    def to_bytes(self) -> bytes:
        """A versioned serialization (secrets included: store it like a key)."""
        w = Writer()
        w.uint(_PRIVATE_KEYS_FORMAT, 1)
        for value in (self.ref, self.init_priv, self.encryption_priv, self.signature_priv):
            w.opaque(value)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyPackagePrivateKeys:
        """The inverse of :meth:`to_bytes`.

        Raises:
            DecodeError: not a serialization this version wrote.
        """
        r: Reader = reader_for(data)
        version = r.uint(1)
        if version != _PRIVATE_KEYS_FORMAT:
            raise DecodeError(f"KeyPackage private keys format {version}")
        keys = cls(r.opaque(), r.opaque(), r.opaque(), r.opaque())
        r.expect_end("KeyPackage private keys")
        return keys


class KeyPackageStore(Protocol):
    """Where a client keeps :class:`KeyPackagePrivateKeys` until a Welcome consumes them; the
    application persists it (RFC 9420 §16.8: delete them once used, KP-08)."""

    def put(self, keys: KeyPackagePrivateKeys) -> None: ...

    def get(self, ref: bytes) -> KeyPackagePrivateKeys | None: ...

    def delete(self, ref: bytes) -> None: ...


class InMemoryKeyPackageStore:
    """A :class:`KeyPackageStore` in a dict (lost with the process)."""

    def __init__(self) -> None:
        self._keys: dict[bytes, KeyPackagePrivateKeys] = {}

    def __repr__(self) -> str:
        return f"InMemoryKeyPackageStore({len(self._keys)} KeyPackages)"

    def __len__(self) -> int:
        return len(self._keys)

    def put(self, keys: KeyPackagePrivateKeys) -> None:
        self._keys[keys.ref] = keys

    def get(self, ref: bytes) -> KeyPackagePrivateKeys | None:
        return self._keys.get(ref)

    def delete(self, ref: bytes) -> None:
        self._keys.pop(ref, None)


def default_capabilities(suite: Suite) -> Capabilities:
    """What :meth:`KeyPackage.generate` advertises: mls10, the KeyPackage's suite, basic and
    x509 credentials (RFC 9420 §7.2; default extension and proposal types are implied)."""
    return Capabilities(
        versions=(int(ProtocolVersion.MLS10),),
        cipher_suites=(int(suite.id),),
        extensions=(),
        proposals=(),
        credentials=(int(CredentialType.BASIC), int(CredentialType.X509)),
    )


def generate_key_package(
    suite: Suite | int,
    signature_priv: bytes,
    credential: Credential,
    *,
    capabilities: Capabilities | None = None,
    lifetime: int = DEFAULT_KEY_PACKAGE_LIFETIME,
    now: int | None = None,
    extensions: Sequence[Extension] = (),
    leaf_extensions: Sequence[Extension] = (),
    random: Callable[[int], bytes] | None = None,
) -> tuple[KeyPackage, KeyPackagePrivateKeys]:
    """A fresh signed KeyPackage and its private keys (RFC 9420 §10); see
    :meth:`KeyPackage.generate`."""
    if not isinstance(suite, Suite):
        suite = get_suite(suite)
    if random is None:
        init_priv, init_key = suite.hpke.generate_key_pair()
        encryption_priv, encryption_key = suite.hpke.generate_key_pair()
    else:
        init_priv, init_key = suite.hpke.derive_key_pair(random(suite.hash_length))
        encryption_priv, encryption_key = suite.hpke.derive_key_pair(random(suite.hash_length))
    start = (int(time.time()) if now is None else now) - CLOCK_SKEW
    leaf = LeafNode(
        encryption_key=encryption_key,
        signature_key=suite.signature_public_key(signature_priv),
        credential=credential,
        capabilities=default_capabilities(suite) if capabilities is None else capabilities,
        leaf_node_source=LeafNodeSource.KEY_PACKAGE,
        lifetime=Lifetime(not_before=start, not_after=start + lifetime),
        extensions=tuple(leaf_extensions),
        signature=b"",
    ).signed(suite, signature_priv)
    kp = KeyPackage(
        version=ProtocolVersion.MLS10,
        cipher_suite=int(suite.id),
        init_key=init_key,
        leaf_node=leaf,
        extensions=tuple(extensions),
        signature=b"",
    ).signed(suite, signature_priv)
    return kp, KeyPackagePrivateKeys(kp.ref(suite), init_priv, encryption_priv, signature_priv)
