"""Shared helpers for node end-to-end tests: a node in the test's nursery, clients, identities."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from quicnproto.client.connection import NodeClient, identity_key_of, open_client
from quicnproto.config import ClientConfig, NodeConfig
from quicnproto.node.server import configure_logging, serve
from tests.quicnproto.quic_backend import TEST_BACKEND


@dataclass
class Identity:
    private_key: Ed25519PrivateKey
    key: bytes


def new_identity() -> Identity:
    private_key = Ed25519PrivateKey.generate()
    return Identity(private_key, identity_key_of(private_key))


@dataclass
class RunningNode:
    config: NodeConfig
    host: str
    port: int

    def client_config(self, **overrides: Any) -> ClientConfig:
        params: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "server_cert": self.config.cert_path,
            "request_timeout": 10.0,
            "quic_backend": TEST_BACKEND,
        }
        params.update(overrides)
        return ClientConfig(**params)

    @asynccontextmanager
    async def client(
        self, identity: Identity | None = None, **overrides: Any
    ) -> AsyncIterator[NodeClient]:
        async with open_client(self.client_config(**overrides)) as client:
            if identity is not None:
                await client.authenticate(identity.private_key)
            yield client


def node_config(data_dir: Path, **overrides: Any) -> NodeConfig:
    params: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "data_dir": data_dir,
        "quic_backend": TEST_BACKEND,
    }
    params.update(overrides)
    return NodeConfig(**params)


@asynccontextmanager
async def running_node(data_dir: Path, **overrides: Any) -> AsyncIterator[RunningNode]:
    """A node serving on 127.0.0.1:<free port> inside this task's nursery."""
    config = node_config(data_dir, **overrides)
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(serve, config)
        try:
            yield RunningNode(config, host, port)
        finally:
            nursery.cancel_scope.cancel()


@contextmanager
def json_logs(level: str = "INFO") -> Iterator[io.StringIO]:
    """The node's logs as JSON lines in a buffer; logging is reset to its defaults after."""
    sink = io.StringIO()
    configure_logging(json_lines=True, level=level, stream=sink)
    try:
        yield sink
    finally:
        for name in ("quicnproto", "quic"):
            target = logging.getLogger(name)
            for handler in list(target.handlers):
                target.removeHandler(handler)
            target.setLevel(logging.NOTSET)
            target.propagate = True


ROOT = Path(__file__).resolve().parents[3]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_node(data_dir: Path, port: int, *extra: str) -> trio.Process:
    """Start ``python -m quicnproto serve`` (with ``extra`` arguments) and wait for its
    ``listening`` log line."""
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "quicnproto",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(data_dir),
            "--log-json",
            "--log-level",
            "INFO",
            *extra,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    buffer = b""
    with trio.fail_after(30):
        while True:
            chunk = await process.stderr.receive_some(4096)
            if not chunk:
                raise AssertionError(f"node exited early: {buffer.decode(errors='replace')}")
            buffer += chunk
            for line in buffer.splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("event") == "listening" and entry.get("logger") == "quicnproto.node":
                    return process


async def drain(process: trio.Process) -> None:
    """Keep reading the child's stderr so its logging never blocks on a full pipe."""
    assert process.stderr is not None
    try:
        while await process.stderr.receive_some(65536):
            pass
    except (trio.ClosedResourceError, trio.BrokenResourceError):
        pass
