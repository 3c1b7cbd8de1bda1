from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mls.crypto.ciphersuite import get_suite
from mls.crypto.labels import make_key_package_ref
from mls.framing import MLSMessage
from mls.key_package import CLOCK_SKEW, KeyPackage, validate_key_package
from quicnproto.client.connection import identity_key_of
from quicnproto.client.keys import new_key_package


@pytest.mark.parametrize("suite_id", [1, 3])
def test_new_key_package_is_valid_and_bound_to_the_identity(suite_id: int) -> None:
    identity = Ed25519PrivateKey.generate()
    suite = get_suite(suite_id)
    message, secrets = new_key_package(identity, b"alice", suite_id=suite_id, now=1_000_000)
    package = MLSMessage.decode(message).body
    assert isinstance(package, KeyPackage)
    validate_key_package(package, suite=suite, now=1_000_000)
    assert package.cipher_suite == suite_id
    assert package.leaf_node.signature_key == identity_key_of(identity)
    assert package.leaf_node.lifetime is not None
    assert package.leaf_node.lifetime.not_before == 1_000_000 - CLOCK_SKEW
    # The reference is the RFC 9420 §5.2 KeyPackageRef of the KeyPackage itself.
    assert secrets.ref == make_key_package_ref(suite, package.encode())
    # The private halves belong to the published public keys.
    assert suite.hpke.public_key(secrets.init_private) == package.init_key
    assert suite.hpke.public_key(secrets.encryption_private) == package.leaf_node.encryption_key
    assert package.init_key != package.leaf_node.encryption_key


def test_key_package_secrets_repr_hides_private_keys() -> None:
    _, secrets = new_key_package(Ed25519PrivateKey.generate(), b"bob")
    text = repr(secrets)
    assert secrets.init_private.hex() not in text
    assert secrets.encryption_private.hex() not in text
    assert "init_private" not in text


def test_new_key_package_refuses_a_suite_that_does_not_sign_with_ed25519() -> None:
    with pytest.raises(ValueError, match="Ed25519"):
        new_key_package(Ed25519PrivateKey.generate(), b"carol", suite_id=2)
