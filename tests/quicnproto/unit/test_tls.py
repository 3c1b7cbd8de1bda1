"""Node certificate files (quicnproto.transport.tls): creation, 0600 key, loading, checks."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from quicnproto.errors import ConfigError
from quicnproto.transport.tls import (
    certificate_fingerprint,
    certificates_equal,
    ensure_node_certificate,
    generate_self_signed_certificate,
    load_certificate,
    load_private_key,
    parse_private_key,
    write_certificate_files,
)


def test_generated_certificate_is_self_signed_end_entity_p256() -> None:
    certificate_der, key_der = generate_self_signed_certificate()
    certificate = x509.load_der_x509_certificate(certificate_der)
    assert certificate.issuer == certificate.subject
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is False and constraints.critical
    key = parse_private_key(key_der)
    assert key.public_key() == certificate.public_key()
    certificate.verify_directly_issued_by(certificate)


def test_ensure_creates_files_with_private_key_mode_0600(tmp_path: Path) -> None:
    cert_path, key_path = (
        tmp_path / "data" / "server-cert.der",
        tmp_path / "data" / "server-key.der",
    )
    certificate_der, key_der = ensure_node_certificate(cert_path, key_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert cert_path.read_bytes() == certificate_der
    assert key_path.read_bytes() == key_der
    assert not [p for p in cert_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_ensure_loads_existing_files_unchanged(tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "c.der", tmp_path / "k.der"
    first = ensure_node_certificate(cert_path, key_path)
    second = ensure_node_certificate(cert_path, key_path)
    assert first == second
    assert load_certificate(cert_path) == first[0]
    assert load_private_key(key_path) == first[1]


def test_ensure_refuses_when_only_one_file_exists(tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "c.der", tmp_path / "k.der"
    ensure_node_certificate(cert_path, key_path)
    key_path.unlink()
    with pytest.raises(ConfigError):
        ensure_node_certificate(cert_path, key_path)
    assert not key_path.exists()


def test_ensure_refuses_a_key_that_does_not_match(tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "c.der", tmp_path / "k.der"
    certificate_der, _ = generate_self_signed_certificate()
    _, other_key = generate_self_signed_certificate()
    write_certificate_files(cert_path, key_path, certificate_der, other_key)
    with pytest.raises(ConfigError):
        ensure_node_certificate(cert_path, key_path)


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "c.der", tmp_path / "k.der"
    ensure_node_certificate(cert_path, key_path)
    os.chmod(key_path, 0o644)
    with pytest.raises(ConfigError):
        load_private_key(key_path)


@pytest.mark.parametrize("content", [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\n"])
def test_malformed_files_are_config_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.der"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError):
        load_certificate(path)
    with pytest.raises(ConfigError):
        load_private_key(path)


def test_missing_pinned_certificate_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_certificate(tmp_path / "missing.der")


def test_fingerprint_and_comparison() -> None:
    a, _ = generate_self_signed_certificate()
    b, _ = generate_self_signed_certificate()
    assert len(certificate_fingerprint(a)) == 64
    assert certificate_fingerprint(a) != certificate_fingerprint(b)
    assert certificates_equal(a, a) and not certificates_equal(a, b)
