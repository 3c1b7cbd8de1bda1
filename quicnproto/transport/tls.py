"""TLS 1.3 material for QUIC: the node's self-signed certificate, and client-side pinning.

The node has no CA. On first start it writes a self-signed ECDSA P-256 certificate and its
private key (both DER) into its data directory; clients trust the node by holding a copy of that
certificate file and accepting exactly that certificate (VALIDATION.md SRV-Q-06)::

    node first start                     client
    ----------------                     ------
    ensure_node_certificate(cert, key)   pinned = load_certificate(server-cert.der)
      missing -> generate, write 0600    open_quic_connection(..., server_certificate=pinned)
      present -> load and check pair       handshake verifies the chain against `pinned` only,
                                           then compares the peer's DER to `pinned` byte for byte

Files are written atomically (temporary file in the same directory, fsync, rename), the key with
mode 0600. This module and ``config.py`` are the only transport code that touches the disk.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from quicnproto.errors import ConfigError

__all__ = [
    "CERTIFICATE_VALIDITY_DAYS",
    "certificate_fingerprint",
    "certificates_equal",
    "ensure_node_certificate",
    "generate_self_signed_certificate",
    "load_certificate",
    "load_private_key",
    "parse_certificate",
    "parse_private_key",
    "write_certificate_files",
]

CERTIFICATE_VALIDITY_DAYS = 3650
"""Lifetime of a generated node certificate. Pinning, not expiry, is what clients rely on."""

_MAX_FILE_SIZE = 64 * 1024

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def generate_self_signed_certificate(
    common_name: str = "quicnproto node",
) -> tuple[bytes, bytes]:
    """Create a fresh ECDSA P-256 key and a self-signed certificate for it.

    The certificate is an end-entity certificate (``BasicConstraints(ca=False)``), so it cannot
    vouch for any other certificate even when a client trusts it.

    Args:
        common_name: subject and issuer common name.

    Returns:
        ``(certificate_der, private_key_der)``; the key is unencrypted PKCS#8.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("quicnproto-node")]), False)
        .sign(key, hashes.SHA256())
    )
    certificate_der = certificate.public_bytes(serialization.Encoding.DER)
    key_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate_der, key_der


def parse_certificate(certificate_der: bytes) -> x509.Certificate:
    """Parse a DER certificate.

    Raises:
        ConfigError: if the bytes are not a DER X.509 certificate.
    """
    try:
        return x509.load_der_x509_certificate(certificate_der)
    except (ValueError, TypeError) as exc:
        raise ConfigError("not a DER X.509 certificate") from exc


def parse_private_key(private_key_der: bytes) -> PrivateKey:
    """Parse an unencrypted DER (PKCS#8) private key usable by aioquic (EC or Ed25519).

    Raises:
        ConfigError: if the bytes are not such a key. The message never includes key bytes.
    """
    try:
        key = serialization.load_der_private_key(private_key_der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError("not an unencrypted DER private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise ConfigError("the node key must be an EC or Ed25519 private key")
    return key


def certificate_fingerprint(certificate_der: bytes) -> str:
    """Return the SHA-256 fingerprint of a DER certificate as lowercase hex."""
    return hashlib.sha256(certificate_der).hexdigest()


def certificates_equal(a: bytes, b: bytes) -> bool:
    """Compare two DER certificates in constant time."""
    return hmac.compare_digest(a, b)


def _read_small_file(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_FILE_SIZE + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} file not found: {path}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror}") from exc
    if len(data) > _MAX_FILE_SIZE:
        raise ConfigError(f"{what} file is too large: {path}")
    return data


def load_certificate(path: str | os.PathLike[str]) -> bytes:
    """Read and check a DER certificate file (the node's own, or a client's pinned copy).

    Returns:
        The DER bytes, checked to parse as a certificate.

    Raises:
        ConfigError: missing, unreadable or malformed file.
    """
    data = _read_small_file(Path(path), "certificate")
    parse_certificate(data)
    return data


def load_private_key(path: str | os.PathLike[str]) -> bytes:
    """Read and check a DER private key file.

    Raises:
        ConfigError: missing, unreadable or malformed file, or a key readable by group or
            others (mode wider than 0600).
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise ConfigError(f"private key file not found: {path}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot stat private key file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise ConfigError(f"private key file {path} is accessible by others (chmod 600 it)")
    data = _read_small_file(path, "private key")
    parse_private_key(data)
    return data


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_certificate_files(
    certificate_path: str | os.PathLike[str],
    private_key_path: str | os.PathLike[str],
    certificate_der: bytes,
    private_key_der: bytes,
) -> None:
    """Write a certificate (mode 0644) and its key (mode 0600), each atomically.

    The key is written first, so a crash never leaves a certificate without its key.

    Raises:
        ConfigError: if a file cannot be written.
    """
    try:
        _atomic_write(Path(private_key_path), private_key_der, 0o600)
        _atomic_write(Path(certificate_path), certificate_der, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot write certificate files: {exc.strerror}") from exc


def ensure_node_certificate(
    certificate_path: str | os.PathLike[str],
    private_key_path: str | os.PathLike[str],
) -> tuple[bytes, bytes]:
    """Load the node's certificate and key, creating both on first start.

    If both files are missing, a new pair is generated and written. If only one exists, that is
    a configuration error (we never overwrite a key clients may have pinned against).

    Returns:
        ``(certificate_der, private_key_der)``.

    Raises:
        ConfigError: one file missing, malformed files, a key that does not match the
            certificate, or a key file readable by others.
    """
    cert_exists = Path(certificate_path).exists()
    key_exists = Path(private_key_path).exists()
    if not cert_exists and not key_exists:
        certificate_der, private_key_der = generate_self_signed_certificate()
        write_certificate_files(
            certificate_path, private_key_path, certificate_der, private_key_der
        )
        return certificate_der, private_key_der
    if cert_exists != key_exists:
        missing = private_key_path if cert_exists else certificate_path
        raise ConfigError(f"{missing} is missing while its pair exists; refusing to regenerate")
    certificate_der = load_certificate(certificate_path)
    private_key_der = load_private_key(private_key_path)
    public_from_key = (
        parse_private_key(private_key_der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    public_from_cert = (
        parse_certificate(certificate_der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    if public_from_key != public_from_cert:
        raise ConfigError("the node private key does not match its certificate")
    return certificate_der, private_key_der
