"""The cryptographic layer of ``mls``: cipher suites, HPKE and the labeled operations
(RFC 9420 §5; RFC 9180). Built on the ``cryptography`` package; see :mod:`.primitives`."""

from __future__ import annotations

from .ciphersuite import SUPPORTED_SUITES, CipherSuite, Suite, get_suite
from .hpke import AeadId, Context, Hpke, KdfId, KemId, Mode
from .labels import (
    decrypt_with_label,
    derive_secret,
    derive_tree_secret,
    encrypt_with_label,
    expand_with_label,
    make_key_package_ref,
    make_proposal_ref,
    ref_hash,
    sign_with_label,
    verify_with_label,
)

__all__ = [
    "SUPPORTED_SUITES",
    "AeadId",
    "CipherSuite",
    "Context",
    "Hpke",
    "KdfId",
    "KemId",
    "Mode",
    "Suite",
    "decrypt_with_label",
    "derive_secret",
    "derive_tree_secret",
    "encrypt_with_label",
    "expand_with_label",
    "get_suite",
    "make_key_package_ref",
    "make_proposal_ref",
    "ref_hash",
    "sign_with_label",
    "verify_with_label",
]
