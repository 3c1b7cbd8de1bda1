"""Real KeyPackages (RFC 9420 §10) for node tests, built with the client's own code.

The KeyPackage's signature key is the identity's Ed25519 key, as the node requires.
"""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mls.key_package import CLOCK_SKEW
from quicnproto.client.keys import new_key_package


def make_key_package(
    identity: Ed25519PrivateKey,
    *,
    suite_id: int = 1,
    not_before: int | None = None,
    not_after: int | None = None,
    name: bytes = b"tester",
) -> bytes:
    """A signed KeyPackage for ``identity`` as an encoded MLSMessage, valid from
    ``not_before`` (default: ``CLOCK_SKEW`` ago) to ``not_after`` (default: a day from now)."""
    now = int(time.time())
    start = now - CLOCK_SKEW if not_before is None else not_before
    end = now + 86400 if not_after is None else not_after
    # new_key_package starts the lifetime CLOCK_SKEW before its ``now``.
    message, _ = new_key_package(
        identity, name, suite_id=suite_id, now=start + CLOCK_SKEW, lifetime=end - start
    )
    return message
