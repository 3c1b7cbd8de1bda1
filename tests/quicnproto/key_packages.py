"""Real KeyPackages (RFC 9420 §10) for node tests, built with the client's own code.

The KeyPackage's signature key is the identity's Ed25519 key, as the node requires.
"""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
    ``not_before`` (default: a minute ago) to ``not_after`` (default: a day from now)."""
    now = int(time.time())
    start = now - 60 if not_before is None else not_before
    end = now + 86400 if not_after is None else not_after
    # new_key_package backdates the start by a minute; undo that here.
    message, _ = new_key_package(
        identity, name, suite_id=suite_id, now=start + 60, lifetime=end - start - 60
    )
    return message
