"""The node benchmark runs and prints the JSON the node issue asks for.

Timings are never asserted (they belong to the printed JSON); this checks the shape of the
output, that every message of the latency runs arrived, and that each ratio is the quotient of
the figures printed beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DURATION_S = 0.3


@pytest.fixture(scope="module")
def node_benchmark() -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "node.py"), str(DURATION_S), "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def _positive(section: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = section[key]
        assert isinstance(value, (int, float)) and value > 0, (key, value)


def _check_side(side: dict[str, Any], *, child: bool) -> None:
    _positive(
        side["raw_echo"],
        "one_stream_round_trips_per_s",
        "concurrent64_requests_per_s",
        "connections64_requests_per_s",
    )
    _positive(
        side["node"],
        "enqueue_fetch_round_trips_per_s",
        "delivered_per_s_64_clients",
        "delivered_per_s_64_clients_one_connection",
        "delivered_per_s_64_clients_groups_of_8",
    )
    for key, rate in (("latency_ms_1000_per_s", 1000), ("latency_ms_200_per_s", 200)):
        latency = side[key]
        # Every message offered during the run reached the long-polling recipient.
        assert latency["messages"] == int(rate * DURATION_S)
        assert latency["offered_per_s"] == rate
        assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
        # Each message is due no later than its enqueue starts.
        assert latency["p99"] <= latency["p99_from_schedule"]
        assert 0 < latency["sent_per_s"]
        assert latency["p99_runs"] == [latency["p99"]]
        cpu_keys = (
            ("client_cpu_ms_per_message", "node_cpu_ms_per_message")
            if child
            else ("cpu_ms_per_message",)
        )
        # Without the kernel's nanosecond run times, a short run may fit in one clock tick.
        assert all(latency[k] >= 0 for k in cpu_keys)
    streams = side["raw_echo"]["concurrent64_requests_per_s"]
    connections = side["raw_echo"]["connections64_requests_per_s"]
    node = side["node"]
    # Like for like: 64 clients on 64 connections over the raw echo's 64 connections.
    assert side["ratio"] == round(node["delivered_per_s_64_clients"] / connections, 3)
    assert side["ratio_64_clients_vs_raw_64_streams"] == round(
        node["delivered_per_s_64_clients"] / streams, 3
    )
    assert side["ratio_one_connection_vs_raw_64_streams"] == round(
        node["delivered_per_s_64_clients_one_connection"] / streams, 3
    )
    assert side["ratio_raw_64_connections_vs_raw_64_streams"] == round(connections / streams, 3)
    assert side["ratio_groups_of_8_vs_raw_64_streams"] == round(
        node["delivered_per_s_64_clients_groups_of_8"] / streams, 3
    )


def test_node_benchmark_top_level(node_benchmark: dict[str, Any]) -> None:
    assert node_benchmark["ratio"] == node_benchmark["backends"]["aioquic"]["ratio"]
    assert node_benchmark["runs"] == 1
    assert node_benchmark["duration_s"] == DURATION_S
    assert node_benchmark["targets"] == {
        "ratio": ">= 0.75",
        "node_cpu_ms_per_message_1000_per_s": "<= 0.5",
        "p99_from_schedule_ms_1000_per_s": "<= 10",
        "p99_from_schedule_ms_200_per_s": "<= 5",
    }
    assert len(node_benchmark["load_average"]) == 3


def test_node_benchmark_in_process(node_benchmark: dict[str, Any]) -> None:
    _check_side(node_benchmark["in_process"], child=False)


def test_node_benchmark_backends_in_child_processes(node_benchmark: dict[str, Any]) -> None:
    backends = node_benchmark["backends"]
    assert set(backends) == {"aioquic", "qh3"}
    measured = {name: block for name, block in backends.items() if "skipped" not in block}
    assert "aioquic" in measured
    for block in measured.values():
        _check_side(block, child=True)
        for summary in ("node_cpu_ms_per_message", "p99_from_schedule_ms"):
            assert set(block[summary]) == {"200_per_s", "1000_per_s"}
        assert (
            block["p99_from_schedule_ms"]["1000_per_s"]
            == (block["latency_ms_1000_per_s"]["p99_from_schedule"])
        )
        assert (
            block["node_cpu_ms_per_message"]["200_per_s"]
            == (block["latency_ms_200_per_s"]["node_cpu_ms_per_message"])
        )
    for block in backends.values():
        if "skipped" in block:
            assert isinstance(block["skipped"], str) and block["skipped"]


def test_node_benchmark_sans_io_floor(node_benchmark: dict[str, Any]) -> None:
    sans_io = node_benchmark["sans_io_us"]
    _positive(sans_io, "client_build", "server_receive", "server_build", "client_receive")
    steps = ("client_build", "server_receive", "server_build", "client_receive")
    assert abs(sans_io["per_exchange"] - sum(sans_io[k] for k in steps)) < 0.5
    # One stream frame each way fits in one datagram; an extra one now and then carries
    # stream-credit updates.
    assert 1.0 <= sans_io["datagrams_per_request"] < 1.1
    assert 1.0 <= sans_io["datagrams_per_answer"] < 1.1


def test_mls_ops_benchmark_prints_every_figure_the_issue_names() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "mls_ops.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["cipher_suite"] == 1
    for section in ("app_msgs_per_s", "build_s", "state_bytes", "join_s"):
        assert result[section], section
        _positive(result[section], *result[section])
    for run in result["update_ms"].values():
        _positive(run, "create_ms", "process_ms", "filtered_direct_path_length", "members")
    # the committer is the member whose filtered direct path is longest in the tree
    assert any(k.endswith("_full_tree") for k in result["update_ms"])


def test_cli_benchmark_prints_its_figures() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cli.py"), "--runs", "1", "--messages", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    _positive(result, "startup_s", "send_s", "recv_s", "recv_follow_msgs_per_s")
    assert result["recv_follow_messages"] == 5


def test_idle_benchmark_holds_every_client_and_delivers_every_message() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "idle.py"),
            "--clients",
            "20",
            "--messages",
            "20",
            "--idle-seconds",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["clients"] == 20
    assert result["delivery_latency_ms"]["count"] == 20
    assert (result["connect_failures"], result["dropped"]) == (0, 0)
    for key in (
        "node_rss_bytes_before",
        "node_rss_bytes_idle",
        "rss_per_idle_client_kib",
        "node_cpu_percent_idle",
        "connect_s",
        "load_average",
    ):
        assert key in result, key
    _positive(result, "node_rss_bytes_before", "node_rss_bytes_idle", "connect_s")
    latency = result["delivery_latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert result["node_options"]["max_connections_per_address"] >= 20
