"""Node metrics without the network: off costs no import; on, what each path counts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quicnproto.config import NodeConfig
from quicnproto.node.server import Node
from quicnproto.node.store import open_sqlite_store
from quicnproto.rpc import encode_frame
from quicnproto.wire import GetChallenge, Ping, encode_request
from tests.quicnproto.unit.test_server import FakeStream

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_700_000_000.0


def test_metrics_off_imports_no_prometheus(tmp_path: Path) -> None:
    # A fresh interpreter: this test process may have loaded prometheus_client already.
    script = textwrap.dedent(
        f"""
        import sys, trio
        from types import SimpleNamespace
        import quicnproto.cli
        from quicnproto.config import NodeConfig
        from quicnproto.node.server import Node, serve
        from quicnproto.node.store import open_sqlite_store
        from quicnproto.rpc import encode_frame
        from quicnproto.wire import Ping, encode_request

        class Stream:
            connection = SimpleNamespace(id=1, state={{}})
            incoming = encode_frame(encode_request(1, Ping()))
            async def receive_some(self, max_bytes=65536):
                data, self.incoming = self.incoming, b""
                return data
            async def send_all(self, data, *, end_stream=False):
                pass

        async def main():
            store = open_sqlite_store({str(tmp_path / "n.db")!r})
            node = Node(NodeConfig(), store)
            assert node.metrics is None
            await node.handle_stream(Stream())
            async with trio.open_nursery() as nursery:
                await node.start_metrics(nursery)
            await store.aclose()

        trio.run(main)
        loaded = sorted(m for m in sys.modules if "prometheus" in m or m.endswith(".metrics"))
        print(loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.fixture
async def node(tmp_path: Path):
    store = open_sqlite_store(tmp_path / "n.db")
    yield Node(NodeConfig(max_frame_size=1024, metrics=("127.0.0.1", 0)), store)
    await store.aclose()


def sample(node: Node, name: str, **labels: str) -> float:
    assert node.metrics is not None
    return node.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_requests_are_counted_by_method_and_outcome(node: Node) -> None:
    for request_id in (1, 2):
        await node.handle_stream(FakeStream(encode_frame(encode_request(request_id, Ping()))))  # type: ignore[arg-type]
    await node.handle_stream(FakeStream(encode_frame(b"\x00" * 5)))  # type: ignore[arg-type]
    assert sample(node, "quicnproto_requests_total", method="ping", outcome="no_error") == 2
    assert sample(node, "quicnproto_request_duration_seconds_count", method="ping") == 2
    assert sample(node, "quicnproto_requests_total", method="malformed", outcome="malformed") == 1
    assert sample(node, "quicnproto_errors_total", **{"class": "ProtocolError"}) == 1


async def test_a_bug_is_counted_by_its_class(node: Node) -> None:
    async def buggy(state: object, request: object) -> object:
        raise RuntimeError("boom")

    node.dispatch = buggy  # type: ignore[method-assign]
    await node.handle_stream(FakeStream(encode_frame(encode_request(9, GetChallenge()))))  # type: ignore[arg-type]
    assert sample(node, "quicnproto_errors_total", **{"class": "RuntimeError"}) == 1
    # A bug escapes before the kind is known, as in the request log.
    assert sample(node, "quicnproto_requests_total", method="none", outcome="internal") == 1


async def test_scrape_reads_queue_totals_and_key_package_buckets(tmp_path: Path) -> None:
    store = open_sqlite_store(tmp_path / "n.db", clock=lambda: NOW)
    node = Node(NodeConfig(metrics=("127.0.0.1", 0)), store)
    alice, bob, carol, dave = (bytes([c]) * 32 for c in b"ABCD")
    try:
        await store.enqueue(alice, [bob, carol], b"12345", b"m1")
        await store.enqueue(alice, [bob], b"123", b"m2")
        for i in range(2):
            await store.add_key_package(alice, b"a%d" % i, b"kp", False, 2**40)
        await store.add_key_package(alice, b"a-old", b"kp", False, int(NOW) - 1)  # expired
        await store.add_key_package(bob, b"b0", b"kp", False, 2**40)
        assert await store.claim_key_package(bob) == (b"kp", False)  # bob: 0 left
        await store.add_key_package(carol, b"c-lr", b"kp", True, 2**40)  # last resort only
        for i in range(12):
            await store.add_key_package(dave, b"d%d" % i, b"kp", False, 2**40)
        assert node.metrics is not None
        text = (await node.metrics.exposition()).decode()
    finally:
        await store.aclose()
    assert "quicnproto_queue_messages 3.0" in text
    assert "quicnproto_queue_bytes 13.0" in text
    buckets = {"0": 2, "1-2": 1, "3-9": 0, "10+": 1}
    for left, identities in buckets.items():
        assert sample(node, "quicnproto_key_package_identities", left=left) == identities
    # Every write above went through a group commit.
    assert sample(node, "quicnproto_store_commit_batch_size_count") >= 1
    assert sample(node, "quicnproto_store_commit_batch_size_sum") == 20
