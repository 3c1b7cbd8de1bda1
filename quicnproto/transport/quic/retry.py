"""Stateless Retry tokens (RFC 9000 §8.1.2-8.1.4): what a server sends in a Retry packet and
checks when the client's next Initial carries it back.

A token is ``nonce || AES-128-GCM(key, nonce, issued_at || ODCID || Retry SCID, aad=address)``
under a key made at random for each :class:`RetryTokens` (one per server, never stored), so:

- it is authenticated: a token altered in any byte, made by another process, or brought back
  from another address (IP and port, the AEAD's associated data) does not open;
- it expires ``lifetime`` seconds after it was issued (on the clock the caller passes, Trio's);
- it is bound to the connection ID the Retry told the client to use (RFC 9000 §17.2.5.2);
- the server keeps nothing per token: checking one needs only the packet that carries it.

Replays within the lifetime from the same address are possible (RFC 9000 §8.1.4 allows this
for Retry tokens); they only let that address open the connection it already validated.
"""

from __future__ import annotations

import ipaddress
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from quicnproto.transport.quic.endpoint import NetworkAddress

NONCE_SIZE = 12
_ISSUED_AT = struct.Struct("!d")


class InvalidToken(ValueError):
    """A Retry token that must not validate an address; ``reason`` says why (``"malformed"``,
    ``"unauthentic"``: forged, altered or from another address, ``"expired"``,
    ``"connection id"``: not sent to the Retry's source connection ID)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid retry token ({reason})")
        self.reason = reason


def encode_address(address: NetworkAddress) -> bytes:
    """The client's IP address and port as bytes (the token's associated data)."""
    port = int(address[1])
    return ipaddress.ip_address(address[0]).packed + port.to_bytes(2, "big")


class RetryTokens:
    """Makes and checks the Retry tokens of one server.

    Args:
        lifetime: seconds a token stays valid after it was issued.
    """

    def __init__(self, lifetime: float) -> None:
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        self.lifetime = lifetime
        self._aead = AESGCM(AESGCM.generate_key(bit_length=128))

    def __repr__(self) -> str:
        return f"<RetryTokens lifetime={self.lifetime}>"

    def create(
        self,
        *,
        address: NetworkAddress,
        original_destination_cid: bytes,
        retry_source_cid: bytes,
        now: float,
    ) -> bytes:
        """A token for a Retry sent to ``address`` in answer to an Initial addressed to
        ``original_destination_cid``, naming ``retry_source_cid`` as the server's CID."""
        plaintext = b"".join(
            (
                _ISSUED_AT.pack(now),
                bytes([len(original_destination_cid)]),
                original_destination_cid,
                retry_source_cid,
            )
        )
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, plaintext, encode_address(address))

    def validate(
        self, *, address: NetworkAddress, destination_cid: bytes, token: bytes, now: float
    ) -> bytes:
        """Check a token an Initial from ``address`` to ``destination_cid`` carried, and return
        the original destination CID it was issued for.

        Raises:
            InvalidToken: the token is not one of ours for this address and CID, or expired.
        """
        if len(token) < NONCE_SIZE + _ISSUED_AT.size + 1:
            raise InvalidToken("malformed")
        try:
            plaintext = self._aead.decrypt(
                token[:NONCE_SIZE], token[NONCE_SIZE:], encode_address(address)
            )
        except (InvalidTag, ValueError) as exc:
            raise InvalidToken("unauthentic") from exc
        (issued_at,) = _ISSUED_AT.unpack_from(plaintext)
        odcid_end = _ISSUED_AT.size + 1 + plaintext[_ISSUED_AT.size]
        if not issued_at <= now < issued_at + self.lifetime:
            raise InvalidToken("expired")
        if plaintext[odcid_end:] != destination_cid:
            raise InvalidToken("connection id")
        return plaintext[_ISSUED_AT.size + 1 : odcid_end]
