"""HPKE (RFC 9180) against the 28 vectors of RFC 9180 Appendix A, plus negative cases.

One pytest case per vector checks: DeriveKeyPair for every key the vector derives from an
ikm, the key schedule (shared secret, context, secret, key, nonce, exporter secret) on both
the sender and the recipient side, every encryption (seal gives the ciphertext, open gives the
plaintext, in sequence) and every export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mls.crypto.hpke import AeadId, Context, Hpke, KdfId, KemId, Mode
from mls.errors import DecryptionError, UnsupportedError, UsageError, ValidationError

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "hpke-test-vectors"


def _load() -> list[dict[str, Any]]:
    path = VECTORS / "rfc9180-appendix-a.json"
    cases: list[dict[str, Any]] = json.loads(path.read_text())
    assert len(cases) == 28
    return cases


def _id(i: int, v: dict[str, Any]) -> str:
    return (
        f"{i:02d}-{Mode(v['mode']).name.lower()}-{KemId(v['kem_id']).name}"
        f"-{KdfId(v['kdf_id']).name}-{AeadId(v['aead_id']).name}"
    )


RAW_CASES = _load()
CASES = [pytest.param(v, id=_id(i, v)) for i, v in enumerate(RAW_CASES)]


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def _setup(hpke: Hpke, v: dict[str, Any]) -> tuple[bytes, Context, Context]:
    mode = Mode(v["mode"])
    info = h(v["info"])
    ikm_e = h(v["ikmE"])
    pk_r, sk_r = h(v["pkRm"]), h(v["skRm"])
    if mode is Mode.BASE:
        enc, sender = hpke.setup_base_s(pk_r, info, ikm_e=ikm_e)
        recipient = hpke.setup_base_r(enc, sk_r, info)
    elif mode is Mode.PSK:
        psk, psk_id = h(v["psk"]), h(v["psk_id"])
        enc, sender = hpke.setup_psk_s(pk_r, info, psk, psk_id, ikm_e=ikm_e)
        recipient = hpke.setup_psk_r(enc, sk_r, info, psk, psk_id)
    elif mode is Mode.AUTH:
        enc, sender = hpke.setup_auth_s(pk_r, info, h(v["skSm"]), ikm_e=ikm_e)
        recipient = hpke.setup_auth_r(enc, sk_r, info, h(v["pkSm"]))
    else:
        psk, psk_id = h(v["psk"]), h(v["psk_id"])
        enc, sender = hpke.setup_auth_psk_s(pk_r, info, psk, psk_id, h(v["skSm"]), ikm_e=ikm_e)
        recipient = hpke.setup_auth_psk_r(enc, sk_r, info, psk, psk_id, h(v["pkSm"]))
    return enc, sender, recipient


@pytest.mark.parametrize("v", CASES)
def test_rfc9180_vector(v: dict[str, Any]) -> None:
    hpke = Hpke(v["kem_id"], v["kdf_id"], v["aead_id"])

    # DeriveKeyPair (§7.1.3) for every ikm the vector gives.
    for who in ("E", "R", "S"):
        if f"ikm{who}" in v:
            sk, pk = hpke.derive_key_pair(h(v[f"ikm{who}"]))
            assert sk.hex() == v[f"sk{who}m"], who
            assert pk.hex() == v[f"pk{who}m"], who
            assert hpke.public_key(sk).hex() == v[f"pk{who}m"], who
    checked_derive = [w for w in "ERS" if f"ikm{w}" in v]
    assert "E" in checked_derive and "R" in checked_derive
    if v["mode"] in (Mode.AUTH, Mode.AUTH_PSK):
        assert "S" in checked_derive

    # The KEM: encapsulation with the fixed ephemeral key gives enc and the shared secret.
    if v["mode"] in (Mode.AUTH, Mode.AUTH_PSK):
        shared, enc = hpke.kem.auth_encap(h(v["pkRm"]), h(v["skSm"]), ikm_e=h(v["ikmE"]))
        assert (
            hpke.kem.auth_decap(h(v["enc"]), h(v["skRm"]), h(v["pkSm"])).hex() == v["shared_secret"]
        )
    else:
        shared, enc = hpke.kem.encap(h(v["pkRm"]), ikm_e=h(v["ikmE"]))
        assert hpke.kem.decap(h(v["enc"]), h(v["skRm"])).hex() == v["shared_secret"]
    assert enc.hex() == v["enc"]
    assert shared.hex() == v["shared_secret"]

    # The key schedule, on both sides.
    enc, sender, recipient = _setup(hpke, v)
    assert enc.hex() == v["enc"]
    for ctx in (sender, recipient):
        assert ctx.key_schedule_context.hex() == v["key_schedule_context"]
        assert ctx.secret.hex() == v["secret"]
        assert ctx.key.hex() == v["key"]
        assert ctx.base_nonce.hex() == v["base_nonce"]
        assert ctx.exporter_secret.hex() == v["exporter_secret"]

    # Every encryption, in sequence: seal gives ct, open gives pt.
    encryptions = v["encryptions"]
    if v["aead_id"] == AeadId.EXPORT_ONLY:
        assert encryptions == []
        with pytest.raises(UsageError):
            sender.seal(b"", b"x")
        with pytest.raises(UsageError):
            recipient.open(b"", b"x" * 16)
    else:
        assert encryptions
        for e in encryptions:
            # Vectors list a subset of sequence numbers; jump to each one.
            sender.seq = recipient.seq = e["seq"]
            assert sender.compute_nonce(e["seq"]).hex() == e["nonce"]
            assert sender.seal(h(e["aad"]), h(e["pt"])).hex() == e["ct"]
            assert recipient.open(h(e["aad"]), h(e["ct"])).hex() == e["pt"]
            assert sender.seq == recipient.seq == e["seq"] + 1

    # Every export, from both sides.
    assert v["exports"]
    for x in v["exports"]:
        for ctx in (sender, recipient):
            out = ctx.export(h(x["exporter_context"]), x["L"])
            assert out.hex() == x["exported_value"]


BASE_WITH_AEAD = [
    pytest.param(v, id=_id(i, v))
    for i, v in enumerate(RAW_CASES)
    if v["mode"] == Mode.BASE and v["aead_id"] != AeadId.EXPORT_ONLY
]


@pytest.mark.parametrize("v", BASE_WITH_AEAD)
def test_single_shot_base_mode_opens_vector_ciphertext(v: dict[str, Any]) -> None:
    hpke = Hpke(v["kem_id"], v["kdf_id"], v["aead_id"])
    first = v["encryptions"][0]
    assert first["seq"] == 0
    pt = hpke.open(h(v["skRm"]), h(v["enc"]), h(v["info"]), h(first["aad"]), h(first["ct"]))
    assert pt.hex() == first["pt"]


# -- negative cases ---------------------------------------------------------------------------

HPKE_INSTANCES = [
    Hpke(kem, kdf, aead)
    for kem, kdf, aead in [
        (KemId.DHKEM_X25519_HKDF_SHA256, KdfId.HKDF_SHA256, AeadId.AES_128_GCM),
        (KemId.DHKEM_X25519_HKDF_SHA256, KdfId.HKDF_SHA256, AeadId.CHACHA20_POLY1305),
        (KemId.DHKEM_X448_HKDF_SHA512, KdfId.HKDF_SHA512, AeadId.AES_256_GCM),
        (KemId.DHKEM_P256_HKDF_SHA256, KdfId.HKDF_SHA256, AeadId.AES_128_GCM),
        (KemId.DHKEM_P384_HKDF_SHA384, KdfId.HKDF_SHA384, AeadId.AES_256_GCM),
        (KemId.DHKEM_P521_HKDF_SHA512, KdfId.HKDF_SHA512, AeadId.AES_256_GCM),
    ]
]


def _params(instances: list[Hpke]) -> list[Any]:
    return [pytest.param(x, id=f"{x.kem_id.name}-{x.aead_id.name}") for x in instances]


ALL_HPKE = _params(HPKE_INSTANCES)
NIST_HPKE = _params([x for x in HPKE_INSTANCES if x.kem_id.name.startswith("DHKEM_P")])


@pytest.mark.parametrize("hpke", ALL_HPKE)
def test_round_trip_and_tamper(hpke: Hpke) -> None:
    sk, pk = hpke.generate_key_pair()
    assert hpke.public_key(sk) == pk
    assert len(pk) == hpke.kem.n_pk and len(sk) == hpke.kem.n_sk
    enc, ct = hpke.seal(pk, b"info", b"aad", b"hello")
    assert len(enc) == hpke.kem.n_enc
    assert hpke.open(sk, enc, b"info", b"aad", ct) == b"hello"
    tampered = bytes([ct[0] ^ 1]) + ct[1:]
    with pytest.raises(DecryptionError):
        hpke.open(sk, enc, b"info", b"aad", tampered)
    with pytest.raises(DecryptionError):
        hpke.open(sk, enc, b"other", b"aad", ct)
    with pytest.raises(DecryptionError):
        hpke.open(sk, enc, b"info", b"", ct)
    with pytest.raises(DecryptionError):
        hpke.open(sk, enc, b"info", b"aad", ct[:5])
    other_sk, _ = hpke.generate_key_pair()
    with pytest.raises(DecryptionError):
        hpke.open(other_sk, enc, b"info", b"aad", ct)


@pytest.mark.parametrize("hpke", ALL_HPKE)
def test_bad_enc_is_a_decryption_error(hpke: Hpke) -> None:
    sk, pk = hpke.generate_key_pair()
    enc, ct = hpke.seal(pk, b"", b"", b"m")
    for bad in (b"", enc[:-1], enc + b"\x00"):
        with pytest.raises(DecryptionError) as info:
            hpke.open(sk, bad, b"", b"", ct)
        assert info.value.rule.startswith("§5.1.3/")


@pytest.mark.parametrize("hpke", NIST_HPKE)
def test_nist_public_key_encodings_rejected(hpke: Hpke) -> None:
    _, pk = hpke.generate_key_pair()
    n = len(pk)
    off_curve = pk[:-1] + bytes([pk[-1] ^ 1])
    compressed = bytes([2 + (pk[-1] & 1)]) + pk[1 : 1 + (n - 1) // 2]
    for bad in (off_curve, compressed, b"\x00", bytes(n), pk[:-1], b"\x04" + bytes(n - 1)):
        with pytest.raises(ValidationError) as info:
            hpke.seal(bad, b"", b"", b"m")
        assert info.value.rule == "§5.1.1/public-key-encoding"
        with pytest.raises(ValidationError):
            hpke.check_public_key(bad)


@pytest.mark.parametrize("kem", [KemId.DHKEM_X25519_HKDF_SHA256, KemId.DHKEM_X448_HKDF_SHA512])
def test_montgomery_small_order_and_lengths_rejected(kem: KemId) -> None:
    kdf = KdfId.HKDF_SHA256 if kem == KemId.DHKEM_X25519_HKDF_SHA256 else KdfId.HKDF_SHA512
    hpke = Hpke(kem, kdf, AeadId.CHACHA20_POLY1305)
    n = hpke.kem.n_pk
    # Points of small order make DH output zero, which RFC 9180 §7.1.4 requires rejecting;
    # check_public_key rejects them up front (VALIDATION.md CRD-04).
    small_order = [bytes(n), b"\x01" + bytes(n - 1)]
    if n == 32:
        small_order += [
            bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
            bytes.fromhex("ec" + "ff" * 30 + "7f"),  # p - 1
            bytes.fromhex("ed" + "ff" * 30 + "7f"),  # p, non-canonical 0
        ]
    else:
        small_order.append(bytes.fromhex("fe" + "ff" * 27 + "fe" + "ff" * 27))  # p - 1
    for bad in [*small_order, bytes(n - 1), bytes(n + 1), b""]:
        with pytest.raises(ValidationError) as info:
            hpke.seal(bad, b"", b"", b"m")
        assert info.value.rule == "§5.1.1/public-key-encoding"
        with pytest.raises(ValidationError):
            hpke.check_public_key(bad)
    sk, pk = hpke.generate_key_pair()
    hpke.check_public_key(pk)
    # A small-order enc on the receiving side is a decryption failure.
    for bad in small_order:
        with pytest.raises(DecryptionError):
            hpke.open(sk, bad, b"", b"", bytes(17))


def test_psk_inputs_checked() -> None:
    hpke = Hpke(KemId.DHKEM_X25519_HKDF_SHA256, KdfId.HKDF_SHA256, AeadId.AES_128_GCM)
    _, pk = hpke.generate_key_pair()
    with pytest.raises(UsageError):
        hpke.setup_psk_s(pk, b"", b"psk", b"")
    with pytest.raises(UsageError):
        hpke.setup_psk_s(pk, b"", b"", b"")
    with pytest.raises(UsageError):
        hpke.key_schedule(Mode.BASE, bytes(32), b"", b"psk", b"id")


def test_auth_mode_rejects_wrong_sender() -> None:
    hpke = Hpke(KemId.DHKEM_P256_HKDF_SHA256, KdfId.HKDF_SHA256, AeadId.AES_128_GCM)
    sk_r, pk_r = hpke.generate_key_pair()
    sk_s, _ = hpke.generate_key_pair()
    _, pk_other = hpke.generate_key_pair()
    enc, ctx = hpke.setup_auth_s(pk_r, b"i", sk_s)
    ct = ctx.seal(b"", b"m")
    with pytest.raises(DecryptionError):
        hpke.setup_auth_r(enc, sk_r, b"i", pk_other).open(b"", ct)


def test_export_and_nonce_arguments_out_of_range_are_usage_errors() -> None:
    hpke = Hpke(KemId.DHKEM_X25519_HKDF_SHA256, KdfId.HKDF_SHA256, AeadId.AES_128_GCM)
    _, pk = hpke.generate_key_pair()
    _, ctx = hpke.setup_base_s(pk, b"")
    assert len(ctx.export(b"c", 255 * 32)) == 255 * 32
    for length in (-1, 255 * 32 + 1, 2**16):
        with pytest.raises(UsageError):
            ctx.export(b"c", length)
    assert ctx.compute_nonce(2**96 - 1) == bytes(a ^ 0xFF for a in ctx.base_nonce)
    for seq in (-1, 2**96):
        with pytest.raises(UsageError):
            ctx.compute_nonce(seq)


def test_context_repr_hides_secrets() -> None:
    hpke = Hpke(KemId.DHKEM_X25519_HKDF_SHA256, KdfId.HKDF_SHA256, AeadId.AES_128_GCM)
    _, pk = hpke.generate_key_pair()
    _, ctx = hpke.setup_base_s(pk, b"")
    text = repr(ctx)
    for secret in (ctx.key, ctx.base_nonce, ctx.exporter_secret, ctx.secret):
        assert secret.hex() not in text
        assert repr(secret) not in text


@pytest.mark.parametrize(("kem", "kdf", "aead"), [(0x0030, 1, 1), (0x20, 9, 1), (0x20, 1, 7)])
def test_unknown_algorithm_ids_rejected(kem: int, kdf: int, aead: int) -> None:
    with pytest.raises(UnsupportedError):
        Hpke(kem, kdf, aead)


# -- interop with the cryptography package's own HPKE (an independent implementation) ---------

_REFERENCE = {
    KemId.DHKEM_X25519_HKDF_SHA256: "X25519",
    KemId.DHKEM_P256_HKDF_SHA256: "P256",
    KemId.DHKEM_P384_HKDF_SHA384: "P384",
    KemId.DHKEM_P521_HKDF_SHA512: "P521",
}


def _reference_keys(hpke: Hpke, sk: bytes, pk: bytes) -> tuple[Any, Any]:
    from cryptography.hazmat.primitives.asymmetric import ec, x25519

    if hpke.kem_id == KemId.DHKEM_X25519_HKDF_SHA256:
        private_x = x25519.X25519PrivateKey.from_private_bytes(sk)
        return private_x, x25519.X25519PublicKey.from_public_bytes(pk)
    group: Any = hpke.kem.group
    private = ec.derive_private_key(int.from_bytes(sk, "big"), group.curve)
    return private, ec.EllipticCurvePublicKey.from_encoded_point(group.curve, pk)


@pytest.mark.parametrize("hpke", _params([x for x in HPKE_INSTANCES if x.kem_id in _REFERENCE]))
def test_interop_with_cryptography_hpke(hpke: Hpke) -> None:
    reference_hpke = pytest.importorskip("cryptography.hazmat.primitives.hpke")
    reference = reference_hpke.Suite(
        getattr(reference_hpke.KEM, _REFERENCE[hpke.kem_id]),
        getattr(reference_hpke.KDF, hpke.kdf_id.name),
        getattr(reference_hpke.AEAD, hpke.aead_id.name),
    )
    sk, pk = hpke.derive_key_pair(b"interop ikm " + bytes(20))
    private, public = _reference_keys(hpke, sk, pk)
    n_enc = hpke.kem.n_enc
    # Ours -> theirs.
    enc, ct = hpke.seal(pk, b"info", b"", b"from us")
    assert reference.decrypt(enc + ct, private, info=b"info") == b"from us"
    # Theirs -> ours.
    blob = reference.encrypt(b"from them", public, info=b"info")
    assert hpke.open(sk, blob[:n_enc], b"info", b"", blob[n_enc:]) == b"from them"


# -- DeriveKeyPair for the KEMs RFC 9180 has no vectors for (X448, P-384) ----------------------

MLS_VECTORS = VECTORS.parent / "mls-test-vectors"


@pytest.mark.parametrize("suite_number", [1, 2, 3, 4, 5, 6, 7], ids=lambda n: f"cs{n}")
def test_derive_key_pair_matches_treekem_vector_trees(suite_number: int) -> None:
    """RFC 9420 §7.4: a parent node's key pair is DeriveKeyPair(DeriveSecret(path_secret,
    "node")). Every derived public key (and every leaf's public key from its private key) must
    occur in the vector's ratchet tree, which the official implementations produced."""
    from mls.crypto.ciphersuite import get_suite
    from mls.crypto.labels import derive_secret

    cases = json.loads((MLS_VECTORS / "treekem.json").read_text())
    suite = get_suite(suite_number)
    checked = 0
    for case in cases:
        if case["cipher_suite"] != suite_number:
            continue
        tree = case["ratchet_tree"]
        for leaf in case["leaves_private"]:
            assert suite.hpke.public_key(h(leaf["encryption_priv"])).hex() in tree
            for entry in leaf["path_secrets"]:
                node_secret = derive_secret(suite, h(entry["path_secret"]), b"node")
                sk, pk = suite.hpke.derive_key_pair(node_secret)
                assert len(sk) == suite.hpke.kem.n_sk
                assert suite.hpke.public_key(sk) == pk
                assert pk.hex() in tree
                checked += 1
    assert checked > 50
