"""``welcome.json``: joining from a Welcome (RFC 9420 §12.4.3.1)."""

from __future__ import annotations

import hmac
from typing import Any

from ..crypto.ciphersuite import get_suite
from ..crypto.labels import decrypt_with_label
from ..errors import MLSError
from ..framing import MLSMessage
from ..key_package import KeyPackage
from ..key_schedule import EpochSecrets, derive_welcome_secret, welcome_key_nonce
from ..messages import GroupInfo, GroupSecrets, Welcome
from . import Mismatch, expect


def check(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    h = bytes.fromhex
    key_package = MLSMessage.decode(h(case["key_package"])).body
    welcome = MLSMessage.decode(h(case["welcome"])).body
    if not isinstance(key_package, KeyPackage):
        raise Mismatch("key_package", "not an MLSMessage(KeyPackage)")
    if not isinstance(welcome, Welcome):
        raise Mismatch("welcome", "not an MLSMessage(Welcome)")
    expect("welcome.cipher_suite", welcome.cipher_suite, case["cipher_suite"])
    # The entry of welcome.secrets for our KeyPackage is the one naming its KeyPackageRef.
    ref = key_package.ref(suite)
    entries = [s for s in welcome.secrets if hmac.compare_digest(s.new_member, ref)]
    if len(entries) != 1:
        raise Mismatch("welcome.secrets", f"{len(entries)} entries name our KeyPackage")
    sealed = entries[0].encrypted_group_secrets
    # Its GroupSecrets decrypt with init_priv (label "Welcome", context = the encrypted
    # GroupInfo).
    try:
        group_secrets = GroupSecrets.decode(
            decrypt_with_label(
                suite,
                h(case["init_priv"]),
                b"Welcome",
                welcome.encrypted_group_info,
                sealed.kem_output,
                sealed.ciphertext,
            )
        )
    except MLSError as exc:
        raise Mismatch("welcome.secrets[].encrypted_group_secrets", type(exc).__name__) from None
    # The key schedule starts from the joiner secret with no PSKs; the welcome secret's key
    # and nonce decrypt the GroupInfo (empty AAD).
    if group_secrets.psks:
        raise Mismatch("group_secrets.psks", "the vector's Welcome should name no PSKs")
    welcome_secret = derive_welcome_secret(suite, group_secrets.joiner_secret, None)
    key, nonce = welcome_key_nonce(suite, welcome_secret)
    try:
        group_info = GroupInfo.decode(
            suite.aead_open(key, nonce, b"", welcome.encrypted_group_info)
        )
    except MLSError as exc:
        raise Mismatch("welcome.encrypted_group_info", type(exc).__name__) from None
    # The GroupInfo is signed by signer_pub.
    try:
        group_info.verify_signature(suite, h(case["signer_pub"]))
    except MLSError as exc:
        raise Mismatch("group_info.signature", type(exc).__name__) from None
    # Its confirmation tag is the MAC, under the epoch's confirmation key, of the confirmed
    # transcript hash in its GroupContext.
    epoch = EpochSecrets.from_joiner_secret(
        suite, group_secrets.joiner_secret, None, group_info.group_context
    )
    expected = epoch.confirmation_tag(suite, group_info.group_context.confirmed_transcript_hash)
    expect("group_info.confirmation_tag", expected, group_info.confirmation_tag.hex())
