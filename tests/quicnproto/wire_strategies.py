"""Hypothesis strategies for node wire messages: valid requests, mutations and raw garbage."""

from __future__ import annotations

from hypothesis import strategies as st

from quicnproto.rpc import encode_frame
from quicnproto.wire import (
    Ack,
    Acked,
    Authenticate,
    CommitEpoch,
    CountKeyPackages,
    CountQueue,
    Enqueue,
    Fetch,
    FetchKeyPackage,
    GetChallenge,
    Ping,
    Pong,
    UploadKeyPackage,
    encode_answer,
    encode_request,
)

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
small_bytes = st.binary(max_size=48)
keyish = st.one_of(st.binary(min_size=32, max_size=32), small_bytes)

requests = st.one_of(
    st.just(Ping()),
    st.just(GetChallenge()),
    st.builds(Authenticate, identity_key=keyish, signature=st.binary(max_size=80)),
    st.builds(
        UploadKeyPackage,
        identity_key=keyish,
        package=st.binary(max_size=300),
        last_resort=st.booleans(),
    ),
    st.builds(FetchKeyPackage, identity_key=keyish),
    st.builds(CountKeyPackages, identity_key=keyish),
    st.builds(
        Enqueue,
        recipients=st.lists(keyish, max_size=4).map(tuple),
        payload=st.binary(max_size=200),
        message_id=small_bytes,
        commit=st.none() | st.builds(CommitEpoch, group_id=small_bytes, epoch=u64),
    ),
    st.builds(Fetch, recipient_key=keyish, after_seq=u64, limit=u32, wait_ms=u32, ack_up_to=u64),
    st.builds(Ack, recipient_key=keyish, up_to_seq=u64),
    st.builds(CountQueue, recipient_key=keyish),
)

encoded_requests = st.builds(encode_request, u64, requests)
"""Valid request envelopes (Cap'n Proto bytes, unframed) with hostile field values."""

wrong_direction = st.sampled_from(
    [encode_answer(1, Pong(version="x", time_ms=1)), encode_answer(2, Acked(removed=3))]
)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding damaged by bit flips, truncation, insertion or a rewritten word."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "word", "segments"]))
        if kind == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif kind == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "word" and len(data) >= 8:
            i = draw(st.integers(0, len(data) // 8 - 1)) * 8
            data[i : i + 8] = draw(st.binary(min_size=8, max_size=8))
        elif kind == "segments" and len(data) >= 4:
            data[0:4] = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "little")
    return bytes(data)


capnp_messages = st.one_of(
    encoded_requests,
    wrong_direction,
    mutated(encoded_requests),
    st.binary(max_size=256),
    st.binary(max_size=64).map(lambda b: b + b"\x00" * (-len(b) % 8)),
)
"""Cap'n Proto bytes, from valid to garbage, unframed."""


@st.composite
def bad_length_prefix(draw: st.DrawFn) -> bytes:
    frame = bytearray(encode_frame(draw(encoded_requests)))
    frame[0:4] = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "big")
    return bytes(frame)


stream_contents = st.one_of(
    capnp_messages.map(encode_frame),
    bad_length_prefix(),
    mutated(encoded_requests.map(encode_frame)),
    st.binary(max_size=300),
    st.lists(capnp_messages.map(encode_frame), min_size=2, max_size=3).map(b"".join),
)
"""Whatever a hostile client might write on one request stream before its FIN."""
