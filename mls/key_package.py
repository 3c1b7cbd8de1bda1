"""KeyPackages: a client's signed offer to be added to groups (RFC 9420 §10).

A :class:`KeyPackage` is signed with the label ``"KeyPackageTBS"`` by the key in its own leaf
node, and is named by its reference (``MakeKeyPackageRef``, RFC 9420 §5.2).
:meth:`KeyPackage.generate` is the one way to make a valid KeyPackage; it returns the
:class:`KeyPackagePrivateKeys` its owner keeps, in a :class:`KeyPackageStore`, until a Welcome
consumes them (RFC 9420 §16.8: each KeyPackage is used once)::

    generate ──> KeyPackage ──(published)──> an adder's Add proposal ──> Welcome
        └──────> KeyPackagePrivateKeys ──> store.put ······> store.get(ref), then delete(ref)

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

from .codec import U16, Opaque, Struct, Vector, Writer, reader_for
from .credentials import Credential, CredentialType
from .crypto.ciphersuite import Suite, get_suite
from .crypto.labels import make_key_package_ref, sign_with_label, verify_with_label
from .errors import DecodeError, MLSError, UsageError, ValidationError, VerificationError
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
"""Seconds from ``not_before`` to ``not_after`` of a generated KeyPackage's leaf (RFC 9420 §7.2
leaves the maximum to the application; 90 days is what the quicnproto node accepts)."""

CLOCK_SKEW = 3600
"""Seconds a generated KeyPackage's ``not_before`` lies in the past, so that members whose
clocks run behind still accept it (RFC 9420 §7.2 lifetimes are checked against local time)."""

_PRIVATE_KEYS_FORMAT = 1
"""The version byte of :meth:`KeyPackagePrivateKeys.to_bytes`."""


@dataclass(frozen=True)
class KeyPackagePrivateKeys:
    """The private halves a KeyPackage's owner keeps until a Welcome consumes it (RFC 9420 §10,
    §16.8). Store them like keys, and delete them once the KeyPackage has been used."""

    ref: bytes
    """The KeyPackageRef of the KeyPackage (RFC 9420 §5.2), which a Welcome names."""
    init_priv: bytes = field(repr=False)
    """The private key of ``init_key``, which opens the Welcome's group secrets (§12.4.3.1)."""
    encryption_priv: bytes = field(repr=False)
    """The private key of the leaf's ``encryption_key`` (§7.2)."""
    signature_priv: bytes = field(repr=False)
    """The private key of the leaf's ``signature_key``, which signed the KeyPackage."""

    def to_bytes(self) -> bytes:
        """A versioned serialization, for the caller to persist (secrets included: store it
        like a key)."""
        w = Writer()
        w.uint(_PRIVATE_KEYS_FORMAT, 1)
        for value in (self.ref, self.init_priv, self.encryption_priv, self.signature_priv):
            w.opaque(value)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyPackagePrivateKeys:
        """The inverse of :meth:`to_bytes`.

        Raises:
            DecodeError: ``data`` is not a serialization :meth:`to_bytes` produces (another
                format version, an empty field, truncation or trailing bytes).
        """
        r = reader_for(data)
        version = r.uint(1)
        if version != _PRIVATE_KEYS_FORMAT:
            raise DecodeError(f"KeyPackagePrivateKeys: unknown format version {version}")
        ref, init_priv, encryption_priv, signature_priv = (r.opaque() for _ in range(4))
        r.expect_end("KeyPackagePrivateKeys")
        if not (ref and init_priv and encryption_priv and signature_priv):
            raise DecodeError("KeyPackagePrivateKeys: empty field")
        return cls(ref, init_priv, encryption_priv, signature_priv)


class KeyPackageStore(Protocol):
    """Where a client keeps :class:`KeyPackagePrivateKeys` until a Welcome consumes them
    (RFC 9420 §16.8); the caller decides how it is persisted."""

    def put(self, keys: KeyPackagePrivateKeys) -> None:
        """Keeps ``keys`` under ``keys.ref``, replacing any earlier entry."""

    def get(self, ref: bytes) -> KeyPackagePrivateKeys | None:
        """The keys of the KeyPackage named ``ref``, or ``None``."""

    def delete(self, ref: bytes) -> None:
        """Forgets the keys under ``ref``; nothing happens if there are none."""


class InMemoryKeyPackageStore:
    """A :class:`KeyPackageStore` in a dict (for tests and short-lived clients). Its ``repr``
    shows only how many entries it holds."""

    def __init__(self) -> None:
        self._keys: dict[bytes, KeyPackagePrivateKeys] = {}

    def __repr__(self) -> str:
        return f"InMemoryKeyPackageStore({len(self._keys)} key packages)"

    def __len__(self) -> int:
        return len(self._keys)

    def put(self, keys: KeyPackagePrivateKeys) -> None:
        self._keys[bytes(keys.ref)] = keys

    def get(self, ref: bytes) -> KeyPackagePrivateKeys | None:
        return self._keys.get(bytes(ref))

    def delete(self, ref: bytes) -> None:
        self._keys.pop(bytes(ref), None)


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
        """A fresh KeyPackage with a signed ``key_package`` leaf (RFC 9420 §10, §7.2), and the
        private keys its owner keeps until a Welcome consumes it (§16.8).

        The leaf's ``signature_key`` is ``suite.signature_public_key(signature_priv)``; the
        leaf and then the KeyPackage are signed with ``signature_priv``. The result passes
        :func:`validate_key_package` when the credential and the extensions allow it (an X.509
        credential's end-entity certificate must hold the signature key, §5.3).

        Args:
            suite: the cipher suite, as a :class:`Suite` or its number (1 to 7).
            signature_priv: the client's signature private key for ``suite``.
            credential: the leaf's credential.
            capabilities: the leaf's capabilities; by default version mls10, only ``suite``,
                no extra extensions or proposals, and the basic and x509 credential types.
            lifetime: seconds from ``not_before`` to ``not_after``.
            now: the current time in seconds since the Unix epoch (default: the clock).
                ``not_before`` is ``now - CLOCK_SKEW``, ``not_after`` is
                ``not_before + lifetime``.
            extensions: ``KeyPackage.extensions``.
            leaf_extensions: ``LeafNode.extensions``.
            random: for reproducible keys, a source of seeds: it is called with the KEM's
                ``Nsk`` once for the ``init_key`` pair, then once for the ``encryption_key``
                pair, each derived with DeriveKeyPair (RFC 9180 §7.1.3). ``None`` draws fresh
                key pairs.

        Returns:
            The signed KeyPackage and its :class:`KeyPackagePrivateKeys`.

        Raises:
            UnsupportedError: ``suite`` is not one of the seven suites.
            UsageError: a negative ``lifetime``, ``now`` before ``CLOCK_SKEW``, a signature
                key not valid for ``suite``, or ``random`` giving the same seed twice.
        """
        own_suite = suite if isinstance(suite, Suite) else get_suite(suite)
        start = (int(time.time()) if now is None else now) - CLOCK_SKEW
        if lifetime < 0 or start < 0:
            raise UsageError("KeyPackage lifetime must not be negative nor start before 1970")
        if capabilities is None:
            capabilities = default_capabilities(own_suite)
        init_priv, init_key = _hpke_key_pair(own_suite, random)
        encryption_priv, encryption_key = _hpke_key_pair(own_suite, random)
        # RFC 9420 §10.1: init_key and the leaf's encryption_key must differ
        if init_key == encryption_key:
            raise UsageError("random gave the same seed for init_key and encryption_key")
        leaf = LeafNode(
            encryption_key=encryption_key,
            signature_key=own_suite.signature_public_key(signature_priv),
            credential=credential,
            capabilities=capabilities,
            leaf_node_source=LeafNodeSource.KEY_PACKAGE,
            lifetime=Lifetime(not_before=start, not_after=start + lifetime),
            extensions=tuple(leaf_extensions),
            signature=b"",
        ).signed(own_suite, signature_priv)
        package = cls(
            version=ProtocolVersion.MLS10,
            cipher_suite=int(own_suite.id),
            init_key=init_key,
            leaf_node=leaf,
            extensions=tuple(extensions),
            signature=b"",
        ).signed(own_suite, signature_priv)
        keys = KeyPackagePrivateKeys(
            package.ref(own_suite), init_priv, encryption_priv, signature_priv
        )
        return package, keys

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


def default_capabilities(suite: Suite) -> Capabilities:
    """What :meth:`KeyPackage.generate` advertises by default: mls10, the KeyPackage's suite,
    basic and x509 credentials (RFC 9420 §7.2; default extension and proposal types are
    implied, so they are not listed)."""
    return Capabilities(
        versions=(ProtocolVersion.MLS10,),
        cipher_suites=(int(suite.id),),
        extensions=(),
        proposals=(),
        credentials=(CredentialType.BASIC, CredentialType.X509),
    )


def _hpke_key_pair(suite: Suite, random: Callable[[int], bytes] | None) -> tuple[bytes, bytes]:
    """A fresh HPKE key pair, or one derived from ``random(Nsk)`` (RFC 9180 §7.1.3)."""
    if random is None:
        return suite.hpke.generate_key_pair()
    return suite.hpke.derive_key_pair(random(suite.hpke.kem.n_sk))


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
