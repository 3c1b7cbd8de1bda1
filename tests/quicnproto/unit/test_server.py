"""The node's request handling without the network: framing, errors, never crashing, logs."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from quicnproto.config import NodeConfig
from quicnproto.errors import ErrorCode, StoreError
from quicnproto.node.server import Node, configure_logging
from quicnproto.node.store import open_sqlite_store
from quicnproto.rpc import FrameDecoder, encode_frame
from quicnproto.wire import (
    CountQueue,
    ErrorResponse,
    GetChallenge,
    Ping,
    Pong,
    decode_answer,
    encode_request,
)


class FakeStream:
    """Just enough of QuicStream for Node.handle_stream."""

    def __init__(self, incoming: bytes, chunk: int = 3) -> None:
        self.connection = SimpleNamespace(id=7, state={})
        self._incoming = incoming
        self._chunk = chunk
        self.sent = b""
        self.finished = False
        self.reset_code: int | None = None

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        data = self._incoming[: min(max_bytes, self._chunk)]
        self._incoming = self._incoming[len(data) :]
        return data

    async def send_all(self, data: bytes, *, end_stream: bool = False) -> None:
        self.sent += data
        self.finished = end_stream

    def reset(self, error_code: int) -> None:
        self.reset_code = error_code

    def answer(self) -> Any:
        decoder = FrameDecoder(1 << 20)
        decoder.receive_data(self.sent)
        frame = decoder.next_frame()
        assert frame is not None
        return decode_answer(frame)


@pytest.fixture
async def node(tmp_path: Path):
    store = open_sqlite_store(tmp_path / "n.db")
    yield Node(NodeConfig(max_frame_size=1024), store)
    await store.aclose()


async def test_ping_over_a_byte_dribbling_stream(node: Node) -> None:
    stream = FakeStream(encode_frame(encode_request(5, Ping())), chunk=1)
    await node.handle_stream(stream)  # type: ignore[arg-type]
    request_id, answer = stream.answer()
    assert request_id == 5
    assert isinstance(answer, Pong)
    assert stream.finished


async def test_garbage_gets_a_malformed_error(node: Node) -> None:
    stream = FakeStream(encode_frame(b"\x00" * 5))
    await node.handle_stream(stream)  # type: ignore[arg-type]
    assert stream.answer() == (0, ErrorResponse(ErrorCode.MALFORMED, "malformed request"))


async def test_oversize_frame_gets_frame_too_large(node: Node) -> None:
    stream = FakeStream((10_000).to_bytes(4, "big") + b"x" * 100)
    await node.handle_stream(stream)  # type: ignore[arg-type]
    assert stream.answer()[1].code == ErrorCode.FRAME_TOO_LARGE


async def test_truncated_frame_gets_malformed(node: Node) -> None:
    stream = FakeStream(encode_frame(encode_request(1, Ping()))[:-3])
    await node.handle_stream(stream)  # type: ignore[arg-type]
    assert stream.answer()[1].code == ErrorCode.MALFORMED


async def test_store_failure_answers_unavailable(node: Node) -> None:
    async def broken(*args: object) -> int:
        raise StoreError("disk full")

    node.delivery.store.count_queue = broken  # type: ignore[method-assign]
    state: dict[str, Any] = {}
    node.auth.get_challenge(state)
    from quicnproto.node import auth_service

    state[auth_service._IDENTITIES] = [b"k" * 32]
    _, _, answer = await node.answer(state, encode_request(3, CountQueue(b"k" * 32)))
    assert answer == ErrorResponse(ErrorCode.UNAVAILABLE, "store unavailable")


async def test_a_bug_in_a_handler_is_answered_counted_and_logged_without_secrets(
    node: Node,
) -> None:
    async def buggy(state: object, request: object) -> object:
        raise RuntimeError("SECRET-IN-EXCEPTION-MESSAGE")

    node.dispatch = buggy  # type: ignore[method-assign]
    sink = io.StringIO()
    configure_logging(json_lines=True, stream=sink)
    try:
        stream = FakeStream(encode_frame(encode_request(9, GetChallenge())))
        await node.handle_stream(stream)  # type: ignore[arg-type]
    finally:
        for name in ("quicnproto", "quic"):
            target = logging.getLogger(name)
            for handler in list(target.handlers):
                target.removeHandler(handler)
            target.setLevel(logging.NOTSET)
            target.propagate = True
    assert stream.answer() == (0, ErrorResponse(ErrorCode.INTERNAL, "internal error"))
    assert node.internal_errors == 1
    entries = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert {"event": "handler_failed", "exception": "RuntimeError"}.items() <= entries[0].items()
    assert entries[-1]["code"] == "internal"
    assert "SECRET" not in sink.getvalue()


def test_interpreter_tuning_only_lowers_the_switch_interval_and_raises_the_gc_threshold() -> None:
    import gc
    import sys

    from quicnproto import cli

    interval, threshold = sys.getswitchinterval(), gc.get_threshold()
    try:
        sys.setswitchinterval(0.005)
        gc.set_threshold(700, 10, 10)
        cli.tune_interpreter_for_serving()
        assert sys.getswitchinterval() == pytest.approx(cli.GIL_SWITCH_INTERVAL)
        assert gc.get_threshold() == (cli.GC_FIRST_GENERATION_THRESHOLD, 10, 10)
        # Settings already past ours (or a disabled collector) are left alone.
        sys.setswitchinterval(0.0001)
        gc.set_threshold(50_000, 10, 10)
        cli.tune_interpreter_for_serving()
        assert sys.getswitchinterval() == pytest.approx(0.0001)
        assert gc.get_threshold() == (50_000, 10, 10)
        gc.set_threshold(0, 10, 10)
        cli.tune_interpreter_for_serving()
        assert gc.get_threshold()[0] == 0
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*threshold)
        gc.unfreeze()
