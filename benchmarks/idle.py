"""Idle capacity of one node: memory and CPU per idle long-polling client, and delivery latency.

A real node (``quicnproto serve`` in its own process, SQLite file and certificate in a
temporary directory) is configured, as an operator would, with ``--max-connections`` and
``--max-connections-per-address`` above the number of clients (they all come from 127.0.0.1),
a longer ``--idle-timeout`` and ``--max-wait-ms``; the clients set a longer ``idle_timeout``
too, so a held long-poll sends few keep-alive PINGs. Several load-generator processes (each a
Trio program) then open ``--clients`` authenticated clients, each with its own identity, its
own UDP socket and QUIC connection, holding a long-poll fetch on its own queue. Handshakes are
started a few at a time per generator, so the node's pre-handshake limits (Retry above
``retry_threshold`` unvalidated handshakes, ``pre_handshake_timeout``) are not tripped.

Once every client is polling, the node's RSS and CPU are read from ``/proc`` over
``--idle-seconds``; then ``--messages`` messages go, at ``--rate`` per second from one more
client in this process, to random idle clients, and each one's latency is measured from the
start of its enqueue to the long-polling recipient holding it (the sender connects only then) (``time.monotonic`` is the same
clock in every process).

Prints JSON::

    clients                     clients connected, authenticated and long-polling
    connect_s                   from starting the generators to the last client polling
    node_rss_bytes_before       node RSS before any client connected (after one ping)
    node_rss_bytes_idle         node RSS with every client idle, after the idle window
    rss_per_idle_client_kib     (idle - before) / clients
    node_cpu_percent_idle       node CPU (user + system) over the idle window, % of one core
    node_cpu_percent_connect    the same while the clients connected
    delivery_latency_ms         p50, p99, max, count
    generator_cpu_percent_idle  the load generators' CPU over the same window (all together)
    generators, connect_failures, dropped (long-polls that failed), node_warnings (lines the
    node logged at WARNING or above, e.g. refused connections), generator_rss_bytes,
    node_options, load_average, targets

``--profile-memory`` instead runs the node in this process under :mod:`tracemalloc` (the same
configuration) and prints where the bytes each idle client costs the node were allocated, by
package and by source line.

Usage: ``python benchmarks/idle.py [--clients N] [--messages M] [--rate R] [--generators G]
[--idle-seconds S] [--profile-memory]``. Linux only (``/proc``). Targets: <= 128 KiB per
idle client, p99 <= 50 ms; reported, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quicnproto.client.connection import NodeClient, identity_key_of, open_client  # noqa: E402
from quicnproto.config import ClientConfig, NodeConfig  # noqa: E402

CLIENTS = 10_000
MESSAGES = 1_000
RATE = 150.0
IDLE_SECONDS = 10.0
CLIENTS_PER_GENERATOR = 2_000
MAX_GENERATORS = 8
HANDSHAKES_PER_GENERATOR = 8
"""Connections a generator sets up at once: with up to 8 generators that stays below the
node's ``retry_threshold`` (64) unvalidated handshakes, and a handshake is not left waiting past
the ``pre_handshake_timeout`` (3 s) on a busy node."""
CONNECT_ATTEMPTS = 3
NODE_IDLE_TIMEOUT = 600.0
"""The node's ``--idle-timeout``: it sends a keep-alive PING every 200 s on a held long-poll."""
CLIENT_IDLE_TIMEOUT = 300.0
"""Each client's ``idle_timeout``, the lower of the two, hence the connections' QUIC idle
timeout: a client PINGs every 100 s while its long-poll is held. With the defaults (60 s on
both sides, a PING from each every 20 s) 10,000 idle clients cost the node about 1,000 PINGs a
second, which took most of the CPU it had on a shared 2-core machine."""
WAIT_MS = 900_000
"""How long each long-poll is held (the node's ``--max-wait-ms`` too): longer than a whole run,
so no poll expires during it. With 120 s, a node starved of CPU while 10,000 clients connected
(2 cores shared with other work) answered expired polls more than the client's 10 s margin
late, and those clients gave up (``dropped``)."""
GENERATOR_NICENESS = 5
"""The load generators yield the CPU to the node (deployed, clients run elsewhere)."""
CONNECTION_HEADROOM = 64
PAYLOAD = b"i" * 200


def _identity(index: int) -> Any:
    """Client ``index``'s Ed25519 key, derived from the index so every process agrees on it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = hashlib.sha256(b"quicnproto-idle-benchmark-%d" % index).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


# -- load generator (a child process) ------------------------------------------------------------


def _raise_file_limit() -> None:
    """Each client holds its own UDP socket: raise the soft limit on open files to the hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _generate(config: ClientConfig, first: int, end: int, wait_ms: int) -> None:
    """Hold clients ``first``..``end - 1`` on long-polls; report on stdout, one line each:
    ``connected <n>`` (once), ``failed <i>``, ``dropped <i>``, ``latency <ms>``."""
    limiter = trio.CapacityLimiter(HANDSHAKES_PER_GENERATOR)
    pending = end - first
    connected = 0
    all_started = trio.Event()

    def settled(ok: bool) -> None:
        nonlocal pending, connected
        pending -= 1
        connected += ok
        if pending == 0:
            all_started.set()

    async def poll(client: NodeClient, key: bytes) -> None:
        cursor = 0
        while True:
            messages = await client.fetch(key, after_seq=cursor, wait_ms=wait_ms, ack_up_to=cursor)
            now = time.monotonic()
            for message in messages:
                (sent,) = struct.unpack(">d", message.payload[:8])
                _say(f"latency {(now - sent) * 1000:.3f}")
            if messages:
                cursor = messages[-1].seq

    async def hold(index: int) -> None:
        me = _identity(index)
        key = identity_key_of(me)
        for attempt in range(CONNECT_ATTEMPTS):
            started = False
            # The limiter bounds handshakes and authentications in progress, not held clients.
            await limiter.acquire()
            limited = True
            try:
                async with open_client(config) as client:
                    await client.authenticate(me)
                    limiter.release()
                    limited = False
                    settled(True)
                    started = True
                    await poll(client, key)
            except Exception as exc:  # noqa: BLE001 - reported, the benchmark goes on
                if started:
                    _say(f"dropped {index} {type(exc).__name__}: {exc}")
                    print(f"{time.strftime('%T')} dropped {index} {exc!r}", file=sys.stderr)
                    return
                if attempt == CONNECT_ATTEMPTS - 1:
                    _say(f"failed {index} {type(exc).__name__}: {exc}")
                    settled(False)
                    return
            finally:
                if limited:
                    limiter.release()
            await trio.sleep(0.5 * (attempt + 1))

    async def report() -> None:
        await all_started.wait()
        _say(f"connected {connected}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(report)
        for index in range(first, end):
            nursery.start_soon(hold, index)


def _run_generator(argv: list[str]) -> None:
    host, port, cert, first, end, wait_ms = argv
    _raise_file_limit()
    os.nice(GENERATOR_NICENESS)
    logging.getLogger("quicnproto").setLevel(logging.CRITICAL)
    config = ClientConfig(
        host=host, port=int(port), server_cert=Path(cert), idle_timeout=CLIENT_IDLE_TIMEOUT
    )
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    trio.run(_generate, config, int(first), int(end), int(wait_ms))


# -- the benchmark --------------------------------------------------------------------------------


def _generator_slices(clients: int, generators: int) -> list[tuple[int, int]]:
    size = math.ceil(clients / generators)
    return [(lo, min(clients, lo + size)) for lo in range(0, clients, size)]


class _Generators:
    """The load-generator processes and what they report."""

    def __init__(self) -> None:
        self.processes: list[trio.Process] = []
        self.connected = 0
        self.reported = 0
        self.failed: set[int] = set()
        self.dropped: dict[int, str] = {}
        self.latencies: list[float] = []
        self.all_connected = trio.Event()
        self.arrived = trio.Event()
        self.expected_messages = 0

    async def start(
        self, nursery: trio.Nursery, config: ClientConfig, clients: int, count: int
    ) -> None:
        slices = _generator_slices(clients, count)
        for first, end in slices:
            argv = [
                sys.executable,
                __file__,
                "--generator",
                config.host,
                str(config.port),
                str(config.server_cert),
                str(first),
                str(end),
                str(WAIT_MS),
            ]
            process = await trio.lowlevel.open_process(
                argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
            )
            self.processes.append(process)
            nursery.start_soon(self._read, process, len(slices))

    async def _read(self, process: trio.Process, count: int) -> None:
        assert process.stdout is not None
        buffer = b""
        while True:
            chunk = await process.stdout.receive_some(65536)
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self._on_line(line.decode(), count)

    def _on_line(self, line: str, count: int) -> None:
        kind, _, rest = line.partition(" ")
        if kind == "latency":
            self.latencies.append(float(rest))
            if len(self.latencies) >= self.expected_messages > 0:
                self.arrived.set()
        elif kind == "connected":
            self.connected += int(rest)
            self.reported += 1
            if self.reported == count:
                self.all_connected.set()
        elif kind == "failed":
            self.failed.add(int(rest.split()[0]))
        elif kind == "dropped":
            index, _, reason = rest.partition(" ")
            self.dropped[int(index)] = reason

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(p.pid) for p in self.processes if p.returncode is None)

    def rss_bytes(self) -> int:
        return sum(_rss_bytes(p.pid) for p in self.processes if p.returncode is None)

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
        with trio.CancelScope(shield=True):
            for process in self.processes:
                await process.wait()


def _node_options(clients: int) -> dict[str, Any]:
    cap = clients + CONNECTION_HEADROOM
    return {
        "max_connections": max(cap, NodeConfig.max_connections),
        "max_connections_per_address": cap,
        "idle_timeout": NODE_IDLE_TIMEOUT,
        "max_wait_ms": WAIT_MS,
    }


async def _start_node(data_dir: Path, port: int, clients: int, log: Any) -> trio.Process:
    argv = [
        sys.executable,
        "-m",
        "quicnproto",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
    ]
    for name, value in _node_options(clients).items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    return await trio.lowlevel.open_process(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
    )


async def _wait_ready(config: ClientConfig, node: trio.Process | None) -> None:
    with trio.fail_after(60):
        while True:
            if node is not None and node.returncode is not None:
                raise RuntimeError("the node exited at start")
            if config.server_cert.exists():
                try:
                    async with open_client(config) as client:
                        await client.ping()
                    return
                except Exception:  # noqa: BLE001, S110 - not listening yet
                    pass
            await trio.sleep(0.1)


async def _deliver(
    sender: NodeClient, gens: _Generators, clients: int, messages: int, rate: float
) -> dict[str, Any]:
    """Send ``messages`` to random polling clients at ``rate``; wait for them to arrive."""
    rng = random.Random(0)  # noqa: S311 - a benchmark's choice, not a secret
    targets = [i for i in range(clients) if i not in gens.failed and i not in gens.dropped]
    keys = {}
    gens.expected_messages = messages
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        for n in range(messages):
            await trio.sleep_until(start + n / rate)
            index = rng.choice(targets)
            if index not in keys:
                keys[index] = identity_key_of(_identity(index))

            async def one(key: bytes = keys[index], n: int = n) -> None:
                stamp = struct.pack(">d", time.monotonic())
                await sender.enqueue([key], stamp + PAYLOAD, b"idle-%d" % n)

            nursery.start_soon(one)
    with trio.move_on_after(30):
        await gens.arrived.wait()
    ordered = sorted(gens.latencies)
    if not ordered:
        return {"p50": None, "p99": None, "max": None, "count": 0}
    return {
        "p50": round(statistics.median(ordered), 3),
        "p99": round(_percentile(ordered, 0.99), 3),
        "max": round(ordered[-1], 3),
        "count": len(ordered),
    }


async def _connect_all(
    nursery: trio.Nursery, gens: _Generators, config: ClientConfig, args: argparse.Namespace
) -> float:
    count = args.generators or max(
        1, min(MAX_GENERATORS, math.ceil(args.clients / CLIENTS_PER_GENERATOR))
    )
    started = time.monotonic()
    await gens.start(nursery, config, args.clients, count)
    await gens.all_connected.wait()
    return time.monotonic() - started


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="quicnproto-idle-") as tmp:
        data_dir = Path(tmp) / "node"
        port = _free_udp_port()
        config = ClientConfig(host="127.0.0.1", port=port, server_cert=data_dir / "server-cert.der")
        gens = _Generators()
        log_path = Path(tmp) / "node.log"
        with log_path.open("wb") as log:
            node = await _start_node(data_dir, port, args.clients, log)
            try:
                await _wait_ready(config, node)
                async with trio.open_nursery() as nursery:
                    await trio.sleep(1.0)
                    rss_before = _rss_bytes(node.pid)
                    cpu_start = _cpu_seconds(node.pid)
                    connect_s = await _connect_all(nursery, gens, config, args)
                    cpu_connect = _cpu_seconds(node.pid) - cpu_start
                    # Let the last polls reach the node and the handshake garbage go.
                    await trio.sleep(min(3.0, args.idle_seconds))
                    cpu_before = _cpu_seconds(node.pid)
                    generators_before = gens.cpu_seconds()
                    idle_started = time.monotonic()
                    await trio.sleep(args.idle_seconds)
                    cpu_idle = _cpu_seconds(node.pid) - cpu_before
                    generators_idle = gens.cpu_seconds() - generators_before
                    idle_elapsed = time.monotonic() - idle_started
                    rss_idle = _rss_bytes(node.pid)
                    generator_rss = gens.rss_bytes()
                    # The sender connects now: a connection without a request open sends
                    # nothing, so QUIC's idle timeout would close it during a long set-up.
                    async with open_client(config) as sender:
                        await sender.authenticate(_identity(-1))
                        latency = await _deliver(
                            sender, gens, args.clients, args.messages, args.rate
                        )
                    nursery.cancel_scope.cancel()
            finally:
                await gens.stop()
                node.send_signal(signal.SIGTERM)
                with trio.move_on_after(10) as scope:
                    await node.wait()
                if scope.cancelled_caught:
                    node.kill()
                    await node.wait()
        warnings = [line for line in log_path.read_text().splitlines() if line.strip()]
    clients = gens.connected - len(gens.dropped)
    return {
        "clients": clients,
        "clients_asked": args.clients,
        "connect_s": round(connect_s, 2),
        "node_rss_bytes_before": rss_before,
        "node_rss_bytes_idle": rss_idle,
        "rss_per_idle_client_kib": round((rss_idle - rss_before) / max(1, clients) / 1024, 2),
        "node_cpu_percent_idle": round(cpu_idle / idle_elapsed * 100, 2),
        "generator_cpu_percent_idle": round(generators_idle / idle_elapsed * 100, 2),
        "node_cpu_percent_connect": round(cpu_connect / connect_s * 100, 2),
        "idle_seconds": args.idle_seconds,
        "delivery_latency_ms": latency,
        "messages": args.messages,
        "rate_per_s": args.rate,
        "generators": len(gens.processes),
        "generator_rss_bytes": generator_rss,
        "connect_failures": len(gens.failed),
        "dropped": len(gens.dropped),
        "dropped_sample": sorted(set(gens.dropped.values()))[:5],
        "node_warnings": len(warnings),
        "node_warning_sample": warnings[:3],
        "node_options": _node_options(args.clients),
        "client_idle_timeout_s": CLIENT_IDLE_TIMEOUT,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "targets": {"rss_per_idle_client_kib": "<= 128", "delivery_latency_p99_ms": "<= 50"},
    }


# -- memory profile: the node in this process, under tracemalloc ---------------------------------


def _package_of(filename: str) -> str:
    parts = Path(filename).parts
    for name in ("aioquic", "trio", "quicnproto", "cryptography", "capnp", "OpenSSL"):
        if name in parts:
            return name
    return Path(filename).name


async def _profile(args: argparse.Namespace) -> dict[str, Any]:
    from quicnproto.cli import tune_interpreter_for_serving
    from quicnproto.node.server import serve

    logging.getLogger("quicnproto").setLevel(logging.ERROR)
    tune_interpreter_for_serving()
    with tempfile.TemporaryDirectory(prefix="quicnproto-idle-") as tmp:
        node_config = NodeConfig(host="127.0.0.1", port=0, data_dir=Path(tmp))
        for name, value in _node_options(args.clients).items():
            setattr(node_config, name, value)
        node_config.validate()
        gens = _Generators()
        async with trio.open_nursery() as outer:
            _, port = await outer.start(serve, node_config)
            config = ClientConfig(host="127.0.0.1", port=port, server_cert=node_config.cert_path)
            async with trio.open_nursery() as nursery:
                tracemalloc.start(1)
                await trio.sleep(1.0)
                before = tracemalloc.take_snapshot()
                try:
                    await _connect_all(nursery, gens, config, args)
                    await trio.sleep(3.0)
                    after = tracemalloc.take_snapshot()
                finally:
                    await gens.stop()
                tracemalloc.stop()
                nursery.cancel_scope.cancel()
            outer.cancel_scope.cancel()
    clients = max(1, gens.connected)
    by_line = after.compare_to(before, "lineno")
    packages: dict[str, int] = {}
    for stat in by_line:
        key = _package_of(stat.traceback[0].filename)
        packages[key] = packages.get(key, 0) + stat.size_diff
    top = sorted(packages.items(), key=lambda kv: -kv[1])[:12]
    lines = [
        {
            "where": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
            "kib_per_client": round(s.size_diff / clients / 1024, 2),
            "blocks_per_client": round(s.count_diff / clients, 2),
        }
        for s in by_line[:25]
    ]
    ours = [
        {
            "where": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
            "kib_per_client": round(s.size_diff / clients / 1024, 3),
        }
        for s in by_line
        if _package_of(s.traceback[0].filename) == "quicnproto"
    ][:20]
    return {
        "clients": gens.connected,
        "traced_kib_per_client": round(sum(s.size_diff for s in by_line) / clients / 1024, 2),
        "by_package_kib_per_client": {k: round(v / clients / 1024, 2) for k, v in top},
        "top_lines": lines,
        "top_lines_quicnproto": ours,
    }


def _short(filename: str) -> str:
    parts = Path(filename).parts
    for anchor in ("site-packages", "wt-idle"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) + 1 :])
    return "/".join(parts[-3:])


def main() -> None:
    """Run the benchmark (or, with ``--generator``, be one of its load generators)."""
    if len(sys.argv) > 1 and sys.argv[1] == "--generator":
        _run_generator(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--rate", type=float, default=RATE, help="messages per second")
    parser.add_argument("--generators", type=int, default=0, help="0: one per 2,000 clients")
    parser.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS)
    parser.add_argument("--profile-memory", action="store_true")
    args = parser.parse_args()
    _raise_file_limit()
    run = _profile if args.profile_memory else _measure
    print(json.dumps(trio.run(run, args), indent=2))


if __name__ == "__main__":
    main()
