"""Authentication Service: connection-bound identity proof and the KeyPackage directory.

Identity. A client is known by a raw 32-byte Ed25519 public key, its *identity key*. To act as
that identity on a QUIC connection it asks for a challenge (a fresh 32-byte nonce the node keeps
in that connection's state only) and signs ``AUTH_CONTEXT || SHA-256(node certificate) || nonce``
(:func:`quicnproto.wire.auth_message`). The nonce is single use and lives in
:attr:`ConnectionInfo.state` of the connection that asked, so a signature cannot be replayed on
another connection; the certificate digest (the client's pinned certificate) means an answer
given to one node is worthless at another. A successful proof adds the key to that connection's
identities.
Nothing about identity is ever read from a request field alone (VALIDATION SRV-Q-06, SRV-AU-01).

KeyPackages (RFC 9420 §10, §16.8). An upload is parsed and checked with the ``mls`` library
(signature, supported suite, leaf source, lifetime; see :func:`check_key_package`) and is
*bound to the uploader*: the KeyPackage's ``leaf_node.signature_key`` must equal the
authenticated identity key the upload is for (VALIDATION SRV-AU-04), which also means only
Ed25519 cipher suites can be used with this node. Each identity may store several; each is handed
out once (an atomic claim in the store), an optional last-resort package is handed out again and
again, expired packages are never served, and claims are rate-limited per (requester, target)
(VALIDATION SRV-KP-01..05).

``mls`` is imported lazily by :func:`check_key_package`, so the node runs without it; uploads are
then refused with ``UNSUPPORTED``.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mls.errors import DecodeError
from mls.framing import MLSMessage, WireFormat
from quicnproto.config import NodeConfig
from quicnproto.errors import ErrorCode
from quicnproto.node.rate_limiter import RateLimiter
from quicnproto.node.store import RequestRefused, Store
from quicnproto.wire import (
    AUTH_NONCE_SIZE,
    Authenticate,
    Authenticated,
    Challenge,
    CountKeyPackages,
    FetchKeyPackage,
    GetChallenge,
    KeyPackageCount,
    KeyPackageFetched,
    KeyPackageUploaded,
    UploadKeyPackage,
    auth_message,
)

NONCE_SIZE = AUTH_NONCE_SIZE
IDENTITY_KEY_SIZE = 32  # raw Ed25519 public key (RFC 8032 §5.1.5)
SIGNATURE_SIZE = 64  # Ed25519 signature (RFC 8032 §5.1.6)

_NONCE = "auth.nonce"
_IDENTITIES = "auth.identities"



def identities(state: MutableMapping[str, Any]) -> list[bytes]:
    """Identity keys proven on the connection owning ``state``, in proof order."""
    found = state.get(_IDENTITIES)
    return list(found) if found else []


def is_authenticated(state: MutableMapping[str, Any], identity_key: bytes) -> bool:
    """Whether ``identity_key`` was proven on the connection owning ``state``."""
    return any(hmac.compare_digest(k, identity_key) for k in identities(state))


def require_identity(state: MutableMapping[str, Any]) -> bytes:
    """The connection's first proven identity (the sender of what it enqueues).

    Raises:
        RequestRefused: UNAUTHENTICATED when nothing was proven.
    """
    found = identities(state)
    if not found:
        raise RequestRefused(ErrorCode.UNAUTHENTICATED, "authenticate first")
    return found[0]


@dataclass(frozen=True)
class CheckedKeyPackage:
    """What the node keeps from a validated KeyPackage."""

    ref: bytes
    """KeyPackageRef (RFC 9420 §5.2), returned to the uploader as the fingerprint."""
    not_after: int
    """End of the leaf's lifetime, seconds since the Unix epoch (RFC 9420 §7.2)."""
    init_key: bytes
    """The HPKE init key (RFC 9420 §10); a key reused across packages is refused."""


def check_key_package(
    package: bytes, identity_key: bytes, *, now: int, max_lifetime: int
) -> CheckedKeyPackage:
    """Parse and check a KeyPackage upload (VALIDATION SRV-KP-01, SRV-AU-04).

    ``package`` is an ``MLSMessage`` with wire format ``mls_key_package`` (RFC 9420 §6) or a bare
    ``KeyPackage`` (RFC 9420 §10). Checks, in order: it decodes exactly; it passes
    ``mls.key_package.validate_key_package`` at ``now`` (version, supported suite, leaf source,
    capabilities, lifetime covers ``now``, distinct init key, key encodings, both signatures);
    its ``leaf_node.signature_key`` equals ``identity_key``; and its lifetime ends no later than
    ``now + max_lifetime``.

    Raises:
        RequestRefused: INVALID with the failed rule, or UNSUPPORTED when ``mls`` is missing.
    """
    try:
        from mls.errors import MLSError
        from mls.key_package import KeyPackage, validate_key_package
    except ImportError as exc:
        raise RequestRefused(ErrorCode.UNSUPPORTED, "key package checks unavailable") from exc
    try:
        kp = _decode_key_package(package, KeyPackage)
        validate_key_package(kp, now=now)
        from mls.crypto.ciphersuite import get_suite

        ref = kp.ref(get_suite(kp.cipher_suite))
    except MLSError as exc:
        rule = getattr(exc, "rule", type(exc).__name__)
        raise RequestRefused(ErrorCode.INVALID, f"key package rejected: {rule}") from exc
    # SRV-AU-04: the package speaks for the identity that uploads it, and no other.
    if not hmac.compare_digest(bytes(kp.leaf_node.signature_key), identity_key):
        raise RequestRefused(ErrorCode.INVALID, "key package signature_key is not the identity")
    lifetime = kp.leaf_node.lifetime
    if lifetime is None or lifetime.not_after > now + max_lifetime:
        raise RequestRefused(ErrorCode.INVALID, "key package lifetime too long")
    return CheckedKeyPackage(
        ref=bytes(ref), not_after=int(lifetime.not_after), init_key=bytes(kp.init_key)
    )


def key_package_parses(package: bytes) -> bool:
    """Whether a stored package still decodes as a KeyPackage (RFC 9420 §10).

    The store asks this of every stored package when it opens, and quarantines those it
    rejects (VALIDATION SRV-CR-05). Only decoding is checked: signatures and lifetime were
    checked at upload, and expiry is the store's own business. True when ``mls`` is missing
    (nothing to check with).
    """
    try:
        from mls.errors import MLSError
        from mls.key_package import KeyPackage
    except ImportError:
        return True
    try:
        _decode_key_package(package, KeyPackage)
    except (MLSError, RequestRefused):
        return False
    return True


def _decode_key_package(package: bytes, key_package_type: Any) -> Any:
    """An ``MLSMessage(mls_key_package)`` or a bare ``KeyPackage`` as a KeyPackage value.

    Raises:
        DecodeError: neither decodes.
        RequestRefused: INVALID for an MLSMessage of another wire format.
    """
    try:
        message = MLSMessage.decode(package)
    except DecodeError:
        return key_package_type.decode(package)
    if message.wire_format != WireFormat.MLS_KEY_PACKAGE:
        raise RequestRefused(ErrorCode.INVALID, "not an mls_key_package message")
    body = message.body
    if not isinstance(body, key_package_type):
        raise RequestRefused(ErrorCode.INVALID, "not an mls_key_package message")
    return body


class AuthService:
    """Challenge/response authentication and the KeyPackage directory.

    Args:
        store: where KeyPackages live.
        config: limits (KeyPackage count, size, lifetime, claim rate).
        node_certificate: this node's DER certificate, the one clients pin; challenge answers
            must be signed for it (:func:`quicnproto.wire.auth_message`).
        wall_clock: seconds since the Unix epoch (KeyPackage lifetimes).
        clock: monotonic seconds (rate limits).
    """

    def __init__(
        self,
        store: Store,
        config: NodeConfig,
        *,
        node_certificate: bytes,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.config = config
        self._node_certificate = node_certificate
        self._wall_clock = wall_clock
        self._claims = RateLimiter(
            config.key_package_claims,
            config.key_package_claims / config.key_package_claim_window,
            clock,
        )

    def get_challenge(
        self, state: MutableMapping[str, Any], request: GetChallenge | None = None
    ) -> Challenge:
        """A fresh nonce for this connection; replaces any earlier unanswered one."""
        nonce = secrets.token_bytes(NONCE_SIZE)
        state[_NONCE] = nonce
        return Challenge(nonce=nonce)

    def authenticate(self, state: MutableMapping[str, Any], request: Authenticate) -> Authenticated:
        """Verify the signed challenge and bind ``identity_key`` to this connection.

        Raises:
            RequestRefused: UNAUTHENTICATED when there is no outstanding challenge or the
                signature does not verify (the challenge is spent either way); QUOTA_EXCEEDED
                when the connection already holds ``max_identities_per_connection`` others.
        """
        nonce = state.pop(_NONCE, None)
        if nonce is None:
            raise RequestRefused(ErrorCode.UNAUTHENTICATED, "no outstanding challenge")
        if (
            len(request.identity_key) != IDENTITY_KEY_SIZE
            or len(request.signature) != SIGNATURE_SIZE
        ):
            raise RequestRefused(ErrorCode.UNAUTHENTICATED, "bad signature")
        try:
            Ed25519PublicKey.from_public_bytes(request.identity_key).verify(
                request.signature, auth_message(self._node_certificate, nonce)
            )
        except (InvalidSignature, ValueError) as exc:
            raise RequestRefused(ErrorCode.UNAUTHENTICATED, "bad signature") from exc
        proven = state.setdefault(_IDENTITIES, [])
        if not is_authenticated(state, request.identity_key):
            # Keys are free to make: without a cap one connection could grow this list (and
            # the cost of every ownership check) without bound.
            if len(proven) >= self.config.max_identities_per_connection:
                raise RequestRefused(ErrorCode.QUOTA_EXCEEDED, "too many identities")
            proven.append(request.identity_key)
        return Authenticated(identity_key=request.identity_key)

    def _require(self, state: MutableMapping[str, Any], identity_key: bytes) -> None:
        if not is_authenticated(state, identity_key):
            raise RequestRefused(ErrorCode.UNAUTHENTICATED, "not authenticated for this identity")

    async def upload_key_package(
        self, state: MutableMapping[str, Any], request: UploadKeyPackage
    ) -> KeyPackageUploaded:
        """Check and store a KeyPackage for the authenticated uploader.

        Raises:
            RequestRefused: UNAUTHENTICATED, INVALID, UNSUPPORTED, CONFLICT, QUOTA_EXCEEDED.
        """
        self._require(state, request.identity_key)
        if len(request.package) > self.config.max_key_package_size:
            raise RequestRefused(ErrorCode.INVALID, "key package too large")
        checked = check_key_package(
            request.package,
            request.identity_key,
            now=int(self._wall_clock()),
            max_lifetime=self.config.key_package_max_lifetime,
        )
        await self.store.add_key_package(
            request.identity_key,
            checked.ref,
            request.package,
            request.last_resort,
            checked.not_after,
            checked.init_key,
        )
        return KeyPackageUploaded(fingerprint=checked.ref)

    async def fetch_key_package(
        self, state: MutableMapping[str, Any], request: FetchKeyPackage
    ) -> KeyPackageFetched:
        """Claim one KeyPackage of ``request.identity_key`` for an authenticated requester.

        Raises:
            RequestRefused: UNAUTHENTICATED, RATE_LIMITED, NOT_FOUND (none left).
        """
        requester = require_identity(state)
        if not self._claims.try_take((requester, request.identity_key)):
            raise RequestRefused(ErrorCode.RATE_LIMITED, "too many key package claims")
        claimed = await self.store.claim_key_package(request.identity_key)
        if claimed is None:
            raise RequestRefused(ErrorCode.NOT_FOUND, "no key package available")
        package, last_resort = claimed
        return KeyPackageFetched(package=package, last_resort=last_resort)

    async def count_key_packages(
        self, state: MutableMapping[str, Any], request: CountKeyPackages
    ) -> KeyPackageCount:
        """Single-use KeyPackages left for the authenticated identity (to replenish)."""
        self._require(state, request.identity_key)
        return KeyPackageCount(count=await self.store.count_key_packages(request.identity_key))
