"""Stateless Retry tokens (quicnproto.transport.quic.retry): valid, expired, other address,
tampered, other connection ID, another process's key."""

from __future__ import annotations

import pytest

from quicnproto.transport.quic.retry import InvalidToken, RetryTokens

CLIENT = ("127.0.0.1", 50000)
ODCID = bytes.fromhex("8394c8f03e515708")
RETRY_SCID = bytes.fromhex("f067a5502a4262b5")


def make_token(tokens: RetryTokens, now: float = 100.0) -> bytes:
    return tokens.create(
        address=CLIENT, original_destination_cid=ODCID, retry_source_cid=RETRY_SCID, now=now
    )


def test_valid_token_returns_the_original_destination_cid() -> None:
    tokens = RetryTokens(lifetime=3.0)
    token = make_token(tokens)
    assert (
        tokens.validate(address=CLIENT, destination_cid=RETRY_SCID, token=token, now=102.9) == ODCID
    )


def test_valid_token_for_an_ipv6_client() -> None:
    tokens = RetryTokens(lifetime=3.0)
    address = ("::1", 443, 0, 0)
    token = tokens.create(
        address=address, original_destination_cid=ODCID, retry_source_cid=RETRY_SCID, now=0.0
    )
    assert tokens.validate(address=address, destination_cid=RETRY_SCID, token=token, now=0.0) == (
        ODCID
    )


@pytest.mark.parametrize("now", [103.0, 1000.0, 99.0], ids=["at-expiry", "late", "before-issue"])
def test_token_outside_its_lifetime_is_expired(now: float) -> None:
    tokens = RetryTokens(lifetime=3.0)
    token = make_token(tokens)
    with pytest.raises(InvalidToken) as info:
        tokens.validate(address=CLIENT, destination_cid=RETRY_SCID, token=token, now=now)
    assert info.value.reason == "expired"


@pytest.mark.parametrize(
    "address", [("127.0.0.2", 50000), ("127.0.0.1", 50001)], ids=["other-ip", "other-port"]
)
def test_token_from_another_address_is_unauthentic(address: tuple[str, int]) -> None:
    tokens = RetryTokens(lifetime=3.0)
    token = make_token(tokens)
    with pytest.raises(InvalidToken) as info:
        tokens.validate(address=address, destination_cid=RETRY_SCID, token=token, now=100.0)
    assert info.value.reason == "unauthentic"


def test_token_with_any_byte_altered_is_unauthentic() -> None:
    tokens = RetryTokens(lifetime=3.0)
    token = make_token(tokens)
    for index in range(len(token)):
        tampered = bytearray(token)
        tampered[index] ^= 0x01
        with pytest.raises(InvalidToken) as info:
            tokens.validate(
                address=CLIENT, destination_cid=RETRY_SCID, token=bytes(tampered), now=100.0
            )
        assert info.value.reason == "unauthentic", index


def test_token_of_another_server_is_unauthentic() -> None:
    token = make_token(RetryTokens(lifetime=3.0))
    with pytest.raises(InvalidToken) as info:
        RetryTokens(lifetime=3.0).validate(
            address=CLIENT, destination_cid=RETRY_SCID, token=token, now=100.0
        )
    assert info.value.reason == "unauthentic"


def test_token_sent_to_another_connection_id_is_refused() -> None:
    tokens = RetryTokens(lifetime=3.0)
    token = make_token(tokens)
    with pytest.raises(InvalidToken) as info:
        tokens.validate(address=CLIENT, destination_cid=ODCID, token=token, now=100.0)
    assert info.value.reason == "connection id"


@pytest.mark.parametrize("token", [b"", b"\x00" * 20, make_token(RetryTokens(1.0))[:-1]])
def test_short_or_truncated_token_is_refused(token: bytes) -> None:
    with pytest.raises(InvalidToken) as info:
        RetryTokens(lifetime=3.0).validate(
            address=CLIENT, destination_cid=RETRY_SCID, token=token, now=100.0
        )
    assert info.value.reason in {"malformed", "unauthentic"}


def test_lifetime_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RetryTokens(lifetime=0.0)
