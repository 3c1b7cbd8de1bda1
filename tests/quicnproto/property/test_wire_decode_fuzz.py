"""Decoder invariant for node wire messages: a value or ProtocolError, nothing else."""

from __future__ import annotations

from hypothesis import given

from quicnproto.errors import ProtocolError
from quicnproto.wire import decode_answer, decode_request, peek_request_id
from tests.quicnproto.wire_strategies import capnp_messages, encoded_requests, requests


@given(capnp_messages)
def test_decode_request_returns_or_raises_protocol_error(data: bytes) -> None:
    try:
        decode_request(data)
    except ProtocolError:
        pass
    assert isinstance(peek_request_id(data), int)


@given(capnp_messages)
def test_decode_answer_returns_or_raises_protocol_error(data: bytes) -> None:
    try:
        decode_answer(data)
    except ProtocolError:
        pass


@given(requests)
def test_every_request_round_trips(body: object) -> None:
    from quicnproto.wire import encode_request

    assert decode_request(encode_request(9, body))[1] == body  # type: ignore[arg-type]


@given(encoded_requests)
def test_valid_requests_decode_with_small_traversal_budget(data: bytes) -> None:
    request_id, _ = decode_request(data)
    assert request_id >= 0
