"""Shared helpers for node end-to-end tests: a node in the test's nursery, clients, identities."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from quicnproto.client.connection import NodeClient, identity_key_of, open_client
from quicnproto.config import ClientConfig, NodeConfig
from quicnproto.node.server import serve


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
    params: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "data_dir": data_dir}
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
