"""The command line as a user runs it: one process per command; prints JSON.

    .venv/bin/python benchmarks/cli.py [--runs 10] [--messages 200]

Against a node in its own process on loopback, with two registered clients in one group:

* ``startup_s``: ``quicnproto whoami`` (interpreter start, imports, opening the state);
* ``send_s`` / ``recv_s``: one ``send`` and one ``recv`` command each (startup, connection,
  authentication, the MLS work and the state transaction included), median of ``--runs``;
* ``recv_follow_msgs_per_s``: ``recv --follow`` draining ``--messages`` queued messages,
  counted from its first printed line to its last.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quicnproto", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )


def _timed(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    _cli(env, *args)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="quicnproto-cli-bench-") as tmp:
        home = Path(tmp)
        port = _free_port()
        node = subprocess.Popen(
            [sys.executable, "-m", "quicnproto", "serve", "--listen", f"127.0.0.1:{port}",
             "--data-dir", str(home / "node"), "--log-json"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert node.stderr is not None
            for line in node.stderr:
                if '"listening"' in line:
                    break
            env = {
                **os.environ,
                "QUICNPROTOCHAT_SERVER": f"127.0.0.1:{port}",
                "QUICNPROTOCHAT_SERVER_CERT": str(home / "node" / "server-cert.der"),
            }
            alice, bob = str(home / "alice.state"), str(home / "bob.state")
            _cli(env, "register", "--state", alice)
            bob_key = _cli(env, "register", "--state", bob).stdout.strip()
            _cli(env, "create-group", "--state", alice, "--group-id", "bench")
            _cli(env, "invite", "--state", alice, "--peer-key", bob_key)
            _cli(env, "join", "--state", bob)
            startup = [_timed(env, "whoami", "--state", alice) for _ in range(args.runs)]
            sends, recvs = [], []
            for i in range(args.runs):
                sends.append(_timed(env, "send", "--state", alice, "--msg", f"m{i}"))
                recvs.append(_timed(env, "recv", "--state", bob))
            # queue messages, then time a follower draining them
            _queue(env, alice, args.messages)
            follow = subprocess.Popen(
                [sys.executable, "-m", "quicnproto", "recv", "--follow", "--json",
                 "--state", bob],
                env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )
            assert follow.stdout is not None
            first = last = 0.0
            seen = 0
            for line in follow.stdout:
                if '"message"' not in line:
                    continue
                now = time.perf_counter()
                first = first or now
                last = now
                seen += 1
                if seen == args.messages:
                    break
            follow.terminate()
            follow.wait()
        finally:
            node.terminate()
            node.wait()
    rate = (seen - 1) / (last - first) if seen > 1 and last > first else 0.0
    print(
        json.dumps(
            {
                "benchmark": "quicnproto command line, one process per command",
                "runs": args.runs,
                "startup_s": round(statistics.median(startup), 3),
                "send_s": round(statistics.median(sends), 3),
                "recv_s": round(statistics.median(recvs), 3),
                "recv_follow_msgs_per_s": round(rate, 1),
                "recv_follow_messages": seen,
                "statistic": "median",
            },
            indent=2,
        )
    )
    return 0


def _queue(env: dict[str, str], state: str, count: int) -> None:
    """Queues ``count`` messages from ``state`` in one process (the agent, not the CLI)."""
    code = f"""
import trio
from pathlib import Path
from quicnproto.client.agent import Agent
from quicnproto.client.connection import open_client
from quicnproto.client.state import ClientState
from quicnproto.config import ClientConfig, parse_address
host, port = parse_address({env['QUICNPROTOCHAT_SERVER']!r})
config = ClientConfig(host=host, port=port, server_cert=Path({env['QUICNPROTOCHAT_SERVER_CERT']!r}))
state = ClientState.open(Path({state!r}))
agent = Agent(state)
async def main():
    async with open_client(config) as client:
        await client.authenticate(agent.ed25519())
        gid = agent.resolve_group(None)
        for i in range({count}):
            await agent.send(client, gid, b"queued %d" % i)
trio.run(main)
"""
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)


if __name__ == "__main__":
    sys.exit(main())
