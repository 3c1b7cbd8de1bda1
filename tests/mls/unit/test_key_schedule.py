"""Unit tests for mls.key_schedule and mls.psk (RFC 9420 §8, §8.3, §8.4, §8.5)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import pytest

from mls.crypto.ciphersuite import get_suite
from mls.crypto.labels import derive_secret, expand_with_label
from mls.errors import DecryptionError, UsageError, VerificationError
from mls.group_context import GroupContext, ProtocolVersion
from mls.key_schedule import (
    EpochSecrets,
    confirmation_tag,
    derive_joiner_secret,
    derive_welcome_secret,
    export_secret,
    external_init_secret_for_joiner,
    external_init_secret_for_member,
    external_key_pair,
    sender_data_key_nonce,
    verify_confirmation_tag,
    welcome_key_nonce,
    zero_secret,
)
from mls.psk import psk_secret
from mls.psk_id import PreSharedKeyID, ResumptionPSKUsage

SUITE = get_suite(1)


def context(epoch: int = 1, suite: int = 1) -> GroupContext:
    return GroupContext(
        version=ProtocolVersion.MLS10,
        cipher_suite=suite,
        group_id=b"group",
        epoch=epoch,
        tree_hash=b"\x01" * 32,
        confirmed_transcript_hash=b"\x02" * 32,
        extensions=(),
    )


INIT = b"\x11" * 32
COMMIT = b"\x22" * 32
PSK = b"\x33" * 32


def same(a: EpochSecrets, b: EpochSecrets) -> bool:
    return dataclasses.astuple(a) == dataclasses.astuple(b)


def test_init_path_equals_joiner_path() -> None:
    gc = context()
    via_init = EpochSecrets.from_init_secret(SUITE, INIT, COMMIT, PSK, gc)
    joiner = derive_joiner_secret(SUITE, INIT, COMMIT, gc)
    via_joiner = EpochSecrets.from_joiner_secret(SUITE, joiner, PSK, gc)
    assert same(via_init, via_joiner)
    assert via_init.joiner_secret == joiner
    assert via_init.welcome_secret == derive_welcome_secret(SUITE, joiner, PSK)


def test_none_means_zero_vector() -> None:
    gc = context()
    a = EpochSecrets.from_init_secret(SUITE, INIT, None, None, gc)
    b = EpochSecrets.from_init_secret(SUITE, INIT, zero_secret(SUITE), zero_secret(SUITE), gc)
    assert same(a, b)
    assert zero_secret(SUITE) == bytes(32)


def test_encoded_context_equals_struct_context() -> None:
    gc = context()
    assert same(
        EpochSecrets.from_init_secret(SUITE, INIT, COMMIT, None, gc),
        EpochSecrets.from_init_secret(SUITE, INIT, COMMIT, None, gc.encode()),
    )


def test_every_input_changes_every_secret() -> None:
    base = EpochSecrets.from_init_secret(SUITE, INIT, COMMIT, PSK, context())
    variants = [
        EpochSecrets.from_init_secret(SUITE, b"\x12" * 32, COMMIT, PSK, context()),
        EpochSecrets.from_init_secret(SUITE, INIT, b"\x23" * 32, PSK, context()),
        EpochSecrets.from_init_secret(SUITE, INIT, COMMIT, b"\x34" * 32, context()),
        EpochSecrets.from_init_secret(SUITE, INIT, COMMIT, PSK, context(epoch=2)),
    ]
    names = [f.name for f in dataclasses.fields(EpochSecrets)]
    for other in variants:
        for name in names:
            if name in ("joiner_secret",) and other is variants[2]:
                continue  # the PSK enters after the joiner secret
            assert getattr(base, name) != getattr(other, name), name
    values = [getattr(base, n) for n in names]
    assert len(set(values)) == len(values)


def test_repr_hides_every_secret() -> None:
    secrets = EpochSecrets.from_init_secret(SUITE, INIT, COMMIT, PSK, context())
    text = repr(secrets)
    for f in dataclasses.fields(EpochSecrets):
        assert getattr(secrets, f.name).hex() not in text
        assert f.name not in text


@pytest.mark.parametrize("suite_id", range(1, 8))
def test_lengths_follow_the_suite(suite_id: int) -> None:
    suite = get_suite(suite_id)
    gc = context(suite=suite_id)
    secrets = EpochSecrets.from_init_secret(suite, bytes(suite.hash_length), None, None, gc)
    assert len(secrets.init_secret) == suite.hash_length
    key, nonce = secrets.welcome_key_nonce(suite)
    assert (len(key), len(nonce)) == (suite.aead_key_length, suite.aead_nonce_length)
    assert (key, nonce) == welcome_key_nonce(suite, secrets.welcome_secret)
    sd_key, sd_nonce = sender_data_key_nonce(suite, secrets.sender_data_secret, b"ct")
    assert (len(sd_key), len(sd_nonce)) == (suite.aead_key_length, suite.aead_nonce_length)


@pytest.mark.parametrize("suite_id", [1, 5, 7], ids=lambda n: f"cs{n}")
@pytest.mark.parametrize("ct_length", [0, 1, 31, 32, 47, 48, 63, 64, 65, 200])
def test_sender_data_sample_is_first_nh_bytes_or_whole_ciphertext(
    suite_id: int, ct_length: int
) -> None:
    # RFC 9420 §6.3.2: the context is ciphertext[0..Nh-1], or all of a shorter ciphertext.
    suite = get_suite(suite_id)
    secret = b"\x44" * suite.hash_length
    ct = bytes(range(ct_length))
    sample = ct if ct_length < suite.hash_length else ct[: suite.hash_length]
    expected = (
        expand_with_label(suite, secret, b"key", sample, suite.aead_key_length),
        expand_with_label(suite, secret, b"nonce", sample, suite.aead_nonce_length),
    )
    assert sender_data_key_nonce(suite, secret, ct) == expected


def test_exporter_depends_on_label_context_and_length() -> None:
    secrets = EpochSecrets.from_init_secret(SUITE, INIT, COMMIT, None, context())
    a = secrets.export(SUITE, b"app", b"ctx", 32)
    # RFC 9420 §8.5, assembled from the labeled operations.
    derived = derive_secret(SUITE, secrets.exporter_secret, b"app")
    assert a == expand_with_label(SUITE, derived, b"exported", hashlib.sha256(b"ctx").digest(), 32)
    assert a == export_secret(SUITE, secrets.exporter_secret, b"app", b"ctx", 32)
    assert a != secrets.export(SUITE, b"app2", b"ctx", 32)
    assert a != secrets.export(SUITE, b"app", b"ctx2", 32)
    assert len(secrets.export(SUITE, b"app", b"ctx", 7)) == 7


@pytest.mark.parametrize("suite_id", [1, 2])
def test_external_init_joiner_and_member_agree(suite_id: int) -> None:
    suite = get_suite(suite_id)
    secrets = EpochSecrets.from_init_secret(
        suite, bytes(suite.hash_length), None, None, context(suite=suite_id)
    )
    priv, pub = secrets.external_key_pair(suite)
    assert (priv, pub) == external_key_pair(suite, secrets.external_secret)
    kem_output, init_joiner = external_init_secret_for_joiner(suite, pub)
    assert len(init_joiner) == suite.hash_length
    assert external_init_secret_for_member(suite, priv, kem_output) == init_joiner


def test_external_init_bad_kem_output_is_decryption_error() -> None:
    secrets = EpochSecrets.from_init_secret(SUITE, INIT, None, None, context())
    priv, _ = secrets.external_key_pair(SUITE)
    with pytest.raises(DecryptionError):
        external_init_secret_for_member(SUITE, priv, b"\x00" * 31)


def test_confirmation_tag_verifies_and_rejects() -> None:
    key = b"\x55" * 32
    cth = b"\x66" * 32
    tag = confirmation_tag(SUITE, key, cth)
    assert tag == hmac.digest(key, cth, "sha256")  # MAC is HMAC with the suite's hash (§5.1)
    verify_confirmation_tag(SUITE, key, cth, tag)
    with pytest.raises(VerificationError) as exc:
        verify_confirmation_tag(SUITE, key, cth, bytes([tag[0] ^ 1]) + tag[1:])
    assert exc.value.rule == "§6.1/confirmation-tag"
    with pytest.raises(VerificationError):
        verify_confirmation_tag(SUITE, key, cth, b"")


# -- psk_secret (§8.4) -------------------------------------------------------------------------


def ext(i: int) -> PreSharedKeyID:
    return PreSharedKeyID.external(bytes([i]) * 4, bytes([i]) * 32)


def test_psk_secret_empty_is_zero() -> None:
    assert psk_secret(SUITE, []) == bytes(32)


def test_psk_secret_depends_on_order_ids_and_values() -> None:
    a, b = (ext(1), b"\x01" * 32), (ext(2), b"\x02" * 32)
    base = psk_secret(SUITE, [a, b])
    assert base != psk_secret(SUITE, [b, a])
    assert base != psk_secret(SUITE, [a])
    assert base != psk_secret(SUITE, [a, (ext(3), b"\x02" * 32)])
    assert base != psk_secret(SUITE, [a, (ext(2), b"\x03" * 32)])
    resumption = PreSharedKeyID.resumption(ResumptionPSKUsage.APPLICATION, b"g", 7, b"\x09" * 32)
    assert len(psk_secret(SUITE, [(resumption, b"r" * 32)])) == 32


def test_psk_secret_count_is_bounded() -> None:
    with pytest.raises(UsageError):
        psk_secret(SUITE, [(ext(1), b"x")] * 0x10000)
