"""``serve --metrics``: a real node exposes Prometheus metrics over HTTP on loopback."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.quicnproto.e2e.node_harness import json_logs, new_identity, running_node
from tests.quicnproto.key_packages import make_key_package

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def log_entries(sink: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.getvalue().splitlines()]


def metrics_port(sink: io.StringIO) -> int:
    (entry,) = [e for e in log_entries(sink) if e["event"] == "metrics_listening"]
    return int(entry["port"])


def http_get(port: int, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as answer:  # noqa: S310
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


async def scrape(port: int) -> Samples:
    status, content_type, body = await trio.to_thread.run_sync(http_get, port, "/metrics")
    assert status == 200
    assert content_type == CONTENT_TYPE_LATEST
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_request_counters_move_between_two_scrapes(tmp_path: Path) -> None:
    alice, bob = new_identity(), new_identity()
    package = make_key_package(alice.private_key)
    with json_logs() as sink:
        async with running_node(tmp_path / "node", metrics=("127.0.0.1", 0)) as node:
            port = metrics_port(sink)
            async with node.client(alice) as a, node.client(bob) as b:
                before = await scrape(port)
                await a.ping()
                await a.upload_key_package(alice.key, package)
                await a.enqueue([bob.key], b"twelve bytes", b"m-1")
                assert [m.payload for m in await b.fetch(bob.key)] == [b"twelve bytes"]
                after = await scrape(port)
                missing = await trio.to_thread.run_sync(http_get, port, "/")
    requests = "quicnproto_requests_total"
    for method in ("ping", "enqueue", "fetch"):
        moved = value(after, requests, method=method, outcome="no_error") - value(
            before, requests, method=method, outcome="no_error"
        )
        assert moved == 1, method
        latency = "quicnproto_request_duration_seconds_count"
        assert value(after, latency, method=method) - value(before, latency, method=method) == 1
    # Gauges read from the store at scrape time: bob's message waits (fetch does not delete);
    # alice has one single-use KeyPackage left.
    assert value(after, "quicnproto_queue_messages") == 1
    assert value(after, "quicnproto_queue_bytes") == len(b"twelve bytes")
    assert value(after, "quicnproto_key_package_identities", left="1-2") == 1
    assert value(after, "quicnproto_key_package_identities", left="0") == 0
    assert value(after, "quicnproto_connections") == 2
    # The upload and the enqueue were written in group commits.
    commits = "quicnproto_store_commit_batch_size_count"
    assert value(after, commits) - value(before, commits) >= 1
    assert value(after, "quicnproto_store_commit_duration_seconds_count") >= value(after, commits)
    assert missing[0] == 404
    # No label carries an identity or a request id ...
    labels = {v for key in after for _, v in key[1]}
    assert not any(alice.key.hex() in v or bob.key.hex() in v for v in labels)
    # ... the JSON log does, one record per counted request.
    entries = log_entries(sink)
    logged = [e for e in entries if e["event"] == "request" and e["kind"] == "ping"]
    assert len(logged) == value(after, requests, method="ping", outcome="no_error")
    assert all({"rid", "request_id", "code"} <= entry.keys() for entry in logged)

